"""``SOURCE`` / ``\\.`` as the client runs them: included files in place, under the SQL root, resumable.

The chain here is compared with the plain ``mariadb`` client run of the same main file from its folder (the
client reads SOURCE names against the folder it runs in), through tests/client_compare.py: catalog (routines
with their stored charset), ``CHECKSUM TABLE`` and rows with their ids must be the same. The client goes on
after an error inside a SOURCEd file unless given ``--abort-source-on-error``; the tool stops there as
everywhere, so the failing run is compared with that.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from tasks.core.errors import InputError, SqlScriptError, StepFailed
from tasks.sql.script import load_script, script_sha256
from tasks.store.breakpoints import active_breakpoint
from tests.client_compare import assert_same, client_database, client_result, snapshot
from tests.tasks.sql.test_executor import ledger, metadata_engine, run_step, write

MAIN = """CREATE TABLE parent (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL);
INSERT INTO parent (name) VALUES ('a');
SOURCE 010-child.sql;
INSERT INTO parent (name) VALUES ('z');
"""
CHILD = """CREATE TABLE child (id INT AUTO_INCREMENT PRIMARY KEY, parent_id INT NOT NULL, x INT NOT NULL);
\\. sub/020-grandchild.sql
INSERT INTO child (parent_id, x) VALUES (1, 3);
"""
GRANDCHILD = """DELIMITER //
CREATE PROCEDURE add_child(p INT) BEGIN INSERT INTO child (parent_id, x) VALUES (p, 1); END//
DELIMITER ;
CALL add_child(1);
INSERT INTO child (parent_id, nosuch) VALUES (1, 2);
INSERT INTO parent (name) VALUES ('b');
"""
FIXED = GRANDCHILD.replace("(parent_id, nosuch)", "(parent_id, x)")
FAILED_AT = "chain/main.sql:3 > chain/010-child.sql:2 > chain/sub/020-grandchild.sql"
CHARSET = "utf8mb3"  # the tool's connection charset by default (FT_UPGRADE_CLIENT_CHARSET): the client's here too


def chain(root: Path, grandchild: str = GRANDCHILD) -> str:
    write(root, "chain/010-child.sql", CHILD)
    write(root, "chain/sub/020-grandchild.sql", grandchild)
    return write(root, "chain/main.sql", MAIN)


# --- loading (no database) ---------------------------------------------------------------------------


def test_included_statements_run_in_place_naming_their_file_and_the_sourcing_line(tmp_path: Path) -> None:
    script = load_script(tmp_path, chain(tmp_path), version="1", default_database="ft_db")
    assert [(s.where, s.sequence) for s in script.statements] == [
        ("chain/main.sql:1", 1), ("chain/main.sql:2", 2), ("chain/main.sql:3 > chain/010-child.sql:1", 3),
        (f"{FAILED_AT}:2", 4), (f"{FAILED_AT}:4", 5), (f"{FAILED_AT}:5", 6), (f"{FAILED_AT}:6", 7),
        ("chain/main.sql:3 > chain/010-child.sql:3", 8), ("chain/main.sql:4", 9)]
    assert script.includes == ("chain/010-child.sql", "chain/sub/020-grandchild.sql")


def test_editing_an_included_file_changes_the_scripts_recorded_hash(tmp_path: Path) -> None:
    name = chain(tmp_path)
    before = script_sha256(tmp_path, name)
    assert before == load_script(tmp_path, name, version="1", default_database="ft_db").sha256
    write(tmp_path, "chain/sub/020-grandchild.sql", FIXED)
    assert script_sha256(tmp_path, name) not in (None, before)
    plain = write(tmp_path, "plain.sql", "SELECT 1;\n")
    assert script_sha256(tmp_path, plain) == load_script(tmp_path, plain, version="1", default_database="ft_db").sha256


def problems_of(root: Path, name: str) -> list[str]:
    with pytest.raises(SqlScriptError) as info:
        load_script(root, name, version="1", default_database="ft_db")
    return info.value.problems


def test_a_cycle_is_refused_naming_the_chain(tmp_path: Path) -> None:
    write(tmp_path, "b.sql", "SELECT 1;\nsource c.sql\n")
    write(tmp_path, "c.sql", "SOURCE b.sql;\n")
    assert problems_of(tmp_path, write(tmp_path, "a.sql", "SOURCE b.sql;\n")) == [
        "a.sql:1 > b.sql:2 > c.sql:1: SOURCE cycle: a.sql:1 > b.sql:2 > c.sql:1 > b.sql (the client would include "
        "it again and again)"]


def test_a_path_outside_the_sql_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "sql"
    write(tmp_path, "outside.sql", "DROP DATABASE important;\n")
    (root / "v").mkdir(parents=True)
    (root / "v" / "link.sql").symlink_to(tmp_path / "outside.sql")
    name = write(root, "v/a.sql", "SOURCE ../../outside.sql;\nSOURCE link.sql;\n\\. /etc/hostname\n")
    found = problems_of(root, name)
    assert [p.split(": ", 2)[:2] for p in found] == [
        ["v/a.sql:1", "SOURCE ../../outside.sql"], ["v/a.sql:2", "SOURCE link.sql"],
        ["v/a.sql:3", "SOURCE /etc/hostname"]]
    assert "leaves the SQL root" in found[0] and "leaves the SQL root" in found[1] and "absolute" in found[2]


def test_a_nested_name_the_client_would_read_as_another_file_is_refused_as_ambiguous(tmp_path: Path) -> None:
    write(tmp_path, "v/sub/x.sql", "SOURCE y.sql;\n")
    write(tmp_path, "v/sub/y.sql", "SELECT 'sub';\n")
    write(tmp_path, "v/y.sql", "SELECT 'top';\n")  # what `cd v && mariadb < main.sql` reads
    [problem] = problems_of(tmp_path, write(tmp_path, "v/main.sql", "SOURCE sub/x.sql;\n"))
    assert problem.startswith("v/main.sql:1 > v/sub/x.sql:1: SOURCE y.sql: ambiguous: v/sub/y.sql here"), problem
    assert "v/y.sql" in problem


def test_lock_tables_is_refused_inside_a_delimiter_block_of_an_included_file(tmp_path: Path) -> None:
    write(tmp_path, "b.sql", "DELIMITER //\nUPDATE t SET a = 1; LOCK TABLES t WRITE//\nDELIMITER ;\n")
    [problem] = problems_of(tmp_path, write(tmp_path, "a.sql", "SELECT 1;\nSOURCE b.sql;\n"))
    assert problem.startswith("a.sql:2 > b.sql:2: LOCK TABLES is not supported")


# --- against the client ------------------------------------------------------------------------------


def _admin() -> pymysql.Connection:
    return pymysql.connect(host="127.0.0.1", user="root", autocommit=True)


@pytest.fixture
def client_schemas() -> Iterator[list[str]]:
    """Fresh schemas for client runs (dropped after)."""
    names: list[str] = []
    yield names
    conn = _admin()
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


def run_client(schemas: list[str], main: Path, *extra: str) -> tuple[str, int]:
    """``cd <main's folder> && mariadb [extra] <schema> < main`` on a fresh schema: (schema, exit code)."""
    if shutil.which("mariadb") is None:
        pytest.skip("the mariadb client is not installed")
    name = f"i23c_client_{uuid.uuid4().hex[:8]}"
    schemas.append(name)
    conn = _admin()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    conn.close()
    with main.open("rb") as stdin:
        done = subprocess.run(["mariadb", "--host=127.0.0.1", "--user=root", f"--default-character-set={CHARSET}",
                               *extra, name], stdin=stdin, cwd=main.parent, capture_output=True, timeout=120)
    return name, done.returncode


