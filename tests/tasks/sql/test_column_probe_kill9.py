"""A MODIFY killed while it waited for a metadata lock is not taken as applied (issue 23, item 2).

The column's type already matched before the ALTER; only its nullability and default were to change. The
crashed run's statement is killed on the server (it never ran), the resume must send it again, and the
database ends as the plain ``mariadb`` client leaves it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.client_compare import assert_same, client_database, client_result, snapshot
from tests.tasks.sql.test_executor import ledger, run_step, write
from tests.tasks.sql.test_inflight import admin, harness, kill_9, schema_of, server_thread_running, sql

pytestmark = pytest.mark.mariadb

SETUP = ["CREATE TABLE t (id INT PRIMARY KEY, c VARCHAR(50) NULL)", "INSERT INTO t VALUES (1, NULL), (2, 'x')"]
SCRIPT = ("UPDATE t SET c = '' WHERE c IS NULL;\n"
          "ALTER TABLE t MODIFY c VARCHAR(50) NOT NULL DEFAULT '';\n"
          "INSERT INTO t (id) VALUES (3);\n")


def test_a_modify_killed_waiting_for_its_lock_is_sent_again_and_ends_as_under_the_client(
        tmp_path: Path, mariadb_database: str) -> None:
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
    setup = write(tmp_path / "client", "setup.sql", ";\n".join(SETUP) + ";\n")
    script = write(tmp_path / "client", "m.sql", SCRIPT)
    with client_database("i23b_client") as name:  # the plain client, same history, same character set
        client = client_result([tmp_path / "client" / setup, tmp_path / "client" / script], name, "utf8mb3")
    assert_same(snapshot(mariadb_database), client)
    assert client.table("t") == [(1, ""), (2, "x"), (3, "")]
