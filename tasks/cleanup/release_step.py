"""ResourceReleaseStep: remove this upgrade's temporary files and staging folders, stale Redis namespaces,
and backups beyond a keep-count; report files, bytes and keys freed.

Backup retention policy itself belongs to the backup step (pre_upgrade_process); here a backup
folder and how many of the newest entries to keep are simply configured.
"""

from __future__ import annotations

import glob
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from tasks.cleanup.file_removal import Freed, remove_contents
from tasks.cleanup.release import (
    RedisFreed,
    expand,
    path_problem,
    redis_escape,
    redis_pattern_problem,
    release_backups,
    release_paths,
    release_redis,
)
from tasks.core.language import words
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepParams, StepResult
from tasks.steps.base import UpgradeStep


class BackupRetentionParams(StepParams):
    """Keep the ``keep`` newest entries (files or folders) matching ``pattern`` in a backup folder."""

    folder: str | None = Field(default=None, description="Absolute backup folder.")
    named_path: str | None = Field(default=None, description="Or a folder named in the site profile (backup_dir).")
    pattern: str = Field(default="*", min_length=1, description="Glob of backup entries in the folder.")
    keep: int = Field(ge=1, description="Newest entries kept; older ones are removed.")

    @field_validator("folder")
    @classmethod
    def _folder(cls, value: str | None) -> str | None:
        if value is not None and (problem := path_problem(value)):
            raise ValueError(f"folder {value!r} {problem}")
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        if "/" in value or ".." in value:
            raise ValueError(f"pattern {value!r} must be a name glob inside the folder")
        return value

    @model_validator(mode="after")
    def _one_folder(self) -> BackupRetentionParams:
        if (self.folder is None) == (self.named_path is None):
            raise ValueError("give exactly one of 'folder' or 'named_path'")
        return self


class ResourceReleaseParams(StepParams):
    paths: list[str] = Field(default_factory=list, description="Absolute files/folders/globs to remove; "
                             "placeholders {execution_id} {site_id} {source_version} {target_version}.")
    named_paths: list[str] = Field(default_factory=list, description="Site-profile folders (staging_dir…) to "
                                   "empty; the folders stay.")
    redis_patterns: list[str] = Field(default_factory=list, description="Redis SCAN patterns of stale namespaces.")
    backups: list[BackupRetentionParams] = Field(default_factory=list)

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        for template in value:
            if problem := path_problem(template):
                raise ValueError(f"path {template!r} {problem}")
        return value

    @field_validator("redis_patterns")
    @classmethod
    def _redis(cls, value: list[str]) -> list[str]:
        for template in value:
            if problem := redis_pattern_problem(template):
                raise ValueError(f"redis pattern {template!r} {problem}")
        return value

    @model_validator(mode="after")
    def _something(self) -> ResourceReleaseParams:
        if not (self.paths or self.named_paths or self.redis_patterns or self.backups):
            raise ValueError("resource release needs at least one of paths, named_paths, redis_patterns, backups")
        return self


class ResourceReleaseStep(UpgradeStep):
    """Frees disk and Redis memory the upgrade no longer needs, and says how much."""

    Params = ResourceReleaseParams
    description = "Resource release: temp files, staging folders, stale Redis namespaces, old backups"
    params: ResourceReleaseParams

    def run(self) -> StepResult:
        c = self.context
        values = {"execution_id": c.execution_id, "site_id": c.site_id, "source_version": c.source_version,
                  "target_version": c.target_version}
        sections: list[Section] = []
        for template in self.params.paths:
            path = expand(template, values, glob.escape)
            section = Section(path, Path(path))
            if problem := path_problem(path):  # the run's values may not make a pattern unsafe
                section.freed.skip(path, f"not removed: expanded path {problem}")
            else:
                section.freed.add(release_paths(path))
            sections.append(section)
        for name in self.params.named_paths:
            folder = c.resources.path(name)
            section = Section(f"{name} ({folder})", folder)
            remove_contents(folder, section.freed)
            sections.append(section)
        for backup in self.params.backups:
            folder = Path(backup.folder) if backup.folder else c.resources.path(str(backup.named_path))
            freed, names = release_backups(folder, backup.pattern, backup.keep)
            sections.append(Section(f"backups {folder / backup.pattern} (keep {backup.keep})", folder, freed, names,
                                    keep=backup.keep, pattern=str(folder / backup.pattern)))
        redis_freed = [self._release_redis(expand(t, values, redis_escape)) for t in self.params.redis_patterns]
        return release_result(sections, redis_freed, c.language)

    def _release_redis(self, pattern: str) -> RedisFreed:
        if redis_pattern_problem(pattern):
            self.context.logger.warning("resource release: Redis pattern %r unsafe after expansion; skipped", pattern)
            return RedisFreed(pattern)
        return release_redis(self.context.resources.redis(), pattern)


