"""Log cleanup: archive (gzip) or delete log files older than N days; delete archives past their retention.

Deciding is pure (:func:`plan_rule` over file facts and a clock); doing is :func:`apply_actions`.
Core business logs are never touched before they are 7 days old, whatever a rule says
(:func:`floor_days`): the requirement's "keep at least 7 days of core business logs".
"""

from __future__ import annotations

import fnmatch
import gzip
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tasks.cleanup.file_removal import Freed, remove_file
from tasks.core.language import words

CORE_LOG_FLOOR_DAYS = 7
DAY_SECONDS = 86_400
COMPRESSED_SUFFIXES = (".gz", ".tgz", ".zip", ".xz", ".bz2", ".zst")
ActionKind = Literal["archive", "move", "delete", "delete_archive"]


@dataclass(frozen=True)
class Rule:
    """One configured folder, resolved to absolute paths."""

    folder: Path
    patterns: tuple[str, ...]
    action: Literal["archive", "delete"]
    after_days: int
    archive_folder: Path
    archive_retention_days: int | None = None
    core: bool = True
    recursive: bool = False


@dataclass(frozen=True)
class LogFile:
    path: Path
    mtime: float
    size: int


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    file: LogFile


def floor_days(configured: int, core: bool) -> int:
    """Days a file is kept at least: core business logs never less than 7."""
    return max(configured, CORE_LOG_FLOOR_DAYS) if core else configured


#: The floor's notes: English for the log and the JSON, else the report's language.
FLOOR_TEXT = {
    "zh": "{folder}：{field} {days} 已提高到 {floor}（核心业务日志）",
    "en": "{folder}: {field} {days} raised to {floor} (core business logs)",
}


def floor_notes(rule: Rule, language: str = "en") -> list[str]:
    """What the 7-day floor changed in a rule, for the log and the report (in ``language``)."""
    text = words(FLOOR_TEXT, language)
    raised = [("after_days", rule.after_days), ("archive_retention_days", rule.archive_retention_days)]
    return [text.format(folder=rule.folder, field=name, days=days, floor=CORE_LOG_FLOOR_DAYS)
            for name, days in raised if rule.core and days is not None and days < CORE_LOG_FLOOR_DAYS]


def is_compressed(path: Path) -> bool:
    return path.name.lower().endswith(COMPRESSED_SUFFIXES)


def plan_rule(rule: Rule, logs: Iterable[LogFile], archives: Iterable[LogFile], now: float) -> list[Action]:
    """The actions for one rule: logs older than ``after_days``, archives older than their retention."""
    actions: list[Action] = []
    cutoff = now - floor_days(rule.after_days, rule.core) * DAY_SECONDS
    for log in logs:
        if log.mtime >= cutoff:
            continue
        if rule.action == "delete":
            actions.append(Action("delete", log))
        else:
            actions.append(Action("move" if is_compressed(log.path) else "archive", log))
    if rule.archive_retention_days is not None:
        archive_cutoff = now - floor_days(rule.archive_retention_days, rule.core) * DAY_SECONDS
        actions += [Action("delete_archive", a) for a in archives if a.mtime < archive_cutoff]
    return actions


# ---- I/O ----------------------------------------------------------------------------------------------------

def _facts(path: Path) -> LogFile | None:
    try:
        st = path.lstat()
    except OSError:
        return None
    return LogFile(path, st.st_mtime, st.st_size)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def scan_logs(rule: Rule) -> list[LogFile]:
    """Regular files (not links) in the folder whose name matches a pattern, outside the archive folder."""
    found: list[LogFile] = []
    if not rule.folder.is_dir():
        return found
    walker = os.walk(rule.folder) if rule.recursive else [(str(rule.folder), [], os.listdir(rule.folder))]
    for root, dirs, files in walker:
        dirs[:] = [d for d in dirs if not _inside(Path(root, d), rule.archive_folder)]
        for name in sorted(files):
            path = Path(root, name)
            if _inside(path, rule.archive_folder) or path.is_symlink() or not path.is_file():
                continue
            if any(fnmatch.fnmatch(name, p) for p in rule.patterns) and (facts := _facts(path)):
                found.append(facts)
    return found


