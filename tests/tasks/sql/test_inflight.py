"""The hard cases of real upgrade scripts, one test per case, on the real MariaDB.

Never skip, never repeat: MariaDB's general log is the witness of what was sent and how often. Where a
case is about a crash, the run is a subprocess killed with SIGKILL while its statement is on the server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from sqlalchemy import create_engine, text, update
from typer.testing import CliRunner

from flows.cli import app
from tasks.core.errors import StepFailed
from tasks.core.masking import mask_sql
from tasks.store import schema
from tasks.store.breakpoints import OperatorDecision, active_breakpoint, record_decision
from tests.general_log import GeneralLog, general_log
from tests.tasks.sql.harness import launch
from tests.tasks.sql.test_executor import ledger, metadata_engine, run_step, write

pytestmark = pytest.mark.mariadb


@pytest.fixture
def log() -> Iterator[GeneralLog]:
    with general_log() as witness:
        yield witness


def sql(url: str, statement: str) -> list[tuple[Any, ...]]:
    """Run one statement and commit; its rows, if it returns any."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement))
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def admin() -> pymysql.Connection:
    return pymysql.connect(host="127.0.0.1", user="root", autocommit=True)


def schema_of(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?")[0]


def set_running(tmp_path: Path, line: int, **values: Any) -> None:
    """What a crash leaves: the statement at ``line`` marked RUNNING (its outcome unknown to the ledger)."""
    with metadata_engine(tmp_path).begin() as conn:
        conn.execute(update(schema.sql_execution_record).where(
            schema.sql_execution_record.c.sql_line_number == line).values(status="RUNNING", **values))


def decide(tmp_path: Path, inflight: str, execution: str = "EXEC_T", notes: str = "checked by hand") -> None:
    assert record_decision(metadata_engine(tmp_path), execution, OperatorDecision(by="ops", notes=notes,
                                                                                   inflight=inflight))  # type: ignore


def harness(tmp_path: Path, url: str, execution: str, *files: str) -> subprocess.Popen[str]:
    return launch(tmp_path / "sql", tmp_path / "home", execution, files, {"ft_db": url}, "--step", "step_under_test")


def server_thread_running(fragment: str, timeout: float = 60) -> int:
    """The id of the server thread running a statement that contains ``fragment`` (waits for it)."""
    conn = admin()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with conn.cursor() as cur:
                cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE %s AND ID <> "
                            "CONNECTION_ID()", (f"%{fragment}%",))
                row = cur.fetchone()
            if row:
                return int(row[0])
            time.sleep(0.05)
    finally:
        conn.close()
    raise AssertionError(f"no server thread ran {fragment!r}")


