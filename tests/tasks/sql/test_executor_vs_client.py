"""Failed, fixed and resumed: the tool's database equals the plain client's after the same history (issue 23).

The client's history is the DBA's in one session: the failing statement, its fix, the rest (``--force`` so
the session goes on after the error). The tool's: ``run`` fails at the statement, the file is fixed, the run resumes.
Compared by :mod:`tests.client_compare` (catalog and rows).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from tasks.core.errors import StepFailed
from tasks.store import schema
from tasks.store.breakpoints import active_breakpoint
from tests.client_compare import assert_same, client_database, client_result, snapshot
from tests.general_log import general_log
from tests.tasks.sql.test_executor import ledger, metadata_engine, run_step, write
from tests.tasks.sql.test_inflight import (
    admin,
    decide,
    harness,
    kill_9,
    server_thread_running,
    sql,
    wait_gone,
)

pytestmark = pytest.mark.mariadb

AUTO_INCREMENT = ("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL, x INT NOT NULL);\n"
                  "INSERT INTO t (name, x) VALUES ('a', 1);\n"
                  "INSERT INTO t (name, x) VALUES ('b', 2);\n"
                  "{broken};\n"
                  "INSERT INTO t (name, x) VALUES ('d', 4);\n"
                  "INSERT INTO t (name, x) VALUES ('e', 5);\n")
MYISAM_TRIGGER = ("CREATE TABLE audit (n INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(20)) ENGINE=MyISAM;\n"
                  "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL, x INT NOT NULL);\n"
                  "CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW INSERT INTO audit (what) VALUES (NEW.name);\n"
                  "INSERT INTO t (name, x) VALUES ('a', 1);\n"
                  "INSERT INTO t (name, x) VALUES ('b', 2);\n"
                  "{broken};\n"
                  "INSERT INTO t (name, x) VALUES ('d', 4);\n")
ASSIGNED = ("CREATE TABLE items (id INT PRIMARY KEY, ord INT NOT NULL DEFAULT 0, name VARCHAR(10) NOT NULL);\n"
            "INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b');\n"
            "SET @r = 0;\n"
            "UPDATE items SET ord = (@r := @r + 10) ORDER BY id;\n"
            "{broken};\n"
            "INSERT INTO items (id, name, ord) VALUES (4, 'd', @r + 10);\n")

SCRIPT_TRANSACTION = ("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL, x INT NOT NULL);\n"
                      "START TRANSACTION;\n"
                      "INSERT INTO t (name, x) VALUES ('a', 1);\n"
                      "{broken};\n"
                      "COMMIT;\n"
                      "INSERT INTO t (name, x) VALUES ('d', 4);\n")

CASES = {
    "auto_increment": (AUTO_INCREMENT, "INSERT INTO t (name) VALUES ('c')", "INSERT INTO t (name, x) VALUES ('c', 3)"),
    "myisam_trigger": (MYISAM_TRIGGER, "INSERT INTO t (name, x) VALUES ('c', NULL)",
                       "INSERT INTO t (name, x) VALUES ('c', 3)"),
    "script_transaction": (SCRIPT_TRANSACTION, "INSERT INTO t (name) VALUES ('c')",
                           "INSERT INTO t (name, x) VALUES ('c', 3)"),
    "assigned_in_dml": (ASSIGNED, "INSERT INTO items (id) VALUES (3)", "INSERT INTO items (id, name) VALUES (3, 'c')"),
}


def failed_fixed_resumed(tmp_path: Path, url: str, client_db: str, body: str, broken: str,
                         fixed: str, *, skip_first: bool = False, **params: str) -> None:
    """The tool: run (fails), fix, resume. The client: run (stops), run the fixed rest.

    ``skip_first``: the tool's file leaves out the first line (it ran before, in a file of its own).
    """
    root = tmp_path / "sql"
    tool_body = body.split("\n", 1)[1] if skip_first else body
    write(root, "u.sql", tool_body.format(broken=broken))
    # one client session (user variables live on): the failing statement, then its fix, then the rest
    history = body.format(broken=broken + ";\n" + fixed)
    client_file = tmp_path / "client" / "u.sql"
    write(client_file.parent, "u.sql", history)
    with pytest.raises(StepFailed):
        run_step(tmp_path, {"ft_db": url}, ["u.sql"], database="ft_db", **params)
    write(root, "u.sql", tool_body.format(broken=fixed))
    run_step(tmp_path, {"ft_db": url}, ["u.sql"], database="ft_db", **params)
    client = client_result([client_file], client_db, force=True)
    assert_same(snapshot(url), client)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_failure_inside_a_dml_batch_leaves_what_the_client_leaves(case: str, tmp_path: Path,
                                                                     mariadb_database: str) -> None:
    body, broken, fixed = CASES[case]
    with client_database("i23cli") as client_db:
        failed_fixed_resumed(tmp_path, mariadb_database, client_db, body, broken, fixed)


def test_statements_before_the_failing_one_are_sent_once(tmp_path: Path, mariadb_database: str) -> None:
    write(tmp_path / "sql", "u.sql", AUTO_INCREMENT.format(broken=CASES["auto_increment"][1]))
    with general_log() as log:
        with pytest.raises(StepFailed):
            run_step(tmp_path, {"ft_db": mariadb_database}, ["u.sql"], database="ft_db")
        assert len(log.queries("INSERT INTO t (name, x) VALUES ('a'")) == 1
    rows = {r["sql_sequence"]: r["status"] for r in ledger(tmp_path)}
    assert rows == {1: "SUCCESS", 2: "SUCCESS", 3: "SUCCESS", 4: "FAILED", 5: "PENDING", 6: "PENDING"}


def test_a_file_transaction_rolled_back_and_run_again_gives_the_client_ids(tmp_path: Path,
                                                                          mariadb_database: str) -> None:
    create, dml = AUTO_INCREMENT.split("\n", 1)
    broken, fixed = CASES["auto_increment"][1:]
    write(tmp_path / "sql", "a.sql", create + "\n")
    run_step(tmp_path, {"ft_db": mariadb_database}, ["a.sql"], database="ft_db")
    with client_database("i23cli") as client_db:
        failed_fixed_resumed(tmp_path, mariadb_database, client_db, create + "\n" + dml, broken, fixed,
                             transaction="per_file", skip_first=True)


def test_a_set_calling_a_writing_function_killed_midway_is_asked_not_run_again(tmp_path: Path,
                                                                              mariadb_database: str) -> None:
    body = ("CREATE TABLE audit (n INT AUTO_INCREMENT PRIMARY KEY) ENGINE=MyISAM;\n"
            "DELIMITER //\n"
            "CREATE FUNCTION f() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO audit VALUES (NULL); "
            "DO SLEEP(2); RETURN (SELECT COUNT(*) FROM audit); END //\n"
            "DELIMITER ;\n"
            "SET @v = (SELECT f());\n"
            "CREATE TABLE r AS SELECT @v AS v;\n")
    write(tmp_path / "sql", "w.sql", body)
    with general_log() as log:
        proc = harness(tmp_path, mariadb_database, "EXEC_T", "w.sql")
        thread = server_thread_running("DO SLEEP(2)")  # the function body, as the server shows it
        kill_9(proc)
        wait_gone(thread)
        with pytest.raises(StepFailed, match=r"w.sql:5: .*calls the stored function f, which may write"):
            run_step(tmp_path, {"ft_db": mariadb_database}, ["w.sql"], execution_id="EXEC_T")
        assert len(log.queries("SET @v = (SELECT f())")) == 1, "never sent again"
    assert sql(mariadb_database, "SELECT COUNT(*) FROM audit") == [(1,)]


def test_variables_set_by_select_into_and_in_dml_are_restored_after_a_kill(tmp_path: Path,
                                                                          mariadb_database: str) -> None:
    body = ("CREATE TABLE items (id INT PRIMARY KEY, ord INT NOT NULL DEFAULT 0);\n"
            "INSERT INTO items (id) VALUES (1), (2);\n"
            "SET @r = 0;\n"
            "UPDATE items SET ord = (@r := @r + 10) ORDER BY id;\n"
            "SELECT MAX(id) INTO @top FROM items;\n"
            "SELECT SLEEP(30);\n"
            "INSERT INTO items (id, ord) VALUES (@top + 1, @r + 10);\n")
    write(tmp_path / "sql", "v.sql", body)
    proc = harness(tmp_path, mariadb_database, "EXEC_T", "v.sql")
    thread = server_thread_running("SELECT SLEEP(30)")
    kill_9(proc)
    admin().cursor().execute(f"KILL {thread}")
    wait_gone(thread)
    with pytest.raises(StepFailed, match="v.sql:6: .*running when the process stopped"):
        run_step(tmp_path, {"ft_db": mariadb_database}, ["v.sql"], execution_id="EXEC_T")
    decide(tmp_path, "skip")
    run_step(tmp_path, {"ft_db": mariadb_database}, ["v.sql"], execution_id="EXEC_T")
    assert sql(mariadb_database, "SELECT id, ord FROM items ORDER BY id") == [(1, 10), (2, 20), (3, 30)]


def test_an_alter_still_running_after_a_kill_is_waited_for_never_sent_again(
        tmp_path: Path, mariadb_database: str, caplog: pytest.LogCaptureFixture) -> None:
    sql(mariadb_database, "CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(40), w VARCHAR(40))")
    sql(mariadb_database, "INSERT INTO big SELECT seq, MD5(seq), MD5(-seq) FROM seq_1_to_300000")
    write(tmp_path / "sql", "a.sql", "ALTER TABLE big ADD KEY k_vw (v, w);\nCREATE TABLE after_it (n INT);\n")
    with general_log() as log:
        proc = harness(tmp_path, mariadb_database, "EXEC_T", "a.sql")
        thread = server_thread_running("ALTER TABLE big ADD KEY")
        kill_9(proc)
        with caplog.at_level("WARNING"):
            details = run_step(tmp_path, {"ft_db": mariadb_database}, ["a.sql"], execution_id="EXEC_T")
        assert len(log.queries("ALTER TABLE big ADD KEY")) == 1, "never sent again"
    assert details["failed"] == 0
    assert f"still running on ft_db as connection {thread}" in caplog.text
    assert ledger(tmp_path)[0]["execution_result"] == "already applied (decided after restart)"


def test_a_ddl_whose_retry_failed_on_its_own_effect_is_probed_again_and_may_be_marked_applied(
        tmp_path: Path, mariadb_database: str) -> None:
    """What a resume that did not wait left: the crashed run's ALTER took effect after the probe, the second copy
    failed with 1060. The next resume asks the catalog again; the operator's ``applied`` is accepted."""
    write(tmp_path / "sql", "d.sql", "CREATE TABLE d (id INT);\nALTER TABLE d ADD COLUMN c INT;\n")
    run_step(tmp_path, {"ft_db": mariadb_database}, ["d.sql"], execution_id="EXEC_T")
    with metadata_engine(tmp_path).begin() as conn:
        conn.execute(update(schema.sql_execution_record).where(schema.sql_execution_record.c.sql_line_number == 2)
                     .values(status="FAILED", error_code="1060"))
    with pytest.raises(StepFailed, match="the catalog shows its effect, which the server reported already there"):
        run_step(tmp_path, {"ft_db": mariadb_database}, ["d.sql"], execution_id="EXEC_T")
    assert active_breakpoint(metadata_engine(tmp_path), "EXEC_T").context["in_doubt"] is True
    decide(tmp_path, "applied")
    assert run_step(tmp_path, {"ft_db": mariadb_database}, ["d.sql"], execution_id="EXEC_T")["failed"] == 0
