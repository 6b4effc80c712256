"""What the server's catalog says about the tables: key type, unique index, target column types."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from tasks.migration.sql import cast_type

INTEGER_TYPES = frozenset({"tinyint", "smallint", "mediumint", "int", "integer", "bigint"})
STRING_TYPES = frozenset({"char", "varchar"})


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str
    cast: str


def columns(conn: Connection, schema: str, table: str) -> dict[str, Column]:
    """Columns of a table (empty when it does not exist), with the CAST type used by verification."""
    rows = conn.exec_driver_sql(
        "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION "
        "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        (schema, table)).all()
    return {r[0]: Column(r[0], r[1].lower(), cast_type(r[1], r[2], r[3], r[4], r[5])) for r in rows}


def has_unique_index_on(conn: Connection, schema: str, table: str, column: str) -> bool:
    """True when a PRIMARY or UNIQUE index consists of exactly ``column``."""
    row = conn.exec_driver_sql(
        "SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND NON_UNIQUE = 0 "
        "GROUP BY INDEX_NAME HAVING COUNT(*) = 1 AND MAX(COLUMN_NAME) = %s", (schema, table, column)).first()
    return row is not None


def source_problems(conn: Connection, schema: str, table: str, key: str) -> list[str]:
    """Why the source cannot be copied in key order (empty list: it can)."""
    found = columns(conn, schema, table)
    if not found:
        return [f"source table {schema}.{table} does not exist"]
    if key not in found:
        return [f"source table {schema}.{table} has no column {key!r}"]
    problems = []
    if found[key].data_type not in INTEGER_TYPES | STRING_TYPES:
        problems.append(f"key {key!r} is {found[key].data_type}; an integer or (var)char key is needed")
    if not has_unique_index_on(conn, schema, table, key):
        problems.append(f"key {key!r} of {schema}.{table} needs a PRIMARY KEY or UNIQUE index of its own")
    return problems


def target_problems(found: dict[str, Column], schema: str, table: str, wanted: list[str]) -> list[str]:
    """Why the target cannot take the mapped columns (empty list: it can)."""
    if not found:
        return [f"target table {schema}.{table} does not exist"]
    missing = [c for c in wanted if c not in found]
    return [f"target table {schema}.{table} has no column(s) {', '.join(missing)}"] if missing else []