@pytest.mark.mariadb
def test_a_failure_inside_a_nested_included_file_fixed_and_resumed_ends_as_the_client(
        tmp_path: Path, mariadb_database: str, client_schemas: list[str]) -> None:
    root = tmp_path / "sql"
    main = chain(root)
    execution = f"EXEC_SOURCE_{uuid.uuid4().hex[:8]}"  # markers live in a schema shared with other test runs
    with pytest.raises(StepFailed, match=rf"{FAILED_AT}:5: statement #6 on ft_db failed: \[1054\]"):
        run_step(tmp_path, {"ft_db": mariadb_database}, [main], execution_id=execution)
    bp = active_breakpoint(metadata_engine(tmp_path), execution)
    assert bp is not None and bp.where == f"{FAILED_AT}:5"
    rows = {r["sql_sequence"]: r for r in ledger(tmp_path)}
    assert (rows[6]["sql_file_name"], rows[6]["sql_line_number"], rows[6]["status"]) == (FAILED_AT, 5, "FAILED")
    stopped, code = run_client(client_schemas, root / main, "--abort-source-on-error")
    assert code == 1
    assert_same(snapshot(mariadb_database), snapshot(stopped))  # stopped at the same place, in the same state

    write(root, "chain/010-child.sql", CHILD.replace("x INT NOT NULL", "x INT NOT NULL DEFAULT 0"))
    with pytest.raises(InputError, match=r"chain/main.sql:3 > chain/010-child.sql:1: statement #3 already executed"):
        run_step(tmp_path, {"ft_db": mariadb_database}, [main], execution_id=execution)  # edited where it ran
    write(root, "chain/010-child.sql", CHILD)

    write(root, "chain/sub/020-grandchild.sql", FIXED)
    details = run_step(tmp_path, {"ft_db": mariadb_database}, [main], execution_id=execution)
    assert (details["skipped"], details["success"]) == (5, 4)
    assert details["scripts_applied"] == [{"path": main, "sha256": script_sha256(root, main)}]
    with client_database("i23c_source") as fresh:  # the fixed chain, from the main file's folder
        client = client_result([root / main], fresh, CHARSET)
        ours = snapshot(mariadb_database)
        assert_same(ours, client)
    assert [r[1] for r in ours.table("parent")] == ["a", "b", "z"]


