"""The SQL ledger: one ``sql_execution_record`` row per statement, the authority on what already ran.

PENDING rows for a whole file are registered when the file starts. RUNNING (before DDL) and
FAILED are written at once; PENDING rows and the SUCCESS of DML are buffered and written in the
background, because for DML the marker row committed in the target database with the statement
itself is the proof (:mod:`tasks.sql.marker`), so a lost buffer costs nothing: a missing or PENDING
row of a statement whose marker exists is decided by the marker on the next attempt. Breakpoints
live here too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, bindparam, null, select, update

from tasks.core.clock import utcnow
from tasks.core.statuses import STATEMENT_DONE, STATEMENT_IN_FLIGHT, StatementStatus
from tasks.sql.script import ScriptFile
from tasks.store import schema
from tasks.store.breakpoints import open_breakpoint
from tasks.store.prepared import BufferedWriter, PreparedWrite

if TYPE_CHECKING:
    from tasks.store.site_lock import HeldLock

_t = schema.sql_execution_record
_REGISTER_COLUMNS = [c for c in _t.columns if c.name not in (
    "start_time", "end_time", "duration", "affected_rows", "error_code", "error_message", "execution_result",
    "replay_sql", "server_started", "server_thread")]


@dataclass
class LedgerRow:
    """What the ledger knows of one statement."""

    id: str
    sequence: int
    status: str
    sha256: str
    line: int
    replay_sql: str | None = None  # SESSION_RECORD: the SET that restores the value it got
    server_started: int | None = None  # the server's clock when it was marked RUNNING
    server_thread: int | None = None  # the server connection that ran it (RUNNING)
    error_code: str | None = None  # of its last failure


def _update(*columns: str, **values: Any) -> Any:
    """``UPDATE sql_execution_record SET <column> = :<column>…, <values> WHERE id = :b_id``."""
    return update(_t).where(_t.c.id == bindparam("b_id")).values({**{c: bindparam(c) for c in columns}, **values})


def outcome_text(affected_rows: int | None) -> str:
    """The client's words for a statement that succeeded."""
    if affected_rows is None:
        return "OK"
    return f"OK, {affected_rows} row{'' if affected_rows == 1 else 's'} affected"


