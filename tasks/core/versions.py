"""Version codec: ``3.17.5`` ↔ ``317500`` and ``3.17.5-P1`` ↔ ``317501``.

A code is six digits: major (1–9), minor (00–99), patch (0–9) and patch level P (00–99, 00 for a
baseline). Anything that would not round-trip uniquely (``3.17.10``, ``P0``, ``P100``) is rejected
rather than squeezed into a colliding code. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from tasks.core.errors import VersionError

_DOTTED = re.compile(r"(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)(?:-P(?P<p>\d+))?")
_CODE = re.compile(r"\d{6}")


@total_ordering
@dataclass(frozen=True)
class Version:
    """One FT version; ordered by its code."""

    major: int
    minor: int
    patch: int
    p: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.major <= 9:
            raise VersionError(str(self), "major must be 1..9")
        if not 0 <= self.minor <= 99:
            raise VersionError(str(self), "minor must be 0..99")
        if not 0 <= self.patch <= 9:
            raise VersionError(str(self), "patch must be 0..9")
        if not 0 <= self.p <= 99:
            raise VersionError(str(self), "patch level must be P1..P99")

    @property
    def code(self) -> int:
        return self.major * 100000 + self.minor * 1000 + self.patch * 100 + self.p

    @property
    def is_patch(self) -> bool:
        return self.p > 0

    @property
    def baseline(self) -> Version:
        """The baseline this version belongs to (itself for a baseline)."""
        return Version(self.major, self.minor, self.patch)

    def __str__(self) -> str:
        base = f"{self.major}.{self.minor}.{self.patch}"
        return f"{base}-P{self.p}" if self.p else base

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.code < other.code

    @classmethod
    def from_code(cls, code: int | str) -> Version:
        """Decode a six-digit code such as ``317501``."""
        text = str(code)
        if not _CODE.fullmatch(text):
            raise VersionError(code, "a version code has exactly six digits, e.g. 317500")
        n = int(text)
        if n < 100000:
            raise VersionError(code, "a version code has exactly six digits, e.g. 317500")
        return cls(n // 100000, n // 1000 % 100, n // 100 % 10, n % 100)

    @classmethod
    def parse(cls, value: object) -> Version:
        """Read ``3.17.5``, ``3.17.5-P1`` or a code ``317501`` (str or int)."""
        if isinstance(value, Version):
            return value
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise VersionError(value, "expected a string like 3.17.5 or 3.17.5-P1, or a code like 317500")
        if isinstance(value, int):
            return cls.from_code(value)
        text = value.strip()
        if not text:
            raise VersionError(value, "empty version")
        if text.isdigit():
            return cls.from_code(text)
        m = _DOTTED.fullmatch(text)
        if not m:
            raise VersionError(value, "expected MAJOR.MINOR.PATCH or MAJOR.MINOR.PATCH-P<1..99>")
        major, minor, patch = int(m["major"]), int(m["minor"]), int(m["patch"])
        if m["p"] is not None:
            p = int(m["p"])
            if not 1 <= p <= 99:
                raise VersionError(value, "patch level must be P1..P99")
            if m["p"] != str(p):
                raise VersionError(value, "patch level has a leading zero")
        else:
            p = 0
        for part in ("major", "minor", "patch"):
            if m[part] != str(int(m[part])):
                raise VersionError(value, f"{part} has a leading zero")
        if patch > 9:
            raise VersionError(value, "patch must be 0..9 (it has one digit in the code)")
        if minor > 99:
            raise VersionError(value, "minor must be 0..99 (it has two digits in the code)")
        if not 1 <= major <= 9:
            raise VersionError(value, "major must be 1..9 (it has one digit in the code)")
        return cls(major, minor, patch, p)


def parse_version(value: object) -> Version:
    """Shorthand for :meth:`Version.parse`."""
    return Version.parse(value)