# --- validate and run (CLI) --------------------------------------------------------------------------


def release_with_refused_sql(folder: Path, database: str) -> list[str]:
    """A release whose startup_pre_process SQL is refused in two files; pre_business_check runs no SQL."""
    import json

    configs = folder / "configs"
    configs.mkdir()
    steps = {"pre_business_check": [{"id": "ping", "class_name": "ServiceHealthCheckStep", "databases": ["ft_db"]}],
             "startup_pre_process": [{"id": "sql", "class_name": "StartupPreProcessStep",
                                      "sql_scripts": ["v/a.sql", "v/c.sql"]}]}
    (configs / "317500.json").write_text(json.dumps({"version": "317500", "upgrade_steps": steps}), encoding="utf-8")
    sql = folder / "sql"
    write(sql, "v/a.sql", "SOURCE missing.sql;\nDELIMITER //\nUPDATE t SET a = 1; LOCK TABLES t WRITE//\n"
                          "DELIMITER ;\nSOURCE b.sql;\n")
    write(sql, "v/b.sql", "LOCK TABLES t READ;\nsystem ls\nSOURCE ../../../etc/passwd;\n")
    write(sql, "v/c.sql", "SELECT 1;\n\\. a.sql;\n")
    return ["--configs", str(configs), "--sql-root", str(sql), "--db", f"ft_db={database}"]


