"""Static data files of a package (CSV with a header row, or a JSON list of objects) into a table.

The load runs inside a transaction the caller commits only after the package folder was swapped in,
so a failure anywhere leaves the table as it was. ``replace`` deletes the table's rows first in the
same transaction: readers see the old rows until the commit.

Each load is recorded in ``ft_upgrade_package_load`` (in the tool's own schema on the same server,
like the SQL statement markers) by an insert in the load's own transaction: the rows and their record
commit together or not at all. An ``append`` record is keyed by package, version, schema, table and
data file, so it happens exactly once per package version; a ``replace`` record also by the install,
so a new install of the package repeats it (it is idempotent) but a rerun finishing the same install
does not. Records are only ever inserted under a new key and read without locks: loads of several
databases on one server, open at the same time, never wait for each other on this table.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.sql.marker import ACCESS_DENIED, quote_schema, table_exists_sql  # the markers' schema rules

if TYPE_CHECKING:  # sqlalchemy is imported by load_rows(): the step's parameters need only IDENTIFIER
    from sqlalchemy import Connection

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,63}$")
NULL_MARK = r"\N"
BATCH = 1000
LOAD_TABLE = "ft_upgrade_package_load"
CREATE_LOAD_TABLE = f"""CREATE TABLE IF NOT EXISTS {{schema}}.`{LOAD_TABLE}` (
  load_key CHAR(64) NOT NULL PRIMARY KEY,
  package VARCHAR(255) NOT NULL,
  version VARCHAR(64) NOT NULL,
  table_schema VARCHAR(64) NOT NULL,
  table_name VARCHAR(64) NOT NULL,
  data_file VARCHAR(512) NOT NULL,
  mode VARCHAR(10) NOT NULL,
  install_id CHAR(32) NOT NULL,
  data_sha256 CHAR(64) NOT NULL,
  row_count INT NOT NULL,
  loaded_time TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY idx_package_load_schema (table_schema)
) ENGINE=InnoDB"""


@dataclass(frozen=True)
class LoadRecord:
    """One data file of one package version loaded into one table (a row of ``ft_upgrade_package_load``)."""

    package: str
    version: str
    table_schema: str
    table_name: str
    data_file: str
    mode: str
    install_id: str
    data_sha256: str

    @property
    def key(self) -> str:
        """Per version for ``append`` (exactly once), per install for ``replace`` (once per install)."""
        parts = [self.package, self.version, self.table_schema, self.table_name, self.data_file]
        if self.mode != "append":
            parts += [self.mode, self.install_id]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()


def ensure_load_table(conn: Connection, schema: str) -> str:
    """Create the record table if missing (DDL: call before the load's transaction); the schema it is in.

    Falls back to the connection's own schema if the account may not create ``schema``.
    """
    from sqlalchemy.exc import DBAPIError

    try:
        if not _table_exists(conn, schema, LOAD_TABLE):
            conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS {quote_schema(schema)}")
            conn.exec_driver_sql(CREATE_LOAD_TABLE.format(schema=quote_schema(schema)))
        conn.commit()
        return schema
    except DBAPIError as exc:
        conn.rollback()
        code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
        business = current_schema(conn)
        if code not in ACCESS_DENIED or not business:
            raise
    conn.exec_driver_sql(CREATE_LOAD_TABLE.format(schema=quote_schema(business)))
    conn.commit()
    return business


def _table_exists(conn: Connection, schema: str, table_name: str) -> bool:
    return bool(conn.exec_driver_sql(table_exists_sql(), (schema, table_name)).scalar())


def current_schema(conn: Connection) -> str:
    from sqlalchemy import text

    return str(conn.execute(text("SELECT DATABASE()")).scalar() or "")


def recorded_load(conn: Connection, schema: str, key: str) -> str | None:
    """The data file SHA-256 of a recorded load, or None (a plain consistent read: it takes no lock)."""
    from sqlalchemy import text

    row = conn.execute(text(f"SELECT data_sha256 FROM {quote_schema(schema)}.`{LOAD_TABLE}` WHERE load_key = :key"),
                       {"key": key}).first()
    return str(row[0]) if row else None


def record_load(conn: Connection, schema: str, record: LoadRecord, rows: int) -> None:
    """Record ``record`` in the caller's transaction, so it commits with the rows it describes.

    A plain insert under a new key: if a concurrent run recorded the same load first, it fails with a
    duplicate key and this transaction (rows included) rolls back, so the rows are still loaded once.
    """
    from sqlalchemy import text

    conn.execute(text(
        f"INSERT INTO {quote_schema(schema)}.`{LOAD_TABLE}` (load_key, package, version, table_schema, table_name, "
        "data_file, mode, install_id, data_sha256, row_count) VALUES (:key, :package, :version, :table_schema, "
        ":table_name, :data_file, :mode, :install_id, :data_sha256, :rows)"),
        {"key": record.key, "package": record.package, "version": record.version,
         "table_schema": record.table_schema, "table_name": record.table_name, "data_file": record.data_file,
         "mode": record.mode, "install_id": record.install_id, "data_sha256": record.data_sha256, "rows": rows})


def is_transactional(conn: Connection, table_name: str) -> bool:
    """Whether the table's engine rolls back (InnoDB does, MyISAM and Aria do not); True if it is missing."""
    from sqlalchemy import text

    row = conn.execute(text(
        "SELECT e.TRANSACTIONS FROM information_schema.TABLES t JOIN information_schema.ENGINES e "
        "ON e.ENGINE = t.ENGINE WHERE t.TABLE_SCHEMA = DATABASE() AND t.TABLE_NAME = :name"),
        {"name": table_name}).first()
    return row is None or str(row[0]).upper() == "YES"


def read_rows(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and rows of a ``.csv`` (``\\N`` is NULL) or ``.json`` (list of objects) file.

    Raises:
        ValueError: unsupported type, no header, an object that is not flat, mismatched columns.
    """
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        columns = list(reader.fieldnames or [])
        if not columns:
            raise ValueError(f"{path.name}: no header row")
        rows = []
        for number, row in enumerate(reader, start=2):
            if None in row or any(v is None for v in row.values()):
                raise ValueError(f"{path.name}:{number}: {len(columns)} columns expected")
            rows.append({k: (None if v == NULL_MARK else v) for k, v in row.items()})
        return columns, rows
    if path.suffix.lower() == ".json":
        data = json.loads(text)
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ValueError(f"{path.name}: a JSON data file must be a list of objects")
        columns = sorted({k for r in data for k in r})
        for i, r in enumerate(data):
            if any(isinstance(v, dict | list) for v in r.values()):
                raise ValueError(f"{path.name}: row {i} has a nested value")
        return columns, [{c: r.get(c) for c in columns} for r in data]
    raise ValueError(f"{path.name}: only .csv and .json data files can be loaded into a table")


def load_rows(conn: Connection, table_name: str, columns: list[str], rows: list[dict[str, Any]],
              *, replace: bool) -> int:
    """Insert ``rows`` into ``table_name`` on ``conn`` (inside the caller's transaction).

    Raises:
        ValueError: a bad identifier, or columns the table does not have.
    """
    from sqlalchemy import column, delete, insert, inspect, table

    for name in (table_name, *columns):
        if not IDENTIFIER.match(name):
            raise ValueError(f"{name!r} is not a plain SQL identifier")
    existing = {c["name"].lower() for c in inspect(conn).get_columns(table_name)}
    unknown = [c for c in columns if c.lower() not in existing]
    if unknown:
        raise ValueError(f"table {table_name} has no column(s) {', '.join(unknown)}")
    target = table(table_name, *[column(c) for c in columns])
    if replace:
        conn.execute(delete(target))
    for start in range(0, len(rows), BATCH):
        conn.execute(insert(target), rows[start:start + BATCH])
    return len(rows)
