"""The SQL engine on the real MariaDB: ledger, markers, breakpoints, edit-aware resume, timeouts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, select, text, update

from tasks.core.errors import InputError, StepFailed
from tasks.sql.step import SqlScriptParams, SqlScriptStep
from tasks.store import schema
from tasks.store.breakpoints import OperatorDecision, active_breakpoint, record_decision
from tests.helpers import step_context

pytestmark = pytest.mark.mariadb


@pytest.fixture
def second_database(mariadb_database: str) -> Iterator[str]:
    """A second fresh database (the 中台 database in these tests)."""
    admin = create_engine(mariadb_database.rsplit("/", 1)[0] + "/test")
    name = "ft_mid_" + mariadb_database.rsplit("/", 1)[1].split("?")[0][-10:]
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}`"))
    try:
        yield mariadb_database.rsplit("/", 1)[0] + f"/{name}?charset=utf8mb4"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


def write(root: Path, name: str, body: str) -> str:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return name


def run_step(tmp_path: Path, databases: dict[str, str], files: list[str], *, execution_id: str = "EXEC_T",
             **params: Any) -> dict[str, Any]:
    with step_context(tmp_path, databases=databases, sql_root=tmp_path / "sql", execution_id=execution_id) as ctx:
        step = SqlScriptStep(SqlScriptParams(sql_scripts=files, **params), ctx)
        return step.run().details


def execute(url: str, sql: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def ledger(tmp_path: Path) -> list[dict[str, Any]]:
    engine = create_engine(f"sqlite:///{tmp_path / 'home' / 'metadata.db'}")
    with engine.connect() as conn:
        rows = conn.execute(select(schema.sql_execution_record).order_by(
            schema.sql_execution_record.c.sql_file_name, schema.sql_execution_record.c.sql_sequence)).mappings().all()
    engine.dispose()
    return [dict(r) for r in rows]


def metadata_engine(tmp_path: Path) -> Any:
    return create_engine(f"sqlite:///{tmp_path / 'home' / 'metadata.db'}")


SCRIPT = """-- @database: ft_db
CREATE TABLE side (n INT NOT NULL, note VARCHAR(32));
INSERT INTO side VALUES (1, '第一');
INSERT INTO side VALUES (2, 'two; not a split');
CREATE TABLE t (id INT PRIMARY KEY);
INSERT INTO t VALUES (1);
INSERT INTO t VALUES (1);
INSERT INTO side VALUES (3, 'after the failure');
"""


def test_every_statement_gets_a_ledger_row_with_position_hash_and_outcome(tmp_path: Path,
                                                                          mariadb_database: str) -> None:
    name = write(tmp_path / "sql", "a.sql", SCRIPT.replace("INSERT INTO t VALUES (1);\nINSERT INTO t VALUES (1);",
                                                           "INSERT INTO t VALUES (1);"))
    details = run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    assert details["success"] == 6 and details["failed"] == 0
    rows = ledger(tmp_path)
    assert [(r["sql_sequence"], r["sql_line_number"], r["status"]) for r in rows] == [
        (1, 2, "SUCCESS"), (2, 3, "SUCCESS"), (3, 4, "SUCCESS"), (4, 5, "SUCCESS"), (5, 6, "SUCCESS"),
        (6, 7, "SUCCESS")]
    assert rows[1]["affected_rows"] == 1
    assert rows[1]["sql_content"] == "INSERT INTO side VALUES (1, '第一')"
    assert len(rows[1]["sql_content_hash"]) == 64
    assert rows[0]["target_database"] == "ft_db"
    assert all(r["duration"] is not None and r["end_time"] is not None for r in rows)


def test_failure_leaves_an_active_breakpoint_and_resume_continues_at_the_fixed_statement(
        tmp_path: Path, mariadb_database: str) -> None:
    name = write(tmp_path / "sql", "a.sql", SCRIPT)
    with pytest.raises(StepFailed, match=r"a.sql:7: statement #6 on ft_db failed: \[1062\] Duplicate entry"):
        run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    bp = active_breakpoint(metadata_engine(tmp_path), "EXEC_T")
    assert bp is not None
    assert (bp.sql_file_name, bp.sql_line_number, bp.sql_sequence, bp.error_code) == ("a.sql", 7, 6, "1062")
    assert bp.sql_content == "INSERT INTO t VALUES (1)"
    assert bp.status == "ACTIVE"
    assert (bp.expiry_time - bp.breakpoint_time).days == 7
    assert [r["status"] for r in ledger(tmp_path)] == ["SUCCESS"] * 5 + ["FAILED", "PENDING"]

    write(tmp_path / "sql", "a.sql", SCRIPT.replace("INSERT INTO t VALUES (1);\nINSERT INTO t VALUES (1);",
                                                    "INSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);"))
    details = run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    assert details["skipped"] == 5 and details["success"] == 2
    assert query(mariadb_database, "SELECT n, COUNT(*) FROM side GROUP BY n ORDER BY n") == [(1, 1), (2, 1), (3, 1)]
    assert active_breakpoint(metadata_engine(tmp_path), "EXEC_T") is None


def test_editing_a_statement_that_already_ran_is_refused_with_file_line_and_both_hashes(
        tmp_path: Path, mariadb_database: str) -> None:
    name = write(tmp_path / "sql", "a.sql", SCRIPT)
    with pytest.raises(StepFailed):
        run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    write(tmp_path / "sql", "a.sql", SCRIPT.replace("'第一'", "'first'"))
    with pytest.raises(InputError) as info:
        run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    message = str(info.value)
    assert "a.sql:3: statement #2 already executed with sha256" in message
    assert "the file now has" in message
    assert query(mariadb_database, "SELECT COUNT(*) FROM side") == [(2,)], "nothing ran"


def test_session_state_of_the_skipped_part_is_replayed_before_continuing(
        tmp_path: Path, mariadb_database: str) -> None:
    schema_name = mariadb_database.rsplit("/", 1)[1].split("?")[0]
    body = f"""/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE */;
