"""Statements as task runs in the Prefect UI: quick ones share a task run, a long one and a failing one
get a task run of their own (tasks/sql/windows.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogWorker
from sqlalchemy import text
from typer.testing import CliRunner

from flows.cli import app
from tests.helpers import open_store

pytestmark = pytest.mark.usefixtures("prefect_api")


def task_runs(flow_run_id: str) -> dict[str, str]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {r.name: r.state.type.value if r.state else "?" for r in runs}


def run(isolated_env: Path, database: str, files: dict[str, str]) -> tuple[int, str]:
    sql = isolated_env / "sql"
    sql.mkdir(exist_ok=True)
    for name, body in files.items():
        (sql / name).write_text(body, encoding="utf-8")
    configs = isolated_env / "configs"
    configs.mkdir(exist_ok=True)
    (configs / "317500.json").write_text(json.dumps({"version": "317500", "upgrade_steps": {"startup_pre_process": [
        {"id": "sql_001", "class_name": "SqlScriptStep", "sql_scripts": list(files)}]}}), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "startup_pre_process", "--from", "3.17.0", "--to", "3.17.5", "--site",
                                      "CN", "--json", "--configs", str(configs), "--sql-root", str(sql),
                                      "--db", f"ft_db={database}",
                                      "--waive", "pre_upgrade_process", "--reason", "test: this cutpoint alone"])
    return result.exit_code, result.output


def test_quick_statements_share_a_task_run_and_a_long_one_has_its_own(isolated_env: Path,
                                                                      mariadb_database: str) -> None:
    os.environ["FT_UPGRADE_STATEMENT_LONG_SECONDS"] = "0.3"
    quick = "CREATE TABLE q (id INT);\n" + "".join(f"INSERT INTO q VALUES ({i});\n" for i in range(20))
    code, output = run(isolated_env, mariadb_database, {"quick.sql": quick, "slow.sql": "DO SLEEP(1);\n",
                                                          "after.sql": "INSERT INTO q VALUES (99);\n"})
    assert code == 0, output
    report = json.loads([line for line in output.splitlines() if line.startswith("{")][-1])
    runs = task_runs(report["flow_run_id"])
    assert runs.pop("sql_001 (3.17.5)") == "COMPLETED"
    assert runs.pop("slow.sql:1 #1") == "COMPLETED", "a statement that runs long has a task run of its own"
    assert set(runs.values()) == {"COMPLETED"}
    assert "quick.sql:1 #1 …" in runs, runs  # the window that starts with the file's first statement
    assert len(runs) <= 3, f"quick statements share task runs, not one each: {sorted(runs)}"
    APILogWorker.drain_all(timeout=10)  # log records go to the API in batches, every two seconds
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[report["flow_run_id"]])))
    quick_logged = max(r.timestamp for r in logs if "文件: quick.sql" in r.message)
    slow_logged = next(r.timestamp for r in logs if "文件: slow.sql" in r.message)
    assert (slow_logged - quick_logged).total_seconds() >= 0.4, "what ran before a long statement is logged meanwhile"


def test_a_failing_statement_has_a_failed_task_run_of_its_own(isolated_env: Path, mariadb_database: str) -> None:
    code, output = run(isolated_env, mariadb_database, {
        "f.sql": "CREATE TABLE f (id INT PRIMARY KEY);\nINSERT INTO f VALUES (1);\nINSERT INTO f VALUES (1);\n"})
    assert code == 1, output
    store = open_store()
    with store.engine.connect() as conn:
        flow_run_id = conn.execute(text("SELECT flow_run_id FROM upgrade_execution")).scalar_one()
    store.close()
    runs = task_runs(flow_run_id)
    assert runs["f.sql:3 #3"] == "FAILED", runs
    assert runs["f.sql:1 #1 …"] == "COMPLETED", runs
