"""Index optimization: statistics before and after, planned operations, a time budget, rollback.

Pure parts decide (:func:`plan_operations`, :func:`percent_change`, :func:`budget_exhausted`);
the rest reads ``information_schema``, times probe queries and runs one operation at a time.
Only MySQL / MariaDB are supported (``ANALYZE`` / ``OPTIMIZE TABLE``, online ``ALTER``).
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from tasks.core.errors import IndexOperationFailed
from tasks.sql.select_query import literal_sql

if TYPE_CHECKING:  # sqlalchemy is imported by the I/O functions: the step's parameters need only the pure parts
    from sqlalchemy import Connection

INDEX_COLUMN = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_$]{0,63})(?:\((?P<length>[1-9]\d{0,3})\))?$")
#: MySQL/MariaDB errors that mean "stopped by our own limits": lock wait timeout, query interrupted,
#: statement time exceeded (MariaDB 1969, MySQL 3024).
BUDGET_ERRORS = frozenset({1205, 1317, 1969, 3024})

OpKind = Literal["create_index", "rebuild_index", "optimize", "analyze"]


@dataclass(frozen=True)
class IndexDef:
    """An index as configured or as found: ordered columns (``name`` or ``name(prefix)``), uniqueness."""

    name: str
    columns: tuple[str, ...]
    unique: bool = False

    def same_as(self, other: IndexDef) -> bool:
        return self.unique == other.unique and [c.lower() for c in self.columns] == [c.lower() for c in other.columns]

    def describe(self) -> str:
        return f"{'UNIQUE ' if self.unique else ''}({', '.join(self.columns)})"


@dataclass
class TableStats:
    """What ``information_schema`` says about one table."""

    table: str
    exists: bool = True
    rows: int = 0
    data_bytes: int = 0
    index_bytes: int = 0
    free_bytes: int = 0
    columns: set[str] = field(default_factory=set)
    indexes: dict[str, IndexDef] = field(default_factory=dict)
    cardinality: dict[str, int | None] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return self.data_bytes + self.index_bytes


@dataclass(frozen=True)
class Operation:
    kind: OpKind
    table: str
    index: IndexDef | None = None

    def describe(self) -> str:
        if self.kind == "create_index" and self.index:
            return f"create index {self.index.name} {self.index.describe()} on {self.table}"
        if self.kind == "rebuild_index" and self.index:
            return f"rebuild index {self.index.name} {self.index.describe()} on {self.table}"
        return f"{self.kind.upper()} TABLE {self.table}"


@dataclass(frozen=True)
class TableRequest:
    """The configured work for one table (the step's parameter model converts to this)."""

    table: str
    indexes: tuple[tuple[IndexDef, Literal["create", "rebuild"]], ...] = ()
    analyze: bool = True
    optimize: bool = False


def plan_operations(requests: Sequence[TableRequest], stats: dict[str, TableStats]
                    ) -> tuple[list[Operation], list[str], list[str]]:
    """Operations in a safe order (indexes, then OPTIMIZE, then ANALYZE), problems, notes.

    Problems stop the step before anything runs: a missing table or column, or an index of the
    configured name that exists with another definition under ``create``.
    """
    ops: list[Operation] = []
    problems: list[str] = []
    notes: list[str] = []
    for request in requests:
        found = stats.get(request.table)
        if found is None or not found.exists:
            problems.append(f"table {request.table} does not exist")
            continue
        for index, action in request.indexes:
            missing = [c for c in index.columns if _column_name(c).lower() not in found.columns]
            if missing:
                problems.append(f"index {index.name} on {request.table}: no column(s) {', '.join(missing)}")
                continue
            current = found.indexes.get(index.name.lower())
            if current is None:
                if action == "rebuild":
                    notes.append(f"index {index.name} on {request.table} does not exist: creating it")
                ops.append(Operation("create_index", request.table, index))
            elif action == "rebuild":
                ops.append(Operation("rebuild_index", request.table, index))
            elif current.same_as(index):
                notes.append(f"index {index.name} on {request.table} already exists as configured")
            else:
                problems.append(f"index {index.name} on {request.table} exists as {current.describe()}, the config "
                                f"says {index.describe()}: use action 'rebuild' to replace it")
    for request in requests:
        if request.optimize and request.table in stats and stats[request.table].exists:
            ops.append(Operation("optimize", request.table))
    for request in requests:
        if request.analyze and request.table in stats and stats[request.table].exists:
            ops.append(Operation("analyze", request.table))
    return ops, problems, notes


def _column_name(spec: str) -> str:
    match = INDEX_COLUMN.match(spec)
    return match.group("name") if match else spec


def percent_change(before: float, after: float) -> float | None:
    """Improvement in percent (positive = faster/smaller); None when there is no baseline."""
    if before <= 0:
        return None
    return round(100.0 * (before - after) / before, 1)


def budget_exhausted(exc: BaseException, deadline: float, now: float) -> bool:
    """Did our own limits stop the statement (rather than a real error)?

    A lock wait or statement timeout, or an "interrupted" OPTIMIZE result row, close to the deadline.
    """
    if now < deadline - 0.5:
        return False
    return _error_code(exc) in BUDGET_ERRORS or "interrupted" in str(exc).lower()


def _error_code(exc: BaseException) -> int | None:
    orig = getattr(exc, "orig", exc)
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


# ---------------------------------------------------------------- I/O


def read_stats(conn: Connection, tables: Iterable[str]) -> dict[str, TableStats]:
    """Sizes, columns, indexes and cardinalities of ``tables`` in the connection's current schema."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    names = list(dict.fromkeys(tables))
    if not names:
        return {}
    try:  # MySQL 8 caches these figures for a day by default; MariaDB has no such setting
        conn.execute(text("SET SESSION information_schema_stats_expiry = 0"))
    except DBAPIError:
        conn.rollback()
    params = {f"t{i}": n for i, n in enumerate(names)}
    where = "TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (" + ", ".join(f":t{i}" for i in range(len(names))) + ")"
    out = {n: TableStats(n, exists=False) for n in names}
    for row in conn.execute(text("SELECT TABLE_NAME, TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH, DATA_FREE "
                                 f"FROM information_schema.TABLES WHERE {where}"), params):
        out[row[0]] = TableStats(row[0], True, int(row[1] or 0), int(row[2] or 0), int(row[3] or 0), int(row[4] or 0))
    for row in conn.execute(text(f"SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE {where}"),
                            params):
        out[row[0]].columns.add(row[1].lower())
    grouped: dict[tuple[str, str], list[tuple[str, bool, int | None, int | None]]] = {}
    for row in conn.execute(text("SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART, CARDINALITY "
                                 f"FROM information_schema.STATISTICS WHERE {where} "
                                 "ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"), params):
        grouped.setdefault((row[0], row[1]), []).append((row[3], not int(row[2]), row[4], row[5]))
    for (table, index), parts in grouped.items():
        columns = tuple(f"{c}({p})" if p else c for c, _, p, _ in parts)
        out[table].indexes[index.lower()] = IndexDef(index, columns, parts[0][1])
        out[table].cardinality[index] = None if parts[-1][3] is None else int(parts[-1][3])
    return out


def time_probe(conn: Connection, sql: str, repeat: int) -> float:
    """Median milliseconds of ``repeat`` runs of a probe query, after one warm-up run."""
    statement = literal_sql(sql)
    conn.execute(statement).fetchall()
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        conn.execute(statement).fetchall()
        timings.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(timings), 3)


def operation_sql(op: Operation, quote: Callable[[str], str], *, online: bool) -> str:
    """The statement for an operation (identifiers quoted by the dialect)."""
    table = quote(op.table)
    if op.kind in ("create_index", "rebuild_index") and op.index is not None:
        cols = ", ".join(_quote_column(c, quote) for c in op.index.columns)
        add = f"ADD {'UNIQUE ' if op.index.unique else ''}INDEX {quote(op.index.name)} ({cols})"
        drop = f"DROP INDEX {quote(op.index.name)}, " if op.kind == "rebuild_index" else ""
        return f"ALTER TABLE {table} {drop}{add}" + (", ALGORITHM=INPLACE, LOCK=NONE" if online else "")
    return f"{'OPTIMIZE' if op.kind == 'optimize' else 'ANALYZE'} TABLE {table}"


def _quote_column(spec: str, quote: Callable[[str], str]) -> str:
    match = INDEX_COLUMN.match(spec)
    if not match:
        raise ValueError(f"bad index column {spec!r}")
    return quote(match.group("name")) + (f"({match.group('length')})" if match.group("length") else "")


def limit_session(conn: Connection, seconds: float, *, mariadb: bool) -> None:
    """Make the next statement give up when the budget does (lock waits always; run time on MariaDB)."""
    from sqlalchemy import text

    conn.execute(text(f"SET SESSION lock_wait_timeout = {max(1, int(seconds))}"))
    if mariadb:
        conn.execute(text(f"SET SESSION max_statement_time = {max(seconds, 0.001):.3f}"))


def run_operation(conn: Connection, op: Operation, *, online: bool) -> list[str]:
    """Run one operation; ANALYZE/OPTIMIZE report errors as rows, which are raised here."""
    from sqlalchemy import text

    sql = operation_sql(op, conn.dialect.identifier_preparer.quote, online=online)
    result = conn.execute(text(sql))
    messages: list[str] = []
    if result.returns_rows:
        for row in result:
            kind, message = str(row[2]).lower(), str(row[3])
            if kind == "error":
                raise IndexOperationFailed(f"{op.describe()}: {message}")
            if kind in ("note", "warning", "info"):
                messages.append(message)
    return messages


def drop_index(conn: Connection, table: str, index: str) -> None:
    from sqlalchemy import text

    quote = conn.dialect.identifier_preparer.quote
    conn.execute(text(f"ALTER TABLE {quote(table)} DROP INDEX {quote(index)}"))
