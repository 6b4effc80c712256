"""Static data files of a package (CSV with a header row, or a JSON list of objects) into a table.

The load runs inside a transaction the caller commits only after the package folder was swapped in,
so a failure anywhere leaves the table as it was. ``replace`` deletes the table's rows first in the
same transaction: readers see the old rows until the commit.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # sqlalchemy is imported by load_rows(): the step's parameters need only IDENTIFIER
    from sqlalchemy import Connection

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,63}$")
NULL_MARK = r"\N"
BATCH = 1000


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
