"""The plain ``mariadb`` client as the reference: what it leaves in a database, compared with what the tool left.

    snap = client_result([path1, path2], "i23_client_x", charset="utf8mb4")   # fresh database, client run
    assert_same(snapshot(tool_url), snap)                                       # catalog and rows

A snapshot holds the catalog (tables, columns with their full definitions, indexes, foreign keys, checks,
triggers, views, routines with their stored ``character_set_client``/``collation_connection``, events) and
the rows (``CHECKSUM TABLE`` of every base table, plus an ordered dump of small tables for a readable diff).
The database's own name is replaced by ``<db>`` everywhere, so two databases compare by content.
"""

from __future__ import annotations

import difflib
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
from sqlalchemy.engine import make_url

from tasks.core.settings import Settings
from tests.conftest import MARIADB_ROOT

SERVER = make_url(MARIADB_ROOT)
#: Tables with more rows are compared by checksum only (the dump is for reading a diff, not for proof).
#: the tool's connection charset by default (FT_UPGRADE_CLIENT_CHARSET): the client runs at the same one
CLIENT_CHARSET: str = Settings.model_fields["client_charset"].default
DUMP_LIMIT = 2000

CATALOG: dict[str, str] = {
    "tables": "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, ROW_FORMAT, TABLE_COLLATION, CREATE_OPTIONS, TABLE_COMMENT, "
              "AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s ORDER BY 1",
    "columns": "SELECT TABLE_NAME, ORDINAL_POSITION, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, "
               "CHARACTER_SET_NAME, COLLATION_NAME, COLUMN_KEY, EXTRA, COLUMN_COMMENT, IS_GENERATED, "
               "GENERATION_EXPRESSION FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s ORDER BY 1, 2",
    "indexes": "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE, SUB_PART, COLLATION, "
               "INDEX_TYPE, INDEX_COMMENT FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s "
               "ORDER BY 1, 2, 3",
    "foreign_keys": "SELECT r.TABLE_NAME, r.CONSTRAINT_NAME, k.ORDINAL_POSITION, k.COLUMN_NAME, "
                    "r.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, r.UPDATE_RULE, r.DELETE_RULE "
                    "FROM information_schema.REFERENTIAL_CONSTRAINTS r JOIN information_schema.KEY_COLUMN_USAGE k "
                    "ON k.CONSTRAINT_SCHEMA = r.CONSTRAINT_SCHEMA AND k.CONSTRAINT_NAME = r.CONSTRAINT_NAME "
                    "AND k.TABLE_NAME = r.TABLE_NAME WHERE r.CONSTRAINT_SCHEMA = %s ORDER BY 1, 2, 3",
    "checks": "SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
              "WHERE CONSTRAINT_SCHEMA = %s ORDER BY 1, 2",
    "triggers": "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER, "
                "ACTION_STATEMENT, SQL_MODE, DEFINER, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, "
                "DATABASE_COLLATION FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s ORDER BY 1",
    "views": "SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, IS_UPDATABLE, DEFINER, SECURITY_TYPE, "
             "CHARACTER_SET_CLIENT, COLLATION_CONNECTION, ALGORITHM FROM information_schema.VIEWS "
             "WHERE TABLE_SCHEMA = %s ORDER BY 1",
    "routines": "SELECT ROUTINE_NAME, ROUTINE_TYPE, DTD_IDENTIFIER, ROUTINE_BODY, ROUTINE_DEFINITION, "
                "IS_DETERMINISTIC, SQL_DATA_ACCESS, SECURITY_TYPE, SQL_MODE, ROUTINE_COMMENT, DEFINER, "
                "CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DATABASE_COLLATION FROM information_schema.ROUTINES "
                "WHERE ROUTINE_SCHEMA = %s ORDER BY 1, 2",
    "parameters": "SELECT SPECIFIC_NAME, ROUTINE_TYPE, ORDINAL_POSITION, PARAMETER_MODE, PARAMETER_NAME, "
                  "DTD_IDENTIFIER, CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.PARAMETERS "
                  "WHERE SPECIFIC_SCHEMA = %s ORDER BY 1, 2, 3",
    "events": "SELECT EVENT_NAME, DEFINER, EVENT_BODY, EVENT_DEFINITION, EVENT_TYPE, INTERVAL_VALUE, "
              "INTERVAL_FIELD, STATUS, ON_COMPLETION, SQL_MODE, EVENT_COMMENT, CHARACTER_SET_CLIENT, "
              "COLLATION_CONNECTION, DATABASE_COLLATION FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s "
              "ORDER BY 1",
}


@dataclass(frozen=True)
class Snapshot:
    """A database's catalog and rows, its own name replaced by ``<db>``."""

    database: str
    catalog: dict[str, list[tuple[Any, ...]]]
    checksums: dict[str, int | None]
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)

    def table(self, name: str) -> list[tuple[Any, ...]]:
        """The ordered rows of one small table."""
        return self.rows[name]


def connect(database: str | None = None) -> pymysql.Connection:
    return pymysql.connect(host=SERVER.host or "127.0.0.1", port=SERVER.port or 3306,
                           user=SERVER.username or "root", password=SERVER.password or "",
                           database=database, charset="utf8mb4", autocommit=True)


