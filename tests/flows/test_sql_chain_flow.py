"""A chain of one-file releases through the flow on a real Prefect API: consecutive SQL steps share a task run,
yet each is recorded, stops the run at its failure, resumes, and reports its own schema changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.tasks.sql.test_executor import execute

pytestmark = [pytest.mark.usefixtures("prefect_api"), pytest.mark.mariadb]

RELEASES = {  # version code → script; the second fails until its table exists
    317500: "CREATE TABLE t1 (id INT PRIMARY KEY);\nINSERT INTO t1 VALUES (1);\n",
    317501: "CREATE TABLE t2 (id INT PRIMARY KEY);\nINSERT INTO missing VALUES (1);\n",
    317502: "ALTER TABLE t1 ADD COLUMN note VARCHAR(8);\nUPDATE t1 SET note = 'x';\n",
    317503: "UPDATE t1 SET note = 'y';\n",
}


def write_chain(root: Path) -> tuple[Path, Path]:
    configs, sql = root / "configs", root / "sql"
    configs.mkdir(parents=True)
    sql.mkdir()
    for code, script in RELEASES.items():
        (sql / f"{code}.sql").write_text(script, encoding="utf-8")
        config: dict[str, Any] = {"version": str(code), "upgrade_steps": {"startup_pre_process": [
            {"id": f"sql_{code}", "class_name": "PatchSqlExecutorStep", "sql_scripts": [f"{code}.sql"]}]}}
        if code != 317500:
            config.update(version_type="patch", base_version="317500")
        (configs / f"{code}.json").write_text(json.dumps(config), encoding="utf-8")
    return configs, sql


def run(configs: Path, sql: Path, database: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, ["run", "startup_pre_process", "--from", "3.17.0", "--to", "3.17.5-P3",
                                      "--site", "CHAIN", "--waive", "pre_upgrade_process", "--reason", "test",
                                      "--configs", str(configs), "--sql-root", str(sql), "--db", f"ft_db={database}",
                                      "--json"])
    lines = [line for line in result.output.splitlines() if line.startswith("{")]
    assert lines, result.output
    return result.exit_code, json.loads(lines[-1])


def test_grouped_sql_steps_stop_resume_and_report_their_own_schema_changes(
        isolated_env: Path, mariadb_database: str) -> None:
    configs, sql = write_chain(isolated_env)
    code, report = run(configs, sql, mariadb_database)
    assert code == 1
    assert [(s["step_id"], s["status"]) for s in report["step_results"]] == [
        ("sql_317500", "SUCCESS"), ("sql_317501", "FAILED")], "the group stops at the failed step"
    execute(mariadb_database, "CREATE TABLE missing (n INT)")
    code, report = run(configs, sql, mariadb_database)
    assert code == 0, report
    steps = {s["step_id"]: s for s in report["step_results"]}
    assert [s["status"] for s in steps.values()] == ["SUCCESS"] * 4

    def changed(step: str) -> set[tuple[str, str]]:
        return {(c["object"], c["change"]) for c in steps[step]["details"]["schema_changes"]["ft_db"]}

    assert ("table t2", "created") in changed("sql_317501")
    assert changed("sql_317502") == {("table t1", "changed")}, "its before is the step before's after, not older"
    assert changed("sql_317503") == set(), "a DML-only release changes no schema"