def kill_9(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def wait_gone(thread: int, timeout: float = 60) -> None:
    """Until the server has finished with a dead client's thread (and rolled its transaction back)."""
    conn = admin()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with conn.cursor() as cur:
                cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s", (thread,))
                if cur.fetchone()[0] == 0:
                    return
            time.sleep(0.05)
    finally:
        conn.close()
    raise AssertionError(f"server thread {thread} still there")


# 1. CREATE OR REPLACE ------------------------------------------------------------------------------


def test_or_replace_found_running_is_decided_by_creation_time_not_by_existence(
        tmp_path: Path, mariadb_database: str, log: GeneralLog) -> None:
    """Killed while the new table waited for a lock: the old table exists, yet the statement never ran."""
    db = schema_of(mariadb_database)
    sql(mariadb_database, "CREATE TABLE t (old_column INT)")
    write(tmp_path / "sql", "r.sql", "CREATE OR REPLACE TABLE t (new_column INT);\nCREATE TABLE after_it (n INT);\n")
    blocker = admin()
    with blocker.cursor() as cur:
        cur.execute("START TRANSACTION")
        cur.execute(f"SELECT * FROM `{db}`.t")  # holds the table's metadata lock until COMMIT
    proc = harness(tmp_path, mariadb_database, "EXEC_T", "r.sql")
    thread = server_thread_running("CREATE OR REPLACE TABLE t")
    kill_9(proc)  # the process dies; its statement still waits on the server
    with blocker.cursor() as cur:
        cur.execute(f"KILL {thread}")  # … and never runs: as if the server had not received it
        cur.execute("COMMIT")
    blocker.close()
    assert [r["status"] for r in ledger(tmp_path)][:1] == ["RUNNING"]
    run_step(tmp_path, {"ft_db": mariadb_database}, ["r.sql"])
    assert len(log.queries("CREATE OR REPLACE TABLE t")) == 2, "sent again: the old table proved nothing"
    assert sql(mariadb_database, "SHOW COLUMNS FROM t")[0][0] == "new_column"


def test_or_replace_procedure_found_running_after_it_ran_is_not_sent_again(
        tmp_path: Path, mariadb_database: str, log: GeneralLog) -> None:
    write(tmp_path / "sql", "p.sql", "CREATE PROCEDURE p() SELECT 1;\nDO SLEEP(1.1);\n"
                                     "CREATE OR REPLACE PROCEDURE p() SELECT 2;\n")
    run_step(tmp_path, {"ft_db": mariadb_database}, ["p.sql"])
    created = sql(mariadb_database, "SELECT UNIX_TIMESTAMP(CREATED) FROM information_schema.ROUTINES WHERE "
                                      f"ROUTINE_SCHEMA = '{schema_of(mariadb_database)}' AND ROUTINE_NAME = 'p'")[0][0]
    set_running(tmp_path, 3, server_started=int(created) - 1)  # the crash came after it ran
    log.mark()
    run_step(tmp_path, {"ft_db": mariadb_database}, ["p.sql"])
    assert log.queries("CREATE OR REPLACE PROCEDURE p") == []
    set_running(tmp_path, 3, server_started=int(created) + 5)  # … before it ran: the body must be installed
    run_step(tmp_path, {"ft_db": mariadb_database}, ["p.sql"])
    assert len(log.queries("CREATE OR REPLACE PROCEDURE p")) == 1


# 2. effective verbs and recorded values ---------------------------------------------------------------


def test_set_statement_for_update_runs_once_and_a_query_set_value_is_restored_not_recomputed(
        tmp_path: Path, mariadb_database: str, log: GeneralLog) -> None:
    body = ("CREATE TABLE c (n INT);\nINSERT INTO c VALUES (0);\n"
            "SET STATEMENT max_statement_time=0 FOR UPDATE c SET n = n + 1;\n"
            "SET @top = (SELECT MAX(n) FROM c);\n"
            "INSERT INTO r VALUES (@top);\n")
    write(tmp_path / "sql", "s.sql", body)
    with pytest.raises(StepFailed, match=r"s.sql:5: .*\[1146\]"):
        run_step(tmp_path, {"ft_db": mariadb_database}, ["s.sql"])
    sql(mariadb_database, "CREATE TABLE r (v INT)")  # the operator's fix
    sql(mariadb_database, "UPDATE c SET n = 99")  # … and the data moved on meanwhile
    run_step(tmp_path, {"ft_db": mariadb_database}, ["s.sql"])
    updates = log.queries("SET STATEMENT max_statement_time=0 FOR UPDATE c")
    assert len(updates) == 1, "an UPDATE, not a session setting to replay"
    assert len(log.queries("SET @top = (SELECT")) == 1
    assert log.queries("SET @top = 1") == ["SET @top = 1"], "the recorded value is replayed"
    assert sql(mariadb_database, "SELECT v FROM r") == [(1,)]


# 3. a decision is for one statement ------------------------------------------------------------------


def test_an_inflight_decision_applies_to_the_breakpoints_statement_only(
        tmp_path: Path, mariadb_database: str, log: GeneralLog) -> None:
    setup = ("CREATE TABLE hits (n INT);\nCREATE PROCEDURE one() INSERT INTO hits VALUES (1);\nDELIMITER $$\n"
             "CREATE PROCEDURE two() BEGIN DO SLEEP(3.01); INSERT INTO hits VALUES (2); END$$\nDELIMITER ;\n"
             "CALL one();\n")
    write(tmp_path / "sql", "c.sql", setup)
    run_step(tmp_path, {"ft_db": mariadb_database}, ["c.sql"])
    set_running(tmp_path, 6)  # CALL one() was in flight when the process died
    write(tmp_path / "sql", "c.sql", setup + "CALL two();\n")
    with pytest.raises(StepFailed, match=r"c.sql:6: .*effects are not visible"):
        run_step(tmp_path, {"ft_db": mariadb_database}, ["c.sql"])
    decide(tmp_path, "applied")  # for CALL one() only
    log.mark()
    killer = admin()
    killed: list[int] = []

    def kill_connection_of_two() -> None:
        thread = server_thread_running("DO SLEEP(3.01)")  # the processlist shows the procedure's statement
        with killer.cursor() as cur:
            cur.execute(f"KILL CONNECTION {thread}")
        killed.append(thread)

    background = threading.Thread(target=kill_connection_of_two)
    background.start()
    with pytest.raises(StepFailed, match=r"c.sql:7: .*effects are not visible"):
        run_step(tmp_path, {"ft_db": mariadb_database}, ["c.sql"])
    background.join()
    killer.close()
    assert killed, "the connection of CALL two() was lost mid-statement"
    assert log.queries("CALL one()") == [], "decided applied by the operator: not sent"
    assert len(log.queries("CALL two()")) == 1, "in doubt after the lost connection: not silently taken as applied"
    bp = active_breakpoint(metadata_engine(tmp_path), "EXEC_T")
    assert bp.sql_line_number == 7, "the later uncertain statement has a breakpoint of its own"
    assert ledger(tmp_path)[3]["execution_result"].startswith("marked applied by ops: checked by hand")


# 4. non-transactional tables ---------------------------------------------------------------------------


def test_dml_on_myisam_is_never_batched_nor_run_twice_after_an_error(
        tmp_path: Path, mariadb_database: str, log: GeneralLog) -> None:
    body = ("CREATE TABLE m (id INT PRIMARY KEY) ENGINE=MyISAM;\n"
            "INSERT INTO m VALUES (1);\nINSERT INTO m VALUES (2);\n"
            "INSERT INTO m VALUES (2);\nINSERT INTO m VALUES (3);\n")
    write(tmp_path / "sql", "m.sql", body)
    with pytest.raises(StepFailed, match=r"m.sql:4: .*\[1062\].*non-transactional table m \(MYISAM\)"):
        run_step(tmp_path, {"ft_db": mariadb_database}, ["m.sql"])
    bp = active_breakpoint(metadata_engine(tmp_path), "EXEC_T")
    assert bp.in_doubt, "the operator decides: part of it may have been written"
    decide(tmp_path, "skip", notes="duplicate row, not needed")
    run_step(tmp_path, {"ft_db": mariadb_database}, ["m.sql"])
    assert [len(log.queries(f"INSERT INTO m VALUES ({n})")) for n in (1, 2, 3)] == [1, 2, 1]
    assert sql(mariadb_database, "SELECT id FROM m ORDER BY id") == [(1,), (2,), (3,)]


def test_myisam_dml_killed_before_its_commit_is_left_to_the_operator_not_run_again(
        tmp_path: Path, mariadb_database: str, log: GeneralLog) -> None:
    write(tmp_path / "sql", "k.sql", "CREATE TABLE m (n INT) ENGINE=MyISAM;\nINSERT INTO m SELECT SLEEP(1.5) + 7;\n")
    proc = harness(tmp_path, mariadb_database, "EXEC_T", "k.sql")
    server_thread_running("INSERT INTO m SELECT SLEEP")
    kill_9(proc)  # the row lands (MyISAM), the marker never commits
    deadline = time.monotonic() + 30
    while sql(mariadb_database, "SELECT COUNT(*) FROM m") != [(1,)] and time.monotonic() < deadline:
        time.sleep(0.1)
    with pytest.raises(StepFailed, match=r"k.sql:2: .*non-transactional table m \(MYISAM\)"):
        run_step(tmp_path, {"ft_db": mariadb_database}, ["k.sql"])
    decide(tmp_path, "applied", notes="row 7 is there")
    run_step(tmp_path, {"ft_db": mariadb_database}, ["k.sql"])
    assert len(log.queries("INSERT INTO m SELECT SLEEP")) == 1
    assert sql(mariadb_database, "SELECT n FROM m") == [(7,)]


# 5. blocks and keys the probe used to misread -----------------------------------------------------------


def test_a_block_of_several_statements_is_left_to_the_operator_and_unique_keys_are_probed_as_keys(
        tmp_path: Path, mariadb_database: str, log: GeneralLog) -> None:
    body = ("CREATE TABLE t (a INT, b TEXT);\n"
            "ALTER TABLE t ADD UNIQUE uk(a);\nALTER TABLE t ADD FULLTEXT ft(b);\n"
            "DELIMITER $$\nALTER TABLE t ADD c INT; UPDATE t SET c = 1$$\nDELIMITER ;\n")
    write(tmp_path / "sql", "b.sql", body)
    run_step(tmp_path, {"ft_db": mariadb_database}, ["b.sql"])
    for line in (2, 3, 5):
        set_running(tmp_path, line)
    log.mark()
    with pytest.raises(StepFailed, match=r"b.sql:5: .*several statements in one block"):
        run_step(tmp_path, {"ft_db": mariadb_database}, ["b.sql"])
    assert log.queries("ADD UNIQUE uk") == [] and log.queries("ADD FULLTEXT ft") == [], "decided from the catalog"
    decide(tmp_path, "applied")
    run_step(tmp_path, {"ft_db": mariadb_database}, ["b.sql"])
    assert log.queries("ALTER TABLE t ADD c INT") == []


# 6. a script's own transaction ---------------------------------------------------------------------------


def test_a_scripts_own_transaction_is_one_unit_for_resume(tmp_path: Path, mariadb_database: str,
                                                          log: GeneralLog) -> None:
    body = ("CREATE TABLE a (n INT);\nSTART TRANSACTION;\nINSERT INTO a VALUES (1);\nINSERT INTO a SELECT n FROM b;\n"
            "INSERT INTO a VALUES (3);\nCOMMIT;\nINSERT INTO a VALUES (4);\n")
    write(tmp_path / "sql", "u.sql", body)
    with pytest.raises(StepFailed, match=r"u.sql:4: .*the transaction from line 2 was rolled back"):
        run_step(tmp_path, {"ft_db": mariadb_database}, ["u.sql"])
    assert sql(mariadb_database, "SELECT n FROM a") == [], "rolled back as a whole"
    sql(mariadb_database, "CREATE TABLE b (n INT)")
    sql(mariadb_database, "INSERT INTO b VALUES (2)")
    run_step(tmp_path, {"ft_db": mariadb_database}, ["u.sql"])
    assert sql(mariadb_database, "SELECT n FROM a ORDER BY n") == [(1,), (2,), (3,), (4,)]
    assert len(log.queries("INSERT INTO a VALUES (1)")) == 2 and len(log.queries("COMMIT")) >= 1
    log.mark()
    run_step(tmp_path, {"ft_db": mariadb_database}, ["u.sql"])
    assert log.queries("INSERT INTO a") == [], "done: nothing is sent again"


def test_a_scripts_transaction_killed_midway_runs_again_from_its_start(tmp_path: Path,
                                                                       mariadb_database: str) -> None:
    body = ("CREATE TABLE a (n INT);\nSTART TRANSACTION;\nINSERT INTO a VALUES (1);\nINSERT INTO a SELECT SLEEP(2);\n"
            "INSERT INTO a VALUES (3);\nCOMMIT;\n")
    write(tmp_path / "sql", "u.sql", body)
    proc = harness(tmp_path, mariadb_database, "EXEC_T", "u.sql")
    thread = server_thread_running("INSERT INTO a SELECT SLEEP")
    kill_9(proc)
    wait_gone(thread)  # the server rolls the open transaction back once it notices the dead connection
    assert sql(mariadb_database, "SELECT n FROM a") == []
    run_step(tmp_path, {"ft_db": mariadb_database}, ["u.sql"])
    assert sql(mariadb_database, "SELECT n FROM a ORDER BY n") == [(0,), (1,), (3,)]


@pytest.mark.parametrize(("body", "reason"), [
    ("LOCK TABLES t WRITE;\nINSERT INTO t VALUES (1);\nUNLOCK TABLES;\n", "s.sql:1: LOCK TABLES is not supported"),
    ("SET autocommit = 0;\nINSERT INTO t VALUES (1);\nCOMMIT;\n", "s.sql:1: SET autocommit = 0 is not supported"),
    ("CREATE TEMPORARY TABLE tmp (n INT);\n", "s.sql:1: temporary tables are not supported"),
    ("START TRANSACTION;\nALTER TABLE t ADD c INT;\nCOMMIT;\n", "s.sql:2: ALTER inside the transaction opened at "
                                                               "line 1 would commit it implicitly"),
    ("START TRANSACTION;\nINSERT INTO t VALUES (1);\n", "s.sql:1: transaction opened here is never committed"),
])
def test_validate_refuses_transaction_control_that_cannot_behave_as_under_the_client(
        tmp_path: Path, body: str, reason: str) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "317500.json").write_text(json.dumps({"version": "317500", "upgrade_steps": {
        "startup_pre_process": [{"id": "sql_001", "class_name": "SqlScriptStep", "sql_scripts": ["s.sql"]}]}}),
        encoding="utf-8")
    write(tmp_path / "sql", "s.sql", body)
    result = CliRunner().invoke(app, ["validate", "--configs", str(tmp_path / "configs"), "--sql-root",
                                      str(tmp_path / "sql")])
    assert result.exit_code == 2
    assert reason in " ".join(result.output.split())


