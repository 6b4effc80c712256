"""The in-transaction marker that makes each DML statement run exactly once.

A DML statement and the insert of its marker row commit in one transaction on the target
server; after a crash the marker's presence decides whether the statement happened. The marker
table lives in a schema of the tool's own on the same server (``ft_upgrade`` by default; one InnoDB
transaction spans schemas), so business schemas keep exactly what the scripts create. Rows of
finished executions are removed after a retention period longer than a breakpoint lives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

MARKER_TABLE = "ft_upgrade_statement_marker"

CREATE_MARKER_TABLE = f"""CREATE TABLE IF NOT EXISTS {{schema}}.`{MARKER_TABLE}` (
  marker_key CHAR(64) NOT NULL PRIMARY KEY,
  execution_id VARCHAR(64) NOT NULL,
  step_id VARCHAR(128) NOT NULL,
  sql_file_id CHAR(32) NOT NULL,
  sql_sequence INT NOT NULL,
  sql_content_hash CHAR(64) NOT NULL,
  applied_time TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY idx_marker_execution (execution_id, step_id),
  KEY idx_marker_time (applied_time)
) ENGINE=InnoDB"""

#: MySQL/MariaDB errors meaning "this account may not create that schema or table".
ACCESS_DENIED = {1044, 1045, 1142, 1227, 1410}


def table_exists_sql() -> str:
    return "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"


def index_exists_sql() -> str:
    return ("SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
            "AND INDEX_NAME = %s")


def adopt_legacy_sql(schema: str, legacy_schema: str) -> list[str]:
    """Move the markers an older version kept in a business schema into the tool's own, then drop that table."""
    columns = "execution_id, step_id, sql_file_id, sql_sequence, sql_content_hash, applied_time"
    rekey = ("SHA2(CONCAT_WS('|', execution_id, step_id, sql_file_id, sql_sequence, "  # marker_key(…, database)
             f"{_sql_string(legacy_schema)}), 256)")
    return [f"INSERT IGNORE INTO {quote_schema(schema)}.`{MARKER_TABLE}` (marker_key, {columns}) SELECT {rekey}, "
            f"{columns} FROM {quote_schema(legacy_schema)}.`{MARKER_TABLE}`",
            f"DROP TABLE {quote_schema(legacy_schema)}.`{MARKER_TABLE}`"]


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def step_keys_sql(schema: str, execution_id: str, step_id: str) -> tuple[str, tuple[str, ...]]:
    return (f"SELECT marker_key FROM {quote_schema(schema)}.`{MARKER_TABLE}` WHERE execution_id = %s "
            "AND step_id = %s", (execution_id, step_id))


def expired_keys_sql(schema: str, days: int) -> tuple[str, tuple[int, ...]]:
    return (f"SELECT marker_key FROM {quote_schema(schema)}.`{MARKER_TABLE}` WHERE applied_time < "
            "NOW(6) - INTERVAL %s DAY LIMIT 10000", (int(days),))


def delete_keys_sql(schema: str, count: int) -> str:
    return (f"DELETE FROM {quote_schema(schema)}.`{MARKER_TABLE}` WHERE marker_key IN "
            f"({', '.join(['%s'] * count)})")


def quote_schema(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def marker_key(execution_id: str, step_id: str, file_id: str, sequence: int, database: str) -> str:
    """One statement of one execution on one database (markers of many databases share the tool's schema)."""
    return hashlib.sha256(f"{execution_id}|{step_id}|{file_id}|{sequence}|{database}".encode()).hexdigest()


def _insert_head(schema: str) -> str:
    return (f"INSERT INTO {quote_schema(schema)}.`{MARKER_TABLE}` "
            "(marker_key, execution_id, step_id, sql_file_id, sql_sequence, sql_content_hash) VALUES ")


def insert_marker_sql(schema: str) -> str:
    return _insert_head(schema) + "(%s, %s, %s, %s, %s, %s)"


def insert_markers_sql(schema: str, rows: Sequence[tuple[Any, ...]], escape: Callable[[str], str]) -> str:
    """One multi-row INSERT of markers, as literal SQL.

    A batch's rows share execution, step and file: those are escaped once. Keys and content hashes
    are hex digests and go in as they are (checked: anything else is escaped).
    """
    shared: dict[tuple[str, str, str], str] = {}
    values = []
    for key, execution_id, step_id, file_id, sequence, sha256 in rows:
        ids = (execution_id, step_id, file_id)
        common = shared.get(ids)
        if common is None:
            common = shared[ids] = ",".join(escape(v) for v in ids)
        values.append(f"({_hex_literal(key, escape)},{common},{int(sequence)},{_hex_literal(sha256, escape)})")
    return _insert_head(schema) + ",".join(values)


def _hex_literal(value: str, escape: Callable[[str], str]) -> str:
    return f"'{value}'" if value.isalnum() and value.isascii() else escape(value)


def marker_args(execution_id: str, step_id: str, file_id: str, sequence: int, sha256: str,
                database: str) -> tuple[Any, ...]:
    return (marker_key(execution_id, step_id, file_id, sequence, database), execution_id, step_id, file_id, sequence,
            sha256)


def exists_sql(schema: str) -> str:
    return f"SELECT 1 FROM {quote_schema(schema)}.`{MARKER_TABLE}` WHERE marker_key = %s"
