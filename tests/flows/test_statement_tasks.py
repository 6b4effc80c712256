"""Statements are Prefect tasks in the UI; a big file runs as chunk tasks instead (no flood of task runs)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from typer.testing import CliRunner

from flows.cli import app

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_small_files_run_a_task_per_statement_and_big_files_run_chunk_tasks(
        isolated_env: Path, mariadb_database: str) -> None:
    sql = isolated_env / "sql"
    sql.mkdir()
    (sql / "small.sql").write_text("CREATE TABLE s (id INT);\nINSERT INTO s VALUES (1);\n", encoding="utf-8")
    (sql / "big.sql").write_text("CREATE TABLE b (id INT);\n" + "".join(
        f"INSERT INTO b VALUES ({i});\n" for i in range(11)), encoding="utf-8")
    configs = isolated_env / "configs"
    configs.mkdir()
    (configs / "317500.json").write_text(json.dumps({"version": "317500", "upgrade_steps": {"startup_pre_process": [
        {"id": "sql_001", "class_name": "SqlScriptStep", "sql_scripts": ["small.sql", "big.sql"]}]}}),
        encoding="utf-8")
    os.environ["FT_UPGRADE_STATEMENT_TASK_LIMIT"] = "5"
    os.environ["FT_UPGRADE_STATEMENT_CHUNK_SIZE"] = "4"
    result = CliRunner().invoke(app, ["run", "startup_pre_process", "--from", "3.17.0", "--to", "3.17.5", "--site",
                                      "CN", "--json", "--configs", str(configs), "--sql-root", str(sql),
                                      "--db", f"ft_db={mariadb_database}",
                                      "--waive", "pre_upgrade_process", "--reason", "test: this cutpoint alone"])
    assert result.exit_code == 0, result.output
    report = json.loads([line for line in result.output.splitlines() if line.startswith("{")][-1])
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[report["flow_run_id"]])))
    names = sorted(r.name for r in runs)
    assert names == sorted(["sql_001 (3.17.5)", "small.sql:1 #1", "small.sql:2 #2", "big.sql #1-4", "big.sql #5-8",
                            "big.sql #9-12"])
    assert all(r.state is not None and r.state.is_completed() for r in runs)
