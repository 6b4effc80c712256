"""A MODIFY killed while it waited for a metadata lock is not taken as applied (issue 23, item 2).

The column's type already matched before the ALTER; only its nullability and default were to change. The
crashed run's statement is killed on the server (it never ran), the resume must send it again, and the
database ends as the plain ``mariadb`` client leaves it.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tasks.test_sql_engine import ledger, run_step, write
from tests.tasks.test_sql_hard_cases import admin, harness, kill_9, schema_of, server_thread_running, sql

pytestmark = pytest.mark.mariadb

SETUP = ["CREATE TABLE t (id INT PRIMARY KEY, c VARCHAR(50) NULL)", "INSERT INTO t VALUES (1, NULL), (2, 'x')"]
SCRIPT = ("UPDATE t SET c = '' WHERE c IS NULL;\n"
          "ALTER TABLE t MODIFY c VARCHAR(50) NOT NULL DEFAULT '';\n"
          "INSERT INTO t (id) VALUES (3);\n")


@pytest.fixture
def client_database() -> Iterator[str]:
    """A database for the plain client's run of the same history."""
    name = f"ft_test_client_{uuid.uuid4().hex[:8]}"
    with admin().cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield name
    finally:
        with admin().cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def catalog_and_rows(schema: str) -> list[object]:
    """What a DBA compares: the table's definition as the server shows it, its checksum and its rows."""
    conn = admin()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SHOW CREATE TABLE `{schema}`.t")
            create = cur.fetchone()[1]
            cur.execute(f"CHECKSUM TABLE `{schema}`.t")
            checksum = cur.fetchone()[1]
            cur.execute(f"SELECT * FROM `{schema}`.t ORDER BY id")
            return [create, checksum, cur.fetchall()]
    finally:
        conn.close()


def test_a_modify_killed_waiting_for_its_lock_is_sent_again_and_ends_as_under_the_client(
        tmp_path: Path, mariadb_database: str, client_database: str) -> None:
    db = schema_of(mariadb_database)
    for statement in SETUP:
        sql(mariadb_database, statement)
    write(tmp_path / "sql", "m.sql", SCRIPT)
    blocker = admin()
    with blocker.cursor() as cur:
        cur.execute("START TRANSACTION")
        cur.execute(f"SELECT * FROM `{db}`.t")  # the table's metadata lock, held until COMMIT
    proc = harness(tmp_path, mariadb_database, "EXEC_T", "m.sql")
    thread = server_thread_running("ALTER TABLE t MODIFY c")
    kill_9(proc)
    with blocker.cursor() as cur:
        cur.execute(f"KILL {thread}")  # the server aborts the waiting ALTER: it never ran
        cur.execute("COMMIT")
    blocker.close()
    assert [r["status"] for r in ledger(tmp_path)][1] == "RUNNING"
    run_step(tmp_path, {"ft_db": mariadb_database}, ["m.sql"])
    rows = ledger(tmp_path)
    assert rows[1]["status"] == "SUCCESS" and "already applied" not in (rows[1]["execution_result"] or "")
    # the plain client, same history
    setup = ";\n".join(SETUP) + ";\n"
    subprocess.run(["mariadb", "-h127.0.0.1", "-uroot", client_database], input=setup + SCRIPT, text=True,
                   check=True)
    assert catalog_and_rows(db) == catalog_and_rows(client_database)
    assert catalog_and_rows(db)[2] == ((1, ""), (2, "x"), (3, ""))
