"""Resource release: this upgrade's temporary files and staging folders, stale Redis namespaces, old backups.

Templates (paths, Redis patterns) may name the run with ``{execution_id}``, ``{site_id}``,
``{source_version}`` and ``{target_version}``. Checking them is pure and happens at plan time:
a pattern that could match ``/`` or all of Redis never reaches a run.
"""

from __future__ import annotations

import glob
import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tasks.cleanup.file_removal import Freed, remove_tree

PLACEHOLDERS = ("execution_id", "site_id", "source_version", "target_version")
_WILDCARD = re.compile(r"[*?\[]")
MIN_LITERAL_PATH_PARTS = 2  # "/tmp/ft-upgrade-*" is fine; "/*" or "/tmp" alone are not
MIN_REDIS_PREFIX = 3
REDIS_BATCH = 500


def template_problem(template: str) -> str | None:
    """Why a template cannot be expanded (unknown placeholder, format spec), else None."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"bad placeholder syntax ({exc})"
    for _literal, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            return f"unknown placeholder {{{name}}} (known: {', '.join(PLACEHOLDERS)})"
        if spec or conversion:
            return f"placeholder {{{name}}} takes no format spec or conversion"
    return None


def expand(template: str, values: Mapping[str, str], quote: Callable[[str], str] = str) -> str:
    """Fill the placeholders; ``quote`` makes a value literal in the pattern language (glob, Redis)."""
    return template.format(**{k: quote(values[k]) for k in PLACEHOLDERS})


def redis_escape(value: str) -> str:
    """A value matched literally by a Redis SCAN pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", value)


def path_problem(template: str) -> str | None:
    """Why a path pattern is unsafe to delete by: relative, '..', or a wildcard too close to the root."""
    problem = template_problem(template)
    if problem:
        return problem
    path = PurePosixPath(template)
    if not path.is_absolute():
        return "must be an absolute path"
    if ".." in path.parts:
        return "must not contain '..'"
    match = _WILDCARD.search(template)
    fixed = PurePosixPath(template[: match.start()] if match else template).parts[1:]
    if len(fixed) < MIN_LITERAL_PATH_PARTS:
        return (f"needs at least {MIN_LITERAL_PATH_PARTS} fixed levels before any wildcard "
                "(/tmp/ft-upgrade-* is fine, /tmp/* or /tmp is not)")
    return None


def redis_pattern_problem(template: str) -> str | None:
    """Why a SCAN pattern is unsafe: it must start with a literal prefix of at least 3 characters."""
    problem = template_problem(template)
    if problem:
        return problem
    probe = expand(template, dict.fromkeys(PLACEHOLDERS, "x"))
    match = _WILDCARD.search(probe.replace("\\", "*"))
    prefix = probe[: match.start()] if match else probe
    if len(prefix) < MIN_REDIS_PREFIX:
        return f"needs a literal prefix of at least {MIN_REDIS_PREFIX} characters before any wildcard"
    return None


@dataclass(frozen=True)
class Entry:
    path: Path
    mtime: float


def beyond_retention(entries: Iterable[Entry], keep: int) -> list[Entry]:
    """All but the ``keep`` newest entries (by mtime, then name), oldest last."""
    ordered = sorted(entries, key=lambda e: (e.mtime, e.path.name), reverse=True)
    return ordered[keep:]


# ---- I/O ----------------------------------------------------------------------------------------------------

def release_paths(pattern: str) -> Freed:
    """Remove every file or folder matching an absolute glob."""
    freed = Freed()
    for match in sorted(glob.glob(pattern)):
        remove_tree(Path(match), freed)
    return freed


def release_backups(folder: Path, pattern: str, keep: int) -> tuple[Freed, list[str]]:
    """Remove backups in ``folder`` matching ``pattern`` beyond the ``keep`` newest; (freed, names removed)."""
    freed = Freed()
    if not folder.is_dir():
        return freed, []
    entries = []
    for path in folder.glob(pattern):
        try:
            entries.append(Entry(path, path.lstat().st_mtime))
        except OSError as exc:
            freed.skip(path, exc)
    old = beyond_retention(entries, keep)
    for entry in old:
        remove_tree(entry.path, freed)
    return freed, [e.path.name for e in old]


@dataclass
class RedisFreed:
    pattern: str
    keys: int = 0
    bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "keys": self.keys, "bytes": self.bytes}


def release_redis(client: Any, pattern: str, batch: int = REDIS_BATCH) -> RedisFreed:
    """UNLINK every key matching ``pattern`` (SCAN, batches); bytes from ``MEMORY USAGE`` before removal."""
    freed = RedisFreed(pattern)
    pending: list[Any] = []

    def flush() -> None:
        pipe = client.pipeline(transaction=False)
        for key in pending:
            pipe.memory_usage(key)
        sizes = pipe.execute()
        removed = client.unlink(*pending)
        freed.keys += int(removed)
        freed.bytes += sum(int(s or 0) for s in sizes)
        pending.clear()

    for key in client.scan_iter(match=pattern, count=1000):
        pending.append(key)
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    return freed
