"""AsyncDataMigrationStep: post_upgrade's throttled, checkpointed table copies, while the system serves.

Tasks run in order; each resumes from its checkpoint, so a stopped run, a Prefect retry or
``ft-upgrade resume`` continues where the copy was. The progress artifact shows rows done,
remaining, rows/s and ETA; the step result has a table per task.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from tasks.core.errors import MigrationError, StepFailed
from tasks.core.language import words
from tasks.core.progress import Progress
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepParams, StepResult
from tasks.migration.spec import MigrationTask
from tasks.migration.stats import Snapshot, format_duration
from tasks.migration.throttle import Throttle
from tasks.steps.base import UpgradeStep

if TYPE_CHECKING:  # the runtime is imported by run(): `validate` and `plan` need only the parameters
    from tasks.migration.runner import TaskOutcome


class DataMigrationParams(StepParams):
    """Tasks plus the throttle shared by them."""

    tasks: list[MigrationTask] = Field(min_length=1, description="Copied one after another, in this order.")
    max_rows_per_second: float | None = Field(default=10_000, gt=0, description="Ceiling; null: unthrottled.")
    max_threads_running: int | None = Field(default=32, ge=1, description="Pause while a server's "
                                            "Threads_running is above this; null: never.")
    pause_file: str | None = Field(default=None, description="Pause while this file exists (absolute path).")
    pause_redis_key: str | None = Field(default=None, min_length=1, description="Pause while this Redis key exists.")
    pause_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    target_chunk_seconds: float = Field(default=0.5, gt=0, le=30, description="Chunk size adapts to this.")
    min_chunk_rows: int = Field(default=100, ge=1)
    max_chunk_rows: int = Field(default=50_000, ge=1, le=1_000_000)
    initial_chunk_rows: int = Field(default=1_000, ge=1)
    retries: int = Field(default=3, ge=0, le=10, description="Retries of a failed chunk before the step fails.")
    retry_wait_seconds: float = Field(default=1.0, ge=0, le=300, description="First retry wait; doubles.")
    verify: bool = Field(default=True, description="Count and checksum the migrated key range at the end.")
    verify_segment_rows: int = Field(default=100_000, ge=100, description="Keys per verification segment.")

    @model_validator(mode="after")
    def _consistent(self) -> DataMigrationParams:
        names = [t.name for t in self.tasks]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"task names must be unique (they key the checkpoints): {', '.join(twice)}")
        if not self.min_chunk_rows <= self.initial_chunk_rows <= self.max_chunk_rows:
            raise ValueError("chunk rows must satisfy min_chunk_rows <= initial_chunk_rows <= max_chunk_rows")
        if self.pause_file is not None and not Path(self.pause_file).is_absolute():
            raise ValueError(f"pause_file must be an absolute path, got {self.pause_file!r}")
        return self

    def throttle(self) -> Throttle:
        return Throttle(max_rows_per_second=self.max_rows_per_second, max_threads_running=self.max_threads_running,
                        target_chunk_seconds=self.target_chunk_seconds, min_chunk_rows=self.min_chunk_rows,
                        max_chunk_rows=self.max_chunk_rows, initial_chunk_rows=self.initial_chunk_rows,
                        pause_poll_seconds=self.pause_poll_seconds)


class AsyncDataMigrationStep(UpgradeStep):
    """Copies configured tables in key-ordered chunks without hurting the business; resumable and verified."""

    Params = DataMigrationParams
    description = "Async data migration: throttled, checkpointed, verified"
    params: DataMigrationParams

    def run(self) -> StepResult:
        from tasks.migration.runner import TaskOutcome

        outcomes: list[TaskOutcome] = []
        for task in self.params.tasks:
            try:
                outcomes.append(self._run_task(task))
            except MigrationError as exc:
                stopped = [exc.outcome] if isinstance(exc.outcome, TaskOutcome) else []
                result = migration_result(outcomes + stopped, failure=str(exc), language=self.context.language)
                raise StepFailed(str(exc), result) from exc
        return migration_result(outcomes, language=self.context.language)

    def _run_task(self, task: MigrationTask) -> TaskOutcome:
        from tasks.migration.probe import LoadProbe
        from tasks.migration.runner import MigrationRunner, server_name

        resources = self.context.resources
        source, target = resources.engine(task.source_database), resources.engine(task.target_database)
        p = self.params
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
                                 execution_id=self.context.execution_id, retries=p.retries,
                                 retry_wait=p.retry_wait_seconds, verify=p.verify,
                                 verify_segment_rows=p.verify_segment_rows, on_progress=publish,
                                 logger=self.context.logger)
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
