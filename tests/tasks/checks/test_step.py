"""PreBusinessCheckStep on real services: the seed's example report end to end, warnings that let the
upgrade go on, and credentials that never reach the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tasks.checks.step import BusinessCheckParams, PreBusinessCheckStep
from tasks.core.errors import StepFailed
from tasks.core.statuses import StepStatus
from tasks.steps.registry import resolve_step_class
from tests.helpers import step_context
from tests.tasks.checks.conftest import ZooKeeperServer
from tests.tasks.checks.seed_example import SEED_RULES, create_seed_tables, expected_lines


def mariadb_version(url: str) -> str:
    engine = create_engine(url)
    with engine.connect() as conn:
        raw = conn.execute(text("SELECT VERSION()")).scalar()
    engine.dispose()
    return raw.split("-")[0]


def test_the_seed_class_name_resolves_to_this_step() -> None:
    assert resolve_step_class("com.ft.upgrade.steps.PreBusinessCheckStep").step_class is PreBusinessCheckStep


def test_the_seed_example_report_is_reproduced_on_a_real_database(
        tmp_path: Path, mariadb_database: str, zookeeper: ZooKeeperServer) -> None:
    create_seed_tables(mariadb_database)
    params = BusinessCheckParams.model_validate({"rules": SEED_RULES})
    with step_context(tmp_path, databases={"ft_db": mariadb_database}, cutpoint="pre_business_check",
                      environment={"zookeeper": zookeeper.address}) as ctx, pytest.raises(StepFailed) as info:
        PreBusinessCheckStep(params, ctx).run()
    result = info.value.result
    assert result.status == StepStatus.FAILED
    assert result.summary == "共 5 项检查：失败 2，警告 2，通过 0，跳过 1（失败项：mw_mysql, orders_pk_conflicts）"
    lines = result.markdown.splitlines()
    assert lines[0] == "**[FT前置业务检查报告]**"
    start = lines.index("1. 检查项: 中间件版本检查")
    assert lines[start:start + 15] == expected_lines(mariadb_version(mariadb_database), str(zookeeper.data_dir))
    details = result.details
    assert details["counts"] == {"pass": 0, "warn": 2, "fail": 2, "skipped": 1, "total": 5}
    assert [(c["id"], c["status"]) for c in details["checksPerformed"]] == [
        ("mw_mysql", "fail"), ("zk_data_disk", "warn"), ("orders_pk_conflicts", "fail"),
        ("tables_without_pk", "warn"), ("later_only", "skipped")]
    dup = details["checksPerformed"][2]
    assert (dup["count"], dup["threshold"]) == (15, 0)
    assert dup["detectedProblems"] == [{"level": "Error", "dbObject": "orders",
                                        "description": "15 rows beyond the first for their key (id)"}]
    json.dumps(details)  # JSON-ready for upgrade_report


def test_warnings_only_let_the_upgrade_go_on(tmp_path: Path, mariadb_database: str,
                                             zookeeper: ZooKeeperServer) -> None:
    create_seed_tables(mariadb_database)
    rules = [r for r in SEED_RULES if r.get("severity") == "warn"]
    with step_context(tmp_path, databases={"ft_db": mariadb_database},
                      environment={"zookeeper": zookeeper.address}) as ctx:
        result = PreBusinessCheckStep(BusinessCheckParams.model_validate({"rules": rules}), ctx).run()
    assert result.status == StepStatus.WARNING
    assert result.details["status"] == "warn" and result.details["counts"]["warn"] == 2
    assert "结论：**警告**" in result.markdown


def test_passwords_never_reach_the_report(tmp_path: Path) -> None:
    rules = [{"id": "mw", "title": "中间件版本检查", "type": "middleware_version", "component": "mysql",
              "target": "ft_db", "min_version": "5.7"}]
    with step_context(tmp_path, databases={"ft_db": "mysql+pymysql://root:Sup3rSecret@127.0.0.1:1/x"}) as ctx, \
            pytest.raises(StepFailed) as info:
        PreBusinessCheckStep(BusinessCheckParams.model_validate({"rules": rules}), ctx).run()
    result = info.value.result
    assert "Sup3rSecret" not in json.dumps(result.to_json(), ensure_ascii=False)
    assert "unreachable after 4 attempts" in result.markdown
