"""Whose time limit stopped a statement, and after how long (issue 23, item 7)."""

from __future__ import annotations

from pathlib import Path

import pymysql
import pytest

from tasks.core.errors import StepFailed
from tasks.sql.timeouts import own_limit, timeout_message
from tests.tasks.sql.test_executor import ledger, run_step, write

pytestmark = pytest.mark.mariadb


def test_the_scripts_own_limit_is_named_with_the_real_duration(tmp_path: Path, mariadb_database: str) -> None:
    db = mariadb_database.rsplit("/", 1)[1].split("?")[0]
    blocker = pymysql.connect(host="127.0.0.1", user="root", database=db, autocommit=True)
    try:
        with blocker.cursor() as cur:
            cur.execute("CREATE TABLE t (n INT)")
            cur.execute("START TRANSACTION")
            cur.execute("SELECT * FROM t")  # holds the metadata lock: the ALTER waits until its own limit
        write(tmp_path / "sql", "a.sql", "SET STATEMENT max_statement_time=1 FOR ALTER TABLE t ADD c INT;\n")
        with pytest.raises(StepFailed) as info:
            run_step(tmp_path, {"ft_db": mariadb_database}, ["a.sql"])
    finally:
        blocker.close()
    message = ledger(tmp_path)[0]["error_message"]
    assert "[1969]" in str(info.value)
    assert "statement's own limit (max_statement_time=1s in the statement) after 1." in message, message
    assert "300s and was killed" not in message and "not by the step's timeout of 300s" in message


def test_each_limit_is_told_apart() -> None:
    assert own_limit("SET STATEMENT max_statement_time=2.5 FOR UPDATE t SET n = 1") == 2.5
    assert own_limit("SELECT /*+ MAX_EXECUTION_TIME(1500) */ * FROM t") == 1.5
    session = timeout_message("1969", "interrupted", "ALTER TABLE t ADD c INT", elapsed_ms=5100,
                              step_timeout=300, session_limit=5)
    assert session.startswith("stopped by the session's max_statement_time=5s (set by the script") \
        and "after 5.1s" in session
    step = timeout_message("1969", "interrupted", "ALTER TABLE t ADD c INT", elapsed_ms=300400,
                           step_timeout=300, session_limit=300)
    assert step.startswith("timed out: the step's timeout of 300s") and "after 300.4s" in step
    killed = timeout_message("1317", "Query execution was interrupted", "UPDATE t SET n = 1", elapsed_ms=2000,
                             step_timeout=300, session_limit=300)
    assert killed.startswith("interrupted after 2.0s by a KILL from another connection")
    assert timeout_message("1062", "Duplicate", "INSERT", elapsed_ms=1, step_timeout=300, session_limit=300) == \
        "Duplicate"
