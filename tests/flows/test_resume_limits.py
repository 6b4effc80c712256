"""Resume limits: a breakpoint expires after 7 days, an execution resumes at most 10 times, abandon starts anew."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from flows.cli import app
from tasks.core.clock import utcnow
from tasks.store import schema
from tasks.store.breakpoints import active_breakpoint
from tests.helpers import open_store

pytestmark = pytest.mark.usefixtures("prefect_api")

UNREACHABLE = "mysql+pymysql://root@127.0.0.1:1/nothing"


def failing_run(isolated_env: Path, url: str) -> tuple[int, dict[str, Any], str]:
    configs = isolated_env / "configs"
    configs.mkdir(exist_ok=True)
    (configs / "317500.json").write_text(json.dumps({"version": "317500", "upgrade_steps": {"pre_business_check": [
        {"id": "ping", "class_name": "ServiceHealthCheckStep", "databases": ["ft_db"]}]}}), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "pre_business_check", "--from", "3.17.0", "--to", "3.17.5", "--site",
                                      "CN", "--json", "--configs", str(configs), "--db", f"ft_db={url}"])
    lines = [line for line in result.output.splitlines() if line.startswith("{")]
    return result.exit_code, (json.loads(lines[-1]) if lines else {}), result.output


def test_a_failed_step_leaves_a_step_level_breakpoint_resolved_by_the_resume(
        isolated_env: Path, mariadb_database: str) -> None:
    code, report, _ = failing_run(isolated_env, UNREACHABLE)
    assert code == 1
    store = open_store(None)
    bp = active_breakpoint(store.engine, report["execution_id"])
    assert bp is not None and bp.kind == "STEP_LEVEL" and bp.step_id == "ping"
    code, again, _ = failing_run(isolated_env, mariadb_database)
    assert code == 0 and again["execution_id"] == report["execution_id"]
    assert active_breakpoint(store.engine, report["execution_id"]) is None
    store.close()


def test_an_expired_breakpoint_refuses_to_resume_with_a_clear_error(isolated_env: Path, mariadb_database: str) -> None:
    code, report, _ = failing_run(isolated_env, UNREACHABLE)
    store = open_store(None)
    with store.engine.begin() as conn:
        conn.execute(update(schema.upgrade_breakpoint).values(expiry_time=utcnow() - timedelta(minutes=1)))
    store.close()
    code, _, output = failing_run(isolated_env, mariadb_database)
    assert code == 2
    text = " ".join(output.split())
    assert f"of execution {report['execution_id']} expired on" in text
    assert "breakpoints are kept 7 days" in text and "ft-upgrade abandon" in text
    for attempt in range(2):  # every later attempt is refused too: a run, and the CLI resume
        code, _, output = failing_run(isolated_env, mariadb_database)
        assert code == 2, (attempt, output)
        assert f"of execution {report['execution_id']} expired" in " ".join(output.split())
    resumed = CliRunner().invoke(app, ["resume", report["execution_id"]])
    assert resumed.exit_code == 2 and "expired" in resumed.output
    store = open_store(None)
    assert store.get_execution(report["execution_id"]).status == "EXPIRED"
    store.close()


def test_an_execution_resumes_at_most_ten_times(isolated_env: Path, mariadb_database: str) -> None:
    code, report, _ = failing_run(isolated_env, UNREACHABLE)
    store = open_store(None)
    store.update_execution(report["execution_id"], resume_count=10)
    store.close()
    code, _, output = failing_run(isolated_env, mariadb_database)
    assert code == 2
    assert "has been resumed 10 times, the maximum" in " ".join(output.split())


def test_abandon_makes_the_next_run_a_new_execution(isolated_env: Path, mariadb_database: str) -> None:
    code, report, _ = failing_run(isolated_env, UNREACHABLE)
    result = CliRunner().invoke(app, ["abandon", report["execution_id"], "--by", "ops", "--reason", "restored"])
    assert result.exit_code == 0, result.output
    code, again, _ = failing_run(isolated_env, mariadb_database)
    assert code == 0 and again["execution_id"] != report["execution_id"]
    resumed = CliRunner().invoke(app, ["resume", report["execution_id"]])
    assert resumed.exit_code == 2 and "was abandoned" in resumed.output
