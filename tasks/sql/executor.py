"""Runs a step's SQL scripts statement by statement, with the ledger, markers and resume.

For each statement, in file order:

* already SUCCESS in the ledger (same hash) → skipped, but its session state (``USE``, a pure ``SET``,
  or the recorded value of a ``SET`` computed from a query) is replayed so that the rest of the file
  runs in the session it expects;
* SUCCESS with a different hash → refused before anything runs (an executed statement was edited);
* RUNNING or FAILED from an earlier attempt → decided first: the operator's decision for exactly this
  statement (``applied``, ``retry``, ``skip``), else DML on a transactional table by its marker, DDL by
  a catalog probe where the catalog can tell; otherwise the run stops at a breakpoint that says so;
* otherwise executed by its kind (:mod:`tasks.sql.kinds`): DML on transactional tables with its
  marker in one transaction (consecutive ones share a commit); DML on other engines, DDL and unknown
  effects marked RUNNING before and SUCCESS after; a script's own ``START TRANSACTION … COMMIT`` as
  one unit. A failure writes FAILED and an ACTIVE breakpoint before the step fails.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tasks.core.errors import EditedAfterRun, ResourceUnavailable, StepFailed
from tasks.core.masking import mask_sql, mask_text, secret_literals
from tasks.core.progress import Progress
from tasks.core.statuses import STATEMENT_DONE, STATEMENT_IN_FLIGHT, StatementStatus
from tasks.events.logstore import BatchingWriter, LogEvent
from tasks.sql import kinds as k
from tasks.sql.inflight import ddl_probes, decidable_by_catalog, decide
from tasks.sql.kinds import called_names, dml_tables, engine_changes
from tasks.sql.ledger import LedgerRow, SqlLedger
from tasks.sql.marker import exists_sql, insert_marker_sql, marker_args
from tasks.sql.script import ScriptFile
from tasks.sql.session import (
    TRANSACTIONAL_ENGINES,
    BatchStopped,
    DatabaseSession,
    MarkerExists,
    error_code_and_message,
    is_connection_error,
)
from tasks.sql.splitter import Statement
from tasks.sql.statement_log import StatementLog
from tasks.sql.timeouts import TIMEOUT_CODES, timeout_message
from tasks.sql.windows import Unit

if TYPE_CHECKING:
    from tasks.store.site_lock import HeldLock

#: DDL that may create, drop or change a function or a trigger (the others leave those caches valid).
_CODE_DDL = re.compile(r"\b(?:FUNCTION|TRIGGER|DATABASE|SCHEMA|RENAME)\b", re.IGNORECASE)
#: A DDL refused because its effect is already there (duplicate column/key/table, nothing to drop, routine
#: exists …): after a crash, the first copy took effect; the catalog probe decides again.
ALREADY_DONE_CODES = {"1050", "1060", "1061", "1091", "1051", "1146", "1304", "1305", "1826", "1022", "1068"}


@dataclass
class SqlRunOptions:
    execution_id: str
    step_id: str
    site_id: str
    cutpoint: str
    statement_timeout: float = 300.0
    per_file_transaction: bool = False
    mask_patterns: tuple[str, ...] = ()
    decision: StatementDecision | None = None  # the operator's, for the breakpoint's statement only
    secrets: tuple[str, ...] = ()
    lock: HeldLock | None = None  # the run's site lock: lost, the run stops before its next statement


@dataclass(frozen=True)
class StatementDecision:
    """What the operator decided for one statement (the one the breakpoint names)."""

    file_id: str
    sequence: int
    action: str  # applied | retry | skip
    by: str
    notes: str

    def note(self, sha256: str) -> str:
        verb = {"applied": "marked applied", "retry": "run again", "skip": "skipped"}[self.action]
        return f"{verb} by {self.by}: {self.notes} (statement sha256 {sha256[:16]}…)"


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


def _needs_clock(kind: str, stmt: Statement) -> bool:
    """CREATE OR REPLACE is decided after a crash by comparing creation times with the server's clock."""
    return kind == k.DDL and any(p.replaced for p in ddl_probes(stmt.text) or [])


class InDoubt(Exception):
    """A statement was in flight when the process died and nothing can tell whether it applied."""


