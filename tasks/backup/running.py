"""The backup steps' runtime: snapshot dumps, manifests, retention and the verified restore.

Imported by the steps' ``run`` (tasks/backup/step.py), so that `validate` and `plan` load no driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tenacity import Retrying, stop_after_attempt, wait_exponential

from tasks.backup.catalog import apply_retention, backups_of_execution, find_backup
from tasks.backup.create import create_backup
from tasks.backup.dump import SnapshotPlan, estimated_rows
from tasks.backup.manifest import Manifest
from tasks.backup.restore import restore_backup
from tasks.core.errors import BackupError, BackupNotFound, StepFailed
from tasks.core.language import words
from tasks.core.progress import Progress
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepResult

if TYPE_CHECKING:
    from tasks.backup.params import BackupParams, RestoreParams
    from tasks.steps.context import StepContext

#: The report sections' words (备份完成状态 and the restore's), in the site's language.
TEXT = {
    "zh": {
        "backup": "**备份完成** `{id}` → `{folder}`（{mb:.2f} MB，{rows:,} 行，耗时 {seconds:.1f} 秒，"
                  "{rate:,.0f} 行/秒）",
        "tables": "| 表 | 行数 | CHECKSUM TABLE | 字节数 |",
        "files": "| 配置文件 | sha256 |",
        "removed": "按保留策略删除（保留最近 {keep} 次升级）：{ids}",
        "restored": "| 备份 | 表 | 行数 | CHECKSUM TABLE（已校验） |",
        "nothing": "未配置需要备份的内容",
        "summary": "备份 {id}：{tables} 张表，{rows:,} 行，{files} 个文件，{mb:.2f} MB",
        "summary_removed": "；删除旧备份 {n} 个",
        "summary_restored": "已恢复 {ids}", "restore_failed": "恢复失败：{error}",
        "proof": "**与备份比对**：{text}",
        "dropped": "备份之后创建、已删除的对象：{names}",
    },
    "en": {
        "backup": "**Backup** `{id}` → `{folder}` ({mb:.2f} MB, {rows:,} rows, {seconds:.1f} s, {rate:,.0f} rows/s)",
        "tables": "| table | rows | CHECKSUM TABLE | bytes |",
        "files": "| config file | sha256 |",
        "removed": "Removed by retention (keep last {keep} upgrades): {ids}",
        "restored": "| backup | table | rows | CHECKSUM TABLE (verified) |",
        "nothing": "nothing configured to back up",
        "summary": "backup {id}: {tables} tables, {rows:,} rows, {files} files, {mb:.2f} MB",
        "summary_removed": "; removed {n} old",
        "summary_restored": "restored {ids}", "restore_failed": "{error}",
        "proof": "**Compared with the backup**: {text}",
        "dropped": "Created after the backup, dropped: {names}",
    },
}


def _config_path(context: StepContext, name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else context.resources.path("config_dir") / path


def run_backup(params: BackupParams, context: StepContext) -> StepResult:
    """The backup step's run: dump, manifest, retention; a failed attempt is removed and retried."""
    ctx, res = context, context.resources
    files = [_config_path(context, f) for f in params.config_files]
    if params.site_config_dir:
        folder = res.path("config_dir")
        files += sorted(f for f in folder.iterdir() if f.is_file() and f not in files)
    if not params.databases and not files:
        return StepResult(StepStatus.SKIPPED, words(TEXT, context.language)["nothing"])
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise StepFailed(f"config files to back up are missing: {', '.join(missing)}")
    plans = [SnapshotPlan(d.database, tuple(d.tables)) for d in params.databases]
    total = sum(estimated_rows(res.engine(p.database), p.tables) for p in plans)
    root = res.path("backup_dir")
    last: BaseException | None = None
    for attempt in Retrying(stop=stop_after_attempt(params.attempts), reraise=True,
                            wait=wait_exponential(multiplier=res.retry_wait, max=30)):
        with attempt:
            n = attempt.retry_state.attempt_number
            if last is not None:
                ctx.logger.warning("backup attempt %d failed (%s); retrying", n - 1, last)
            progress = Progress(total, f"backup {ctx.site_id}: rows", key=None)
            moved = {"rows": 0, "bytes": 0}

            def tick(rows: int, size: int, progress: Progress = progress, moved: dict = moved) -> None:
                moved["rows"] += rows
                moved["bytes"] += size
                progress.advance(rows)
                progress.description = f"backup {ctx.site_id}: {moved['rows']:,} rows, {moved['bytes']:,} bytes"

            try:
                folder, manifest = create_backup(
                    root, site_id=ctx.site_id, execution_id=ctx.execution_id,
                    source_version=ctx.source_version, target_version=ctx.target_version, plans=plans,
                    engine_for=res.engine, config_files=files, on_progress=tick,
                    batch_rows=params.batch_rows, group=ctx.settings.backup_group)
            except Exception as exc:
                last = exc
                raise
            progress.finish()
    removed = apply_retention(root, ctx.site_id, params.keep_upgrades)
    return _result(params, context, folder, manifest, removed)


