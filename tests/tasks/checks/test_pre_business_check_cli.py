"""Cutpoint 1 end to end through the CLI on a real Prefect API, MariaDB and ZooKeeper: the seed's report
in the markdown artifact, its JSON in ``run --json`` and in ``upgrade_report``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import tasks.checks.step  # noqa: F401  (registers the step)
from flows.cli import app
from tests.tasks.checks.conftest import ZooKeeperServer
from tests.tasks.checks.seed_example import SEED_RULES, create_seed_tables

pytestmark = pytest.mark.usefixtures("prefect_api")


def write_configs(folder: Path, rules: list[dict[str, Any]]) -> Path:
    (folder / "rules").mkdir(parents=True)
    (folder / "rules" / "checks.json").write_text(json.dumps({"rules": rules}, ensure_ascii=False), encoding="utf-8")
    step = {"id": "pre_business_check_001", "name": "前置业务检查",
            "class_name": "com.ft.upgrade.steps.PreBusinessCheckStep", "retry_count": 0,
            "rule_files": ["rules/checks.json"]}
    config = {"version": "317500", "dependencies": {"min_source_version": "3.17.0"},
              "upgrade_steps": {"pre_business_check": [step]}}
    (folder / "317500.json").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    return folder


def run_cli(configs: Path, db: str, zookeeper: ZooKeeperServer) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, ["run", "pre_business_check", "--from", "3.17.0", "--to", "3.17.5",
                                      "--site", "CN", "--json", "--configs", str(configs), "--db", f"ft_db={db}",
                                      "--env", f"zookeeper={zookeeper.address}"])
    lines = [line for line in result.output.splitlines() if line.startswith("{")]
    assert lines, result.output
    return result.exit_code, json.loads(lines[-1])


def test_failed_checks_fail_the_flow_with_the_seed_report_everywhere(
        isolated_env: Path, mariadb_database: str, zookeeper: ZooKeeperServer) -> None:
    create_seed_tables(mariadb_database)
    code, report = run_cli(write_configs(isolated_env / "configs", SEED_RULES), mariadb_database, zookeeper)
    assert code == 1 and report["status"] == "FAILED"
    (step,) = report["step_results"]
    assert step["status"] == "FAILED"
    assert step["error"].startswith("共 5 项检查：失败 2，警告 2，通过 0，跳过 1")
    details = step["details"]
    assert (details["errorCount"], details["warningCount"]) == (2, 2)
    assert details["ruleSources"][0]["file"] == "rules/checks.json"
    assert [c["status"] for c in details["checksPerformed"]] == ["fail", "warn", "fail", "warn", "skipped"]

    md = CliRunner().invoke(app, ["report", report["execution_id"], "--format", "md"])
    assert md.exit_code == 0
    assert "**[FT前置业务检查报告]**" in md.output
    assert "    - 结果: 失败（发现15条冲突记录，阈值0）" in md.output
    assert "    - 建议: 为表 audit_records, temp_data, user_logs 添加主键" in md.output

    from tests.helpers import open_store

    store = open_store(None)
    try:
        row = store.latest_report(report["execution_id"])
    finally:
        store.close()
    stored = row.content
    assert stored["step_results"][0]["details"]["checksPerformed"][2]["sql"] == (
        "SELECT * FROM orders WHERE id IN (SELECT id FROM orders GROUP BY id HAVING COUNT(*) > 1);")


def test_warnings_complete_the_flow_and_are_shown(isolated_env: Path, mariadb_database: str,
                                                  zookeeper: ZooKeeperServer) -> None:
    create_seed_tables(mariadb_database)
    rules = [r for r in SEED_RULES if r.get("severity") == "warn"]
    code, report = run_cli(write_configs(isolated_env / "configs", rules), mariadb_database, zookeeper)
    assert code == 0 and report["status"] == "SUCCESS"
    (step,) = report["step_results"]
    assert step["status"] == "WARNING"
    assert step["details"]["counts"] == {"pass": 0, "warn": 2, "fail": 0, "skipped": 0, "total": 2}


def test_a_malformed_rule_file_stops_the_cli_before_anything_runs(isolated_env: Path) -> None:
    configs = write_configs(isolated_env / "configs", [{**SEED_RULES[2], "threshold": "zero"}])
    result = CliRunner().invoke(app, ["run", "pre_business_check", "--from", "3.17.0", "--to", "3.17.5",
                                      "--site", "CN", "--configs", str(configs)])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "rule file rules/checks.json: rules[0].threshold: threshold must be a number ≥ 0, not 'zero'" in text
    assert not (isolated_env / "home" / "metadata.db").exists()
