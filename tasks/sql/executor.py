"""Runs a step's SQL scripts statement by statement, with the ledger, markers and resume.

For each statement, in file order:

* already SUCCESS in the ledger (same hash) → skipped, but its session state (``USE``, ``SET``) is
  replayed so that the rest of the file runs in the session it expects;
* SUCCESS with a different hash → refused before anything runs (an executed statement was edited);
* RUNNING or FAILED from an earlier attempt → decided first: DML by its marker, DDL by a catalog
  probe, else by the operator's ``--inflight`` decision;
* otherwise executed: DML with its marker in one transaction, DDL marked RUNNING before and SUCCESS
  after (durable at once, or with the next ledger write when a catalog probe can prove it after a
  crash). A failure writes FAILED and an ACTIVE breakpoint before the step fails.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tasks.errors import InputError, ResourceUnavailable, StepFailed
from tasks.logstore import BatchingWriter, LogEvent
from tasks.masking import mask_sql, mask_text
from tasks.progress import Progress
from tasks.sql.inflight import ddl_probes, decidable_by_catalog, decide
from tasks.sql.ledger import LedgerRow, SqlLedger
from tasks.sql.marker import exists_sql, insert_marker_sql, marker_args
from tasks.sql.script import ScriptFile
from tasks.sql.session import DatabaseSession, MarkerExists, error_code_and_message, is_connection_error
from tasks.sql.splitter import Statement
from tasks.sql.statement_log import StatementLog

TIMEOUT_CODES = {"1969", "3024", "1317"}


class EditedAfterRun(InputError):
    """A statement that already ran was changed in its file; resuming would diverge from what ran."""


@dataclass
class SqlRunOptions:
    execution_id: str
    step_id: str
    site_id: str
    cutpoint: str
    statement_timeout: float = 300.0
    per_file_transaction: bool = False
    mask_patterns: tuple[str, ...] = ()
    inflight_decision: str | None = None  # "applied" | "retry", from the operator via the breakpoint
    secrets: tuple[str, ...] = ()


@dataclass
class StatementRecord:
    """What happened to one statement in this run (for the report)."""

    file: str
    line: int
    sequence: int
    database: str
    status: str
    duration_ms: int
    affected_rows: int | None
    sql: str
    note: str = ""


@dataclass
class FailureInfo:
    file: str
    line: int
    sequence: int
    database: str
    sql: str
    error_code: str | None
    message: str
    breakpoint_id: str


@dataclass
class SqlRunSummary:
    records: list[StatementRecord] = field(default_factory=list)
    failure: FailureInfo | None = None
    total: int = 0

    def count(self, status: str) -> int:
        return sum(1 for r in self.records if r.status == status)


class InDoubt(Exception):
    """A statement was in flight when the process died and nothing can tell whether it applied."""


class ScriptRunner:
    """Runs prepared scripts of one step; one :class:`DatabaseSession` per logical database."""

    def __init__(self, *, scripts: Sequence[ScriptFile], ledger: SqlLedger,
                 session_factory: Callable[[str], DatabaseSession], options: SqlRunOptions, logger: Any,
                 events: BatchingWriter | None = None, progress: Progress | None = None,
                 batch_size: int = 100) -> None:
        self.scripts = list(scripts)
        self.ledger = ledger
        self.session_factory = session_factory
        self.options = options
        self.logger = logger
        self.events = events
        self.progress = progress
        self.sessions: dict[str, DatabaseSession] = {}
        self.summary = SqlRunSummary(total=sum(len(s.statements) for s in self.scripts))
        self.rows: dict[str, dict[int, LedgerRow]] = {}
        self.masked: dict[tuple[str, int], str] = {}
        self.batch_size = batch_size
        self.statement_log = StatementLog(logger)
        self._lock = threading.Lock()

    # preparation ------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Register every statement in the ledger and refuse edits of statements that already ran."""
        edited: list[str] = []
        for script in self.scripts:
            masked = [self.mask(s.text) for s in script.statements]
            for stmt, text in zip(script.statements, masked, strict=True):
                self.masked[(script.file_id, stmt.sequence)] = text
            rows = self.ledger.register(script, masked)
            self.rows[script.file_id] = rows
            for stmt in script.statements:
                row = rows[stmt.sequence]
                if row.status == "SUCCESS" and row.sha256 != stmt.sha256:
                    edited.append(f"{script.path}:{stmt.line}: statement #{stmt.sequence} already executed with "
                                  f"sha256 {row.sha256[:12]}…, the file now has {stmt.sha256[:12]}…")
        if edited:
            raise EditedAfterRun("refusing to resume: statements that already ran were edited "
                                 "(restore them; only the failed statement and later ones may change):\n"
                                 + "\n".join(edited))

    def session(self, database: str) -> DatabaseSession:
        with self._lock:
            if database not in self.sessions:
                self.sessions[database] = self.session_factory(database)
            return self.sessions[database]

    def close(self) -> None:
        self.statement_log.flush()
        self.ledger.close()
        for session in self.sessions.values():
            session.close()
        self.sessions.clear()

    def mask(self, text: str) -> str:
        return mask_text(mask_sql(text, self.options.mask_patterns), self.options.secrets)

    # running ----------------------------------------------------------------------------------

    def units(self, script: ScriptFile, chunk: int) -> list[tuple[int, int]]:
        """Index ranges of a file: one per statement, or chunks for a big file."""
        n = len(script.statements)
        size = 1 if chunk <= 1 else chunk
        return [(i, min(i + size, n)) for i in range(0, n, size)]

    def run_range(self, script: ScriptFile, start: int, end: int) -> None:
        """Run statements ``[start, end)`` of one file (the body of a statement or chunk task)."""
        rows = self.rows[script.file_id]
        index = start
        while index < end:
            batch = self._dml_batch(script, rows, index, end)
            if len(batch) > 1:
                index += self._run_batch(script, batch)
                continue
            stmt, kind = script.statements[index], script.kinds[index]
            self._run_one(script, stmt, kind, rows[stmt.sequence])
            index += 1

    def _dml_batch(self, script: ScriptFile, rows: dict[int, LedgerRow], start: int, end: int) -> list[int]:
        """Consecutive pending DML on one database, from ``start``: they may share one commit."""
        first = script.statements[start]
        batch: list[int] = []
        for index in range(start, min(end, start + self.batch_size)):
            stmt = script.statements[index]
            if script.kinds[index] != "DML" or stmt.is_use or rows[stmt.sequence].status != "PENDING" \
                    or stmt.database != first.database:
                break
            batch.append(index)
        return batch

    def _run_batch(self, script: ScriptFile, batch: list[int]) -> int:
        """Run a DML batch in one transaction; on any error fall back to one by one, decided by markers."""
        rows = self.rows[script.file_id]
        statements = [script.statements[i] for i in batch]
        session = self.session(statements[0].database)
        items = [(s.text, self._marker(script, s)) for s in statements]
        try:
            outcomes = session.execute_batch(items)
        except Exception as exc:
            if is_connection_error(exc):
                try:
                    session.reconnect()
                except ResourceUnavailable as down:
                    self._fail(script, statements[0], rows[statements[0].sequence], down, 0)
            for stmt in statements:  # the batch rolled back (or committed before the connection died)
                row = rows[stmt.sequence]
                row.status = "RUNNING"  # in memory only: let the marker decide
                self._run_one(script, stmt, "DML", row)
            return len(batch)
        for stmt, outcome in zip(statements, outcomes, strict=False):
            self.ledger.mark_success(rows[stmt.sequence], duration_ms=outcome.duration_ms,
                                     affected_rows=outcome.affected_rows, durable=False)
            self._record(script, stmt, "SUCCESS", outcome.duration_ms, outcome.affected_rows)
        return len(outcomes)

    def run_file_transaction(self, script: ScriptFile) -> None:
        """``transaction: per_file``: all DML of the file commits together or not at all, on every database."""
        rows = self.rows[script.file_id]
        pending = [(s, k) for s, k in zip(script.statements, script.kinds, strict=True)
                   if rows[s.sequence].status not in ("SUCCESS", "SKIPPED")]
        for stmt, kind in zip(script.statements, script.kinds, strict=True):
            if rows[stmt.sequence].status in ("SUCCESS", "SKIPPED"):
                self._replay(stmt, kind, rows[stmt.sequence])
        if not pending:
            return
        touched: list[DatabaseSession] = []
        done: list[tuple[Statement, LedgerRow, int, int | None]] = []
        current: Statement | None = None
        try:
            for stmt, kind in pending:
                current = stmt
                session = self.session(stmt.database)
                if session not in touched:
                    session.begin()
                    touched.append(session)
                if stmt.is_use:
                    session.use(stmt.use_schema or "")
                    done.append((stmt, rows[stmt.sequence], 0, None))
                    continue
                if kind == "DML" and self._marker_exists(session, script, stmt):
                    done.append((stmt, rows[stmt.sequence], 0, None))
                    continue
                outcome = session.execute_in_transaction(stmt.text, insert_marker_sql(session.marker_schema),
                                                         self._marker(script, stmt)) if kind == "DML" else \
                    session.execute(stmt.text, remember_session=kind == "SESSION")
                done.append((stmt, rows[stmt.sequence], outcome.duration_ms, outcome.affected_rows))
            for session in touched:
                session.commit()
        except Exception as exc:
            for session in touched:
                try:
                    session.rollback()
                except Exception:  # noqa: BLE001 - report the statement's error, not the rollback's
                    self.logger.warning("rollback on %s failed after %s", session.name, exc)
            self.ledger.reset_to_pending([row for _, row, _, _ in done])
            assert current is not None
            self._fail(script, current, rows[current.sequence], exc, 0,
                       note=f"transaction per_file rolled back on {', '.join(s.name for s in touched)}")
        for stmt, row, ms, affected in done:
            self.ledger.mark_success(row, duration_ms=ms, affected_rows=affected, durable=False)
            self._record(script, stmt, "SUCCESS", ms, affected, note="per_file transaction")
        self.ledger.flush()

    def _replay(self, stmt: Statement, kind: str, row: LedgerRow) -> None:
        """A skipped statement still sets up the session for the rest of its file."""
        if stmt.is_use:
            self.session(stmt.database).use(stmt.use_schema or "")
        elif kind == "SESSION":
            self.session(stmt.database).execute(stmt.text, remember_session=True)

    def _run_one(self, script: ScriptFile, stmt: Statement, kind: str, row: LedgerRow) -> None:
        if row.status in ("SUCCESS", "SKIPPED"):
            self._replay(stmt, kind, row)
            self._record(script, stmt, "SKIPPED", 0, None, note="already done", log=False)
            return
        session = self.session(stmt.database)
        if row.status in ("RUNNING", "FAILED") and not stmt.is_use and kind != "SESSION":
            applied = self._decide_in_flight(script, stmt, kind, row, session)
            if applied:
                note = "already applied (decided after restart)"
                self.ledger.mark_success(row, duration_ms=0, affected_rows=None, durable=True, note=note)
                self._record(script, stmt, "SUCCESS", 0, None, note=note)
                return
        self._execute(script, stmt, kind, row, session, reconnected=False)

    def _execute(self, script: ScriptFile, stmt: Statement, kind: str, row: LedgerRow, session: DatabaseSession,
                 *, reconnected: bool) -> None:
        durable = kind not in ("DML", "SESSION", "USE")
        started = time.perf_counter()
        try:
            if durable:
                self.statement_log.flush()  # what ran so far is in the log before a statement that may run long
                self.ledger.mark_running(row)
            if stmt.is_use:
                session.use(stmt.use_schema or "")
                ms, affected = 0, None
            elif kind == "DML":
                try:
                    outcome = session.execute_with_marker(stmt.text, self._marker(script, stmt))
                except MarkerExists:  # applied by an attempt whose SUCCESS never reached the ledger
                    note = "already applied (its marker is present)"
                    self.ledger.mark_success(row, duration_ms=0, affected_rows=None, durable=False, note=note)
                    self._record(script, stmt, "SUCCESS", 0, None, note=note)
                    return
                ms, affected = outcome.duration_ms, outcome.affected_rows
            else:
                outcome = session.execute(stmt.text, remember_session=kind == "SESSION")
                ms, affected = outcome.duration_ms, outcome.affected_rows
        except Exception as exc:
            elapsed = int((time.perf_counter() - started) * 1000)
            if is_connection_error(exc) and not reconnected:
                self.logger.warning("%s:%d: connection to %s lost (%s); reconnecting", script.path, stmt.line,
                                    stmt.database, exc)
                try:
                    session.reconnect()
                except ResourceUnavailable as down:
                    self._fail(script, stmt, row, down, elapsed, in_doubt=durable)
                if not stmt.is_use and kind != "SESSION" and \
                        self._decide_in_flight(script, stmt, kind, row, session):
                    note = "applied before the connection was lost"
                    self.ledger.mark_success(row, duration_ms=elapsed, affected_rows=None, durable=True, note=note)
                    self._record(script, stmt, "SUCCESS", elapsed, None, note=note)
                    return
                self._execute(script, stmt, kind, row, session, reconnected=True)
                return
            self._fail(script, stmt, row, exc, elapsed, in_doubt=durable and is_connection_error(exc))
        # a SUCCESS the catalog can prove after a crash rides along with the next durable write
        proven = kind == "DDL" and decidable_by_catalog(stmt.text)
        self.ledger.mark_success(row, duration_ms=ms, affected_rows=affected, durable=durable and not proven)
        self._record(script, stmt, "SUCCESS", ms, affected)

    def _marker(self, script: ScriptFile, stmt: Statement) -> tuple[Any, ...]:
        return marker_args(self.options.execution_id, self.options.step_id, script.file_id, stmt.sequence,
                           stmt.sha256)

    def _marker_exists(self, session: DatabaseSession, script: ScriptFile, stmt: Statement) -> bool:
        key = self._marker(script, stmt)[0]
        return session.scalar(exists_sql(session.marker_schema), (key,)) is not None

    def _decide_in_flight(self, script: ScriptFile, stmt: Statement, kind: str, row: LedgerRow,
                          session: DatabaseSession) -> bool:
        """Whether a statement found RUNNING/FAILED already took effect."""
        if kind == "DML":
            return self._marker_exists(session, script, stmt)
        if row.status == "FAILED":
            return False  # the server refused it: it did not apply
        probes = ddl_probes(stmt.text) if kind == "DDL" else None
        if probes:
            answers = []
            for probe in probes:
                sql, args = probe.query()
                answers.append(decide(probe, session.scalar(sql, args)))
            if all(a is True for a in answers):
                return True
            if all(a is False for a in answers):
                return False
        decision = self.options.inflight_decision
        if decision == "applied":
            return True
        if decision == "retry":
            return False
        self._fail(script, stmt, row, InDoubt(
            "this statement was running when the process stopped and the catalog cannot tell whether it "
            "took effect; check the database, then resume with `ft-upgrade resume <execution> --inflight applied` "
            "(it took effect) or `--inflight retry` (run it again)"), 0, in_doubt=True)
        return False  # pragma: no cover - _fail raises

    def _fail(self, script: ScriptFile, stmt: Statement, row: LedgerRow, exc: BaseException, elapsed: int,
              *, in_doubt: bool = False, note: str = "") -> None:
        code, message = error_code_and_message(exc)
        if code in TIMEOUT_CODES:
            message = f"statement timed out after {self.options.statement_timeout:g}s and was killed ({message})"
        message = mask_text(message, self.options.secrets)
        if note:
            message = f"{message} [{note}]"
        if in_doubt:
            self.ledger.flush()  # leave the row RUNNING: the next attempt decides it
        else:
            self.ledger.mark_failed(row, duration_ms=elapsed, error_code=code, message=message)
        sql = self.mask(stmt.text)
        instructions = ("Fix the cause, then: retry the flow run in the Prefect UI, or run the same "
                        f"`prefect deployment run` again, or `ft-upgrade resume {self.options.execution_id}`.")
        bp = self.ledger.open_breakpoint(file=script.path, file_id=script.file_id, line=stmt.line,
                                         sequence=stmt.sequence, sql=sql, error_code=code, message=message,
                                         instructions=instructions,
                                         context={"database": stmt.database, "in_doubt": in_doubt})
        self.summary.failure = FailureInfo(script.path, stmt.line, stmt.sequence, stmt.database, sql, code,
                                           message, bp)
        self._record(script, stmt, "FAILED", elapsed, None, error_code=code, message=message)
        raise StepFailed(f"{script.path}:{stmt.line}: statement #{stmt.sequence} on {stmt.database} failed: "
                         f"{'[' + code + '] ' if code else ''}{message} (breakpoint {bp})") from exc

    # logging ----------------------------------------------------------------------------------

    def _record(self, script: ScriptFile, stmt: Statement, status: str, ms: int, affected: int | None, *,
                note: str = "", log: bool = True, error_code: str | None = None, message: str = "") -> None:
        sql = self.masked.get((script.file_id, stmt.sequence)) or self.mask(stmt.text)
        with self._lock:
            self.summary.records.append(StatementRecord(script.path, stmt.line, stmt.sequence, stmt.database,
                                                        status, ms, affected, sql, note or message))
        if self.progress is not None:
            self.progress.advance()
        if not log:
            return
        now = datetime.now(UTC)
        level = "ERROR" if status == "FAILED" else "INFO"
        if status == "FAILED":
            self.statement_log.failure(now, script.path, stmt.line, sql, stmt.database, ms, message=message, note=note)
        else:
            self.statement_log.success(now, script.path, stmt.line, sql, stmt.database, status, ms, affected,
                                       note=note)
        if self.events is not None:
            self.events.put(LogEvent(
                event_time=now, execution_id=self.options.execution_id, site_id=self.options.site_id,
                cutpoint=self.options.cutpoint, step_id=self.options.step_id, level=level, kind="statement",
                file=script.path, line=stmt.line, sequence=stmt.sequence, database=stmt.database, status=status,
                duration_ms=float(ms), affected_rows=affected, error_code=error_code or "",
                message=message or note, sql_text=sql))
