"""Copying one key range inside the caller's target transaction: on one server, or streamed between two.

Both return the chunk's end key and the rows written; the caller advances the checkpoint to that
key in the same transaction.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Connection, Engine

from tasks.migration.spec import MigrationTask
from tasks.migration.sql import boundary_sql, fetch_sql, insert_select_sql, insert_values_sql


class Copier(Protocol):
    mode: str

    def copy(self, conn: Connection, last_key: Any, upper_key: Any, size: int) -> tuple[Any, int]:
        """Copy keys after ``last_key`` (None: from the start) up to at most ``size`` keys; (end key, rows)."""
        ...

    def close(self) -> None: ...


def _bounds(last_key: Any, upper_key: Any) -> list[Any]:
    return ([last_key] if last_key is not None else []) + [upper_key]


class InsertSelectCopier:
    """Source and target on one server: the chunk end from the key index, then one ``INSERT … SELECT``.

    The target connection reads the source in READ COMMITTED, so the source rows are read without
    locks and the business's writers never wait for the copy.
    """

    mode = "insert_select"

    def __init__(self, task: MigrationTask, source_ref: str, target_ref: str) -> None:
        self._boundary = {lower: boundary_sql(task, source_ref, has_lower=lower) for lower in (False, True)}
        self._insert = {lower: insert_select_sql(task, source_ref, target_ref, has_lower=lower)
                        for lower in (False, True)}

    def copy(self, conn: Connection, last_key: Any, upper_key: Any, size: int) -> tuple[Any, int]:
        has_lower = last_key is not None
        row = conn.exec_driver_sql(self._boundary[has_lower], (*_bounds(last_key, upper_key), size - 1)).first()
        end = row[0] if row is not None else upper_key
        rows = conn.exec_driver_sql(self._insert[has_lower], tuple(_bounds(last_key, end))).rowcount
        return end, max(rows, 0)

    def close(self) -> None:
        pass


class StreamCopier:
    """Source on another server: fetch the next transformed rows there, insert them in one batch here."""

    mode = "stream"

    def __init__(self, task: MigrationTask, source: Engine, source_ref: str, target_ref: str) -> None:
        self._source = source
        self._fetch = {lower: fetch_sql(task, source_ref, has_lower=lower) for lower in (False, True)}
        self._insert = insert_values_sql(task, target_ref)
        self._conn: Connection | None = None

    def _source_conn(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self._source.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def copy(self, conn: Connection, last_key: Any, upper_key: Any, size: int) -> tuple[Any, int]:
        has_lower = last_key is not None
        try:
            rows = self._source_conn().exec_driver_sql(self._fetch[has_lower],
                                                       (*_bounds(last_key, upper_key), size)).fetchall()
        except Exception:
            self.close()
            raise
        end = rows[-1][0] if len(rows) >= size else upper_key
        if rows:
            conn.exec_driver_sql(self._insert, [tuple(r) for r in rows])
        return end, len(rows)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