def scan_archives(rule: Rule) -> list[LogFile]:
    """Compressed regular files in the archive folder (the archives this cleanup and logrotate made)."""
    if not rule.archive_folder.is_dir():
        return []
    found = []
    for root, _dirs, files in os.walk(rule.archive_folder):
        for name in sorted(files):
            path = Path(root, name)
            if is_compressed(path) and not path.is_symlink() and (facts := _facts(path)):
                found.append(facts)
    return found


@dataclass
class RuleReport:
    folder: str
    archived: int = 0
    moved: int = 0
    deleted: int = 0
    archives_deleted: int = 0
    bytes_written: int = 0
    freed: Freed = field(default_factory=Freed)

    @property
    def bytes_freed(self) -> int:
        return self.freed.bytes - self.bytes_written

    def to_json(self) -> dict[str, object]:
        return {"folder": self.folder, "archived": self.archived, "moved": self.moved, "deleted": self.deleted,
                "archives_deleted": self.archives_deleted, "bytes_freed": self.bytes_freed,
                "bytes_archived": self.bytes_written, "skipped": self.freed.to_json()["skipped"]}


def _unique(path: Path) -> Path:
    if not path.exists():
        return path
    stem, n = str(path), 1
    base, dot, ext = stem.rpartition(".") if is_compressed(path) else (stem, "", "")
    while True:
        candidate = Path(f"{base}.{n}{dot}{ext}")
        if not candidate.exists():
            return candidate
        n += 1


def _destination(rule: Rule, log: LogFile, suffix: str) -> Path:
    relative = log.path.relative_to(rule.folder)
    return _unique(rule.archive_folder / relative.parent / (relative.name + suffix))


def archive_file(rule: Rule, log: LogFile, report: RuleReport) -> None:
    """gzip into the archive folder (atomic rename, original mtime kept), then remove the original.

    If the original cannot be removed, or changed while being compressed, the archive is removed
    again so nothing is counted twice, and the file is reported as skipped.
    """
    dest = _destination(rule, log, ".gz")
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(log.path, "rb") as src, gzip.open(part, "wb", compresslevel=6) as out:
            shutil.copyfileobj(src, out, 1024 * 1024)
        os.utime(part, (log.mtime, log.mtime))
        os.replace(part, dest)
    except OSError as exc:
        part.unlink(missing_ok=True)
        report.freed.skip(log.path, exc)
        return
    now = _facts(log.path)
    if now is None or now.mtime != log.mtime or now.size != log.size:
        dest.unlink(missing_ok=True)
        report.freed.skip(log.path, "changed while being archived; left for the next run")
        return
    if remove_file(log.path, report.freed):
        report.archived += 1
        report.bytes_written += dest.stat().st_size
    else:
        dest.unlink(missing_ok=True)


def move_file(rule: Rule, log: LogFile, report: RuleReport) -> None:
    """An already-compressed log (e.g. logrotate's ``app.log.3.gz``) moves into the archive folder as is."""
    dest = _destination(rule, log, "")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(log.path, dest)
    except OSError as exc:
        report.freed.skip(log.path, exc)
        return
    report.moved += 1


def apply_actions(rule: Rule, actions: Iterable[Action]) -> RuleReport:
    """Carry out the planned actions; each failure is recorded and the rest goes on."""
    report = RuleReport(str(rule.folder))
    for action in actions:
        if action.kind == "archive":
            archive_file(rule, action.file, report)
        elif action.kind == "move":
            move_file(rule, action.file, report)
        elif remove_file(action.file.path, report.freed):
            if action.kind == "delete":
                report.deleted += 1
            else:
                report.archives_deleted += 1
    return report
