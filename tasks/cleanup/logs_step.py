"""LogCleanupStep: archive or delete old log files per rule, drop old rows of this tool's ClickHouse log.

A file that cannot be archived or removed is skipped and listed; the step then ends WARNING (the
operator handles those by hand) and the rest of the cleanup still happens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from tasks.cleanup.logs import (
    CORE_LOG_FLOOR_DAYS,
    Rule,
    RuleReport,
    apply_actions,
    floor_notes,
    plan_rule,
    scan_archives,
    scan_logs,
)
from tasks.core.language import words
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepParams, StepResult
from tasks.steps.base import UpgradeStep


def _absolute(value: str | None, what: str) -> str | None:
    if value is not None and (not Path(value).is_absolute() or len(Path(value).parts) < 2):
        raise ValueError(f"{what} must be an absolute path below the root, got {value!r}")
    return value


class LogRuleParams(StepParams):
    """One folder of logs: which files, after how many days, archived or deleted."""

    folder: str | None = Field(default=None, description="Absolute folder of the logs.")
    named_path: str | None = Field(default=None, description="Or a folder named in the site profile (log_dir).")
    patterns: list[str] = Field(default_factory=lambda: ["*.log"], min_length=1, description="File name globs.")
    recursive: bool = False
    action: Literal["archive", "delete"] = Field(default="archive", description="gzip into the archive folder, "
                                                 "or delete.")
    after_days: int = Field(default=CORE_LOG_FLOOR_DAYS, ge=0, description="Files older than this are handled.")
    archive_folder: str | None = Field(default=None, description="Default: <folder>/archive.")
    archive_retention_days: int | None = Field(default=None, ge=0, description="Archives older than this are "
                                               "deleted; null keeps them.")
    core: bool = Field(default=True, description="Core business logs: never touched before 7 days, whatever "
                                                 "after_days says.")

    @field_validator("folder")
    @classmethod
    def _folder(cls, value: str | None) -> str | None:
        return _absolute(value, "folder")

    @field_validator("archive_folder")
    @classmethod
    def _archive_folder(cls, value: str | None) -> str | None:
        return _absolute(value, "archive_folder")

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not pattern or "/" in pattern:
                raise ValueError(f"pattern {pattern!r} must be a non-empty file name glob (no '/')")
        return value

    @model_validator(mode="after")
    def _one_folder(self) -> LogRuleParams:
        if (self.folder is None) == (self.named_path is None):
            raise ValueError("give exactly one of 'folder' or 'named_path'")
        return self

    def resolve(self, path_for: Callable[[str], Path]) -> Rule:
        """The rule on its folder (a literal one, or the site's named folder ``path_for`` gives)."""
        folder = Path(self.folder) if self.folder else path_for(str(self.named_path))
        return Rule(folder=folder, patterns=tuple(self.patterns), action=self.action, after_days=self.after_days,
                    archive_folder=Path(self.archive_folder) if self.archive_folder else folder / "archive",
                    archive_retention_days=self.archive_retention_days, core=self.core, recursive=self.recursive)


class LogCleanupParams(StepParams):
    rules: list[LogRuleParams] = Field(default_factory=list)
    clean_event_log: bool = Field(default=True, description="Drop old partitions of this tool's ClickHouse log.")
    event_log_retention_days: int | None = Field(default=None, ge=1, description="Default: the log store's "
                                                 "retention_days.")

    @model_validator(mode="after")
    def _something(self) -> LogCleanupParams:
        if not self.rules and not self.clean_event_log:
            raise ValueError("log cleanup needs at least one rule or clean_event_log")
        return self


class LogCleanupStep(UpgradeStep):
    """Archives and deletes old logs per rule, keeping 7 days of core business logs; trims the event log."""

    Params = LogCleanupParams
    description = "Log cleanup: archive/delete old logs, drop old event-log partitions"
    params: LogCleanupParams

    def run(self) -> StepResult:
        resources = self.context.resources
        now = time.time()
        language = self.context.language
        reports: list[RuleReport] = []
        notes: list[str] = []  # English: the log and the JSON
        shown: list[str] = []  # the same in the report's language
        for rule_params in self.params.rules:
            rule = rule_params.resolve(resources.path)
            notes += floor_notes(rule)
            shown += floor_notes(rule, language)
            if not rule.folder.is_dir():
                notes.append(TEXT["en"]["no_folder"].format(folder=rule.folder))
                shown.append(words(TEXT, language)["no_folder"].format(folder=rule.folder))
            actions = plan_rule(rule, scan_logs(rule), scan_archives(rule), now)
            reports.append(apply_actions(rule, actions))
        partitions: list[str] = []
        retention = None
        if self.params.clean_event_log:
            event_log = resources.event_log()
            retention = self.params.event_log_retention_days or event_log.store.retention_days
            partitions = event_log.drop_older_than(retention)
        for note in notes:
            self.context.logger.warning("log cleanup: %s", note)
        return cleanup_result(reports, notes, partitions, retention, language=language, shown_notes=shown)


#: 清理结果's words, in the site's language.
TEXT = {
    "zh": {
        "header": "| 目录 | 已归档 | 已移动 | 已删除 | 已删除归档 | 释放字节数 | 跳过 |",
        "event_log": "ClickHouse 事件日志：已删除 {count} 个早于 {days} 天的日分区{names}。",
        "names": "：{names}", "no_folder": "{folder}：目录不存在，无需清理",
        "skipped": "⚠️ 已跳过（请手工处理）：",
        "summary": "已归档或删除 {files} 个文件，释放 {freed:,} 字节",
        "summary_partitions": "，删除事件日志分区 {count} 个", "summary_skipped": "；跳过 {count} 个",
    },
    "en": {
        "header": "| folder | archived | moved | deleted | archives deleted | freed bytes | skipped |",
        "event_log": "ClickHouse event log: {count} daily partition(s) older than {days} days dropped{names}.",
        "names": ": {names}", "no_folder": "{folder}: no such folder, nothing to clean",
        "skipped": "⚠️ skipped (handle by hand):",
        "summary": "{files} file(s) archived or deleted, {freed:,} bytes freed",
        "summary_partitions": ", {count} event-log partition(s) dropped", "summary_skipped": "; {count} skipped",
    },
}


def cleanup_result(reports: list[RuleReport], notes: list[str], partitions: list[str], retention: int | None, *,
                   language: str | None = None, shown_notes: list[str] | None = None) -> StepResult:
    """The step's result: ``notes`` (English) in the JSON, ``shown_notes`` in the markdown, in ``language``."""
    w = words(TEXT, language)
    skipped = [s for r in reports for s in r.freed.skipped]
    lines = [w["header"], "|---|---|---|---|---|---|---|"]
    lines += [f"| {r.folder} | {r.archived} | {r.moved} | {r.deleted} | {r.archives_deleted} | {r.bytes_freed:,} "
              f"| {len(r.freed.skipped)} |" for r in reports]
    if retention is not None:
        names = w["names"].format(names=", ".join(partitions)) if partitions else ""
        lines.append("\n" + w["event_log"].format(count=len(partitions), days=retention, names=names))
    lines += [f"\nℹ️ {n}" for n in (notes if shown_notes is None else shown_notes)]
    if skipped:
        lines.append("\n" + w["skipped"])
        lines += [f"- `{s.path}`: {s.reason}" for s in skipped[:50]]
    freed = sum(r.bytes_freed for r in reports)
    files = sum(r.archived + r.deleted + r.archives_deleted for r in reports)
    summary = w["summary"].format(files=files, freed=freed)
    if partitions:
        summary += w["summary_partitions"].format(count=len(partitions))
    if skipped:
        summary += w["summary_skipped"].format(count=len(skipped))
    return StepResult(status=StepStatus.WARNING if skipped else StepStatus.SUCCESS, summary=summary,
                      details={"rules": [r.to_json() for r in reports], "notes": notes,
                               "event_log_partitions_dropped": partitions, "event_log_retention_days": retention},
                      markdown="\n".join(lines))