def database_of(url_or_database: str) -> str:
    """The schema name of a SQLAlchemy URL, or the name itself."""
    return make_url(url_or_database).database if "://" in url_or_database else url_or_database


def snapshot(url_or_database: str) -> Snapshot:
    """Catalog and rows of one database on the test server."""
    name = database_of(url_or_database)
    conn = connect(name)
    try:
        with conn.cursor() as cur:
            catalog = {}
            for section, query in CATALOG.items():
                cur.execute(query, (name,))
                catalog[section] = [_anonymous(row, name) for row in cur.fetchall()]
            tables = [row[0] for row in catalog["tables"] if row[1] == "BASE TABLE"]
            checksums: dict[str, int | None] = {}
            rows: dict[str, list[tuple[Any, ...]]] = {}
            for table in tables:
                cur.execute(f"CHECKSUM TABLE `{table}`")
                checksums[table] = cur.fetchone()[1]
                cur.execute(f"SELECT COUNT(*) FROM `{table}`")
                if cur.fetchone()[0] <= DUMP_LIMIT:
                    width = len([c for c in catalog["columns"] if c[0] == table])
                    order = ", ".join(str(i) for i in range(1, width + 1))
                    cur.execute(f"SELECT * FROM `{table}` ORDER BY {order}")
                    rows[table] = [tuple(row) for row in cur.fetchall()]
        return Snapshot(name, catalog, checksums, rows)
    finally:
        conn.close()


def _anonymous(row: tuple[Any, ...], name: str) -> tuple[Any, ...]:
    return tuple(value.replace(f"`{name}`", "`<db>`").replace(name, "<db>") if isinstance(value, str) else value
                 for value in row)


def run_client(files: Sequence[Path], database: str, charset: str = CLIENT_CHARSET, *,
               force: bool = False) -> list[int]:
    """Each file through ``mariadb DB < file`` (run in the file's folder, as a DBA would); their exit codes.

    The client stops a file at its first error, like the tool; the next file still runs (a DBA's next command).
    ``force`` (``--force``): go on after errors, in the same session — a failed statement, then its fix.
    """
    password = [f"--password={SERVER.password}"] if SERVER.password else []
    command = ["mariadb", f"--host={SERVER.host or '127.0.0.1'}", f"--port={SERVER.port or 3306}",
               f"--user={SERVER.username or 'root'}", *password, f"--default-character-set={charset}",
               *(["--force"] if force else []), database]
    codes = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYSQL")}
    for path in files:
        with open(path, "rb") as stdin:
            done = subprocess.run(command, stdin=stdin, cwd=Path(path).parent, capture_output=True, env=env,
                                  timeout=600)
        codes.append(done.returncode)
    return codes


def create_database(database: str, charset: str = "utf8mb4") -> None:
    conn = connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET {charset}")
    finally:
        conn.close()


def drop_database(database: str) -> None:
    conn = connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
    finally:
        conn.close()


def client_result(files: Sequence[Path], database: str, charset: str = CLIENT_CHARSET, *,
                  force: bool = False) -> Snapshot:
    """Run ``files`` with the plain client into a new database ``database`` (drop it yourself, or use
    ``client_database``) and snapshot it."""
    create_database(database)
    run_client(files, database, charset, force=force)
    return snapshot(database)


@contextmanager
def client_database(prefix: str = "ftcli") -> Iterator[str]:
    """A fresh name for the client's database; the database is dropped after the block."""
    import uuid

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        drop_database(name)


def differences(tool: Snapshot, client: Snapshot) -> list[str]:
    """Readable differences, one block per catalog section or table; empty when the two are the same."""
    out: list[str] = []
    for section in CATALOG:
        if tool.catalog[section] != client.catalog[section]:
            out.append(_diff(f"catalog {section}", tool.catalog[section], client.catalog[section]))
    for table in sorted(set(tool.checksums) | set(client.checksums)):
        if table not in tool.checksums or table not in client.checksums:
            continue  # already a difference of catalog tables
        if tool.checksums[table] != client.checksums[table] or tool.rows.get(table) != client.rows.get(table):
            if table in tool.rows and table in client.rows:
                out.append(_diff(f"rows of {table}", tool.rows[table], client.rows[table]))
            else:
                out.append(f"rows of {table}: CHECKSUM tool {tool.checksums[table]} != client "
                           f"{client.checksums[table]} (too many rows to dump)")
    return out


def _diff(title: str, tool: list[tuple[Any, ...]], client: list[tuple[Any, ...]]) -> str:
    lines = difflib.unified_diff([repr(r) for r in client], [repr(r) for r in tool], "client", "tool", lineterm="", n=1)
    return f"--- {title}\n" + "\n".join(list(lines)[2:])


def assert_same(tool: Snapshot, client: Snapshot) -> None:
    """Fail with a readable diff (client lines ``-``, tool lines ``+``) unless catalog and rows are equal."""
    found = differences(tool, client)
    assert not found, "the tool's database differs from the client's:\n" + "\n".join(found)