# 7. secrets the server echoes --------------------------------------------------------------------------


def test_a_password_quoted_in_a_server_error_is_masked_everywhere_the_tool_writes(
        tmp_path: Path, mariadb_database: str, caplog: pytest.LogCaptureFixture) -> None:
    secret = "Zx9-secret-Pw"
    write(tmp_path / "sql", "u.sql", f"CREATE USER 'app'@'%' IDENTIFIED WITH mysql_native_password BY '{secret}';\n")
    with pytest.raises(StepFailed) as info:
        run_step(tmp_path, {"ft_db": mariadb_database}, ["u.sql"])
    assert "[1064]" in str(info.value) and secret not in str(info.value)
    rows = ledger(tmp_path)
    bp = active_breakpoint(metadata_engine(tmp_path), "EXEC_T")
    written = [rows[0]["error_message"], rows[0]["sql_content"], bp.failure_reason, bp.sql_content,
               caplog.text, repr(info.value.__cause__), repr(info.value.__context__ if not
                                                           info.value.__suppress_context__ else None)]
    assert all(secret not in (w or "") for w in written), written
    events = tmp_path / "home" / "clickhouse"
    assert events.exists()


def test_masking_stays_linear_on_a_pathological_statement() -> None:
    statement = "SELECT * FROM t WHERE x LIKE '%SET PASSWORD%' AND a IN (" + ",".join(["''''"] * 20000) + ")"
    started = time.perf_counter()
    mask_sql(statement)
    assert time.perf_counter() - started < 5, "masking must not backtrack catastrophically"


