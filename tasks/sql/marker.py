"""The in-transaction marker that makes each DML statement run exactly once.

A DML statement and the insert of its marker row commit in one transaction on the target
database; after a crash the marker's presence decides whether the statement happened. The marker
table lives in the logical database's own schema (``ft_upgrade_statement_marker``).
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
  KEY idx_marker_execution (execution_id, step_id)
) ENGINE=InnoDB"""


def quote_schema(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def marker_key(execution_id: str, step_id: str, file_id: str, sequence: int) -> str:
    return hashlib.sha256(f"{execution_id}|{step_id}|{file_id}|{sequence}".encode()).hexdigest()


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


def marker_args(execution_id: str, step_id: str, file_id: str, sequence: int, sha256: str) -> tuple[Any, ...]:
    return (marker_key(execution_id, step_id, file_id, sequence), execution_id, step_id, file_id, sequence, sha256)


def exists_sql(schema: str) -> str:
    return f"SELECT 1 FROM {quote_schema(schema)}.`{MARKER_TABLE}` WHERE marker_key = %s"