@dataclass
class Section:
    """One configured item and what removing it freed."""

    label: str
    root: Path
    freed: Freed = field(default_factory=Freed)
    removed: list[str] = field(default_factory=list)
    keep: int | None = None  # old backups: how many upgrades' backups are kept, and their ``pattern``
    pattern: str = ""


def disk_free(roots: list[Path]) -> dict[str, int]:
    """Free bytes now on each file system touched (the report's "resource use" figures)."""
    free: dict[str, int] = {}
    for root in roots:
        path = root
        while not path.exists() and path != path.parent:
            path = path.parent
        free.setdefault(str(path), shutil.disk_usage(path).free)
    return free


#: 资源释放报告's words, in the site's language (the JSON's labels stay English).
TEXT = {
    "zh": {"header": "| 清理对象 | 文件数 | 目录数 | 字节数 | 跳过 |",
           "backups": "旧备份 `{pattern}`（保留最新 {keep} 个）",
           "keys": "{keys} 个键", "skipped": "⚠️ 已跳过（请手工处理）：",
           "summary": "释放 {files} 个文件，{size:,} 字节，{keys} 个 Redis 键", "summary_skipped": "；跳过 {count} 个"},
    "en": {"header": "| what | files | folders | bytes | skipped |", "backups": "`backups {pattern} (keep {keep})`",
           "keys": "{keys} keys", "skipped": "⚠️ skipped (handle by hand):",
           "summary": "freed {files} file(s), {size:,} bytes, {keys} Redis key(s)",
           "summary_skipped": "; {count} skipped"},
}


def release_result(sections: list[Section], redis_freed: list[RedisFreed], language: str | None = None) -> StepResult:
    """The step's result; the markdown in ``language`` (Chinese unless ``en``)."""
    w = words(TEXT, language)

    def label(s: Section) -> str:
        return w["backups"].format(pattern=s.pattern, keep=s.keep) if s.keep is not None else f"`{s.label}`"

    lines = [w["header"], "|---|---|---|---|---|"]
    lines += [f"| {label(s)} | {s.freed.files} | {s.freed.dirs} | {s.freed.bytes:,} | {len(s.freed.skipped)} |"
              for s in sections]
    lines += [f"| Redis `{r.pattern}` | {w['keys'].format(keys=r.keys)} | - | {r.bytes:,} | 0 |" for r in redis_freed]
    skipped = [k for s in sections for k in s.freed.skipped]
    if skipped:
        lines.append("\n" + w["skipped"])
        lines += [f"- `{k.path}`: {k.reason}" for k in skipped[:50]]
    files = sum(s.freed.files for s in sections)
    size = sum(s.freed.bytes for s in sections)
    keys = sum(r.keys for r in redis_freed)
    summary = w["summary"].format(files=files, size=size, keys=keys)
    if skipped:
        summary += w["summary_skipped"].format(count=len(skipped))
    details = {"files": files, "bytes": size, "redis_keys": keys, "redis_bytes": sum(r.bytes for r in redis_freed),
               "sections": [{"label": s.label, **s.freed.to_json(), **({"removed": s.removed} if s.removed else {})}
                            for s in sections],
               "redis": [r.to_json() for r in redis_freed],
               "disk_free_bytes": disk_free([s.root for s in sections])}
    return StepResult(status=StepStatus.WARNING if skipped else StepStatus.SUCCESS, summary=summary,
                      details=details, markdown="\n".join(lines))