# 8. business schemas keep only what the scripts create --------------------------------------------------


def test_markers_live_in_the_tools_own_schema_and_old_ones_are_adopted_and_expire(
        tmp_path: Path, mariadb_database: str, log: GeneralLog) -> None:
    from tasks.sql.marker import CREATE_MARKER_TABLE, MARKER_TABLE, marker_key, quote_schema
    from tasks.sql.script import file_id_for

    db = schema_of(mariadb_database)
    write(tmp_path / "sql", "n.sql", "CREATE TABLE n (v INT);\nINSERT INTO n VALUES (1);\nINSERT INTO n VALUES (2);\n"
                                     "INSERT INTO n SELECT 3 FROM later;\n")
    with pytest.raises(StepFailed):
        run_step(tmp_path, {"ft_db": mariadb_database}, ["n.sql"])
    assert sql(mariadb_database, "SHOW TABLES") == [("n",)], "the business schema holds what the script made"
    file_id = file_id_for("n.sql", "3.17.5")
    keys = [marker_key("EXEC_T", "step_under_test", file_id, seq, db) for seq in (2, 3)]
    mine = f"FROM ft_upgrade.{MARKER_TABLE} WHERE marker_key IN ('{keys[0]}', '{keys[1]}')"
    assert sql(mariadb_database, f"SELECT COUNT(*) {mine}") == [(2,)], "in the tool's own schema"
    # as an older version left them: in the business schema, keyed without the database
    sql(mariadb_database, CREATE_MARKER_TABLE.format(schema=quote_schema(db)))
    sql(mariadb_database, f"INSERT INTO {MARKER_TABLE} SELECT SHA2(CONCAT_WS('|', execution_id, step_id, "
                          f"sql_file_id, sql_sequence), 256), execution_id, step_id, sql_file_id, sql_sequence, "
                          f"sql_content_hash, applied_time {mine}")
    sql(mariadb_database, f"DELETE {mine}")
    set_running(tmp_path, 3)  # and the process died around INSERT (2)
    sql(mariadb_database, f"INSERT INTO ft_upgrade.{MARKER_TABLE} (marker_key, execution_id, step_id, sql_file_id, "
                          f"sql_sequence, sql_content_hash, applied_time) VALUES (SHA2('{db}-expired', 256), "
                          f"'EXEC_GONE_{db}', 's', 'f', 1, 'x', NOW() - INTERVAL 40 DAY)")
    sql(mariadb_database, "CREATE TABLE later (n INT)")
    sql(mariadb_database, "INSERT INTO later VALUES (0)")
    log.mark()
    run_step(tmp_path, {"ft_db": mariadb_database}, ["n.sql"])
    assert sql(mariadb_database, "SHOW TABLES") == [("later",), ("n",)], "the old marker table was moved out"
    assert log.queries("INSERT INTO n VALUES (2)") == [], "its marker, adopted, still proves it ran"
    assert sql(mariadb_database, f"SELECT COUNT(*) FROM ft_upgrade.{MARKER_TABLE} WHERE execution_id = "
                                 f"'EXEC_GONE_{db}'") == [(0,)], "expired after the retention period"
    assert sql(mariadb_database, f"SELECT COUNT(*) FROM ft_upgrade.{MARKER_TABLE} WHERE execution_id = 'EXEC_T' "
                                 f"AND step_id = 'step_under_test' AND sql_file_id = '{file_id}'") == [(0,)], \
        "a step that finished leaves no markers: its ledger proves every statement"


