"""The metadata store: executions, steps, SQL ledger, breakpoints and reports.

It must survive a wiped Prefect server, so it lives in its own database (MariaDB/MySQL in
production, a SQLite file as the embedded default). All times are naive UTC.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, func, select, update
from sqlalchemy.engine import make_url

from tasks.core.clock import new_id, utcnow
from tasks.core.masking import mask_url
from tasks.core.statuses import STEP_FINISHED, ExecutionStatus, ReportStatus, StatementStatus, StepStatus
from tasks.store import schema
from tasks.store.breakpoints import Breakpoint, resolve_breakpoint
from tasks.store.migrations import migrate
from tasks.store.records import Execution, StepRun, StoredReport

if TYPE_CHECKING:
    from tasks.store.site_lock import HeldLock


def create_store_engine(url: str) -> Engine:
    """An engine for the metadata database; SQLite gets WAL and a busy timeout for thread safety."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_recycle=3600)


class MetadataStore:
    """Reads and writes the metadata tables; creates or upgrades them on open."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: The site lock this process holds while it runs (:meth:`fenced_by`): every write checks its token.
        self.lock: HeldLock | None = None

    @classmethod
    def open(cls, url: str) -> MetadataStore:
        engine = create_store_engine(url)
        migrate(engine)
        return cls(engine)

    def describe(self) -> str:
        return mask_url(self.engine.url.render_as_string(hide_password=True))

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def fenced_by(self, lock: HeldLock) -> Iterator[HeldLock]:
        """While the block runs, writes go through only if ``lock`` is still this run's (fencing)."""
        self.lock = lock
        try:
            yield lock
        finally:
            self.lock = None

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            if self.lock is not None:
                self.lock.verify(conn)
            yield conn

    # executions ---------------------------------------------------------------------------------

    def create_execution(self, *, source_version: str, target_version: str, site_id: str, cutpoint: str,
                         environment: Mapping[str, Any], total_steps: int, flow_run_id: str | None,
                         plan_fingerprint: str, created_by: str = "ft-upgrade", **terms: Any) -> str:
        """A new RUNNING execution; ``terms`` are the optional columns (requested_by, rerun_of, waivers, …)."""
        execution_id = "EXEC_" + utcnow().strftime("%Y%m%d_%H%M%S_") + uuid.uuid4().hex[:8]
        now = utcnow()
        with self._writing() as conn:
            conn.execute(schema.upgrade_execution.insert().values(
                execution_id=execution_id, source_version=source_version, target_version=target_version,
                site_id=site_id, step_type=cutpoint, environment=json.dumps(dict(environment), ensure_ascii=False),
                status=ExecutionStatus.RUNNING, start_time=now, total_steps=total_steps, completed_steps=0,
                created_by=created_by, flow_run_id=flow_run_id, plan_fingerprint=plan_fingerprint,
                resume_count=0, created_time=now, updated_time=now, **terms))
        return execution_id

    def latest_execution(self, *, site_id: str, cutpoint: str, source_version: str,
                         target_version: str) -> Execution | None:
        """The newest execution of the same request, whatever its status."""
        t = schema.upgrade_execution
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(
                t.c.site_id == site_id, t.c.step_type == cutpoint, t.c.source_version == source_version,
                t.c.target_version == target_version,
            ).order_by(t.c.created_time.desc()).limit(1)).mappings().first()
        return Execution.from_row(row) if row else None

    def sql_counts(self, execution_id: str) -> dict[str, int]:
        """Statements of the execution's ledger: total, succeeded, failed."""
        t = schema.sql_execution_record
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.status, func.count()).where(t.c.execution_id == execution_id)
                                .group_by(t.c.status)).all()
        by_status = {status: int(n) for status, n in rows}
        return {"total": sum(by_status.values()), "success": by_status.get(StatementStatus.SUCCESS, 0),
                "failed": by_status.get(StatementStatus.FAILED, 0)}

    def reopen_execution(self, execution_id: str, *, flow_run_id: str | None, total_steps: int) -> int:
        """Mark a failed execution running again; returns its new resume count."""
        t = schema.upgrade_execution
        with self._writing() as conn:
            conn.execute(update(t).where(t.c.execution_id == execution_id).values(
                status=ExecutionStatus.RUNNING, resume_count=t.c.resume_count + 1, end_time=None, error_message=None,
                flow_run_id=flow_run_id, total_steps=total_steps, updated_time=utcnow()))
            return int(conn.execute(select(t.c.resume_count).where(t.c.execution_id == execution_id)).scalar_one())

    def update_execution(self, execution_id: str, **values: Any) -> None:
        t = schema.upgrade_execution
        values["updated_time"] = utcnow()
        with self._writing() as conn:
            conn.execute(update(t).where(t.c.execution_id == execution_id).values(**values))

    def finish_execution(self, execution_id: str, status: str, error_message: str | None = None) -> None:
        completed = self.count_steps(execution_id, STEP_FINISHED)
        self.update_execution(execution_id, status=status, end_time=utcnow(), error_message=error_message,
                              completed_steps=completed)

    def require_execution(self, execution_id: str) -> Execution:
        """The execution, or an input error naming it (for commands given an execution id)."""
        from tasks.core.errors import InputError

        execution = self.get_execution(execution_id)
        if execution is None:
            raise InputError(f"no execution {execution_id!r} in {self.describe()}")
        return execution

    def get_execution(self, execution_id: str) -> Execution | None:
        t = schema.upgrade_execution
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.execution_id == execution_id)).mappings().first()
        return Execution.from_row(row) if row else None

    # steps --------------------------------------------------------------------------------------

    def start_step(self, *, execution_id: str, step_key: str, step_id: str, step_name: str, cutpoint: str,
                   class_name: str, order: int, metadata: Mapping[str, Any]) -> None:
        """Record a step as RUNNING; a retry or resume updates the same row and counts the attempt."""
        t = schema.step_execution
        now = utcnow()
        with self._writing() as conn:
            existing = conn.execute(select(t.c.id, t.c.status).where(
                t.c.execution_id == execution_id, t.c.step_key == step_key)).first()
            if existing is None:
                conn.execute(t.insert().values(
                    id=new_id(), execution_id=execution_id, step_id=step_id, step_key=step_key,
                    step_name=step_name, step_type=cutpoint, class_name=class_name, status=StepStatus.RUNNING,
                    start_time=now, retry_count=0, execution_order=order,
                    metadata=json.dumps(dict(metadata), ensure_ascii=False, default=str),
                    created_time=now, updated_time=now))
            else:
                conn.execute(update(t).where(t.c.id == existing.id).values(
                    status=StepStatus.RUNNING, start_time=now, end_time=None, error_message=None,
                    retry_count=t.c.retry_count + 1, updated_time=now))
            e = schema.upgrade_execution  # in the same commit: one fenced write per step start, not two
            conn.execute(update(e).where(e.c.execution_id == execution_id).values(
                current_step_id=step_id, updated_time=now))

    def finish_step(self, *, execution_id: str, step_key: str, status: str, result: Mapping[str, Any] | None,
                    error_message: str | None = None) -> None:
        t = schema.step_execution
        now = utcnow()
        with self._writing() as conn:
            start = conn.execute(select(t.c.start_time).where(
                t.c.execution_id == execution_id, t.c.step_key == step_key)).scalar()
            duration = int((now - start).total_seconds() * 1000) if start else None
            conn.execute(update(t).where(t.c.execution_id == execution_id, t.c.step_key == step_key).values(
                status=status, end_time=now, duration=duration, error_message=error_message,
                result=json.dumps(dict(result), ensure_ascii=False, default=str) if result is not None else None,
                updated_time=now))

    def record_skipped_step(self, *, execution_id: str, step_key: str, step_id: str, step_name: str,
                            cutpoint: str, class_name: str, order: int, reason: str) -> None:
        self.start_step(execution_id=execution_id, step_key=step_key, step_id=step_id, step_name=step_name,
                        cutpoint=cutpoint, class_name=class_name, order=order, metadata={})
        self.finish_step(execution_id=execution_id, step_key=step_key, status=StepStatus.SKIPPED,
                         result={"status": StepStatus.SKIPPED, "summary": reason}, error_message=None)

    def step_run(self, execution_id: str, step_key: str) -> StepRun | None:
        t = schema.step_execution
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(
                t.c.execution_id == execution_id, t.c.step_key == step_key)).mappings().first()
        return StepRun.from_row(row) if row else None

    def step_runs(self, execution_id: str) -> list[StepRun]:
        t = schema.step_execution
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).where(t.c.execution_id == execution_id).order_by(
                t.c.execution_order)).mappings().all()
        return [StepRun.from_row(r) for r in rows]

    def count_steps(self, execution_id: str, statuses: tuple[str, ...]) -> int:
        t = schema.step_execution
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(t).where(
                t.c.execution_id == execution_id, t.c.status.in_(statuses))).scalar_one())

    # reports ------------------------------------------------------------------------------------

    def save_report(self, *, execution: Execution, counts: Mapping[str, int],
                    total_duration_ms: int, content: Mapping[str, Any], summary: str, recommendations: str,
                    report_type: str = "SUMMARY") -> str:
        """A GENERATED report row (the outcome is in ``content`` and ``summary``)."""
        now = utcnow()
        report_id = new_id()
        with self._writing() as conn:
            conn.execute(schema.upgrade_report.insert().values(
                id=report_id, execution_id=execution.execution_id, report_type=report_type,
                source_version=execution.source_version, target_version=execution.target_version,
                site_id=execution.site_id, step_type=execution.cutpoint, status=ReportStatus.GENERATED,
                total_steps=counts.get("total", 0), success_steps=counts.get("success", 0),
                failed_steps=counts.get("failed", 0), skipped_steps=counts.get("skipped", 0),
                total_sql_count=counts.get("sql_total", 0), success_sql_count=counts.get("sql_success", 0),
                failed_sql_count=counts.get("sql_failed", 0), total_duration=total_duration_ms,
                report_content=json.dumps(dict(content), ensure_ascii=False, default=str), summary=summary,
                recommendations=recommendations, generated_time=now, created_time=now, updated_time=now))
        return report_id

    def archive_reports(self, older_than: datetime) -> int:
        """Mark GENERATED reports generated before ``older_than`` ARCHIVED; how many were."""
        t = schema.upgrade_report
        with self._writing() as conn:
            done = conn.execute(update(t).where(t.c.status == ReportStatus.GENERATED,
                                                t.c.generated_time < older_than)
                                .values(status=ReportStatus.ARCHIVED, updated_time=utcnow()))
        return int(done.rowcount or 0)

    def latest_report(self, execution_id: str, report_type: str = "SUMMARY") -> StoredReport | None:
        t = schema.upgrade_report
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.execution_id == execution_id, t.c.report_type == report_type)
                               .order_by(t.c.generated_time.desc()).limit(1)).mappings().first()
        return StoredReport.from_row(row) if row else None

    def execution_for_flow_run(self, flow_run_id: str) -> str | None:
        t = schema.upgrade_execution
        with self.engine.connect() as conn:
            return conn.execute(select(t.c.execution_id).where(t.c.flow_run_id == flow_run_id)).scalar()

    def abandon_execution(self, execution_id: str, *, by: str, reason: str) -> None:
        """Stop an unfinished execution from being resumed; the next run starts a new one."""
        resolve_breakpoint(self.engine, execution_id, by=by, notes=f"abandoned: {reason}")
        self.update_execution(execution_id, status=ExecutionStatus.ABANDONED, end_time=utcnow(),
                              error_message=f"abandoned by {by}: {reason}")

    def active_breakpoints(self, site_id: str) -> list[Breakpoint]:
        """The ACTIVE breakpoints of a site's executions, newest first."""
        bp, e = schema.upgrade_breakpoint, schema.upgrade_execution
        with self.engine.connect() as conn:
            rows = conn.execute(select(bp).join(e, e.c.execution_id == bp.c.execution_id).where(
                e.c.site_id == site_id, bp.c.active_execution_id.is_not(None)).order_by(
                bp.c.breakpoint_time.desc())).mappings().all()
        return [Breakpoint.from_row(r) for r in rows]

    def upgrade_executions(self, site_id: str, source_version: str, target_version: str) -> list[Execution]:
        """Every execution of one upgrade of a site (all cutpoints), oldest first."""
        t = schema.upgrade_execution
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).where(
                t.c.site_id == site_id, t.c.source_version == source_version, t.c.target_version == target_version)
                .order_by(t.c.created_time)).mappings().all()
        return [Execution.from_row(r) for r in rows]

    def list_executions(self, *, site_id: str | None = None, cutpoint: str | None = None,
                        limit: int = 20) -> list[Execution]:
        t = schema.upgrade_execution
        query = select(t)
        if site_id:
            query = query.where(t.c.site_id == site_id)
        if cutpoint:
            query = query.where(t.c.step_type == cutpoint)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.c.created_time.desc()).limit(limit)).mappings().all()
        return [Execution.from_row(r) for r in rows]
