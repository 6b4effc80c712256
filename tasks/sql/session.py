"""A client session per logical database: one connection for a whole step, as the mysql client has.

``USE`` and ``SET`` persist across statements, so each logical database gets one dedicated
connection (taken from its pool and discarded afterwards, so no session state leaks back). The
session remembers the session-state statements it ran, to replay them after a reconnect or, on
resume, for the part of a file that is skipped. Statement timeouts are enforced by the server
(``max_statement_time`` on MariaDB, ``max_execution_time`` on MySQL for SELECT) and by a watchdog
that kills the query from a second connection.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import pymysql
from pymysql.charset import charset_by_name
from pymysql.constants import CLIENT
from sqlalchemy import Engine
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from tasks.core.errors import InputError, ResourceUnavailable
from tasks.site.connect import SharedTlsConnection
from tasks.sql.marker import (
    ACCESS_DENIED,
    CREATE_MARKER_TABLE,
    MARKER_TABLE,
    adopt_legacy_sql,
    delete_keys_sql,
    expired_keys_sql,
    index_exists_sql,
    insert_markers_sql,
    quote_schema,
    step_keys_sql,
    table_exists_sql,
)

# Client-side errors that mean "the connection is gone", not "the statement is wrong".
CONNECTION_LOST = {2003, 2006, 2013, 2055, 0}
MARKER_SCHEMA_DEFAULT = "ft_upgrade"
TRANSACTIONAL_ENGINES = {"INNODB", "XTRADB", "TOKUDB", "ROCKSDB"}


def is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, (pymysql.err.InterfaceError, ConnectionError, OSError)):
        return True
    return isinstance(exc, pymysql.err.OperationalError) and bool(exc.args) and exc.args[0] in CONNECTION_LOST


def error_code_and_message(exc: BaseException) -> tuple[str | None, str]:
    if isinstance(exc, pymysql.err.MySQLError) and len(exc.args) >= 2:
        return str(exc.args[0]), str(exc.args[1])
    return None, f"{type(exc).__name__}: {exc}"


@dataclass
class StatementOutcome:
    affected_rows: int | None
    duration_ms: int
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    returned: int | None = None  # rows of a result set (the client's "N rows in set")


def client_charset(profile: Any, database: str, default: str) -> str:
    """The character set the site's ``mariadb`` client uses on a logical database (profile, else ``default``).

    ``utf8`` means what it means to the MariaDB 10.x client, utf8mb3 (the driver would take utf8mb4).
    """
    chosen = getattr(profile, "client_charset", None) or {}
    name = (chosen.get(database) or chosen.get("*") or default).strip().lower()
    name = "utf8mb3" if name == "utf8" else name
    if charset_by_name(name) is None:
        raise InputError(f"client character set {name!r} for database {database!r} is not one the MySQL "
                         "protocol knows (utf8mb3, utf8mb4, latin1, gbk, …): fix the site profile's client_charset "
                         "or FT_UPGRADE_CLIENT_CHARSET")
    return name


def client_connection(engine: Engine, charset: str | None = None) -> pymysql.connections.Connection:
    """A connection of its own (session state must not go back into a pool) with the mysql client's flags.

    Like the client: several statements per query are allowed (a ``DELIMITER`` block may hold several,
    and the engine sends its marker insert and ``COMMIT`` together), and affected rows count changed
    rows, not matched ones (SQLAlchemy's dialect asks for ``FOUND_ROWS``). ``charset``: the client's
    character set (:func:`client_charset`), in place of the URL's, which is the driver's for the tool's
    own queries; the server's default collation for it, as ``SET NAMES`` gives.
    """
    args, kwargs = engine.dialect.create_connect_args(engine.url)
    flags = (kwargs.get("client_flag", 0) & ~CLIENT.FOUND_ROWS) | CLIENT.MULTI_STATEMENTS | CLIENT.MULTI_RESULTS
    if charset:
        kwargs = {k: v for k, v in kwargs.items() if k != "collation"} | {"charset": charset}
    return SharedTlsConnection(*args, **{**kwargs, "client_flag": flags, "autocommit": True})


class DatabaseSession:
    """The connection of one logical database for one step."""

    def __init__(self, name: str, engine: Engine, *, statement_timeout: float, reconnect_attempts: int = 4,
                 reconnect_wait: float = 1.0, marker_schema: str = MARKER_SCHEMA_DEFAULT,
                 marker_retention_days: int = 30, charset: str | None = None) -> None:
        self.name = name
        self.charset = charset  # the site client's (None: the URL's, as for the tool's own queries)
        self.engine = engine
        self.statement_timeout = statement_timeout
        self.reconnect_attempts = reconnect_attempts
        self.reconnect_wait = reconnect_wait
        self.marker_schema = marker_schema
        self.business_schema = engine.url.database or ""
        self.marker_warning = ""  # set when the tool's own schema could not be used
        self.replay: list[tuple[str, str]] = []  # ("use", schema) | ("sql", text) in the order they ran
        self.deadline: float | None = None
        self._engines: dict[tuple[str | None, str], str | None] = {}
        self._functions: set[str] | None = None  # stored function names (lower case), any schema
        self._triggers: dict[tuple[str | None, str], list[tuple[str, str]]] = {}
        self._conn: pymysql.connections.Connection | None = None
        self.is_mariadb = True
        self._connect()
        self._ensure_marker_table(marker_retention_days)

    # connection -------------------------------------------------------------------------------

    def _connect(self) -> None:
        """Connect with retries and backoff; a database that stays away fails naming it (no password)."""
        shown = self.engine.url.render_as_string(hide_password=True)

        def attempt() -> None:
            self._conn = client_connection(self.engine, self.charset)

        try:
            for attempt_ctx in Retrying(stop=stop_after_attempt(self.reconnect_attempts),
                                        wait=wait_exponential(multiplier=self.reconnect_wait, max=8),
                                        retry=retry_if_exception(_retryable), reraise=True):
                with attempt_ctx:
                    attempt()
        except Exception as exc:
            reason = getattr(exc, "orig", exc)
            raise ResourceUnavailable(f"database {self.name!r} ({shown}) unreachable after "
                                      f"{self.reconnect_attempts} attempts: {reason}") from None
        with self._cursor() as cur:
            cur.execute("SELECT VERSION()")
            self.is_mariadb = "mariadb" in str(cur.fetchone()[0]).lower()
            if self.statement_timeout:
                if self.is_mariadb:
                    cur.execute(f"SET SESSION max_statement_time = {float(self.statement_timeout)}")
                else:
                    cur.execute(f"SET SESSION max_execution_time = {int(self.statement_timeout * 1000)}")

    def reconnect(self) -> None:
        """A fresh connection with this step's session state replayed."""
        self.close()
        self._connect()
        for kind, value in self.replay:
            if kind == "use":
                self.conn.select_db(value)
            else:
                with self._cursor() as cur:
                    cur.execute(value)
                    _drain(cur)

    def _ensure_marker_table(self, retention_days: int) -> None:
        """The marker table in the tool's own schema; the business schema only if the account may not create it.

        Markers an older version left in the business schema are moved over (and that table dropped), so
        an execution started before still finds them and the business schema keeps only what scripts made.
        """
        business = self.engine.url.database
        try:
            with self._cursor() as cur:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS {quote_schema(self.marker_schema)}")
                cur.execute(CREATE_MARKER_TABLE.format(schema=quote_schema(self.marker_schema)))
        except pymysql.err.MySQLError as exc:
            if not (exc.args and exc.args[0] in ACCESS_DENIED and business):
                raise
            self.marker_warning = (f"cannot use schema {self.marker_schema!r} for statement markers on {self.name} "
                                   f"({exc.args[1]}); they go to the business schema {business!r} instead — grant "
                                   f"CREATE on {self.marker_schema}.* to keep business schemas clean")
            self.marker_schema = business
            with self._cursor() as cur:
                cur.execute(CREATE_MARKER_TABLE.format(schema=quote_schema(business)))
        with self._cursor() as cur:
            if business and business != self.marker_schema:
                cur.execute(table_exists_sql(), (business, MARKER_TABLE))
                if cur.fetchone()[0]:
                    for sql in adopt_legacy_sql(self.marker_schema, business):
                        cur.execute(sql)
            cur.execute(index_exists_sql(), (self.marker_schema, MARKER_TABLE, "idx_marker_time"))
            if not cur.fetchone()[0]:  # a table created before the index was part of its definition
                cur.execute(f"ALTER TABLE {quote_schema(self.marker_schema)}.`{MARKER_TABLE}` "
                            "ADD KEY idx_marker_time (applied_time)")
        self._expire_markers(retention_days)

    def _expire_markers(self, retention_days: int) -> None:
        """Old markers go, on a connection of their own, locking no row that a running step may write.

        READ COMMITTED and the time index keep the DELETE from taking gap locks across the table, where
        concurrent steps (other lanes, other databases on the server) insert their markers.
        """
        self._delete_markers(*expired_keys_sql(self.marker_schema, retention_days))

    @property
    def conn(self) -> pymysql.connections.Connection:
        assert self._conn is not None
        return self._conn

    def _cursor(self) -> Any:
        return self.conn.cursor()

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # closing a dead connection
                self._conn.close()
        self._conn = None

    def forget_markers(self, execution_id: str, step_id: str) -> None:
        """A step's markers, once its ledger is complete and durable: nothing will ever ask them again.

        In a Prefect run they go off the path (the next step does not wait; the flow waits for them before it
        ends); markers a killed process leaves behind go with the retention, as before."""
        from tasks.core import background
        from tasks.core.runtime import in_prefect_run

        keys = step_keys_sql(self.marker_schema, execution_id, step_id)
        if in_prefect_run():
            background.submit(lambda: self._delete_markers(*keys), f"markers of {step_id}")
        else:
            self._delete_markers(*keys)

    def _delete_markers(self, select_keys: str, args: tuple[Any, ...]) -> None:
        """Delete markers by primary key after a plain (non-locking) read of which: never waits on the
        uncommitted markers of a step running beside it, whatever plan the server picks for a scan."""
        with self.engine.connect().execution_options(isolation_level="READ COMMITTED") as conn:
            keys = [row[0] for row in conn.exec_driver_sql(select_keys, args)]
            for start in range(0, len(keys), 1000):
                chunk = keys[start:start + 1000]
                conn.exec_driver_sql(delete_keys_sql(self.marker_schema, len(chunk)), tuple(chunk))
            conn.commit()

    # session state and catalog ----------------------------------------------------------------

    def remember(self, sql: str) -> None:
        """A session statement to replay after a reconnect (in the order they ran)."""
        self.replay.append(("sql", sql))

    def read_back(self, targets: tuple[str, ...]) -> str:
        """The values the variables have now, as one SET that restores them (for resume and reconnect)."""
        with self._cursor() as cur:
            cur.execute("SELECT " + ", ".join(targets))
            values = cur.fetchone()
            _drain(cur)
        parts = []
        for target, value in zip(targets, values, strict=True):
            name = f"SESSION {target.split('.', 1)[1]}" if target.upper().startswith("@@SESSION.") else target
            parts.append(f"{name} = {'NULL' if value is None else self.conn.escape(value)}")
        return "SET " + ", ".join(parts)

    def thread_id(self) -> int:
        """This connection's id on the server (``CONNECTION_ID()``), recorded with a statement marked RUNNING."""
        return int(self.conn.thread_id())

    def activity_of(self, thread: int) -> tuple[str, int, str, str] | None:
        """``(command, seconds, state, statement)`` of a server connection still busy; None if gone or idle."""
        with self._cursor() as cur:
            cur.execute("SELECT COMMAND, TIME, STATE, INFO FROM information_schema.PROCESSLIST WHERE ID = %s",
                        (int(thread),))
            row = cur.fetchone()
        if row is None or row[0] == "Sleep":
            return None
        return str(row[0]), int(row[1] or 0), str(row[2] or ""), str(row[3] or "")

    def server_clock(self) -> int:
        """The server's clock in epoch seconds (what catalog creation times are compared with)."""
        return int(self.scalar("SELECT UNIX_TIMESTAMP()"))

    def engine_of(self, schema: str | None, table: str) -> str | None:
        """A table's storage engine, upper case (None: not a base table, or not found); cached until forgotten."""
        key = (schema, table)
        if key not in self._engines:
            sql = ("SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                   f"{'%s' if schema else 'DATABASE()'} AND TABLE_NAME = %s AND TABLE_TYPE = 'BASE TABLE'")
            found = self.scalar(sql, (schema, table) if schema else (table,))
            self._engines[key] = str(found).upper() if found else None
        return self._engines[key]

    def stored_functions(self) -> set[str]:
        """Names of the stored functions of the current schema (lower case): a call of one may write; cached."""
        if self._functions is None:
            with self._cursor() as cur:
                cur.execute("SELECT DISTINCT LOWER(ROUTINE_NAME) FROM information_schema.ROUTINES "
                            "WHERE ROUTINE_TYPE = 'FUNCTION' AND ROUTINE_SCHEMA = DATABASE()")
                self._functions = {row[0] for row in cur.fetchall()}
        return self._functions

    def triggers_of(self, schema: str | None, table: str) -> list[tuple[str, str]]:
        """``(name, body)`` of the triggers on a table; cached until the next DDL."""
        key = (schema, table)
        if key not in self._triggers:
            sql = ("SELECT TRIGGER_NAME, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = "
                   f"{'%s' if schema else 'DATABASE()'} AND EVENT_OBJECT_TABLE = %s")
            with self._cursor() as cur:
                cur.execute(sql, (schema, table) if schema else (table,))
                self._triggers[key] = [(str(r[0]), str(r[1])) for r in cur.fetchall()]
        return self._triggers[key]

    def forget_code(self) -> None:
        """After DDL or code the tool cannot see: functions and triggers may have changed."""
        self._functions = None
        self._triggers.clear()

    def forget_engines(self, tables: list[tuple[str | None, str]] | None = None) -> None:
        """After DDL the cached engines of its tables may be stale (``None``: of every table)."""
        if tables is None:
            self._engines.clear()
            return
        names = {table.lower() for _, table in tables}
        for key in [key for key in self._engines if key[1].lower() in names]:
            del self._engines[key]

    # statements -------------------------------------------------------------------------------

    def use(self, schema: str, *, remember: bool = True) -> None:
        self.conn.select_db(schema)
        self._functions = None  # those of the new current schema
        if remember:
            self.replay.append(("use", schema))

    def execute(self, text: str, *, remember_session: bool = False, fetch: bool = False) -> StatementOutcome:
        """Run one statement as the client sends it (no parameter interpolation)."""
        start = time.perf_counter()
        with self._watchdog(), self._cursor() as cur:
            cur.execute(text)
            affected = cur.rowcount if cur.rowcount is not None and cur.rowcount >= 0 else None
            returned = None
            if cur.description is not None:  # a result set (SELECT, SHOW …): rows returned, none affected
                returned, affected = affected, None
            rows = list(cur.fetchall()) if fetch else []
            _drain(cur)
        if remember_session:
            self.replay.append(("sql", text))
        return StatementOutcome(affected, int((time.perf_counter() - start) * 1000), rows, returned)

    def execute_with_marker(self, text: str, marker_args: tuple[Any, ...]) -> StatementOutcome:
        """DML and its marker row in one transaction: after a crash the marker tells if it happened."""
        try:
            return self.execute_batch([(text, marker_args)])[0]
        except BatchStopped as stopped:
            raise stopped.error from None

    def execute_batch(self, items: list[tuple[str, tuple[Any, ...]]],
                      max_seconds: float = 0.2) -> list[StatementOutcome]:
        """Consecutive DML statements, each with its marker, committed together: one commit for the batch.

        Returns the outcomes of the prefix that ran (a batch stops growing after ``max_seconds``).

        Markers stay exact: each statement's marker commits with it (the markers of a batch go in one
        multi-row INSERT before the COMMIT). Any error rolls the whole batch back and is raised; the caller
        then decides statement by statement from the markers.
        """
        conn = self.conn
        outcomes: list[StatementOutcome] = []
        batch_start = time.perf_counter()
        conn.begin()
        try:
            with self._watchdog(), self._cursor() as cur:
                for text, _args in items:
                    start = time.perf_counter()
                    if outcomes and start - batch_start > max_seconds:
                        break  # keep transactions (and their locks) short: the rest goes in the next batch
                    self.deadline = time.monotonic() + self.statement_timeout + 2.0 if self.statement_timeout else None
                    try:
                        cur.execute(text)
                    except pymysql.err.MySQLError as exc:
                        if is_connection_error(exc):
                            raise
                        self._stop_batch(cur, items, outcomes, exc)
                    affected = cur.rowcount if cur.rowcount is not None and cur.rowcount >= 0 else None
                    _drain(cur)
                    outcomes.append(StatementOutcome(affected, int((time.perf_counter() - start) * 1000)))
                # one multi-row INSERT for the batch's markers and the COMMIT, in one round trip
                markers = [args for _, args in items[: len(outcomes)]]
                _insert_markers(cur, insert_markers_sql(self.marker_schema, markers, conn.escape) + ";\nCOMMIT")
        except BatchStopped:
            raise
        except BaseException:
            with contextlib.suppress(Exception):
                conn.rollback()
            raise
        return outcomes

    def _stop_batch(self, cur: Any, items: list[tuple[str, tuple[Any, ...]]], outcomes: list[StatementOutcome],
                    exc: pymysql.err.MySQLError) -> None:
        """A statement of a batch failed: the server undid that statement only, so the statements before it
        commit now with their markers (sending them again would repeat what the server already did:
        auto-increment values, triggers on non-transactional tables, ``@v :=``). When the server rolled the
        whole transaction back (a deadlock), nothing is kept and the caller is told so."""
        conn = self.conn
        if not outcomes:
            with contextlib.suppress(Exception):
                conn.rollback()
            raise BatchStopped([], exc, index=0) from exc
        cur.execute("SELECT @@in_transaction")
        open_ = bool(cur.fetchone()[0])
        if not open_:
            with contextlib.suppress(Exception):
                conn.rollback()
            raise BatchStopped([], exc, index=len(outcomes), rolled_back=True) from exc
        markers = [args for _, args in items[: len(outcomes)]]
        _insert_markers(cur, insert_markers_sql(self.marker_schema, markers, conn.escape) + ";\nCOMMIT")
        raise BatchStopped(outcomes, exc, index=len(outcomes)) from exc

    def marker_keys(self, execution_id: str, step_id: str) -> set[str]:
        """Keys of the markers a step committed so far (those whose SUCCESS a killed process never wrote)."""
        with self._cursor() as cur:
            cur.execute(*step_keys_sql(self.marker_schema, execution_id, step_id))
            return {row[0] for row in cur.fetchall()}

    def auto_increments(self, tables: list[tuple[str | None, str]]) -> dict[tuple[str | None, str], int]:
        """The auto-increment counters of tables (those that have one), to restore after a rollback."""
        found: dict[tuple[str | None, str], int] = {}
        for schema, table in tables:
            sql = ("SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                   f"{'%s' if schema else 'DATABASE()'} AND TABLE_NAME = %s AND AUTO_INCREMENT IS NOT NULL")
            value = self.scalar(sql, (schema, table) if schema else (table,))
            if value is not None:
                found[(schema, table)] = int(value)
        return found

    def counters_to_highest(self, tables: list[tuple[str | None, str]]) -> None:
        """Auto-increment counters above the highest id + 1 brought down to it (after a crash's rollback)."""
        counters = self.auto_increments(tables)
        lower: dict[tuple[str | None, str], int] = {}
        for (schema, table), value in counters.items():
            sql = ("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                   f"{'%s' if schema else 'DATABASE()'} AND TABLE_NAME = %s AND EXTRA LIKE '%%auto_increment%%'")
            column = self.scalar(sql, (schema, table) if schema else (table,))
            if column is None:
                continue
            name = f"{quote_schema(schema)}.{quote_schema(table)}" if schema else quote_schema(table)
            top = int(self.scalar(f"SELECT COALESCE(MAX({quote_schema(str(column))}), 0) + 1 FROM {name}"))
            if value > top:
                lower[(schema, table)] = top
        if lower:
            self.restore_auto_increments(lower)

    def restore_auto_increments(self, counters: dict[tuple[str | None, str], int]) -> None:
        """After a rollback: the counters back where they were, so rows sent again get the ids the client gives
        them (InnoDB keeps values a rolled-back insert took; it never goes below the highest id + 1)."""
        now = self.auto_increments(list(counters))
        for (schema, table), value in counters.items():
            if (schema, table) in now and now[(schema, table)] != value:
                name = f"{quote_schema(schema)}.{quote_schema(table)}" if schema else quote_schema(table)
                with self._cursor() as cur:
                    cur.execute(f"ALTER TABLE {name} AUTO_INCREMENT = {int(value)}")

    def begin(self) -> None:
        self.conn.begin()

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def execute_in_transaction(self, text: str, marker_sql: str, marker_args: tuple[Any, ...], *,
                               marker_first: bool = False) -> StatementOutcome:
        """Inside an already open transaction (``transaction: per_file``, a script's own transaction).

        ``marker_first``: the marker goes in before the statement (for the script's COMMIT that ends it).
        """
        start = time.perf_counter()
        with self._watchdog(), self._cursor() as cur:
            if marker_first:
                cur.execute(marker_sql, marker_args)
            cur.execute(text)
            affected = cur.rowcount if cur.rowcount is not None and cur.rowcount >= 0 else None
            _drain(cur)
            if not marker_first:
                cur.execute(marker_sql, marker_args)
        return StatementOutcome(affected, int((time.perf_counter() - start) * 1000))

    def scalar(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        with self._cursor() as cur:
            cur.execute(sql, args or None)
            row = cur.fetchone()
            _drain(cur)
        return row[0] if row else None

    def _watchdog(self) -> _Watchdog:
        return _Watchdog(self, self.statement_timeout)

    def kill_current_query(self) -> None:
        """KILL QUERY from a second connection: a timed-out statement must not keep running."""
        thread_id = self.conn.thread_id()
        with self.engine.connect() as other:
            other.exec_driver_sql(f"KILL QUERY {int(thread_id)}")


class _Watchdog:
    """Marks the session busy with a deadline; one monitor thread per process kills overdue queries.

    A timer thread per statement would cost more than a short statement itself.
    """

    def __init__(self, session: DatabaseSession, timeout: float) -> None:
        self.session = session
        self.timeout = timeout

    def __enter__(self) -> _Watchdog:
        if self.timeout:
            self.session.deadline = time.monotonic() + self.timeout + 2.0
            _Monitor.watch(self.session)
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.deadline = None


class _Monitor:
    """The process's single watchdog thread."""

    _sessions: weakref.WeakSet[DatabaseSession] = weakref.WeakSet()
    _thread: threading.Thread | None = None
    _lock = threading.Lock()

    @classmethod
    def watch(cls, session: DatabaseSession) -> None:
        if session in cls._sessions and cls._thread is not None:
            return
        with cls._lock:
            cls._sessions.add(session)
            if cls._thread is None or not cls._thread.is_alive():
                cls._thread = threading.Thread(target=cls._run, name="sql-watchdog", daemon=True)
                cls._thread.start()

    @classmethod
    def _run(cls) -> None:
        while True:
            time.sleep(0.25)
            now = time.monotonic()
            for session in list(cls._sessions):
                deadline = session.deadline
                if deadline is not None and now > deadline:
                    session.deadline = None
                    with contextlib.suppress(Exception):  # best effort; the server-side timeout is the first line
                        session.kill_current_query()


class BatchStopped(Exception):
    """A statement of a batch failed; ``done`` are the outcomes of the statements before it, committed."""

    def __init__(self, done: list[StatementOutcome], error: BaseException, *, index: int,
                 rolled_back: bool = False) -> None:
        super().__init__(str(error))
        self.done = done
        self.index = index  # of the failing statement in the batch
        self.error = error
        self.rolled_back = rolled_back  # the server undid the statements before it too (a deadlock)


class MarkerExists(Exception):
    """A statement's marker is already there: it ran and committed before (its repeat was rolled back)."""


def _insert_markers(cur: Any, sql: str) -> None:
    """Insert markers; a duplicate means the statement was applied by an earlier attempt."""
    try:
        cur.execute(sql)
        _drain(cur)
    except pymysql.err.IntegrityError as exc:
        if exc.args and exc.args[0] == 1062:
            raise MarkerExists(str(exc)) from exc
        raise


def _drain(cur: Any) -> None:
    """Consume every result set (CALL returns several), as the client does."""
    while cur.nextset():
        pass


def _retryable(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", exc)
    return is_connection_error(orig) or "Can't connect" in str(exc) or "Lost connection" in str(exc)