def test_an_account_that_may_not_create_the_markers_schema_falls_back_with_a_warning(
        tmp_path: Path, mariadb_database: str, caplog: pytest.LogCaptureFixture) -> None:
    db = schema_of(mariadb_database)
    user = f"lim_{db[-10:]}"
    with admin().cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'limited-pw'")
        cur.execute(f"GRANT ALL ON `{db}`.* TO '{user}'@'%'")
    try:
        url = f"mysql+pymysql://{user}:limited-pw@127.0.0.1:3306/{db}"
        write(tmp_path / "sql", "n.sql", "CREATE TABLE n (v INT);\nINSERT INTO n VALUES (1);\n")
        env = {"FT_UPGRADE_MARKER_SCHEMA": f"ft_upgrade_denied_{db[-6:]}"}
        os.environ.update(env)
        try:
            run_step(tmp_path, {"ft_db": url}, ["n.sql"])
        finally:
            os.environ.pop("FT_UPGRADE_MARKER_SCHEMA")
        assert "cannot use schema 'ft_upgrade_denied_" in caplog.text and "grant CREATE" in caplog.text
        assert ("ft_upgrade_statement_marker",) in sql(mariadb_database, "SHOW TABLES")
    finally:
        with admin().cursor() as cur:
            cur.execute(f"DROP USER '{user}'@'%'")


