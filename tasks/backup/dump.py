"""Dump tables from one consistent InnoDB snapshot without blocking writers.

One connection opens ``START TRANSACTION WITH CONSISTENT SNAPSHOT`` (REPEATABLE READ, read only);
inside it every table is streamed with an unbuffered cursor, and ``CHECKSUM TABLE`` is taken in the
same snapshot, so the manifest describes exactly the rows in the file. Plain consistent reads take no
row locks; writers keep committing. Each data file is gzip text, one line per batch of rows written as
SQL value tuples (``(1,'a'),(2,'b')``): the restore prefixes ``INSERT INTO <table> VALUES``.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pymysql.cursors
from sqlalchemy import Engine

from tasks.backup.manifest import TableEntry, ViewEntry, sha256_file
from tasks.backup.schema import SchemaCatalog, quote_ident, read_catalog
from tasks.core.files import Private

BATCH_ROWS = 2000
ProgressFn = Callable[[int, int], None]  # (rows, bytes) just written


@dataclass(frozen=True)
class SnapshotPlan:
    """What to dump from one logical database; empty ``tables`` means every base table."""

    database: str
    tables: tuple[str, ...] = ()


def dump_database(engine: Engine, plan: SnapshotPlan, folder: Path, *, batch_rows: int = BATCH_ROWS,
                  compress_level: int = 1, on_progress: ProgressFn | None = None,
                  views: list[ViewEntry] | None = None, catalogs: list[SchemaCatalog] | None = None,
                  private: Private = Private()) -> list[TableEntry]:
    """Stream the planned tables of one database into ``folder``; returns their manifest entries.

    Each table's triggers go with it; the database's views are appended to ``views`` and its catalog
    (every table, view, trigger, routine and event) to ``catalogs``: a restore drops what is not in it,
    puts the rest back and proves the result against it. Folder and files are private (see :class:`Private`).
    """
    private.mkdir(folder)
    raw = engine.raw_connection()
    try:
        conn: pymysql.Connection = raw.driver_connection  # type: ignore[assignment]
        with conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            cur.execute("SELECT DATABASE()")
            schema = cur.fetchone()[0]
            tables = list(plan.tables) or _base_tables(cur)
            if catalogs is not None:
                catalogs.append(read_catalog(cur, plan.database))
        entries = [_dump_table(conn, plan.database, schema, table, folder, batch_rows, compress_level, on_progress,
                               private) for table in tables]
        if views is not None:
            views += _views(conn, plan.database)
        conn.rollback()
        return entries
    finally:
        raw.close()


def estimated_rows(engine: Engine, tables: Sequence[str]) -> int:
    """InnoDB's estimate, only to size the progress bar."""
    raw = engine.raw_connection()
    try:
        with raw.driver_connection.cursor() as cur:
            cur.execute("SELECT TABLE_NAME, COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES "
                        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'")
            found = dict(cur.fetchall())
        return int(sum(v for k, v in found.items() if not tables or k in tables))
    finally:
        raw.close()


def _base_tables(cur: pymysql.cursors.Cursor) -> list[str]:
    cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                "AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME")
    return [row[0] for row in cur.fetchall()]


def _dump_table(conn: pymysql.Connection, database: str, schema: str, table: str, folder: Path,
                batch_rows: int, level: int, on_progress: ProgressFn | None, private: Private) -> TableEntry:
    with conn.cursor() as cur:
        cur.execute(f"SHOW CREATE TABLE {quote_ident(table)}")
        create_sql = cur.fetchone()[1]
        cur.execute(f"CHECKSUM TABLE {quote_ident(table)}")
        checksum = cur.fetchone()[1]
        cur.execute("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = DATABASE() "
                    "AND EVENT_OBJECT_TABLE = %s ORDER BY ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER", (table,))
        triggers = []
        for (name,) in cur.fetchall():
            cur.execute(f"SHOW CREATE TRIGGER {quote_ident(name)}")
            triggers.append(cur.fetchone()[2])
    path = folder / f"{database}.{table}.sql.gz"
    rows = 0
    escape = conn.escape
    with private.open(path) as raw, gzip.open(raw, "wt", encoding="utf-8", compresslevel=level) as out, \
            conn.cursor(pymysql.cursors.SSCursor) as stream:
        stream.execute(f"SELECT * FROM {quote_ident(table)}")
        while batch := stream.fetchmany(batch_rows):
            line = ",".join("(" + ",".join([escape(v) for v in row]) + ")" for row in batch)
            out.write(line)
            out.write("\n")
            rows += len(batch)
            if on_progress:
                on_progress(len(batch), len(line) + 1)
    return TableEntry(database=database, schema=schema, table=table, rows=rows,
                      checksum=None if checksum is None else int(checksum), create_sql=create_sql,
                      file=path.name, sha256=sha256_file(path), bytes=path.stat().st_size, triggers=tuple(triggers))


def _views(conn: pymysql.Connection, database: str) -> list[ViewEntry]:
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() "
                    "ORDER BY TABLE_NAME")
        names = [row[0] for row in cur.fetchall()]
        found = []
        for name in names:
            cur.execute(f"SHOW CREATE VIEW {quote_ident(name)}")
            found.append(ViewEntry(database=database, view=name, create_sql=cur.fetchone()[1]))
    return found
