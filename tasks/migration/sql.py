"""SQL text for a migration, built from a task and schema names. Pure: strings in, strings out.

Values (keys, limits) are driver parameters (``%s``); configured expressions are SQL text, so every
``%`` in them is doubled for the driver's ``%`` formatting. Identifiers are validated by the spec
and backquoted here.
"""

from __future__ import annotations

from collections.abc import Mapping

from tasks.migration.spec import MigrationTask

CHECKPOINT_TABLE = "ft_upgrade_migration_checkpoint"


def q(identifier: str) -> str:
    """Backquote an identifier (the spec already refused anything but letters, digits, _ and $)."""
    return "`" + identifier.replace("`", "``") + "`"


def table_ref(schema: str, table: str) -> str:
    return f"{q(schema)}.{q(table)}"


def literal_sql(text: str) -> str:
    """Configured SQL text made safe for ``cursor.execute(sql, params)``: ``%`` → ``%%``."""
    return text.replace("%", "%%")


def key_range(column: str, *, has_lower: bool) -> str:
    """``column > %s AND column <= %s`` (lower bound exclusive, upper inclusive); no lower at the start."""
    upper = f"{column} <= %s"
    return f"{column} > %s AND {upper}" if has_lower else upper


def _where(task: MigrationTask, *, has_lower: bool) -> str:
    where = key_range(f"src.{q(task.key)}", has_lower=has_lower)
    if task.condition:
        where += f" AND ({literal_sql(task.condition)})"
    return where


def boundary_sql(task: MigrationTask, source: str, *, has_lower: bool) -> str:
    """The key ending a chunk of N keys: params (lower?, upper, N - 1). Index-only; ignores the condition."""
    key = f"src.{q(task.key)}"
    return (f"SELECT {key} FROM {source} AS src WHERE {key_range(key, has_lower=has_lower)} "
            f"ORDER BY {key} LIMIT 1 OFFSET %s")


def insert_select_sql(task: MigrationTask, source: str, target: str, *, has_lower: bool) -> str:
    """Copy one key range on one server: params (lower?, upper)."""
    mapping = task.mapping
    columns = ", ".join(q(c) for c in mapping)
    expressions = ", ".join(literal_sql(e) for e in mapping.values())
    return (f"INSERT INTO {target} ({columns}) SELECT {expressions} FROM {source} AS src "
            f"WHERE {_where(task, has_lower=has_lower)}")


def fetch_sql(task: MigrationTask, source: str, *, has_lower: bool) -> str:
    """Read the next transformed rows, key first: params (lower?, upper, limit)."""
    expressions = ", ".join(literal_sql(e) for e in task.mapping.values())
    return (f"SELECT {expressions} FROM {source} AS src WHERE {_where(task, has_lower=has_lower)} "
            f"ORDER BY src.{q(task.key)} LIMIT %s")


def insert_values_sql(task: MigrationTask, target: str) -> str:
    """Write fetched rows (one ``%s`` per column; the driver batches ``executemany`` into one INSERT)."""
    mapping = task.mapping
    return (f"INSERT INTO {target} ({', '.join(q(c) for c in mapping)}) "
            f"VALUES ({', '.join(['%s'] * len(mapping))})")


def bounds_sql(task: MigrationTask, source: str) -> str:
    """Upper end of the key range this migration covers (fixed when it starts)."""
    return f"SELECT MAX(src.{q(task.key)}) FROM {source} AS src"


def count_sql(task: MigrationTask, source: str) -> str:
    """Rows to copy at the start: params (upper,)."""
    return f"SELECT COUNT(*) FROM {source} AS src WHERE {_where(task, has_lower=False)}"


# ---- verification ---------------------------------------------------------------------------------------

def cast_type(data_type: str, column_type: str, numeric_precision: int | None, numeric_scale: int | None,
              datetime_precision: int | None) -> str:
    """The ``CAST`` target under which a stored target value and a source expression compare equal."""
    t = data_type.lower()
    if t in ("tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year", "bit"):
        return "UNSIGNED" if "unsigned" in column_type.lower() or t == "bit" else "SIGNED"
    if t in ("decimal", "numeric"):
        return f"DECIMAL({numeric_precision or 10},{numeric_scale or 0})"
    if t == "float":
        return "FLOAT"
    if t in ("double", "real"):
        return "DOUBLE"
    if t == "date":
        return "DATE"
    if t in ("datetime", "timestamp"):
        return f"DATETIME({datetime_precision or 0})"
    if t == "time":
        return f"TIME({datetime_precision or 0})"
    if t in ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"):
        return "BINARY"
    return "CHAR"


def _row_crc(values: list[str]) -> str:
    """CRC32 of the row's values and its NULL bitmap (CONCAT_WS skips NULLs, the bitmap tells them apart)."""
    nulls = ", ".join(f"{v} IS NULL" for v in values)
    return f"CRC32(CONCAT_WS('|', {', '.join(values)}, CONCAT({nulls})))"


def _checksum_select(row_crc: str) -> str:
    return f"COUNT(*), COALESCE(SUM({row_crc}), 0), COALESCE(BIT_XOR({row_crc}), 0)"


def source_checksum_sql(task: MigrationTask, source: str, casts: Mapping[str, str], *, has_lower: bool) -> str:
    """(count, sum, xor) of the transformed source rows in a key range: params (lower?, upper)."""
    values = [f"CAST(({literal_sql(e)}) AS {casts[c]})" for c, e in task.mapping.items()]
    return f"SELECT {_checksum_select(_row_crc(values))} FROM {source} AS src WHERE {_where(task, has_lower=has_lower)}"


def target_checksum_sql(task: MigrationTask, target: str, casts: Mapping[str, str], *, has_lower: bool) -> str:
    """(count, sum, xor) of the target rows in the same key range: params (lower?, upper)."""
    values = [f"CAST(tgt.{q(c)} AS {casts[c]})" for c in task.mapping]
    where = key_range(f"tgt.{q(task.target_key_column)}", has_lower=has_lower)
    return f"SELECT {_checksum_select(_row_crc(values))} FROM {target} AS tgt WHERE {where}"


# ---- checkpoint -----------------------------------------------------------------------------------------

def checkpoint_ddl(schema: str) -> str:
    return f"""CREATE TABLE IF NOT EXISTS {table_ref(schema, CHECKPOINT_TABLE)} (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    spec_hash CHAR(64) NOT NULL,
    source VARCHAR(255) NOT NULL,
    target VARCHAR(255) NOT NULL,
    upper_key TEXT NULL COMMENT 'JSON; end of the key range, fixed at the start',
    last_key TEXT NULL COMMENT 'JSON; last key committed, NULL before the first chunk',
    total_rows BIGINT NOT NULL DEFAULT 0,
    rows_done BIGINT NOT NULL DEFAULT 0,
    chunks BIGINT NOT NULL DEFAULT 0,
    runs INT NOT NULL DEFAULT 1,
    status VARCHAR(16) NOT NULL,
    execution_id VARCHAR(64) NOT NULL DEFAULT '',
    started_at DATETIME(3) NOT NULL,
    updated_at DATETIME(3) NOT NULL,
    finished_at DATETIME(3) NULL,
    detail TEXT NULL
) ENGINE=InnoDB COMMENT='ft-upgrade async migration checkpoints (one row per task)'"""
