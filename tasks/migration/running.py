"""The data migration step's runtime: the runner per task, its progress, the report section.

Imported by the step's ``run`` (tasks/migration/step.py), so that `validate` and `plan` load no driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.core.errors import MigrationError, StepFailed
from tasks.core.language import words
from tasks.core.progress import Progress
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepResult
from tasks.migration.probe import LoadProbe
from tasks.migration.runner import MigrationRunner, TaskOutcome, server_name
from tasks.migration.spec import MigrationTask
from tasks.migration.stats import Snapshot, format_duration

if TYPE_CHECKING:
    from tasks.migration.params import DataMigrationParams
    from tasks.steps.context import StepContext


def run_migration(params: DataMigrationParams, context: StepContext) -> StepResult:
    """The tasks in order, each from its checkpoint; a failed one stops the step with what ran so far."""
    outcomes: list[TaskOutcome] = []
    for task in params.tasks:
        try:
            outcomes.append(_run_task(params, context, task))
        except MigrationError as exc:
            stopped = [exc.outcome] if isinstance(exc.outcome, TaskOutcome) else []
            result = migration_result(outcomes + stopped, failure=str(exc), language=context.language)
            raise StepFailed(str(exc), result) from exc
    return migration_result(outcomes, language=context.language)


def _run_task(params: DataMigrationParams, context: StepContext, task: MigrationTask) -> TaskOutcome:
    resources = context.resources
    source, target = resources.engine(task.source_database), resources.engine(task.target_database)
    p = params
    probe = LoadProbe({server_name(e): e for e in (source, target)},
                      pause_file=Path(p.pause_file) if p.pause_file else None,
                      pause_redis_key=p.pause_redis_key, redis=resources.redis if p.pause_redis_key else None)
    progress: list[Progress] = []

    def publish(snapshot: Snapshot) -> None:
        if not progress:
            progress.append(Progress(snapshot.total_rows, snapshot.describe()))
        progress[0].description = snapshot.describe()
        progress[0].set(snapshot.rows_done)

    runner = MigrationRunner(task, source=source, target=target, throttle=p.throttle(), probe=probe,
                             execution_id=context.execution_id, retries=p.retries,
                             retry_wait=p.retry_wait_seconds, verify=p.verify,
                             verify_segment_rows=p.verify_segment_rows, on_progress=publish,
                             logger=context.logger)
    outcome = runner.run()
    if progress:
        progress[0].finish()
    return outcome


#: 迁移进度报告's words, in the site's language.
TEXT = {
    "zh": {
        "header": "| 任务 | 方式 | 状态 | 已迁移 / 总行数 | 本次 | 行/秒 | 暂停 | 重试的块 | 校验 | 续自 |",
        "already": "此前已完成", "verified": "✅ {segments} 段，{rows:,} 行", "off": "未校验",
        "resumed": "键 {key!r}（第 {runs} 次运行）",
        "summary": "完成 {count} 个迁移任务，本次复制 {rows:,} 行", "summary_none": "（均已此前完成）",
        "failed": "迁移失败：{error}",
    },
    "en": {
        "header": "| task | mode | status | rows done / total | this run | rows/s | paused | retried chunks | verified "
                  "| resumed from |",
        "already": "already", "verified": "✅ {segments} segments, {rows:,} rows", "off": "off",
        "resumed": "key {key!r} (run {runs})",
        "summary": "{count} migration(s) done, {rows:,} rows copied in this run",
        "summary_none": " (all already done)", "failed": "{error}",
    },
}


def migration_result(outcomes: list[TaskOutcome], failure: str | None = None,
                     language: str | None = None) -> StepResult:
    """The report section in ``language``: one row per task that ran (and the failure, if any)."""
    w = words(TEXT, language)
    rows = [w["header"], "|---|---|---|---|---|---|---|---|---|---|"] + [_row(o, w) for o in outcomes]
    markdown = "\n".join(rows)
    if failure:
        markdown += f"\n\n❌ {failure}"
    done = sum(o.run_rows for o in outcomes)
    summary = w["failed"].format(error=failure) if failure else (
        w["summary"].format(count=len(outcomes), rows=done) + ("" if done else w["summary_none"]))
    details: dict[str, Any] = {"migrations": [_details(o) for o in outcomes]}
    if failure:
        details["error"] = failure
    return StepResult(status=StepStatus.FAILED if failure else StepStatus.SUCCESS, summary=summary,
                      details=details, markdown=markdown)


def _row(o: TaskOutcome, w: dict[str, str]) -> str:
    v = o.verification
    verified = w["already"] if o.already_done else (
        w["verified"].format(segments=v.segments, rows=v.target_rows) if v else w["off"])
    resumed = "-" if o.resumed_from is None or o.already_done else w["resumed"].format(key=o.resumed_from,
                                                                                        runs=o.runs)
    return (f"| {o.name} | {o.mode} | {o.status} | {o.rows_done:,} / {o.total_rows:,} | {o.run_rows:,} | "
            f"{o.rows_per_second:,.0f} | {format_duration(o.paused_seconds)} | {o.retried_chunks} | {verified} "
            f"| {resumed} |")


def _details(o: TaskOutcome) -> dict[str, Any]:
    v = o.verification
    return {"name": o.name, "mode": o.mode, "status": o.status, "already_done": o.already_done,
            "total_rows": o.total_rows, "rows_done": o.rows_done, "run_rows": o.run_rows, "run_chunks": o.run_chunks,
            "run_seconds": round(o.run_seconds, 3), "copy_seconds": round(o.copy_seconds, 3),
            "rows_per_second": round(o.rows_per_second, 1),
            "paused_seconds": round(o.paused_seconds, 3), "pauses": o.pauses[:20],
            "retried_chunks": o.retried_chunks, "runs": o.runs, "resumed_from": o.resumed_from,
            "upper_key": o.upper_key,
            "verification": None if v is None else {"segments": v.segments, "source_rows": v.source_rows,
                                                    "target_rows": v.target_rows, "mismatches": v.mismatches}}
