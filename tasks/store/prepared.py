"""Core statements compiled once and run on a raw DBAPI connection, for the ledger's hot writes.

A DDL statement gets two small ledger writes around it (RUNNING before, SUCCESS after) and a big
data script thousands of buffered ones. Through ``Connection.execute`` SQLAlchemy's per-call work
(cache key, parameter construction, result set-up) costs several times what SQLite spends on the
write itself. Compiling the statement once for the engine's dialect, with the dialect's own bind
processors (SQLite stores ``DATETIME`` as text, for example), keeps exactly what SQLAlchemy would send.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.sql import ClauseElement


class PreparedWrite:
    """One INSERT/UPDATE with named bind parameters, ready for ``cursor.executemany``."""

    def __init__(self, statement: ClauseElement, engine: Engine) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        self.names: list[str] = list(compiled.positiontup or []) if self.positional else list(compiled.binds)
        self._plan: list[tuple[str, Callable[[Any], Any] | None]] = [
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in self.names]

    def parameters(self, rows: Iterable[Mapping[str, Any]]) -> list[Any]:
        """Rows of named values in the driver's parameter style."""
        plan = self._plan
        values = [tuple(row[name] if process is None else process(row[name]) for name, process in plan)
                  for row in rows]
        return values if self.positional else [dict(zip(self.names, v, strict=True)) for v in values]


def run_writes(engine: Engine, writes: Iterable[tuple[PreparedWrite, list[Mapping[str, Any]]]]) -> None:
    """Run several prepared writes in one transaction on a pooled connection (one commit for all)."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        for write, rows in writes:
            if rows:
                cursor.executemany(write.sql, write.parameters(rows))
        cursor.close()
        connection.commit()
    except BaseException:
        with contextlib.suppress(Exception):  # a dead connection: the original error matters
            connection.rollback()
        raise
    finally:
        connection.close()
