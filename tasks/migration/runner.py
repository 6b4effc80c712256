"""Drives one migration task: start or resume the checkpoint, copy chunk by chunk under the throttle, verify.

Each chunk is one target transaction: lock the checkpoint row, copy the next key range, advance the
checkpoint, commit. A failed chunk is rolled back and retried (``retries`` times, with backoff);
after that :class:`ChunkFailed` leaves the checkpoint where it was, and the next run continues there.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from tasks.core.errors import (
    ChunkFailed,
    DefinitionChanged,
    MigrationChecksumMismatch,
    MigrationError,
    MigrationSetupError,
)
from tasks.migration import catalog
from tasks.migration.checkpoint import COPIED, COPYING, DONE, Checkpoint, CheckpointTable
from tasks.migration.copier import Copier, InsertSelectCopier, StreamCopier
from tasks.migration.probe import LoadProbe
from tasks.migration.spec import MigrationTask
from tasks.migration.sql import bounds_sql, count_sql, table_ref
from tasks.migration.stats import Snapshot
from tasks.migration.throttle import ChunkSizer, Throttle, pause_reason, rate_delay
from tasks.migration.verify import Verification, Verifier

T = TypeVar("T")
LOG_EVERY_SECONDS = 10.0


@dataclass
class TaskOutcome:
    """What one run of a task did (``rows_done`` counts every run since the task started)."""

    name: str
    mode: str
    status: str = COPYING
    already_done: bool = False
    total_rows: int = 0
    rows_done: int = 0
    run_rows: int = 0
    run_chunks: int = 0
    run_seconds: float = 0.0
    copy_seconds: float = 0.0
    paused_seconds: float = 0.0
    retried_chunks: int = 0
    runs: int = 0
    resumed_from: Any = None
    upper_key: Any = None
    verification: Verification | None = None
    pauses: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        """Copy rate of this run (pauses and throttle waits included, verification not)."""
        return self.run_rows / self.copy_seconds if self.copy_seconds > 0 else 0.0


def same_server(a: Engine, b: Engine) -> bool:
    """Both engines reach the same server as the same user, so one connection can read and write both."""
    return (a.url.host, a.url.port or 3306, a.url.username) == (b.url.host, b.url.port or 3306, b.url.username)


def server_name(engine: Engine) -> str:
    return f"{engine.url.host}:{engine.url.port or 3306}"


class MigrationRunner:
    """Runs one :class:`MigrationTask` to DONE, resuming from its checkpoint."""

    def __init__(self, task: MigrationTask, *, source: Engine, target: Engine, throttle: Throttle,
                 probe: LoadProbe, execution_id: str = "", retries: int = 3, retry_wait: float = 1.0,
                 verify: bool = True, verify_segment_rows: int = 100_000,
                 on_progress: Callable[[Snapshot], None] | None = None, logger: Any = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self.task = task
        self.source = source
        self.target = target
        self.throttle = throttle
        self.probe = probe
        self.execution_id = execution_id
        self.retries = retries
        self.retry_wait = retry_wait
        self.verify = verify
        self.verify_segment_rows = verify_segment_rows
        self.on_progress = on_progress
        self.logger = logger or logging.getLogger(__name__)
        self.sleep = sleep
        self.clock = clock
        self.source_schema = _schema(source, "source", task)
        self.target_schema = _schema(target, "target", task)
        self.source_ref = table_ref(self.source_schema, task.source_table)
        self.target_ref = table_ref(self.target_schema, task.target_table)
        self.checkpoints = CheckpointTable(self.target_schema)
        mode = task.mode
        if mode == "auto":
            mode = "insert_select" if same_server(source, target) else "stream"
        self.copier: Copier = (InsertSelectCopier(task, self.source_ref, self.target_ref) if mode == "insert_select"
                               else StreamCopier(task, source, self.source_ref, self.target_ref))
        self._conn: Connection | None = None

    # ---- public -------------------------------------------------------------------------------------------

    def run(self) -> TaskOutcome:
        """Copy what is left and verify; raises a :class:`MigrationError` subclass on failure."""
        outcome = TaskOutcome(name=self.task.name, mode=self.copier.mode)
        casts = self._check_tables()
        started = self.clock()
        try:
            checkpoint = self._with_retries(None, self._start)
            outcome.runs = checkpoint.runs
            outcome.total_rows = checkpoint.total_rows
            outcome.upper_key = checkpoint.upper_key
            outcome.resumed_from = checkpoint.last_key
            outcome.rows_done = checkpoint.rows_done
            if checkpoint.status == DONE:
                outcome.status, outcome.already_done = DONE, True
                self.logger.info("migration %s: already done (%s rows)", self.task.name, f"{checkpoint.rows_done:,}")
                return outcome
            if checkpoint.last_key is not None:
                self.logger.info("migration %s: resuming after key %r (%s of %s rows done, run %d)", self.task.name,
                                 checkpoint.last_key, f"{checkpoint.rows_done:,}", f"{checkpoint.total_rows:,}",
                                 checkpoint.runs)
            copy_start = self.clock()
            checkpoint = self._copy(checkpoint, outcome, copy_start)
            outcome.copy_seconds = self.clock() - copy_start
            outcome.status = COPIED
            if self.verify:
                outcome.verification = self._verify(checkpoint, casts, outcome)
            self._with_retries(checkpoint.last_key, lambda conn: self._set_status(conn, DONE, _detail(outcome)))
            outcome.status = DONE
            return outcome
        except MigrationError as exc:
            exc.outcome = outcome  # what this run did before it stopped, for the report
            raise
        finally:
            outcome.run_seconds = self.clock() - started
            self.copier.close()
            self._close()

    # ---- steps --------------------------------------------------------------------------------------------

    def _check_tables(self) -> dict[str, str]:
        with self.source.connect() as conn:
            problems = catalog.source_problems(conn, self.source_schema, self.task.source_table, self.task.key)
        with self.target.connect() as conn:
            target_columns = catalog.columns(conn, self.target_schema, self.task.target_table)
            self.checkpoints.ensure(conn)
            conn.commit()
        problems += catalog.target_problems(target_columns, self.target_schema, self.task.target_table,
                                            list(self.task.mapping))
        if problems:
            raise MigrationSetupError(self.task.name, "; ".join(problems))
        return {c: target_columns[c].cast for c in self.task.mapping}

    def _start(self, conn: Connection) -> Checkpoint:
        """Create the checkpoint (fixing the key range) or check and reopen the existing one."""
        fingerprint = self.task.fingerprint()
        with conn.begin():
            found = self.checkpoints.lock(conn, self.task.name)
            if found is not None:
                if found.spec_hash != fingerprint:
                    raise DefinitionChanged(self.task.name, found.spec_hash, fingerprint, found.last_key)
                self.checkpoints.begin_run(conn, self.task.name, self.execution_id)
                return replace(found, runs=found.runs + 1)
            with self.source.connect() as src:
                upper = src.exec_driver_sql(bounds_sql(self.task, self.source_ref)).scalar()
                total = int(src.exec_driver_sql(count_sql(self.task, self.source_ref), (upper,)).scalar() or 0) \
                    if upper is not None else 0
            created = Checkpoint(name=self.task.name, spec_hash=fingerprint, upper_key=upper, last_key=None,
                                 total_rows=total, rows_done=0, chunks=0, runs=1, status=COPYING,
                                 execution_id=self.execution_id)
            self.checkpoints.create(conn, created, source=f"{self.task.source_database}:{self.source_ref}",
                                    target=f"{self.task.target_database}:{self.target_ref}")
        self.logger.info("migration %s: started, keys up to %r, %s rows to copy (%s)", self.task.name, upper,
                         f"{total:,}", self.copier.mode)
        return created

    def _copy(self, checkpoint: Checkpoint, outcome: TaskOutcome, started: float) -> Checkpoint:
        sizer = ChunkSizer.for_throttle(self.throttle)
        last_log = started
        while not checkpoint.copied:
            self._wait_while_paused(outcome)
            size = sizer.size
            chunk_start = self.clock()
            before = checkpoint
            checkpoint = self._with_retries(checkpoint.last_key, lambda conn, s=size: self._chunk(conn, s),
                                            outcome)
            seconds = self.clock() - chunk_start
            rows = checkpoint.rows_done - before.rows_done
            outcome.run_rows += rows
            outcome.run_chunks += 1
            outcome.rows_done = checkpoint.rows_done
            sizer.observe(size, seconds)
            delay = rate_delay(rows, seconds, self.throttle.max_rows_per_second)
            if delay:
                self.sleep(delay)
            snapshot = self._snapshot(checkpoint, outcome, started)
            if self.on_progress is not None:
                self.on_progress(snapshot)
            if self.clock() - last_log >= LOG_EVERY_SECONDS:
                last_log = self.clock()
                self.logger.info("migration %s", snapshot.describe())
        self._with_retries(checkpoint.last_key, lambda conn: self._set_status(conn, COPIED, None))
        return checkpoint

    def _chunk(self, conn: Connection, size: int) -> Checkpoint:
        """One transaction: lock the checkpoint, copy the keys after it, advance it, commit."""
        with conn.begin():
            current = self.checkpoints.lock(conn, self.task.name)
            assert current is not None, "the checkpoint row was created before the first chunk"
            if current.copied:
                return current
            end, rows = self.copier.copy(conn, current.last_key, current.upper_key, size)
            self.checkpoints.advance(conn, self.task.name, end, rows)
        return current.advanced(end, rows)

    def _verify(self, checkpoint: Checkpoint, casts: dict[str, str], outcome: TaskOutcome) -> Verification:
        verifier = Verifier(self.task, source=self.source, target=self.target, source_ref=self.source_ref,
                            target_ref=self.target_ref, casts=casts, segment_rows=self.verify_segment_rows)
        result = verifier.run(checkpoint.upper_key, between=lambda: self._wait_while_paused(outcome))
        self.logger.info("migration %s: verified %d segments, %s source rows, %s target rows, %d mismatched",
                         self.task.name, result.segments, f"{result.source_rows:,}", f"{result.target_rows:,}",
                         len(result.mismatches))
        if not result.ok:
            self._with_retries(checkpoint.last_key, lambda conn: self._set_status(
                conn, COPIED, f"verification failed in {len(result.mismatches)} segment(s)"))
            raise MigrationChecksumMismatch(self.task.name, result.mismatches)
        return result

    # ---- throttle, retries, connection --------------------------------------------------------------------

    def _pause_reason(self) -> str | None:
        """Ask the probe; a probe that cannot reach a server does not pause (the chunk's retries handle that)."""
        try:
            load = self.probe.threads_running() if self.throttle.max_threads_running is not None else {}
        except DBAPIError as exc:
            self.logger.debug("migration %s: load probe failed: %s", self.task.name, _cause(exc))
            load = {}
        return pause_reason(load, self.throttle.max_threads_running, self.probe.flag())

    def _wait_while_paused(self, outcome: TaskOutcome) -> None:
        reason = self._pause_reason()
        if reason is None:
            return
        start = self.clock()
        self.logger.warning("migration %s: paused: %s", self.task.name, reason)
        outcome.pauses.append(reason)
        while reason is not None:
            self.sleep(self.throttle.pause_poll_seconds)
            reason = self._pause_reason()
        waited = self.clock() - start
        outcome.paused_seconds += waited
        self.logger.info("migration %s: resumed after %.1fs", self.task.name, waited)

    def _with_retries(self, at_key: Any, action: Callable[[Connection], T], outcome: TaskOutcome | None = None) -> T:
        """Run ``action`` on the target connection; on a database error reconnect and retry with backoff."""
        attempt = 0
        while True:
            try:
                return action(self._connection())
            except DBAPIError as exc:
                self._close()
                attempt += 1
                cause = _cause(exc)
                if attempt > self.retries:
                    raise ChunkFailed(self.task.name, at_key, attempt, cause) from exc
                if outcome is not None:
                    outcome.retried_chunks += 1
                wait = self.retry_wait * 2 ** (attempt - 1)
                self.logger.warning("migration %s: attempt %d failed (%s); retrying in %.1fs", self.task.name,
                                    attempt, cause, wait)
                self.sleep(wait)

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self.target.connect().execution_options(isolation_level="READ COMMITTED")
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(DBAPIError):
                self._conn.close()
            self._conn = None

    def _set_status(self, conn: Connection, status: str, detail: str | None) -> None:
        with conn.begin():
            self.checkpoints.set_status(conn, self.task.name, status, detail)

    def _snapshot(self, checkpoint: Checkpoint, outcome: TaskOutcome, started: float) -> Snapshot:
        return Snapshot(task=self.task.name, rows_done=checkpoint.rows_done, total_rows=checkpoint.total_rows,
                        run_rows=outcome.run_rows, run_seconds=self.clock() - started,
                        paused_seconds=outcome.paused_seconds)


def _schema(engine: Engine, role: str, task: MigrationTask) -> str:
    if not engine.url.database:
        name = task.source_database if role == "source" else task.target_database
        raise MigrationSetupError(task.name, f"the URL of {role} database {name!r} names no database")
    return engine.url.database


def _cause(exc: DBAPIError) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).splitlines()[0][:300]


def _detail(outcome: TaskOutcome) -> str:
    v = outcome.verification
    checked = f"verified {v.segments} segments, {v.source_rows} rows" if v else "not verified"
    return f"{outcome.rows_done} rows copied; {checked}"