class SqlLedger:
    """Ledger rows of one step of one execution.

    Statements are registered and DML successes recorded through a :class:`BufferedWriter` (written
    in the background); RUNNING and FAILED, and the SUCCESS of a DDL statement, are durable before
    the call returns and take the buffer along in the same commit: a DDL statement costs two commits.
    """

    def __init__(self, engine: Engine, execution_id: str, step_id: str, *, fence: HeldLock | None = None) -> None:
        self.engine = engine
        self.execution_id = execution_id
        self.step_id = step_id
        self.fence = fence  # the run's site lock: a run that lost it writes nothing more
        self._insert = PreparedWrite(_t.insert().values({c.name: bindparam(c.name) for c in _REGISTER_COLUMNS}),
                                     engine)
        self._edit = PreparedWrite(_update(
            "sql_line_number", "sql_content", "sql_content_hash", "target_database", "updated_time"), engine)
        # a statement that failed before and now succeeded carries its latest attempt only (the failure stays in
        # its breakpoint's history)
        self._success = PreparedWrite(_update(
            "status", "start_time", "end_time", "duration", "affected_rows", "execution_result", "updated_time",
            "error_code", "error_message"), engine)
        self._running = PreparedWrite(_update(
            "status", "start_time", "server_started", "server_thread", "updated_time", end_time=null(),
            error_code=null(), error_message=null(), retry_count=_t.c.retry_count + bindparam("retry")), engine)
        self._recorded = PreparedWrite(_update(
            "status", "start_time", "end_time", "duration", "affected_rows", "execution_result", "replay_sql",
            "updated_time", "error_code", "error_message"), engine)
        self._failed = PreparedWrite(_update(
            "status", "end_time", "duration", "error_code", "error_message", "updated_time"), engine)
        self._writer = BufferedWriter(engine, [self._insert, self._edit, self._success], fence=fence)

    def rows(self) -> dict[str, dict[int, LedgerRow]]:
        """Every row of this step, by file id and sequence (one query however many files the step has)."""
        found: dict[str, dict[int, LedgerRow]] = {}
        with self.engine.connect() as conn:
            result = conn.execute(select(_t.c.sql_file_id, _t.c.id, _t.c.sql_sequence, _t.c.status,
                                         _t.c.sql_content_hash, _t.c.sql_line_number, _t.c.replay_sql,
                                         _t.c.server_started, _t.c.server_thread, _t.c.error_code).where(
                _t.c.execution_id == self.execution_id, _t.c.step_id == self.step_id))
            for r in result:
                found.setdefault(r.sql_file_id, {})[r.sql_sequence] = LedgerRow(
                    r.id, r.sql_sequence, r.status, r.sql_content_hash, r.sql_line_number, r.replay_sql,
                    r.server_started, r.server_thread, r.error_code)
        return found

    def register(self, script: ScriptFile, masked_texts: list[str],
                 existing: dict[int, LedgerRow]) -> dict[int, LedgerRow]:
        """Make sure every statement of the file has a row (``existing``: its rows so far, from :meth:`rows`);
        rows not yet done take the file's current text."""
        now = utcnow()
        prefix = uuid.uuid4().hex[:20]  # + the sequence: unique ids without a random draw per row
        for stmt, text in zip(script.statements, masked_texts, strict=True):
            row = existing.get(stmt.sequence)
            values = {"sql_line_number": stmt.line, "sql_content": text, "sql_content_hash": stmt.sha256,
                      "target_database": stmt.database, "updated_time": now}
            if row is None:
                rid = f"{prefix}{stmt.sequence:012x}"
                self._writer.buffer(self._insert, {
                    "id": rid, "execution_id": self.execution_id, "step_id": self.step_id,
                    "sql_file_id": script.file_id, "sql_file_name": stmt.source_name, "sql_sequence": stmt.sequence,
                    "status": StatementStatus.PENDING, "retry_count": 0, "created_time": now, **values})
                existing[stmt.sequence] = LedgerRow(rid, stmt.sequence, StatementStatus.PENDING, stmt.sha256, stmt.line)
            elif row.status not in STATEMENT_DONE and row.sha256 != stmt.sha256:
                self._writer.buffer(self._edit, {"b_id": row.id, **values})
                row.sha256, row.line = stmt.sha256, stmt.line
        return existing

    def mark_running(self, row: LedgerRow, *, server_started: int | None = None,
                     server_thread: int | None = None) -> None:
        """Durable before a statement whose effect cannot be checked by a marker (DDL and others).

        Only this row is written here: the rows it updates were registered durably before the first
        statement ran (:meth:`flush` after :meth:`register`), and what is still buffered (DML successes,
        proven by their markers; SUCCESS of DDL a catalog probe decides) is not needed to decide anything.
        """
        now = utcnow()
        self._writer.write_alone((self._running, [{
            "b_id": row.id, "status": StatementStatus.RUNNING, "start_time": now, "server_started": server_started,
            "server_thread": server_thread, "updated_time": now,
            "retry": 1 if row.status in STATEMENT_IN_FLIGHT else 0}]))
        row.status, row.server_started, row.server_thread = StatementStatus.RUNNING, server_started, server_thread
        row.error_code = None

    def mark_success(self, row: LedgerRow, *, duration_ms: int, affected_rows: int | None,
                     durable: bool, note: str = "") -> None:
        """Record success; ``durable=False`` buffers it (DML: the marker already proves it).

        ``execution_result`` says what the client would ("OK, 3 rows affected") or how it was decided (``note``).
        """
        end = utcnow()
        entry = {"b_id": row.id, "status": StatementStatus.SUCCESS,
                 "start_time": end - timedelta(milliseconds=duration_ms),
                 "end_time": end, "duration": duration_ms, "affected_rows": affected_rows,
                 "execution_result": note or outcome_text(affected_rows), "updated_time": end,
                 "error_code": None, "error_message": None}
        row.status = StatementStatus.SUCCESS
        if durable:
            self._writer.write_alone((self._success, [entry]))
        else:
            self._writer.buffer(self._success, entry)

    def mark_recorded(self, row: LedgerRow, *, duration_ms: int, replay_sql: str, note: str = "",
                      affected_rows: int | None = None) -> None:
        """A statement that set user or session variables (``SET`` from a query, ``SELECT … INTO``, ``@v :=`` in
        DML): durable SUCCESS with the SET that restores the values it left."""
        end = utcnow()
        self._writer.write_alone((self._recorded, [{
            "b_id": row.id, "status": StatementStatus.SUCCESS, "start_time": end - timedelta(milliseconds=duration_ms),
            "end_time": end, "duration": duration_ms, "affected_rows": affected_rows,
            "execution_result": note or "OK, value recorded for resume", "replay_sql": replay_sql,
            "updated_time": end, "error_code": None, "error_message": None}]))
        row.status, row.replay_sql = StatementStatus.SUCCESS, replay_sql

    def mark_skipped(self, row: LedgerRow, *, note: str) -> None:
        """The operator applied (or dropped) this statement by hand: never run, recorded who and why."""
        now = utcnow()
        self._writer.write_now((self._success, [{
            "b_id": row.id, "status": StatementStatus.SKIPPED, "start_time": now, "end_time": now, "duration": 0,
            "affected_rows": None, "execution_result": note, "updated_time": now, "error_code": None,
            "error_message": None}]))
        row.status = StatementStatus.SKIPPED

    def mark_failed(self, row: LedgerRow, *, duration_ms: int, error_code: str | None, message: str) -> None:
        now = utcnow()
        self._writer.write_now((self._failed, [{
            "b_id": row.id, "status": StatementStatus.FAILED, "end_time": now, "duration": duration_ms,
            "error_code": error_code,
            "error_message": message, "updated_time": now}]))
        row.status, row.error_code = StatementStatus.FAILED, error_code

    def reset_to_pending(self, rows: list[LedgerRow]) -> None:
        """After a rolled-back per-file transaction: those statements did not happen."""
        ids = {r.id for r in rows}
        self._writer.discard(self._success, lambda entry: entry["b_id"] not in ids)
        now = utcnow()
        self._writer.write_now((self._success, [{
            "b_id": r.id, "status": StatementStatus.PENDING, "start_time": None, "end_time": None, "duration": None,
            "affected_rows": None, "execution_result": None, "updated_time": now, "error_code": None,
            "error_message": None} for r in rows]))
        for r in rows:
            r.status = StatementStatus.PENDING

    def flush(self) -> None:
        """Everything buffered, committed before this returns."""
        self._writer.write_now()

    def close(self) -> None:
        """Write what is buffered and stop the background writer."""
        self._writer.close()

    # breakpoints --------------------------------------------------------------------------------

    def open_breakpoint(self, *, file: str, file_id: str, line: int, sequence: int, sql: str,
                        error_code: str | None, message: str, instructions: str, context: dict[str, Any]) -> str:
        """An ACTIVE SQL-level breakpoint, committed before the step reports failure."""
        return open_breakpoint(self.engine, execution_id=self.execution_id, step_id=self.step_id,
                               kind="SQL_LEVEL", message=message, instructions=instructions, context=context,
                               file=file, file_id=file_id, line=line, sequence=sequence, sql=sql,
                               error_code=error_code, fence=self.fence)
