"""A step's config ``timeout`` and ``retry_count`` through a cutpoint flow on a real Prefect API."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from flows.cli import app
from tests.helpers import open_store

pytestmark = pytest.mark.usefixtures("prefect_api")


def run(folder: Path, database: str, steps: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    configs = folder / "configs"
    configs.mkdir(exist_ok=True)
    (configs / "317500.json").write_text(json.dumps(
        {"version": "317500", "upgrade_steps": {"startup_pre_process": steps}}), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "startup_pre_process", "--from", "3.17.0", "--to", "3.17.5", "--site",
                                      "CN", "--json", "--configs", str(configs), "--sql-root", str(folder / "sql"),
                                      "--db", f"ft_db={database}",
                                      "--waive", "pre_upgrade_process", "--reason", "test: this cutpoint alone"])
    lines = [line for line in result.output.splitlines() if line.startswith("{")]
    assert lines, result.output
    return result.exit_code, json.loads(lines[-1])


def test_a_step_over_its_timeout_stops_with_a_breakpoint_and_its_statement_is_killed(
        isolated_env: Path, mariadb_database: str) -> None:
    (isolated_env / "sql").mkdir()
    (isolated_env / "sql" / "slow.sql").write_text("DO SLEEP(30);\n", encoding="utf-8")
    started = time.monotonic()
    code, report = run(isolated_env, mariadb_database, [
        {"id": "sql_001", "class_name": "SqlScriptStep", "sql_scripts": ["slow.sql"], "timeout": 2}])
    assert time.monotonic() - started < 20
    assert code == 1 and report["status"] == "FAILED"
    [bp] = report["breakpoints"]
    assert bp["step_id"] == "sql_001"
    assert "timeout of 2 s" in json.dumps(bp), bp
    schema = mariadb_database.rsplit("/", 1)[1].split("?")[0]
    with create_engine(mariadb_database).connect() as conn:
        left = conn.execute(text("SELECT id, info FROM information_schema.PROCESSLIST WHERE db = :db "
                                 "AND info LIKE 'DO SLEEP%'"), {"db": schema}).all()
    assert left == [], "the statement was killed on the server, not left running"


def test_retry_count_retries_a_failed_step_and_an_exhausted_one_stops(
        isolated_env: Path, mariadb_database: str) -> None:
    os.environ["FT_UPGRADE_STEP_MODULES"] = "tests.flows"
    flaky = {"class_name": "tests.flows.site_steps.FlakyStep", "retry_count": 1, "retry_delay_seconds": 0}
    code, report = run(isolated_env, mariadb_database, [
        {"id": "once", **flaky, "counter": str(isolated_env / "once")},
        {"id": "twice", **flaky, "counter": str(isolated_env / "twice"), "failures": 2}])
    assert code == 1
    by_step = {s["step_id"]: s for s in report["step_results"]}
    assert by_step["once"]["status"] == "SUCCESS"
    assert by_step["twice"]["status"] == "FAILED"
    assert [bp["step_id"] for bp in report["breakpoints"]] == ["twice"]
    assert (isolated_env / "twice").read_text() == "2", "one retry, then no more"
    rows = {r.step_id: r for r in open_store("CN").step_runs(report["execution_id"])}
    assert (rows["once"].retry_count, rows["twice"].retry_count) == (1, 1)


def test_a_step_busy_in_python_past_its_deadline_is_interrupted() -> None:
    from tasks.execution.step_deadline import StepDeadline, StepTimedOut

    deadline = StepDeadline("busy", 0.2)
    with pytest.raises(StepTimedOut), deadline:
        while True:
            pass
    assert deadline.expired and deadline.message == "step busy exceeded its timeout of 0.2 s"
    with StepDeadline("quick", 5) as quick:
        pass
    assert not quick.expired
