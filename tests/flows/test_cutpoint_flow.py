"""A cutpoint flow end to end on a real Prefect API and the real MariaDB, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flows.cli import app

pytestmark = pytest.mark.usefixtures("prefect_api")

UNREACHABLE = "mysql+pymysql://root:s3cretpw@127.0.0.1:1/nothing"


def write_config(folder: Path, steps: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = {"version": "317500", "dependencies": {"min_source_version": "3.17.0"},
            "upgrade_steps": {"pre_business_check": steps}}
    (folder / "317500.json").write_text(json.dumps(data), encoding="utf-8")
    return folder


def health(step_id: str, database: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "class_name": "ServiceHealthCheckStep", "databases": [database], **extra}


def run_cli(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, ["run", "pre_business_check", "--from", "3.17.0", "--to", "3.17.5",
                                      "--site", "CN", "--json", *args])
    lines = [line for line in result.output.splitlines() if line.startswith("{")]
    assert lines, result.output
    return result.exit_code, json.loads(lines[-1])


def test_optional_step_failure_is_a_warning_and_the_run_succeeds(
        isolated_env: Path, mariadb_database: str) -> None:
    configs = write_config(isolated_env / "configs", [
        health("ping_ft", "ft_db"),
        health("ping_optional", "broken_db", required=False),
        health("after", "ft_db", dependencies=["ping_ft"]),
    ])
    code, report = run_cli("--configs", str(configs), "--db", f"ft_db={mariadb_database}",
                           "--db", f"broken_db={UNREACHABLE}")
    assert code == 0
    assert report["status"] == "SUCCESS"
    assert report["steps"] == {"total": 3, "success": 2, "warning": 1, "failed": 0, "skipped": 0, "pending": 0}
    assert "s3cretpw" not in json.dumps(report)


def test_failed_run_exits_1_and_a_rerun_resumes_without_repeating_done_steps(
        isolated_env: Path, mariadb_database: str) -> None:
    configs = write_config(isolated_env / "configs", [
        health("ping_ft", "ft_db"),
        health("ping_middle", "middle_db"),
        health("ping_again", "ft_db"),
    ])
    code, failed = run_cli("--configs", str(configs), "--db", f"ft_db={mariadb_database}",
                           "--db", f"middle_db={UNREACHABLE}")
    assert code == 1
    assert failed["status"] == "FAILED"
    by_step = {s["step_id"]: s for s in failed["step_results"]}
    assert by_step["ping_ft"]["status"] == "SUCCESS"
    assert by_step["ping_middle"]["status"] == "FAILED"
    assert "ping_again" not in by_step
    assert "s3cretpw" not in json.dumps(failed)
    assert any("ft-upgrade resume" in line for line in failed["resume"])

    code, resumed = run_cli("--configs", str(configs), "--db", f"ft_db={mariadb_database}",
                            "--db", f"middle_db={mariadb_database}")
    assert code == 0
    assert resumed["execution_id"] == failed["execution_id"]
    assert resumed["resume_count"] == 1
    by_step = {s["step_id"]: s for s in resumed["step_results"]}
    assert [by_step[s]["status"] for s in ("ping_ft", "ping_middle", "ping_again")] == ["SUCCESS"] * 3

    from tests.helpers import open_store

    store = open_store(None)
    rows = {r.step_id: r for r in store.step_runs(failed["execution_id"])}
    store.close()
    assert rows["ping_ft"].retry_count == 0, "a step that succeeded is not run again on resume"
    assert rows["ping_middle"].retry_count == 1

    status = CliRunner().invoke(app, ["status", failed["execution_id"], "--json"])
    assert status.exit_code == 0 and json.loads(status.output)["status"] == "SUCCESS"
    md = CliRunner().invoke(app, ["report", failed["execution_id"], "--format", "md"])
    assert md.exit_code == 0
    assert "# [FT升级报告] 前置业务检查\n" in md.output
    assert "| 3 | `ping_again`" in md.output


def test_unresolved_step_class_is_refused_with_exit_2_and_nothing_runs(isolated_env: Path) -> None:
    configs = write_config(isolated_env / "configs", [{"id": "x", "class_name": "com.ft.upgrade.steps.Nope"}])
    result = CliRunner().invoke(app, ["run", "pre_business_check", "--from", "3.17.0", "--to", "3.17.5",
                                      "--site", "CN", "--configs", str(configs)])
    assert result.exit_code == 2
    assert "no step implementation for 'com.ft.upgrade.steps.Nope'" in " ".join(result.output.split())
    assert not (isolated_env / "home" / "metadata.db").exists(), "nothing was recorded: nothing ran"


def test_bad_version_is_exit_2(isolated_env: Path) -> None:
    result = CliRunner().invoke(app, ["run", "pre_business_check", "--from", "3.17.10", "--to", "3.17.5",
                                      "--site", "CN"])
    assert result.exit_code == 2
    assert "invalid version '3.17.10'" in result.output


def test_a_step_sees_the_runs_settings_with_the_cli_overrides_not_the_environments(
        isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = isolated_env / "seen.txt"
    configs = write_config(isolated_env / "given", [{"id": "record", "class_name": "tests.flows.site_steps."
                                                     "SettingsRecordStep", "record": str(record)}])
    monkeypatch.setenv("FT_UPGRADE_CONFIGS", str(isolated_env / "environment"))
    monkeypatch.setenv("FT_UPGRADE_STEP_MODULES", "tests.flows")
    code, report = run_cli("--configs", str(configs))
    assert code == 0, report
    assert record.read_text(encoding="utf-8") == str(configs.resolve())