# 9. the operator skips a statement fixed by hand ---------------------------------------------------------


def test_skip_never_sends_the_statement_and_records_who_why_and_its_hash(
        tmp_path: Path, mariadb_database: str, log: GeneralLog) -> None:
    write(tmp_path / "sql", "f.sql", "CREATE TABLE f (n INT);\nINSERT INTO f SELECT n FROM nowhere;\n"
                                     "INSERT INTO f VALUES (9);\n")
    with pytest.raises(StepFailed):
        run_step(tmp_path, {"ft_db": mariadb_database}, ["f.sql"])
    sql(mariadb_database, "INSERT INTO f VALUES (5)")  # the operator did by hand what line 2 meant to do
    decide(tmp_path, "skip", notes="inserted row 5 by hand")
    log.mark()
    details = run_step(tmp_path, {"ft_db": mariadb_database}, ["f.sql"])
    assert log.queries("FROM nowhere") == []
    row = ledger(tmp_path)[1]
    assert row["status"] == "SKIPPED"
    assert row["execution_result"].startswith("skipped by ops: inserted row 5 by hand (statement sha256 ")
    assert details["decisions"][0]["note"] == row["execution_result"]
    assert sql(mariadb_database, "SELECT n FROM f ORDER BY n") == [(5,), (9,)]
