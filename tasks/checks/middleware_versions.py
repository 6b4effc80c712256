"""Middleware version strings and how they compare with a rule's minimum and maximum. Pure.

Servers report versions with vendor suffixes: ``10.11.19-MariaDB-0+deb12u1``, ``5.7.44-log``,
``7.0.15``, ``3.8.0-${mvngit.commit.id}, built on …`` (ZooKeeper ``srvr``), ``26.9.2.1`` (ClickHouse).
Only the leading dotted numbers take part in the comparison; the rest is kept for the report.

A minimum is compared with missing parts as zero (``5.7`` means ``5.7.0``). A maximum is compared at
its own precision, so ``max 7.2`` admits ``7.2.4`` but not ``7.3.0``, while ``max 7.2.4`` admits only
up to ``7.2.4``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LEADING = re.compile(r"\s*v?(\d+(?:\.\d+)*)")
_REQUIREMENT = re.compile(r"\d+(?:\.\d+){0,3}")


@dataclass(frozen=True, order=True)
class ServerVersion:
    """The numeric part of a server's version, plus the raw string it came from."""

    parts: tuple[int, ...]
    raw: str = ""

    @property
    def numeric(self) -> str:
        return ".".join(str(p) for p in self.parts)

    @property
    def is_mariadb(self) -> bool:
        return "mariadb" in self.raw.lower()

    def __str__(self) -> str:
        return self.numeric


def parse_server_version(raw: str) -> ServerVersion:
    """Read the leading ``N.N.N`` of a version string; ``ValueError`` if there is none."""
    m = _LEADING.match(raw or "")
    if not m:
        raise ValueError(f"no version number in {raw!r}")
    return ServerVersion(tuple(int(p) for p in m.group(1).split(".")), raw.strip())


def parse_requirement(text: str) -> tuple[int, ...]:
    """A rule's ``min_version`` / ``max_version``: 1 to 4 dotted numbers, nothing else."""
    if not isinstance(text, str) or not _REQUIREMENT.fullmatch(text.strip()):
        raise ValueError(f"version requirement {text!r} must be dotted numbers such as 5.7.0")
    return tuple(int(p) for p in text.strip().split("."))


def _padded(parts: tuple[int, ...], length: int) -> tuple[int, ...]:
    return parts + (0,) * (length - len(parts))


def meets_minimum(actual: tuple[int, ...], minimum: tuple[int, ...]) -> bool:
    n = max(len(actual), len(minimum))
    return _padded(actual, n) >= _padded(minimum, n)


def within_maximum(actual: tuple[int, ...], maximum: tuple[int, ...]) -> bool:
    return _padded(actual, len(maximum))[: len(maximum)] <= maximum


def version_problem(actual: ServerVersion, label: str, minimum: str | None, maximum: str | None) -> str | None:
    """The seed's wording of why a version is refused (``MySQL版本5.6.35不满足最低要求5.7.0``), or None."""
    if minimum is not None and not meets_minimum(actual.parts, parse_requirement(minimum)):
        return f"{label}版本{actual.numeric}不满足最低要求{minimum}"
    if maximum is not None and not within_maximum(actual.parts, parse_requirement(maximum)):
        return f"{label}版本{actual.numeric}高于最高支持版本{maximum}"
    return None


def requirement_text(minimum: str | None, maximum: str | None) -> str:
    if minimum and maximum:
        return f"{minimum} ~ {maximum}"
    return f"≥ {minimum}" if minimum else f"≤ {maximum}"


def zookeeper_version_from_srvr(output: str) -> str:
    """The version line of ZooKeeper's ``srvr`` four-letter-word answer."""
    for line in output.splitlines():
        if line.lower().startswith("zookeeper version:"):
            return line.split(":", 1)[1].strip()
    raise ValueError(f"no 'Zookeeper version:' line in the srvr answer: {output[:200]!r}")


def zookeeper_data_dir_from_conf(output: str) -> str:
    """``dataDir`` from ZooKeeper's ``conf`` answer, without the ``version-2`` folder ZooKeeper appends."""
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "dataDir":
            path = value.strip()
            return path[: -len("/version-2")] if path.endswith("/version-2") else path
    raise ValueError(f"no dataDir in the conf answer: {output[:200]!r}")