class ScriptRunner:
    """Runs prepared scripts of one step; one :class:`DatabaseSession` per logical database."""

    def __init__(self, *, scripts: Sequence[ScriptFile], ledger: SqlLedger,
                 session_factory: Callable[[str], DatabaseSession], options: SqlRunOptions, logger: Any,
                 events: BatchingWriter | None = None, progress: Progress | None = None,
                 batch_size: int = 100, statement_logger: Any = None) -> None:
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
        self.statement_log = StatementLog(statement_logger or logger)
        self._markers: dict[str, set[str]] = {}  # per database: markers committed before this process started
        self.after_crash = False
        self._lock = threading.Lock()

    # preparation ------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Register every statement in the ledger and refuse edits of statements that already ran."""
        edited: list[str] = []
        registered = self.ledger.rows()
        statuses = {row.status for rows in registered.values() for row in rows.values()}
        # the process before this one died (nothing FAILED, something began): what it left uncommitted was
        # rolled back, but InnoDB kept the auto-increment values it took
        self.after_crash = StatementStatus.FAILED not in statuses and bool(statuses - {StatementStatus.PENDING})
        for script in self.scripts:
            masked = [self.mask(s.text) for s in script.statements]
            for stmt, text in zip(script.statements, masked, strict=True):
                self.masked[(script.file_id, stmt.sequence)] = text
            rows = self.ledger.register(script, masked, registered.get(script.file_id, {}))
            self.rows[script.file_id] = rows
            for stmt in script.statements:
                row = rows[stmt.sequence]
                if row.status == StatementStatus.SUCCESS and row.sha256 != stmt.sha256:
                    edited.append(f"{stmt.where}: statement #{stmt.sequence} already executed with "
                                  f"sha256 {row.sha256[:12]}…, the file now has {stmt.sha256[:12]}…")
        self.ledger.flush()  # every row registered durably before a statement runs (mark_running relies on it)
        if edited:
            raise EditedAfterRun("refusing to resume: statements that already ran were edited "
                                 "(restore them; only the failed statement and later ones may change):\n"
                                 + "\n".join(edited))

    def session(self, database: str) -> DatabaseSession:
        with self._lock:
            if database not in self.sessions:
                self.sessions[database] = self.session_factory(database)
            return self.sessions[database]

    def close(self, *, succeeded: bool = False) -> None:
        """Write what is buffered; after a step that succeeded, its markers go too (the ledger proves it all)."""
        self.statement_log.flush()
        self.ledger.close()
        for session in self.sessions.values():
            if succeeded:
                session.forget_markers(self.options.execution_id, self.options.step_id)
            session.close()
        self.sessions.clear()

    def mask(self, text: str) -> str:
        return mask_text(mask_sql(text, self.options.mask_patterns), self.options.secrets)

    # running ----------------------------------------------------------------------------------

    def run_range(self, script: ScriptFile, start: int, end: int) -> None:
        """Run statements ``[start, end)`` of one file."""
        for _ in self.iter_range(script, start, end):
            pass

    def iter_range(self, script: ScriptFile, start: int, end: int) -> Iterator[tuple[str, Unit]]:
        """Run statements ``[start, end)`` of one file, saying when each unit starts and ends.

        A unit is what runs at once: one statement, a batch of DML sharing a commit, or a script's own
        transaction (:mod:`tasks.sql.windows` shows units as task runs).
        """
        rows = self.rows[script.file_id]
        index = start
        while index < end:
            self._stop_if_lock_lost(script, index)
            unit = script.unit_at(index)
            if unit is not None:
                shown = self._unit(script, unit[0], unit[1])
                yield "start", shown
                self._run_unit(script, *unit)
                yield "done", shown
                index = unit[1] + 1
                continue
            batch = self._dml_batch(script, rows, index, end)
            if len(batch) > 1:
                shown = self._unit(script, batch[0], batch[-1])
                yield "start", shown
                ran = self._run_batch(script, batch)
                yield "done", self._unit(script, batch[0], batch[0] + ran - 1)
                index += ran
                continue
            stmt, kind = script.statements[index], script.kinds[index]
            shown = self._unit(script, index, index)
            yield "start", shown
            self._run_one(script, stmt, kind, rows[stmt.sequence])
            yield "done", shown
            index += 1

    @staticmethod
    def _unit(script: ScriptFile, first: int, last: int) -> Unit:
        a = script.statements[first]
        if first == last:
            return Unit(f"{a.where} #{a.sequence}", 1)
        return Unit(f"{script.path} #{a.sequence}-{script.statements[last].sequence}", last - first + 1)

    def _dml_batch(self, script: ScriptFile, rows: dict[int, LedgerRow], start: int, end: int) -> list[int]:
        """Consecutive pending DML on one database, from ``start``: they may share one commit."""
        first = script.statements[start]
        batch: list[int] = []
        for index in range(start, min(end, start + self.batch_size)):
            stmt = script.statements[index]
            if script.kinds[index] != k.DML or rows[stmt.sequence].status != StatementStatus.PENDING \
                    or self._committed_before(script, stmt) \
                    or stmt.database != first.database or script.unit_at(index) is not None \
                    or script.details[index].targets \
                    or not self._transactional(self.session(stmt.database), stmt):
                break
            batch.append(index)
        return batch

    def _transactional(self, session: DatabaseSession, stmt: Statement) -> bool:
        """Whether everything a DML statement writes is transactional (its marker then proves it exactly)."""
        tables = dml_tables(stmt.text)  # parsed once: this runs for every statement of a batch
        return self._tables_transactional(session, stmt, tables) and not self._side_writes(session, stmt, tables)

    def _tables_transactional(self, session: DatabaseSession, stmt: Statement,
                              tables: list[tuple[str | None, str]] | None = None) -> bool:
        """Whether every table a DML statement names as written is transactional."""
        tables = tables if tables is not None else dml_tables(stmt.text)
        if not tables:
            return False  # cannot tell: treat it as if it were not
        return all(session.engine_of(schema, table) in TRANSACTIONAL_ENGINES for schema, table in tables)

    def _side_writes(self, session: DatabaseSession, stmt: Statement,
                     tables: list[tuple[str | None, str]] | None = None) -> str:
        """What a statement may write besides the tables it names, outside any rollback ('' if nothing):
        a stored function it calls, a trigger of its tables writing a non-transactional table."""
        functions = session.stored_functions()
        lowered = stmt.text.lower() if functions else ""
        called = sorted(called_names(stmt.text) & functions) if any(f in lowered for f in functions) else []
        if called:
            return f"the stored function {', '.join(called)}"
        for schema, table in (tables if tables is not None else dml_tables(stmt.text)) or []:
            for name, body in session.triggers_of(schema, table):
                written = dml_tables(body)
                if written is None or called_names(body) & functions or any(
                        session.engine_of(s or schema, t) not in TRANSACTIONAL_ENGINES for s, t in written):
                    return f"the trigger {name} on {table}"
        return ""

    def _non_transactional(self, session: DatabaseSession, stmt: Statement, *, known_only: bool = False) -> str:
        """``t (MYISAM)``, … for the message of a DML statement that no marker can prove.

        ``known_only``: only tables whose engine is known to be non-transactional ('' if none is).
        """
        tables = dml_tables(stmt.text)
        if tables is None:
            return "" if known_only else "tables the tool cannot name"
        engines = [(table, session.engine_of(schema, table)) for schema, table in tables]
        found = [f"{table} ({engine or 'engine unknown'})" for table, engine in engines
                 if engine not in TRANSACTIONAL_ENGINES and (engine or not known_only)]
        if not known_only and not found:
            found = [self._side_writes(session, stmt) or "tables the tool cannot name"]
        return ", ".join(found)

    def _run_batch(self, script: ScriptFile, batch: list[int]) -> int:
        """Run a DML batch in one transaction; on any error fall back to one by one, decided by markers."""
        rows = self.rows[script.file_id]
        statements = [script.statements[i] for i in batch]
        session = self.session(statements[0].database)
        items = [(s.text, self._marker(script, s, session)) for s in statements]
        try:
            outcomes = session.execute_batch(items)
        except BatchStopped as stopped:
            self._stopped_batch(script, statements, stopped)
            raise AssertionError("unreachable") from None  # pragma: no cover - _stopped_batch fails the step
        except Exception as exc:
            if is_connection_error(exc):
                try:
                    session.reconnect()
                except ResourceUnavailable as down:
                    self._fail(script, statements[0], rows[statements[0].sequence], down, 0)
            for stmt in statements:  # the batch rolled back (or committed before the connection died)
                row = rows[stmt.sequence]
                row.status = StatementStatus.RUNNING  # in memory only: let the marker decide
                self._run_one(script, stmt, "DML", row)
            return len(batch)
        for stmt, outcome in zip(statements, outcomes, strict=False):
            self.ledger.mark_success(rows[stmt.sequence], duration_ms=outcome.duration_ms,
                                     affected_rows=outcome.affected_rows, durable=False)
            self._record(script, stmt, StatementStatus.SUCCESS, outcome.duration_ms, outcome.affected_rows)
        return len(outcomes)

    def _stopped_batch(self, script: ScriptFile, statements: list[Statement], stopped: BatchStopped) -> None:
        """A statement of a batch failed: the ones before it committed (never sent again); it fails alone."""
        rows = self.rows[script.file_id]
        for stmt, outcome in zip(statements, stopped.done, strict=False):
            self.ledger.mark_success(rows[stmt.sequence], duration_ms=outcome.duration_ms,
                                     affected_rows=outcome.affected_rows, durable=False)
            self._record(script, stmt, StatementStatus.SUCCESS, outcome.duration_ms, outcome.affected_rows)
        failed = statements[stopped.index]
        note = "" if not stopped.rolled_back else (
            f"the server rolled back the whole transaction from line {statements[0].line} (a deadlock); the resume "
            "runs those statements again")
        self._fail(script, failed, rows[failed.sequence], stopped.error, 0, note=note)

    def run_file_transaction(self, script: ScriptFile) -> None:
        """``transaction: per_file``: all DML of the file commits together or not at all, on every database."""
        rows = self.rows[script.file_id]
        pending = [(s, k) for s, k in zip(script.statements, script.kinds, strict=True)
                   if rows[s.sequence].status not in STATEMENT_DONE]
        for stmt, kind in zip(script.statements, script.kinds, strict=True):
            if rows[stmt.sequence].status in STATEMENT_DONE:
                self._replay(stmt, kind, rows[stmt.sequence])
        if not pending:
            return
        self._stop_if_lock_lost(script, script.statements.index(pending[0][0]))
        touched: list[DatabaseSession] = []
        done: list[tuple[Statement, LedgerRow, int, int | None]] = []
        current: Statement | None = None
        counters = self._auto_increments(pending)
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
                                                         self._marker(script, stmt, session)) if kind == "DML" else \
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
            self._restore_auto_increments(counters)
            self.ledger.reset_to_pending([row for _, row, _, _ in done])
            assert current is not None
            self._fail(script, current, rows[current.sequence], exc, 0,
                       note=f"transaction per_file rolled back on {', '.join(s.name for s in touched)}")
        for stmt, row, ms, affected in done:
            self.ledger.mark_success(row, duration_ms=ms, affected_rows=affected, durable=False)
            self._record(script, stmt, StatementStatus.SUCCESS, ms, affected, note="per_file transaction")
        self.ledger.flush()

    def _auto_increments(self, pending: Sequence[tuple[Statement, str]]) -> dict[str, dict[Any, int]]:
        """Auto-increment counters of the tables a transaction's DML writes, per database, before it runs."""
        tables: dict[str, list[tuple[str | None, str]]] = {}
        for stmt, kind in pending:
            if kind == k.DML:
                tables.setdefault(stmt.database, []).extend(
                    t for t in dml_tables(stmt.text) or [] if t not in tables[stmt.database])
        return {db: self.session(db).auto_increments(names) for db, names in tables.items() if names}

    def _restore_auto_increments(self, counters: dict[str, dict[Any, int]]) -> None:
        """After the transaction rolled back: rows the resume sends again get the ids they would have had."""
        for database, values in counters.items():
            try:
                self.session(database).restore_auto_increments(values)
            except Exception as exc:  # noqa: BLE001 - the statement's error is what the operator must see
                self.logger.warning("could not restore the auto-increment counters on %s: %s", database, exc)

    def _replay(self, stmt: Statement, kind: str, row: LedgerRow) -> None:
        """A skipped statement still sets up the session for the rest of its file."""
        if row.status == StatementStatus.SKIPPED and row.replay_sql is None and kind != k.USE:
            return  # the operator skipped it: it never ran here
        session = self.session(stmt.database)
        if kind == k.USE:
            session.use(stmt.use_schema or stmt.text.split(None, 1)[-1].strip("` "))
        elif kind == k.SESSION:
            session.execute(stmt.text, remember_session=True)
        elif kind == k.DML:
            if row.replay_sql is not None:  # the variables its ``@v :=`` left
                session.execute(row.replay_sql)
                session.remember(row.replay_sql)
        elif kind == k.SESSION_RECORD:
            if row.replay_sql is None:  # ran before values were recorded: the only way left is to compute it again
                self.logger.warning("%s:%d: the value this statement set was not recorded; computing it again",
                                    stmt.source_name, stmt.line)
                session.execute(stmt.text)
                return
            session.execute(row.replay_sql)
            session.remember(row.replay_sql)

    def _decision_for(self, script: ScriptFile, stmt: Statement) -> StatementDecision | None:
        decision = self.options.decision
        if decision and decision.file_id == script.file_id and decision.sequence == stmt.sequence:
            return decision
        return None

    def _run_one(self, script: ScriptFile, stmt: Statement, kind: str, row: LedgerRow) -> None:
        if row.status in STATEMENT_DONE:
            self._replay(stmt, kind, row)
            self._record(script, stmt, StatementStatus.SKIPPED, 0, None, note="already done", log=False)
            return
        decision = self._decision_for(script, stmt)
        if decision is not None and row.status in STATEMENT_IN_FLIGHT and decision.action != "retry":
            note = decision.note(stmt.sha256)
            if decision.action == "skip":
                self.ledger.mark_skipped(row, note=note)
                self._record(script, stmt, StatementStatus.SKIPPED, 0, None, note=note)
            else:
                self.ledger.mark_success(row, duration_ms=0, affected_rows=None, durable=True, note=note)
                self._record(script, stmt, StatementStatus.SUCCESS, 0, None, note=note)
            return
        session = self.session(stmt.database)
        if row.status == StatementStatus.PENDING and kind == k.DML and self._committed_before(script, stmt):
            # a killed process committed it and never wrote its SUCCESS: never send it again
            if not script.details[stmt.sequence - 1].targets:
                note = "already applied (its marker is present)"
                self.ledger.mark_success(row, duration_ms=0, affected_rows=None, durable=True, note=note)
                self._record(script, stmt, StatementStatus.SUCCESS, 0, None, note=note)
                return
            row.status = StatementStatus.RUNNING  # in memory: the values it set were lost, the operator decides
        if row.status in STATEMENT_IN_FLIGHT and decision is None and (
                kind not in k.REPLAYABLE or (kind == k.SESSION_RECORD and row.status == StatementStatus.RUNNING)):
            applied = self._decide_in_flight(script, stmt, kind, row, session)
            if applied:
                note = "already applied (decided after restart)"
                self.ledger.mark_success(row, duration_ms=0, affected_rows=None, durable=True, note=note)
                self._record(script, stmt, StatementStatus.SUCCESS, 0, None, note=note)
                return
        retried = decision.note(stmt.sha256) if decision is not None and row.status != StatementStatus.PENDING else ""
        self._execute(script, stmt, kind, row, session, reconnected=False, note=retried)

    def _execute(self, script: ScriptFile, stmt: Statement, kind: str, row: LedgerRow, session: DatabaseSession,
                 *, reconnected: bool, note: str = "") -> None:
        detail = script.details[stmt.sequence - 1]
        retry = row.status in STATEMENT_IN_FLIGHT  # an attempt of a statement found in flight
        exact = kind == k.DML and self._transactional(session, stmt)
        # may write (a stored function in a SET), or sets variables in DML: RUNNING first, decided after a crash
        writes = kind == k.SESSION_RECORD and bool(self._side_writes(session, stmt))
        durable = kind not in (k.DML, *k.REPLAYABLE) or (kind == k.DML and (not exact or bool(detail.targets))) \
            or writes
        started = time.perf_counter()
        replay: str | None = None
        try:
            if durable:
                self.ledger.mark_running(row, server_started=session.server_clock() if _needs_clock(kind, stmt)
                                         else None, server_thread=session.thread_id())
            if kind == k.USE:
                session.use(stmt.use_schema or "")
                ms, affected = 0, None
            elif kind == k.DML:
                try:
                    outcome = session.execute_with_marker(stmt.text, self._marker(script, stmt, session))
                except MarkerExists:  # applied by an attempt whose SUCCESS never reached the ledger
                    note = "already applied (its marker is present)"
                    self.ledger.mark_success(row, duration_ms=0, affected_rows=None, durable=not exact, note=note)
                    self._record(script, stmt, StatementStatus.SUCCESS, 0, None, note=note)
                    return
                ms, affected = outcome.duration_ms, outcome.affected_rows
                if detail.targets:  # ``@v := …``: the values it left, for the rest of the file after a resume
                    replay = session.read_back(detail.targets)
                    session.remember(replay)
            else:
                outcome = session.execute(stmt.text, remember_session=kind == k.SESSION)
                ms, affected = outcome.duration_ms, outcome.affected_rows
                if outcome.returned is not None and not note:
                    note = f"OK, {outcome.returned} row{'' if outcome.returned == 1 else 's'} in set"
                if kind == k.SESSION_RECORD:
                    replay = session.read_back(detail.targets)
                    session.remember(replay)
                elif kind not in (k.SESSION, k.SAVEPOINT, k.TXN_END):
                    # DDL (or code the tool cannot see) may have changed the engines of its tables, functions, triggers
                    session.forget_engines(engine_changes(stmt.text) if kind == k.DDL else None)
                    if kind != k.DDL or _CODE_DDL.search(stmt.text):
                        session.forget_code()
        except Exception as exc:
            elapsed = int((time.perf_counter() - started) * 1000)
            if is_connection_error(exc) and not reconnected:
                self.logger.warning("%s:%d: connection to %s lost (%s); reconnecting", stmt.source_name, stmt.line,
                                    stmt.database, self.mask(str(exc)))
                try:
                    session.reconnect()
                except ResourceUnavailable as down:
                    self._fail(script, stmt, row, down, elapsed, in_doubt=durable)
                if kind not in k.REPLAYABLE and self._decide_in_flight(script, stmt, kind, row, session):
                    note = "applied before the connection was lost"
                    self.ledger.mark_success(row, duration_ms=elapsed, affected_rows=None, durable=True, note=note)
                    self._record(script, stmt, StatementStatus.SUCCESS, elapsed, None, note=note)
                    return
                self._execute(script, stmt, kind, row, session, reconnected=True, note=note)
                return
            already = kind == k.DDL and error_code_and_message(exc)[0] in ALREADY_DONE_CODES and \
                self._probed(session, stmt, row) is True
            if already and retry:
                # the server says its effect is already there and the catalog shows all of it: a copy sent by a
                # run that stopped took effect (or the operator applied it)
                note = f"already applied (the server answered {self.mask(str(exc))}; the catalog shows its effect)"
                self.ledger.mark_success(row, duration_ms=elapsed, affected_rows=None, durable=True, note=note)
                self._record(script, stmt, StatementStatus.SUCCESS, elapsed, None, note=note)
                return
            if kind == k.DML and not is_connection_error(exc) and self._marker_exists(session, script, stmt):
                # an earlier attempt applied it and its SUCCESS never reached the ledger (buffered when the
                # process died): this second run failed on what the first one did (a duplicate key) and rolled back
                note = "already applied (its marker is present)"
                self.ledger.mark_success(row, duration_ms=0, affected_rows=None, durable=True, note=note)
                self._record(script, stmt, StatementStatus.SUCCESS, 0, None, note=note)
                return
            written = self._non_transactional(session, stmt, known_only=True) if kind == k.DML and not exact else ""
            if already:  # the catalog shows its effect: the operator may say it was applied
                self._fail(script, stmt, row, exc, elapsed, partial=True,
                           note="the catalog already shows its effect: if it is yours, resume with --inflight applied")
            partial = kind == k.UNKNOWN or bool(written)
            self._fail(script, stmt, row, exc, elapsed, in_doubt=durable and is_connection_error(exc),
                       partial=partial, note="" if not partial else
                       f"non-transactional table {written}: rows before the error may have been written; decide "
                       "with --inflight retry or skip" if written else
                       "part of its work may have been done; decide with --inflight applied, retry or skip")
        if replay is not None:
            self.ledger.mark_recorded(row, duration_ms=ms, replay_sql=replay, note=note, affected_rows=affected)
        else:
            # a SUCCESS the catalog can prove after a crash rides along with the next durable write
            proven = kind == k.DDL and decidable_by_catalog(stmt.text)
            self.ledger.mark_success(row, duration_ms=ms, affected_rows=affected,
                                     durable=(durable and not proven) or bool(note), note=note)
        self._record(script, stmt, StatementStatus.SUCCESS, ms, affected, note=note)

    def _run_unit(self, script: ScriptFile, begin: int, end: int) -> None:
        """A script's own ``START TRANSACTION … COMMIT|ROLLBACK``: one transaction, one step for resume.

        The unit's end statement gets a marker inside the transaction: after a crash it tells whether
        the unit committed. A failure rolls the whole unit back; the resume runs it again from its start.
        """
        rows = self.rows[script.file_id]
        indexes = list(range(begin, end + 1))
        statements = [script.statements[i] for i in indexes]
        session = self.session(statements[0].database)
        last = statements[-1]
        done = all(rows[s.sequence].status in STATEMENT_DONE for s in statements)
        if not done and any(rows[s.sequence].status != StatementStatus.PENDING for s in statements) and \
                self._marker_exists(session, script, last):
            for s in statements:  # the unit committed; its SUCCESS rows were lost with the process
                if rows[s.sequence].status not in STATEMENT_DONE:
                    self.ledger.mark_success(rows[s.sequence], duration_ms=0, affected_rows=None, durable=False,
                                             note="already applied (the transaction committed)")
            self.ledger.flush()
            done = True
        if done:
            for i, s in zip(indexes, statements, strict=True):
                self._replay(s, script.kinds[i], rows[s.sequence])
                self._record(script, s, StatementStatus.SKIPPED, 0, None, note="already done", log=False)
            return
        non_tx = [s for i, s in zip(indexes, statements, strict=True)
                  if script.kinds[i] == k.DML and not self._transactional(session, s)]
        if non_tx:
            first = non_tx[0]
            self._fail(script, first, rows[first.sequence], InDoubt(
                f"the transaction from line {statements[0].line} writes the non-transactional table "
                f"{self._non_transactional(session, first)}: it cannot run as one unit (a rollback would not undo "
                "it); move that statement out of the transaction"), 0)
        self.statement_log.flush()
        counters = self._auto_increments([(s, script.kinds[i]) for i, s in zip(indexes, statements, strict=True)])
        self.ledger.mark_running(rows[statements[0].sequence], server_thread=session.thread_id())
        outcomes: list[tuple[Statement, int, int | None, str | None]] = []
        current = statements[0]
        try:
            for i, stmt in zip(indexes, statements, strict=True):
                current = stmt
                kind, row = script.kinds[i], rows[stmt.sequence]
                decision = self._decision_for(script, stmt)
                if decision is not None and decision.action == "skip":
                    outcomes.append((stmt, 0, None, None))
                    continue
                replay = None
                if kind == k.USE:
                    session.use(stmt.use_schema or "")
                    outcome_ms, affected = 0, None
                elif kind == k.DML:
                    outcome = session.execute_in_transaction(stmt.text, insert_marker_sql(session.marker_schema),
                                                             self._marker(script, stmt, session))
                    outcome_ms, affected = outcome.duration_ms, outcome.affected_rows
                elif stmt is last and script.details[i].verb == "COMMIT":
                    outcome = session.execute_in_transaction(stmt.text, insert_marker_sql(session.marker_schema),
                                                             self._marker(script, stmt, session), marker_first=True)
                    outcome_ms, affected = outcome.duration_ms, outcome.affected_rows
                else:
                    outcome = session.execute(stmt.text, remember_session=kind == k.SESSION)
                    outcome_ms, affected = outcome.duration_ms, outcome.affected_rows
                    if kind == k.SESSION_RECORD:
                        replay = session.read_back(script.details[i].targets)
                        session.remember(replay)
                outcomes.append((stmt, outcome_ms, affected, replay))
        except Exception as exc:
            with contextlib.suppress(Exception):
                session.rollback()
            self._restore_auto_increments(counters)
            self.ledger.reset_to_pending([rows[s.sequence] for s in statements if s is not current])
            self._fail(script, current, rows[current.sequence], exc, 0,
                       note=f"the transaction from line {statements[0].line} was rolled back; the resume runs it "
                            "again from there")
        for stmt, ms, affected, replay in outcomes:
            row = rows[stmt.sequence]
            decision = self._decision_for(script, stmt)
            if decision is not None and decision.action == "skip":
                self.ledger.mark_skipped(row, note=decision.note(stmt.sha256))
                self._record(script, stmt, StatementStatus.SKIPPED, 0, None, note=decision.note(stmt.sha256))
            elif replay is not None:
                self.ledger.mark_recorded(row, duration_ms=ms, replay_sql=replay)
                self._record(script, stmt, StatementStatus.SUCCESS, ms, affected)
            else:
                self.ledger.mark_success(row, duration_ms=ms, affected_rows=affected, durable=False,
                                         note="" if script.details[end].verb != "ROLLBACK" else
                                         "rolled back by the script's own ROLLBACK")
                self._record(script, stmt, StatementStatus.SUCCESS, ms, affected, note="script transaction")
        self.ledger.flush()

    def _marker(self, script: ScriptFile, stmt: Statement, session: DatabaseSession) -> tuple[Any, ...]:
        return marker_args(self.options.execution_id, self.options.step_id, script.file_id, stmt.sequence,
                           stmt.sha256, session.business_schema)

    def _committed_before(self, script: ScriptFile, stmt: Statement) -> bool:
        """Whether an earlier process of this step committed the statement (its marker exists): read once per
        database, so a resume never re-sends what a killed run committed without writing its SUCCESS."""
        keys = self._markers.get(stmt.database)
        if keys is None:
            session = self.session(stmt.database)
            keys = self._markers[stmt.database] = session.marker_keys(self.options.execution_id,
                                                                        self.options.step_id)
            if self.after_crash:
                self._reset_counters_after_crash(stmt.database)
        return bool(keys) and self._marker(script, stmt, self.session(stmt.database))[0] in keys

    def _reset_counters_after_crash(self, database: str) -> None:
        """Tables the pending INSERTs of this step write get their auto-increment counter back to the highest id
        + 1 (where the killed run's rolled-back inserts left it higher), so the rows sent again get the ids the
        client gives them. Exact unless the top rows had been deleted before (then the ids are lower)."""
        tables: list[tuple[str | None, str]] = []
        for script in self.scripts:
            rows = self.rows[script.file_id]
            for stmt, detail in zip(script.statements, script.details, strict=True):
                if stmt.database == database and detail.verb in ("INSERT", "REPLACE") and \
                        rows[stmt.sequence].status not in STATEMENT_DONE:
                    tables += [t for t in dml_tables(stmt.text) or [] if t not in tables]
        if tables:
            try:
                self.session(database).counters_to_highest(tables)
            except Exception as exc:  # noqa: BLE001 - a counter is not worth stopping the upgrade for
                self.logger.warning("could not reset the auto-increment counters on %s: %s", database, exc)

    def _marker_exists(self, session: DatabaseSession, script: ScriptFile, stmt: Statement) -> bool:
        key = self._marker(script, stmt, session)[0]
        return session.scalar(exists_sql(session.marker_schema), (key,)) is not None

    def _decide_in_flight(self, script: ScriptFile, stmt: Statement, kind: str, row: LedgerRow,
                          session: DatabaseSession) -> bool:
        """Whether a statement found RUNNING/FAILED already took effect; stops at a breakpoint when nothing can tell."""
        self._wait_while_running(script, stmt, row, session)
        targets = script.details[stmt.sequence - 1].targets
        if kind == k.DML:
            if self._marker_exists(session, script, stmt):
                if not targets or row.replay_sql is not None:
                    return True
                reason = (f"it committed, but the values it gave {', '.join(targets)} were lost with the process "
                          "(the rest of the file may use them)")
            elif self._tables_transactional(session, stmt) and (
                    row.status == StatementStatus.FAILED or not self._side_writes(session, stmt)):
                return False  # its marker would be there: it did not commit (a refused statement wrote nothing more
                # than the client's would)
            else:
                side = "" if not self._tables_transactional(session, stmt) else self._side_writes(session, stmt)
                what = (f"it writes the non-transactional table {self._non_transactional(session, stmt)}" if not side
                        else f"it runs {side}, which may write outside its transaction")
                reason = f"{what}, which takes effect without its marker: it may have been applied, in part or in full"
        elif kind == k.SESSION_RECORD and row.status == StatementStatus.RUNNING:
            reason = (f"it calls {self._side_writes(session, stmt) or 'a stored function'}, which may write, and "
                      f"the value it gave {', '.join(targets)} was lost with the process")
        elif row.status == StatementStatus.FAILED and kind != k.UNKNOWN and not (
                kind == k.DDL and row.error_code in ALREADY_DONE_CODES):
            return False  # the server refused it: it did not apply
        else:
            probed = self._probed(session, stmt, row) if kind == k.DDL else None
            if probed is False or (probed is True and row.status == StatementStatus.RUNNING):
                return probed
            reason = {k.UNKNOWN: "its effects are not visible to the tool (a CALL, DO, PREPARE/EXECUTE or several "
                                 "statements in one block)",
                      k.DDL: "the catalog shows its effect, which the server reported already there "
                             f"(error {row.error_code})" if probed else
                      "the catalog cannot tell whether it took effect"}.get(
                kind, "nothing the tool can check tells whether it took effect")
        status = ("was running when the process stopped or its connection was lost"
                  if row.status == StatementStatus.RUNNING else "failed")
        self._fail(script, stmt, row, InDoubt(
            f"this statement {status} and {reason}; check the database, then resume with "
            f"`ft-upgrade resume {self.options.execution_id} --inflight applied` (it took effect), `--inflight retry` "
            "(run it again) or `--inflight skip --notes WHY` (you applied it by hand)"), 0, in_doubt=True)
        return False  # pragma: no cover - _fail raises

    @staticmethod
    def _probed(session: DatabaseSession, stmt: Statement, row: LedgerRow) -> bool | None:
        """What the catalog says of a DDL statement: True applied, False not, None cannot tell."""
        probes = ddl_probes(stmt.text)
        if not probes:
            return None
        answers = []
        for probe in probes:
            sql, args = probe.query()
            answers.append(decide(probe, session.scalar(sql, args), row.server_started))
        if all(a is True for a in answers):
            return True
        if all(a is False for a in answers):
            return False
        return None

    def _wait_while_running(self, script: ScriptFile, stmt: Statement, row: LedgerRow,
                            session: DatabaseSession) -> None:
        """A killed run's statement may still be executing on the server (a long ALTER goes on after its
        client died): wait for its connection to finish before anything is probed or sent again, saying so;
        past the step's timeout, stop at a breakpoint naming the connection to KILL (the operator's choice)."""
        thread = row.server_thread
        if row.status != StatementStatus.RUNNING or not thread or thread == session.thread_id():
            return
        started = time.monotonic()
        said = -1.0
        limit = (self.options.statement_timeout or 300.0) + 5.0
        while (activity := session.activity_of(thread)) is not None:
            waited = time.monotonic() - started
            command, seconds, state, _info = activity
            if said < 0 or waited - said >= 10:
                said = waited
                self.logger.warning("%s:%d: statement #%d is still running on %s as connection %d (%s for %ds%s), "
                                    "started by the run that stopped; waiting for it to end before deciding it "
                                    "(to stop it instead: KILL %d on the server)", script.path, stmt.line,
                                    stmt.sequence, stmt.database, thread, command, seconds,
                                    f", {state}" if state else "", thread)
            if waited > limit:
                self._fail(script, stmt, row, InDoubt(
                    f"this statement is still running on the server as connection {thread} ({command} for "
                    f"{seconds}s{', ' + state if state else ''}), started by the run that stopped; wait for it and "
                    f"resume, or stop it with `KILL {thread}` on the server and resume (the tool then checks what "
                    "it left)"), int(waited * 1000), in_doubt=True)
            time.sleep(0.5)
        if said >= 0:
            self.logger.warning("%s:%d: connection %d finished after %.1fs of waiting; deciding the statement now",
                                script.path, stmt.line, thread, time.monotonic() - started)

    def _stop_if_lock_lost(self, script: ScriptFile, index: int) -> None:
        """Before a statement is sent: if the run lost its site lock, stop here with a breakpoint.

        The statement stays PENDING (it was never sent). The breakpoint is written only while the lock
        row still carries this run's token; if another run took the site, the fence refuses the write
        and :class:`SiteLockLost` ends the step without writing anything.
        """
        lock = self.options.lock
        if lock is None or not lock.lost.is_set():
            return
        stmt = script.statements[index]
        self.ledger.flush()
        sql = self.mask(stmt.text)
        bp = self.ledger.open_breakpoint(
            file=stmt.source_name, file_id=script.file_id, line=stmt.line, sequence=stmt.sequence, sql=sql,
            error_code=None, message=lock.reason,
            instructions=("Nothing was sent from this statement on. Make sure no other run is upgrading this site "
                          "(`ft-upgrade info --site " + self.options.site_id + "`), then retry the flow run or "
                          f"`ft-upgrade resume {self.options.execution_id}`."),
            context={"database": stmt.database, "in_doubt": False, "lock_lost": True})
        self.summary.failure = FailureInfo(stmt.source_name, stmt.line, stmt.sequence, stmt.database, sql, None,
                                           lock.reason, bp)
        raise StepFailed(f"{stmt.where}: stopped before statement #{stmt.sequence}: {lock.reason} "
                         f"(breakpoint {bp})", where=f"{stmt.where} #{stmt.sequence}")

    def _fail(self, script: ScriptFile, stmt: Statement, row: LedgerRow, exc: BaseException, elapsed: int,
              *, in_doubt: bool = False, partial: bool = False, note: str = "") -> None:
        """FAILED (or left RUNNING when ``in_doubt``) and an ACTIVE breakpoint, then the step fails.

        ``partial``: the statement failed but may have had an effect (a CALL, DML on a non-transactional
        table): the breakpoint asks the operator to decide, as for a statement in doubt.
        """
        code, message = error_code_and_message(exc)
        if code in TIMEOUT_CODES:
            message = timeout_message(code, message, stmt.text, elapsed_ms=elapsed,
                                      step_timeout=self.options.statement_timeout,
                                      session_limit=self._session_limit(stmt.database))
        # the server's echo of the statement may cut a long secret short: its quoted prefix is masked too
        message = mask_text(self.mask(message), (), echoed=secret_literals(stmt.text, self.options.mask_patterns))
        if note:
            message = f"{message} [{note}]"
        if in_doubt:
            self.ledger.flush()  # leave the row RUNNING: the next attempt decides it
        else:
            self.ledger.mark_failed(row, duration_ms=elapsed, error_code=code, message=message)
        sql = self.mask(stmt.text)
        instructions = ("Fix the cause, then: retry the flow run in the Prefect UI, or run the same "
                        f"`prefect deployment run` again, or `ft-upgrade resume {self.options.execution_id}`.")
        bp = self.ledger.open_breakpoint(file=stmt.source_name, file_id=script.file_id, line=stmt.line,
                                         sequence=stmt.sequence, sql=sql, error_code=code, message=message,
                                         instructions=instructions,
                                         context={"database": stmt.database, "in_doubt": in_doubt or partial})
        self.summary.failure = FailureInfo(stmt.source_name, stmt.line, stmt.sequence, stmt.database, sql, code,
                                           message, bp)
        self._record(script, stmt, StatementStatus.FAILED, elapsed, None, error_code=code, message=message)
        # from None: the driver's exception quotes the server's message unmasked (a password it echoed)
        raise StepFailed(f"{stmt.where}: statement #{stmt.sequence} on {stmt.database} failed: "
                         f"{'[' + code + '] ' if code else ''}{message} (breakpoint {bp})",
                         where=f"{stmt.where} #{stmt.sequence}") from None

    def _session_limit(self, database: str) -> float | None:
        """The session's statement time limit in seconds now (None: unknown), to say whose limit fired."""
        session = self.sessions.get(database)
        if session is None:
            return None
        with contextlib.suppress(Exception):
            if session.is_mariadb:
                return float(session.scalar("SELECT @@SESSION.max_statement_time"))
            return float(session.scalar("SELECT @@SESSION.max_execution_time")) / 1000
        return None

    # logging ----------------------------------------------------------------------------------

    def _record(self, script: ScriptFile, stmt: Statement, status: str, ms: int, affected: int | None, *,
                note: str = "", log: bool = True, error_code: str | None = None, message: str = "") -> None:
        sql = self.masked.get((script.file_id, stmt.sequence)) or self.mask(stmt.text)
        with self._lock:
            self.summary.records.append(StatementRecord(stmt.source_name, stmt.line, stmt.sequence, stmt.database,
                                                        status, ms, affected, sql, note or message))
        if self.progress is not None:
            self.progress.advance()
        if not log:
            return
        now = datetime.now(UTC)
        level = "ERROR" if status == "FAILED" else "INFO"
        if status == StatementStatus.FAILED:
            self.statement_log.failure(now, stmt.source_name, stmt.line, sql, stmt.database, ms, message=message,
                                       note=note)
        else:
            self.statement_log.success(now, stmt.source_name, stmt.line, sql, stmt.database, status, ms, affected,
                                       note=note)
        if self.events is not None:
            self.events.put(LogEvent(
                event_time=now, execution_id=self.options.execution_id, site_id=self.options.site_id,
                cutpoint=self.options.cutpoint, step_id=self.options.step_id, level=level, kind="statement",
                file=stmt.source_name, line=stmt.line, sequence=stmt.sequence, database=stmt.database, status=status,
                duration_ms=float(ms), affected_rows=affected, error_code=error_code or "",
                message=message or note, sql_text=sql))
