"""The run-time half of the conventions: parts that read the site profile (services, config_dir).

Real MariaDB databases, a real local HTTP service, real files; the step context of tests/helpers.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from blocks.site_profile import SiteProfile
from tasks.composite.pre_upgrade import PreUpgradeProcessStep
from tasks.config_files.step import ConfigPreprocessStep
from tasks.core.errors import StepFailed
from tasks.core.statuses import StepStatus
from tasks.core.versions import Version
from tasks.health.step import ServiceHealthCheckStep
from tasks.planning.conventions import CONVENTIONS, ConventionContext
from tests.helpers import answering_service, step_context


@pytest.fixture
def service() -> Iterator[str]:
    with answering_service() as running:
        yield running.url()


def convention(name: str) -> dict:
    return CONVENTIONS[name](ConventionContext(Version.parse("3.17.5")))


def test_pre_upgrade_process_by_convention_backs_up_renders_checks_and_says_ready_to_stop(
        tmp_path: Path, mariadb_database: str, service: str) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "app.json.tpl").write_text('{"site": "${SITE_ID}", "region": "${REGION}"}\n', encoding="utf-8")
    databases = {"ft_db": mariadb_database, "middle_db": mariadb_database}
    with step_context(tmp_path, databases=databases, cutpoint="pre_upgrade_process") as ctx:
        ctx.resources.profile = SiteProfile(site_id="CN", services={"ft-manager": service},
                                            paths={"config_dir": str(conf)}, environment={"REGION": "cn-north"})
        params = PreUpgradeProcessStep.Params.model_validate(convention("PreUpgradeProcessStep"))
        result = PreUpgradeProcessStep(params, ctx).run()
    assert result.status == StepStatus.SUCCESS, result.summary
    assert json.loads((conf / "app.json").read_text(encoding="utf-8")) == {"site": "CN", "region": "cn-north"}
    assert result.details["backup"]["files"] == [str(conf / "app.json.tpl")]
    assert result.details["services"]["checks"][0] == {**result.details["services"]["checks"][0],
                                                       "target": "ft-manager", "healthy": True}
    assert result.markdown.startswith("**停服前准备报告**：备份、配置预处理与服务状态检查均已完成，可以停服升级。")
    assert [line for line in result.markdown.splitlines() if line.startswith("####")] == [
        "#### 非阻塞备份 — SUCCESS", "#### 配置文件预处理 — SUCCESS", "#### 服务状态检查 — SUCCESS"]


def test_pre_upgrade_process_by_convention_at_a_site_listing_no_services_is_not_ready_to_stop(
        tmp_path: Path, mariadb_database: str) -> None:
    databases = {"ft_db": mariadb_database, "middle_db": mariadb_database}
    with step_context(tmp_path, databases=databases, cutpoint="pre_upgrade_process", language="en") as ctx:
        params = PreUpgradeProcessStep.Params.model_validate(convention("PreUpgradeProcessStep"))
        with pytest.raises(StepFailed) as failed:
            PreUpgradeProcessStep(params, ctx).run()
    result = failed.value.result
    assert result.markdown.startswith("**Not ready to stop**: Service status did not pass")
    assert "the profile of site CN lists no services: cannot decide; list them under services" in result.markdown
    assert "#### Config preprocessing — SKIPPED" in result.markdown  # no *.tpl in the site's config_dir


def test_a_health_check_of_the_sites_services_checks_each_listed_one(tmp_path: Path, service: str) -> None:
    with step_context(tmp_path) as ctx:
        ctx.resources.profile = SiteProfile(site_id="CN", services={"ft-report": service,
                                                                    "ft-openapi": "http://127.0.0.1:1/health"})
        with pytest.raises(StepFailed) as failed:
            ServiceHealthCheckStep(ServiceHealthCheckStep.Params(site_services=True), ctx).run()
    checks = {c["target"]: c["healthy"] for c in failed.value.result.details["checks"]}
    assert checks == {"ft-openapi": False, "ft-report": True}


def test_config_preprocessing_of_site_templates_with_none_there_has_nothing_to_do(tmp_path: Path) -> None:
    with step_context(tmp_path, language="en") as ctx:
        result = ConfigPreprocessStep(ConfigPreprocessStep.Params(site_templates=True), ctx).run()
    assert result.status == StepStatus.SKIPPED
    assert result.summary == f"no *.tpl template in {tmp_path / 'home' / 'config_dir'}: nothing to preprocess"