def cli(*args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from flows.cli import app

    result = CliRunner().invoke(app, list(args), terminal_width=1000)
    return result.exit_code, result.output


@pytest.mark.usefixtures("prefect_api")
def test_validate_lists_every_problem_of_every_file_and_sql_refusals_hold_back_only_the_sql_cutpoint(
        isolated_env: Path, mariadb_database: str) -> None:
    where = release_with_refused_sql(isolated_env, mariadb_database)
    code, output = cli("validate", *where)
    step = "configs/317500.json: upgrade_steps.startup_pre_process[0]"
    listed = [line.removeprefix("error: ") for line in output.splitlines() if step in line]
    assert code == 2 and [line.split(": ")[2] for line in listed] == [
        "v/a.sql:1", "v/a.sql:3", "v/a.sql:5 > v/b.sql:1", "v/a.sql:5 > v/b.sql:2", "v/a.sql:5 > v/b.sql:3",
        "v/c.sql:2:1"], output
    assert "6 problems (6 in the files steps use). Nothing was run. Fix each problem" in output

    code, output = cli("run", "pre_business_check", "--from", "3.17.0", "--to", "3.17.5", "--site", "CN", *where)
    assert code == 0, output  # no SQL in pre_business_check: the refused scripts only warn
    assert "warning:" in output and "(a problem for startup_pre_process, not for pre_business_check)" in output

    code, output = cli("run", "startup_pre_process", "--from", "3.17.0", "--to", "3.17.5", "--site", "CN",
                       "--waive", "pre_upgrade_process", "--waive", "services_stopped", "--reason", "test", *where)
    assert code == 2 and "v/a.sql:3: LOCK TABLES is not supported" in output, output


@pytest.mark.mariadb
def test_killed_at_random_inside_included_files_and_resumed_ends_as_the_client(tmp_path: Path) -> None:
    import random
    import signal

    from tests.client_compare import create_database, drop_database
    from tests.conftest import MARIADB_ROOT
    from tests.tasks.sql.test_executor_kill9 import harness, mixed_script, run_to_completion

    lines = mixed_script(300).splitlines(keepends=True)
    third = len(lines) // 3
    for part, chunk in enumerate([lines[:third], lines[third:2 * third], lines[2 * third:]]):
        write(tmp_path / "sql", f"inc/part{part}.sql", "".join(chunk))
    write(tmp_path / "sql", "mixed.sql", "SOURCE inc/part0.sql;\n\\. inc/part1.sql\nsource inc/part2.sql\n")
    rng = random.Random(23)
    suffix = uuid.uuid4().hex[:8]
    names = [f"i23c_k9_{trial}_{suffix}" for trial in range(2)]
    with client_database("i23c_k9_client") as reference:
        client = client_result([tmp_path / "sql" / "mixed.sql"], reference, CHARSET)
        try:
            for trial, name in enumerate(names):
                create_database(name)
                url = f"{MARIADB_ROOT}/{name}?charset=utf8mb4"
                execution = f"EXEC_K9_SOURCE_{trial}_{suffix}"
                done = [0]  # statements the ledger had done at each kill
                for _ in range(2):
                    proc = harness(tmp_path, url, execution)
                    assert proc.stdout is not None and proc.stdout.readline().strip() == "START"
                    while proc.poll() is None and succeeded(tmp_path, execution) <= done[-1]:
                        time.sleep(0.05)  # not before a statement of this run has been done
                    time.sleep(rng.uniform(0.0, 0.8))
                    if proc.poll() is not None:
                        break  # it finished first (the last kill fell after the end): nothing left to kill
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    done.append(succeeded(tmp_path, execution))
                run_to_completion(tmp_path, url, execution)
                assert len(done) > 1 and 0 < done[1] < 300 and succeeded(tmp_path, execution) == 300, done
                assert_same(snapshot(name), client)
        finally:
            for name in names:
                drop_database(name)


def succeeded(tmp_path: Path, execution: str) -> int:
    """Statements of the execution the ledger has as done (what a kill -9 trial has reached)."""
    from sqlalchemy import func, select

    from tasks.store import schema

    t = schema.sql_execution_record
    if not (tmp_path / "home" / "metadata.db").exists():
        return 0
    engine = metadata_engine(tmp_path)
    try:
        for _ in range(50):
            try:
                with engine.connect() as conn:
                    return conn.execute(select(func.count()).where(t.c.execution_id == execution,
                                                                   t.c.status == "SUCCESS")).scalar_one()
            except Exception:  # the store is being created, or written, by the run
                time.sleep(0.05)
        return 0
    finally:
        engine.dispose()