/*!40101 SET SQL_MODE='ANSI_QUOTES' */;
SET @answer := 42;
USE `{schema_name}`;
CREATE TABLE kv (k VARCHAR(8) PRIMARY KEY, v INT);
INSERT INTO kv VALUES ('a', @answer);
INSERT INTO kv VALUES ('b', missing_column);
INSERT INTO kv VALUES ('mode', @@SQL_MODE LIKE '%ANSI_QUOTES%');
/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
INSERT INTO kv VALUES ('restored', @@SQL_MODE LIKE '%ANSI_QUOTES%');
"""
    name = write(tmp_path / "sql", "s.sql", body)
    with pytest.raises(StepFailed, match="Unknown column 'missing_column'"):
        run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    write(tmp_path / "sql", "s.sql", body.replace("missing_column", "@answer + 1"))
    run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    assert query(mariadb_database, "SELECT k, v FROM kv ORDER BY k") == [
        ("a", 42), ("b", 43), ("mode", 1), ("restored", 0)]


def test_dml_found_running_after_a_crash_is_decided_by_its_marker_and_not_run_twice(
        tmp_path: Path, mariadb_database: str) -> None:
    name = write(tmp_path / "sql", "m.sql", "CREATE TABLE side (n INT);\nINSERT INTO side VALUES (1);\n"
                                            "INSERT INTO later SELECT 1;\n")
    with pytest.raises(StepFailed):  # the step stops (its markers stay: only a finished step drops them)
        run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    engine = metadata_engine(tmp_path)
    with engine.begin() as conn:  # what a kill -9 right after COMMIT leaves behind
        conn.execute(update(schema.sql_execution_record).where(
            schema.sql_execution_record.c.sql_sequence == 2).values(status="RUNNING"))
    execute(mariadb_database, "CREATE TABLE later (n INT)")  # the operator's fix
    details = run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    assert details["success"] == 2  # #2 decided applied (not executed), #3 executed
    assert query(mariadb_database, "SELECT COUNT(*) FROM side") == [(1,)]


def test_ddl_found_running_is_decided_by_a_catalog_probe(tmp_path: Path, mariadb_database: str) -> None:
    name = write(tmp_path / "sql", "d.sql", "CREATE TABLE a (id INT);\nALTER TABLE a ADD COLUMN c INT;\n")
    run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    with metadata_engine(tmp_path).begin() as conn:  # killed after the ALTER, before its SUCCESS was written
        conn.execute(update(schema.sql_execution_record).where(
            schema.sql_execution_record.c.sql_sequence == 2).values(status="RUNNING"))
    details = run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    assert details["success"] == 1 and details["failed"] == 0, "settled by information_schema, not re-run"
    assert [r["status"] for r in ledger(tmp_path)] == ["SUCCESS", "SUCCESS"]


def test_ddl_the_catalog_cannot_settle_waits_for_the_operators_inflight_decision(
        tmp_path: Path, mariadb_database: str) -> None:
    name = write(tmp_path / "sql", "r.sql", "CREATE TABLE a (id INT);\nRENAME TABLE a TO b;\n")
    run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    engine = metadata_engine(tmp_path)
    with engine.begin() as conn:
        conn.execute(update(schema.sql_execution_record).where(
            schema.sql_execution_record.c.sql_sequence == 2).values(status="RUNNING"))
    with pytest.raises(StepFailed, match="r.sql:2: .*--inflight applied"):
        run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    assert ledger(tmp_path)[1]["status"] == "RUNNING", "still in doubt"
    assert record_decision(engine, "EXEC_T", OperatorDecision(inflight="applied", by="ops", notes="checked by hand"))
    run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    assert [r["status"] for r in ledger(tmp_path)] == ["SUCCESS"] * 2
    assert query(mariadb_database, "SHOW TABLES") == [("b",)], "the markers live in the tool's own schema"


def test_a_statement_over_its_timeout_is_killed_on_the_server(tmp_path: Path, mariadb_database: str) -> None:
    """A statement stuck behind a lock (a real upgrade hazard) is interrupted, not left waiting."""
    engine = create_engine(mariadb_database)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE x (id INT PRIMARY KEY)"))
        conn.execute(text("INSERT INTO x VALUES (1)"))
    holder = engine.connect()
    tx = holder.begin()
    holder.execute(text("SELECT * FROM x WHERE id = 1 FOR UPDATE"))
    try:
        name = write(tmp_path / "sql", "slow.sql", "UPDATE x SET id = 2 WHERE id = 1;\n")
        with pytest.raises(StepFailed, match=r"timed out: the step's timeout of 1s was exceeded"):
            run_step(tmp_path, {"ft_db": mariadb_database}, [name], statement_timeout=1)
        assert query(mariadb_database, "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                                       "WHERE INFO LIKE 'UPDATE x SET id = 2%'") == [(0,)]
    finally:
        tx.rollback()
        holder.close()
        engine.dispose()


def test_per_file_transaction_rolls_back_every_database_it_touched(
        tmp_path: Path, mariadb_database: str, second_database: str) -> None:
    setup = write(tmp_path / "sql", "setup.sql", "CREATE TABLE a (id INT PRIMARY KEY);\n"
                                                 "-- @database: middle_db\nCREATE TABLE b (id INT PRIMARY KEY);\n")
    run_step(tmp_path, {"ft_db": mariadb_database, "middle_db": second_database}, [setup], execution_id="SETUP")
    body = ("INSERT INTO a VALUES (1);\n-- @database: middle_db\nINSERT INTO b VALUES (1);\n"
            "INSERT INTO b VALUES (1);\n")
    name = write(tmp_path / "sql", "tx.sql", body)
    dbs = {"ft_db": mariadb_database, "middle_db": second_database}
    with pytest.raises(StepFailed, match="transaction per_file rolled back on ft_db, middle_db"):
        run_step(tmp_path, dbs, [name], transaction="per_file")
    assert query(mariadb_database, "SELECT COUNT(*) FROM a") == [(0,)]
    assert query(second_database, "SELECT COUNT(*) FROM b") == [(0,)]
    assert [r["status"] for r in ledger(tmp_path) if r["sql_file_name"] == "tx.sql"] == [
        "PENDING", "PENDING", "FAILED"]
    write(tmp_path / "sql", "tx.sql", body.replace("INSERT INTO b VALUES (1);\n\n", "").replace(
        "INSERT INTO b VALUES (1);\nINSERT INTO b VALUES (1);", "INSERT INTO b VALUES (1);\nINSERT INTO b VALUES (2);"))
    run_step(tmp_path, dbs, [name], transaction="per_file")
    assert query(second_database, "SELECT id FROM b ORDER BY id") == [(1,), (2,)]


def test_per_file_transaction_refuses_ddl_before_running(tmp_path: Path, mariadb_database: str) -> None:
    name = write(tmp_path / "sql", "bad.sql", "INSERT INTO a VALUES (1);\nCREATE TABLE c (id INT);\n")
    with pytest.raises(InputError, match="bad.sql:2: transaction per_file allows only DML"):
        run_step(tmp_path, {"ft_db": mariadb_database}, [name], transaction="per_file")


def test_unknown_database_missing_file_and_escaping_path_fail_before_anything_runs(
        tmp_path: Path, mariadb_database: str) -> None:
    ok = write(tmp_path / "sql", "ok.sql", "CREATE TABLE ran (id INT);\n")
    bad = write(tmp_path / "sql", "bad.sql", "-- @database: nowhere_db\nSELECT 1;\n")
    with pytest.raises(InputError, match="logical database 'nowhere_db' is not configured"):
        run_step(tmp_path, {"ft_db": mariadb_database}, [ok, bad])
    with pytest.raises(InputError, match="missing.sql: SQL script not found"):
        run_step(tmp_path, {"ft_db": mariadb_database}, [ok, "missing.sql"])
    with pytest.raises(ValueError, match="stay inside it"):
        SqlScriptParams(sql_scripts=["../etc/passwd"])
    assert query(mariadb_database, "SHOW TABLES LIKE 'ran'") == []


def test_secrets_in_sql_never_reach_the_ledger_or_breakpoint(tmp_path: Path, mariadb_database: str) -> None:
    user = "ft_" + tmp_path.name[-8:].replace("-", "_")
    name = write(tmp_path / "sql", "u.sql",
                 f"CREATE USER IF NOT EXISTS '{user}'@'localhost' IDENTIFIED BY 'Sup3rS3cret';\n"
                 f"DROP USER '{user}'@'localhost';\nSELECT PASSWORD('Sup3rS3cret') FROM no_such_table;\n")
    with pytest.raises(StepFailed) as info:
        run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    assert "Sup3rS3cret" not in str(info.value)
    assert all("Sup3rS3cret" not in (r["sql_content"] or "") for r in ledger(tmp_path))
    bp = active_breakpoint(metadata_engine(tmp_path), "EXEC_T")
    assert bp is not None and "Sup3rS3cret" not in json.dumps(bp, default=str)


def test_integrity_checks_compare_across_databases(tmp_path: Path, mariadb_database: str,
                                                  second_database: str) -> None:
    name = write(tmp_path / "sql", "v.sql", "CREATE TABLE o (id INT);\nINSERT INTO o VALUES (1), (2);\n"
                                            "-- @database: middle_db\nCREATE TABLE s (id INT);\n"
                                            "INSERT INTO s VALUES (1);\n")
    dbs = {"ft_db": mariadb_database, "middle_db": second_database}
    verify = [{"name": "orders synced", "sql": "SELECT COUNT(*) FROM o",
               "compare_to": {"database": "middle_db", "sql": "SELECT COUNT(*) FROM s"}},
              {"name": "two orders", "sql": "SELECT COUNT(*) FROM o", "expect": 2}]
    with pytest.raises(StepFailed, match="integrity check failed: orders synced: ft_db=2 == middle_db=1"):
        run_step(tmp_path, dbs, [name], verify=verify)


def test_parallel_step_runs_files_of_different_databases_together(tmp_path: Path, mariadb_database: str,
                                                                  second_database: str) -> None:
    a = write(tmp_path / "sql", "a.sql", "CREATE TABLE pa (id INT);\nINSERT INTO pa SELECT SLEEP(1);\n")
    b = write(tmp_path / "sql", "b.sql", "-- @database: middle_db\nCREATE TABLE pb (id INT);\n"
                                         "INSERT INTO pb SELECT SLEEP(1);\n")
    import time

    start = time.monotonic()
    details = run_step(tmp_path, {"ft_db": mariadb_database, "middle_db": second_database}, [a, b], parallel=True)
    assert details["success"] == 4
    assert time.monotonic() - start < 3.5, "the two one-second files overlapped"


def test_every_statement_is_an_event_in_clickhouse_within_a_second(tmp_path: Path, mariadb_database: str) -> None:
    import time

    body = ("CREATE TABLE e (id INT);\nINSERT INTO e VALUES (1);\n"
            "CREATE USER IF NOT EXISTS 'ev_user'@'localhost' IDENTIFIED BY 'Hidden99';\n"
            "DROP USER 'ev_user'@'localhost';\n")
    name = write(tmp_path / "sql", "e.sql", body)
    with step_context(tmp_path, databases={"ft_db": mariadb_database}, sql_root=tmp_path / "sql",
                      execution_id="EXEC_EV") as ctx:
        assert ctx.resources.event_writer().flush(timeout=60)  # booted when the run starts, as the runner does
        SqlScriptStep(SqlScriptParams(sql_scripts=[name]), ctx).run()
        finished = time.monotonic()
        log = ctx.resources.event_log()
        while len(log.events("EXEC_EV")) < 4 and time.monotonic() - finished < 1.0:
            time.sleep(0.02)
        events = log.events("EXEC_EV")
    assert [(e.line, e.status, e.database) for e in events] == [
        (1, "SUCCESS", "ft_db"), (2, "SUCCESS", "ft_db"), (3, "SUCCESS", "ft_db"), (4, "SUCCESS", "ft_db")]
    assert "Hidden99" not in events[2].sql_text and "IDENTIFIED BY '***'" in events[2].sql_text


@pytest.mark.parametrize("dml", [1, 3], ids=["single statement", "a batch"])
def test_dml_whose_success_never_reached_the_ledger_is_not_run_again(
        tmp_path: Path, mariadb_database: str, dml: int) -> None:
    """Regression (found by the kill -9 test): a kill after COMMIT but before the buffered SUCCESS was saved."""
    body = "CREATE TABLE side (n INT);\n" + "".join(f"INSERT INTO side VALUES ({i});\n" for i in range(dml))
    name = write(tmp_path / "sql", "p.sql", body + "INSERT INTO later SELECT 1;\n")
    with pytest.raises(StepFailed):  # the step stops after them (a finished step would drop its markers)
        run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    with metadata_engine(tmp_path).begin() as conn:
        conn.execute(update(schema.sql_execution_record).where(
            schema.sql_execution_record.c.sql_sequence.between(2, dml + 1)).values(status="PENDING"))
    execute(mariadb_database, "CREATE TABLE later (n INT)")
    details = run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    assert details["failed"] == 0 and details["success"] == dml + 1
    assert query(mariadb_database, "SELECT COUNT(*) FROM side") == [(dml,)]
    assert [r["status"] for r in ledger(tmp_path)] == ["SUCCESS"] * (dml + 2)


CLIENT_LIKE = """CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL);
INSERT INTO t VALUES (1, 10), (2, 20);
DELIMITER //
INSERT INTO t VALUES (3, 30); INSERT INTO t VALUES (4, 40)//
DELIMITER ;
UPDATE t SET v = v WHERE id = 1;
UPDATE t SET v = 11 WHERE id = 1;
"""


def test_a_delimiter_block_of_several_statements_and_affected_rows_behave_as_in_the_client(
        tmp_path: Path, mariadb_database: str, second_database: str) -> None:
    """The client sends ``a; b`` of a DELIMITER block as one query the server runs whole, and counts changed rows."""
    if shutil.which("mariadb") is None:
        pytest.skip("the mariadb client is not installed")
    name = write(tmp_path / "sql", "c.sql", CLIENT_LIKE)
    run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    url = make_url(second_database)
    subprocess.run(["mariadb", f"--host={url.host}", f"--port={url.port or 3306}", f"--user={url.username}",
                    str(url.database)], input=CLIENT_LIKE.encode(), check=True)
    ours = query(mariadb_database, "SELECT * FROM t ORDER BY id")
    assert ours == query(second_database, "SELECT * FROM t ORDER BY id") == [(1, 11), (2, 20), (3, 30), (4, 40)]
    assert [r["affected_rows"] for r in ledger(tmp_path)] == [0, 2, 1, 0, 1], "UPDATE to the same value: 0"


def test_ledger_and_breakpoint_on_a_mariadb_metadata_store(tmp_path: Path, mariadb_database: str,
                                                            second_database: str) -> None:
    name = write(tmp_path / "sql", "a.sql", SCRIPT)
    databases = {"ft_db": mariadb_database, "metadata": second_database}
    with pytest.raises(StepFailed, match="a.sql:7"):
        run_step(tmp_path, databases, [name])
    store = create_engine(second_database)
    t = schema.sql_execution_record
    with store.connect() as conn:
        statuses = [r.status for r in conn.execute(select(t.c.status).order_by(t.c.sql_sequence))]
    assert statuses == ["SUCCESS"] * 5 + ["FAILED", "PENDING"]
    assert active_breakpoint(store, "EXEC_T").sql_line_number == 7
    (tmp_path / "sql" / name).write_text(SCRIPT.replace("INSERT INTO t VALUES (1);\nINSERT INTO t VALUES (1);",
                                                        "INSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);"))
    details = run_step(tmp_path, databases, [name])
    assert details["success"] == 2 and details["skipped"] == 5
    with store.connect() as conn:
        assert {r.status for r in conn.execute(select(t.c.status))} == {"SUCCESS"}
    assert active_breakpoint(store, "EXEC_T") is None
    store.dispose()


def test_every_statement_reaches_the_step_log_in_the_requirements_format(tmp_path: Path,
                                                                          mariadb_database: str) -> None:
    import logging

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("test.sql_engine.statements")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    name = write(tmp_path / "sql", "a.sql", SCRIPT)
    try:
        with step_context(tmp_path, databases={"ft_db": mariadb_database}, sql_root=tmp_path / "sql",
                          execution_id="EXEC_LOG") as ctx, pytest.raises(StepFailed):
            ctx.logger = logger
            SqlScriptStep(SqlScriptParams(sql_scripts=[name]), ctx).run()
    finally:
        logger.removeHandler(handler)
    text = "\n".join(r.getMessage() for r in records)
    lines = [int(n) for n in re.findall(r"文件: a\.sql, 行号: (\d+)\nSQL: .*\n数据库: ft_db\n执行状态: \S+\n耗时: "
                                        r"\d+\.\d{3}秒\n影响行数: \d+", text)]
    assert lines == [2, 3, 4, 5, 6, 7], "every statement once, in order"
    assert records[-1].levelno == logging.ERROR and "行号: 7" in records[-1].getMessage()
    assert len(records) < len(lines), "several statements share a record"


def test_dml_whose_success_was_lost_is_decided_by_its_marker_even_when_its_second_run_fails(
        tmp_path: Path, mariadb_database: str) -> None:
    """A kill loses the buffered SUCCESS of an INSERT that committed; on resume the INSERT fails on its own
    row (duplicate key) — its marker says it was applied, so the step goes on instead of stopping."""
    name = write(tmp_path / "sql", "a.sql", "CREATE TABLE kv (k VARCHAR(8) PRIMARY KEY);\n"
                                            "INSERT INTO kv VALUES ('top');\nINSERT INTO later VALUES (1);\n")
    with pytest.raises(StepFailed, match="a.sql:3"):
        run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    engine = metadata_engine(tmp_path)
    with engine.begin() as conn:  # as if the process died before the background writer wrote the SUCCESS
        conn.execute(update(schema.sql_execution_record).where(schema.sql_execution_record.c.sql_sequence == 2)
                     .values(status="PENDING"))
    engine.dispose()
    execute(mariadb_database, "CREATE TABLE later (n INT)")
    details = run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    assert details["failed"] == 0 and query(mariadb_database, "SELECT k FROM kv") == [("top",)]
    assert [r["execution_result"] for r in ledger(tmp_path)][1] == "already applied (its marker is present)"
