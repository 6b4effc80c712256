"""A site's off-peak windows (业务低峰期): when heavy work (index optimization, data backups) may run.

The requirements ask index optimization to run in the low-peak period (低峰期) and the pre-stop preparation
(backups) outside peak hours. A site profile names its windows in the site's own time, e.g.
``["22:00-06:00"]`` with ``timezone: Asia/Shanghai``; a window whose end is not after its start runs past
midnight, ``24:00`` ends a day. Pure: times come in, text and datetimes go out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator

#: The name an operator waives the window with (``--waive off_peak --reason TEXT``).
OFF_PEAK = "off_peak"

_WINDOW = re.compile(r"^\s*([01]\d|2[0-3]):([0-5]\d)\s*-\s*(?:([01]\d|2[0-3]):([0-5]\d)|(24):(00))\s*$")


@dataclass(frozen=True)
class Window:
    """One daily window, in minutes after local midnight; ``end`` up to 1440, before ``start`` past midnight."""

    start: int
    end: int

    @classmethod
    def parse(cls, text: str) -> Window:
        """``HH:MM-HH:MM`` (24-hour clock); a ValueError saying what is wrong otherwise."""
        found = _WINDOW.match(text)
        if not found:
            raise ValueError(f"off-peak window {text!r}: write HH:MM-HH:MM on a 24-hour clock, e.g. 22:00-06:00")
        h1, m1, h2, m2, h24, m24 = found.groups()
        start, end = int(h1) * 60 + int(m1), (int(h2) * 60 + int(m2)) if h2 else int(h24) * 60 + int(m24)
        if start == end:
            raise ValueError(f"off-peak window {text!r} is empty (start = end); a whole day is 00:00-24:00")
        return cls(start, end)

    def contains(self, minute: int) -> bool:
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


@dataclass(frozen=True)
class OffPeak:
    """A site's windows in its time zone."""

    windows: tuple[Window, ...]
    timezone: str = "UTC"

    @classmethod
    def parse(cls, windows: list[str] | tuple[str, ...], timezone: str = "UTC") -> OffPeak:
        return cls(tuple(Window.parse(w) for w in windows), check_timezone(timezone))

    def contains(self, now: datetime) -> bool:
        """Whether the aware moment ``now`` falls in a window."""
        local = now.astimezone(ZoneInfo(self.timezone))
        return any(w.contains(local.hour * 60 + local.minute) for w in self.windows)

    def next_opening(self, now: datetime) -> datetime:
        """When the next window opens after ``now`` (aware, in the site's zone)."""
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        midnight = datetime.combine(local.date(), time(0), tzinfo=zone)
        openings = [midnight + timedelta(days=day, minutes=w.start) for day in (0, 1) for w in self.windows]
        return min(o for o in openings if o > local)

    def describe(self) -> str:
        return f"{', '.join(map(str, self.windows))} ({self.timezone})"


def check_timezone(name: str) -> str:
    """An IANA time zone name (``Asia/Shanghai``, ``UTC``); a ValueError naming it otherwise."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as Asia/Shanghai or UTC") from None
    return name


def check_windows(windows: list[str]) -> list[str]:
    """Each window parses (a ValueError naming the first that does not)."""
    for window in windows:
        Window.parse(window)
    return windows


#: Field types of the site profile and the site file.
OffPeakWindows = Annotated[list[str], AfterValidator(check_windows)]
TimeZoneName = Annotated[str, AfterValidator(check_timezone)]


def outside_window(off_peak: OffPeak | None, heavy: list[str], now: datetime, site_id: str) -> str:
    """What is missing of the ``off_peak`` precondition ('' when it holds): heavy steps outside the window.

    No heavy step, or a site that declares no window, leaves nothing to hold.
    """
    if not heavy or off_peak is None or not off_peak.windows or off_peak.contains(now):
        return ""
    zone = ZoneInfo(off_peak.timezone)
    opening = off_peak.next_opening(now)
    return (f"heavy work ({', '.join(heavy)}) runs only in site {site_id}'s off-peak window "
            f"{off_peak.describe()}; it is {now.astimezone(zone):%H:%M} there now; the next window opens "
            f"{opening:%Y-%m-%d %H:%M} {off_peak.timezone} ({opening.astimezone(ZoneInfo('UTC')):%H:%M} UTC): "
            "trigger it then")


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
