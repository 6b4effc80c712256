"""The checkpoint row of a task, in the target database, written in each chunk's own transaction.

A chunk's rows and its checkpoint advance commit together or not at all, so a process killed at any
instant leaves either both or neither. Every chunk first locks the row (``FOR UPDATE``): a chunk
of a killed process that the server is still finishing or rolling back is waited for, never
overtaken, and two runners of one task take turns instead of copying a range twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection

from tasks.migration.sql import CHECKPOINT_TABLE, checkpoint_ddl, table_ref

COPYING = "COPYING"
COPIED = "COPIED"
DONE = "DONE"

_COLUMNS = ("name", "spec_hash", "upper_key", "last_key", "total_rows", "rows_done", "chunks", "runs", "status",
            "execution_id", "detail")


def encode_key(value: Any) -> str | None:
    """Keys are stored as JSON so an integer key comes back an integer and a string key a string."""
    return None if value is None else json.dumps(value)


def decode_key(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass(frozen=True)
class Checkpoint:
    """One task's state. ``last_key`` is None before the first chunk; ``upper_key`` None for an empty source."""

    name: str
    spec_hash: str
    upper_key: Any
    last_key: Any
    total_rows: int
    rows_done: int
    chunks: int
    runs: int
    status: str
    execution_id: str = ""
    detail: str | None = None

    @property
    def copied(self) -> bool:
        """Every key of the range is behind the checkpoint."""
        return self.upper_key is None or (self.last_key is not None and self.last_key == self.upper_key)

    def advanced(self, last_key: Any, rows: int) -> Checkpoint:
        return replace(self, last_key=last_key, rows_done=self.rows_done + rows, chunks=self.chunks + 1)


class CheckpointTable:
    """``ft_upgrade_migration_checkpoint`` in one schema; methods run on the caller's connection/transaction."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.ref = table_ref(schema, CHECKPOINT_TABLE)

    def ensure(self, conn: Connection) -> None:
        conn.exec_driver_sql(checkpoint_ddl(self.schema))

    def _select(self, conn: Connection, name: str, suffix: str) -> Checkpoint | None:
        row = conn.exec_driver_sql(f"SELECT {', '.join(_COLUMNS)} FROM {self.ref} WHERE name = %s{suffix}",
                                   (name,)).first()
        if row is None:
            return None
        data = dict(zip(_COLUMNS, row, strict=True))
        data["upper_key"] = decode_key(data["upper_key"])
        data["last_key"] = decode_key(data["last_key"])
        return Checkpoint(**data)

    def read(self, conn: Connection, name: str) -> Checkpoint | None:
        return self._select(conn, name, "")

    def lock(self, conn: Connection, name: str) -> Checkpoint | None:
        """Read and lock the row until the transaction ends (waits for another holder)."""
        return self._select(conn, name, " FOR UPDATE")

    def create(self, conn: Connection, checkpoint: Checkpoint, *, source: str, target: str) -> None:
        conn.exec_driver_sql(
            f"INSERT INTO {self.ref} (name, spec_hash, source, target, upper_key, last_key, total_rows, rows_done, "
            "chunks, runs, status, execution_id, started_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, NULL, %s, 0, 0, 1, %s, %s, NOW(3), NOW(3))",
            (checkpoint.name, checkpoint.spec_hash, source, target, encode_key(checkpoint.upper_key),
             checkpoint.total_rows, checkpoint.status, checkpoint.execution_id))

    def begin_run(self, conn: Connection, name: str, execution_id: str) -> None:
        conn.exec_driver_sql(f"UPDATE {self.ref} SET runs = runs + 1, execution_id = %s, updated_at = NOW(3) "
                             "WHERE name = %s", (execution_id, name))

    def advance(self, conn: Connection, name: str, last_key: Any, rows: int) -> None:
        conn.exec_driver_sql(f"UPDATE {self.ref} SET last_key = %s, rows_done = rows_done + %s, chunks = chunks + 1, "
                             "updated_at = NOW(3) WHERE name = %s", (encode_key(last_key), rows, name))

    def set_status(self, conn: Connection, name: str, status: str, detail: str | None = None) -> None:
        finished = ", finished_at = NOW(3)" if status == DONE else ""
        conn.exec_driver_sql(f"UPDATE {self.ref} SET status = %s, detail = %s, updated_at = NOW(3){finished} "
                             "WHERE name = %s", (status, detail, name))