def _result(params: BackupParams, context: StepContext, folder: Path, manifest: Manifest,
            removed: list[Manifest]) -> StepResult:
    mb = manifest.total_bytes / 1e6
    rate = manifest.total_rows / manifest.duration_seconds if manifest.duration_seconds else 0.0
    w = words(TEXT, context.language)
    lines = [w["backup"].format(id=manifest.backup_id, folder=folder, mb=mb, rows=manifest.total_rows,
                                seconds=manifest.duration_seconds, rate=rate), "",
             w["tables"], "|---|---|---|---|"]
    lines += [f"| {t.key} | {t.rows:,} | {t.checksum} | {t.bytes:,} |" for t in manifest.tables]
    if manifest.files:
        lines += ["", w["files"], "|---|---|"]
        lines += [f"| {f.source} | `{f.sha256[:16]}…` |" for f in manifest.files]
    if removed:
        lines += ["", w["removed"].format(keep=params.keep_upgrades,
                                          ids=", ".join(f"`{m.backup_id}`" for m in removed))]
    return StepResult(
        StepStatus.SUCCESS,
        w["summary"].format(id=manifest.backup_id, tables=len(manifest.tables), rows=manifest.total_rows,
                            files=len(manifest.files), mb=mb)
        + (w["summary_removed"].format(n=len(removed)) if removed else ""),
        details={"backup_id": manifest.backup_id, "path": str(folder), "bytes": manifest.total_bytes,
                 "rows": manifest.total_rows, "duration_seconds": manifest.duration_seconds,
                 "tables": [{"table": t.key, "rows": t.rows, "checksum": t.checksum} for t in manifest.tables],
                 "files": [f.source for f in manifest.files],
                 "removed_backups": [m.backup_id for m in removed]},
        markdown="\n".join(lines))


def run_restore(params: RestoreParams, context: StepContext) -> StepResult:
    """The restore step's run: the execution's newest backup (or the one named), verified, compared."""
    ctx, res = context, context.resources
    root = res.path("backup_dir")
    if params.backup_id:
        backups = [find_backup(root, params.backup_id)]
    else:
        execution = str(ctx.environment.get("rollback_execution_id") or ctx.execution_id)
        backups = backups_of_execution(root, ctx.site_id, execution)[:1]  # newest: the latest full state
        if not backups:
            raise BackupNotFound(f"execution {execution} of site {ctx.site_id} made no backup under {root}")
    restored = []
    for backup in backups:
        progress = Progress(backup.manifest.total_rows, f"restore {backup.manifest.backup_id}")
        try:
            report = restore_backup(backup, res.engine, tables=params.tables or None,
                                    include_files=params.include_files, on_progress=progress.advance,
                                    group=ctx.settings.backup_group)
        except BackupError as exc:
            summary = words(TEXT, ctx.language)["restore_failed"].format(error=exc)
            comparison = getattr(exc, "comparison", None)  # RestoreMismatch: what differs, for the report
            details = {"backup_id": backup.manifest.backup_id,
                       "comparison": comparison.to_json() if comparison is not None else None}
            raise StepFailed(str(exc), StepResult(StepStatus.FAILED, summary, details=details)) from exc
        progress.finish()
        restored.append(report)
    w = words(TEXT, ctx.language)
    rows = [f"| {r.backup_id} | {t['table']} | {t['rows']:,} | {t['checksum']} |"
            for r in restored for t in r.tables]
    lines = [w["restored"], "|---|---|---|---|", *rows]
    for r in restored:
        if r.dropped:
            lines += ["", w["dropped"].format(names=", ".join(f"`{d}`" for d in r.dropped))]
        if r.comparison is not None:
            lines += ["", w["proof"].format(text=r.comparison.describe())]
    return StepResult(
        StepStatus.SUCCESS, w["summary_restored"].format(ids=", ".join(r.backup_id for r in restored)),
        details={"restored": [r.to_json() for r in restored]}, markdown="\n".join(lines))
