"""Failed, fixed and resumed: the tool's database equals the plain client's after the same history (issue 23).

The client's history is the DBA's in one session: the failing statement, its fix, the rest (``--force`` so
the session goes on after the error). The tool's: ``run`` fails at the statement, the file is fixed, the run resumes.
Compared by :mod:`tests.client_compare` (catalog and rows).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.core.errors import StepFailed
from tests.client_compare import assert_same, client_database, client_result, snapshot
from tests.general_log import general_log
from tests.tasks.test_sql_engine import ledger, run_step, write

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
