"""A version's dependencies at the site: components, memory / disk / CPU, the source range — pass, warn, fail.

Grading is pure and tested with numbers; the probes run on this machine (and over a real sshd), the
components against a real local HTTP service and a closed port; the plan adds the checks by itself.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from blocks.site_profile import SiteProfile
from flows.cli import app
from tasks.checks.dependencies_step import DependencyCheckStep
from tasks.checks.outcome import CheckStatus
from tasks.checks.requirements import grade_amount, grade_cpu, load_one, mem_available
from tasks.core.errors import StepFailed
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepResult
from tasks.planning.config_loader import load_configs
from tasks.planning.plan import build_plan
from tests.helpers import answering_service, step_context
from tests.tasks.checks.conftest import SshServer
from tests.tasks.checks.support import run_check
from tests.tasks.checks.test_architecture import ssh_settings

CLOSED = "http://127.0.0.1:1/health"


@pytest.fixture
def service() -> Iterator[str]:
    with answering_service() as running:
        yield running.url()


@pytest.mark.parametrize(("available", "expected"), [(30e9, CheckStatus.PASS), (11e9, CheckStatus.WARN),
                                                     (9e9, CheckStatus.FAIL)])
def test_an_amount_passes_with_room_warns_within_the_headroom_and_fails_below(available: float,
                                                                           expected: CheckStatus) -> None:
    assert grade_amount(available, 10e9, 1.2) == expected


@pytest.mark.parametrize(("cores", "load", "expected"), [(8, 1.0, CheckStatus.PASS), (2, 0.5, CheckStatus.WARN),
                                                         (1, 0.0, CheckStatus.FAIL)])
def test_cpu_passes_with_idle_cores_warns_when_busy_and_fails_with_too_few(cores: float, load: float,
                                                                         expected: CheckStatus) -> None:
    assert grade_cpu(cores, load, 2) == expected


def test_memory_and_load_are_read_as_the_kernel_writes_them() -> None:
    assert mem_available("MemTotal:       24000000 kB\nMemAvailable:   15000000 kB\n") == 15000000 * 1024
    assert load_one("0.52 0.61 0.70 2/345 6789\n") == 0.52


def _meminfo_available() -> float:
    return mem_available(Path("/proc/meminfo").read_text())


def test_memory_and_disk_on_this_machine_pass_warn_and_fail(tmp_path: Path) -> None:
    memory = _meminfo_available()
    passed = run_check(tmp_path, {"id": "m", "title": "内存资源检查", "type": "required_resource", "resource": "memory",
                                  "required": "1MB"})
    assert passed.status == CheckStatus.PASS and passed.result.startswith("本机：可用内存")
    failed = run_check(tmp_path, {"id": "m", "title": "内存资源检查", "type": "required_resource",
                                  "resource": "memory", "required": f"{int(memory * 100)}B"})
    assert failed.status == CheckStatus.FAIL and failed.result.endswith("，不足")
    assert failed.suggestion.startswith("为本机释放或扩充可用内存：至少")
    free = shutil.disk_usage(tmp_path).free
    tight = run_check(tmp_path, {"id": "d", "title": "磁盘资源检查", "type": "required_resource", "resource": "disk",
                                 "required": f"{int(free / 1.1)}B", "path": str(tmp_path)})
    assert tight.status == CheckStatus.WARN, tight.result
    assert tight.result.endswith("，余量不足（低于要求的1.2倍）") and str(tmp_path) in tight.result


def test_too_few_cpu_cores_fail(tmp_path: Path) -> None:
    cores = len(os.sched_getaffinity(0))
    o = run_check(tmp_path, {"id": "c", "title": "CPU资源检查", "type": "required_resource", "resource": "cpu",
                             "required": f"{cores + 1}cores"})
    assert o.status == CheckStatus.FAIL and f"CPU核数{cores}核" in o.result


def test_resources_are_measured_on_a_named_host_over_ssh(tmp_path: Path, sshd: SshServer) -> None:
    o = run_check(tmp_path, {"id": "m", "title": "内存资源检查", "type": "required_resource", "resource": "memory",
                             "required": "1MB", "host": sshd.target}, ssh=ssh_settings(sshd))
    assert o.status == CheckStatus.PASS and o.result.startswith(f"{sshd.target}：可用内存")


def dependency_check(tmp_path: Path, services: dict[str, str] | None, **params: Any) -> StepResult:
    with step_context(tmp_path, cutpoint="pre_business_check") as ctx:
        if services is not None:
            ctx.resources.profile = SiteProfile(site_id="CN", services=services)
        step = DependencyCheckStep(DependencyCheckStep.Params.model_validate(params), ctx)
        try:
            return step.run()
        except StepFailed as exc:
            assert isinstance(exc.result, StepResult)
            return exc.result


def test_components_listed_and_answering_pass(tmp_path: Path, service: str) -> None:
    result = dependency_check(tmp_path, {"ft-manager": service, "ft-report": service},
                              components=["ft-manager", "ft-report"])
    assert result.status == StepStatus.SUCCESS
    assert "1. 检查项: 组件检查\n    - 结果: 通过（组件 ft-manager, ft-report 均已登记并正常响应）" in result.markdown
    assert result.markdown.startswith("**[FT版本依赖检查报告]**")


def test_a_component_listed_but_not_answering_warns(tmp_path: Path, service: str) -> None:
    result = dependency_check(tmp_path, {"ft-manager": service, "ft-report": CLOSED},
                              components=["ft-manager", "ft-report"])
    assert result.status == StepStatus.WARNING
    assert "警告（组件 ft-manager, ft-report：无响应：ft-report）" in result.markdown


def test_a_component_not_listed_fails_and_no_services_at_all_cannot_decide(tmp_path: Path, service: str) -> None:
    result = dependency_check(tmp_path, {"ft-manager": service}, components=["ft-manager", "ft-openapi"])
    assert result.status == StepStatus.FAILED
    assert "失败（组件 ft-manager, ft-openapi：未登记：ft-openapi）" in result.markdown
    assert "建议: 在局点配置（site profile）的 services 中登记并部署：ft-openapi；确认正在运行：-" in result.markdown
    unknown = dependency_check(tmp_path, None, components=["ft-manager"])
    assert unknown.status == StepStatus.FAILED
    assert "局点配置（site profile）未列出任何服务，无法确认组件 ft-manager" in unknown.markdown


def test_once_stopped_a_listed_component_is_enough(tmp_path: Path) -> None:
    result = dependency_check(tmp_path, {"ft-manager": CLOSED}, components=["ft-manager"], components_running=False)
    assert result.status == StepStatus.SUCCESS and "组件 ft-manager 均已登记" in result.markdown


def _configs(tmp_path: Path, *configs: dict[str, Any]) -> Path:
    folder = tmp_path / "configs"
    folder.mkdir(exist_ok=True)
    for config in configs:
        (folder / f"{config['version']}.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


HEALTH = {"class_name": "ServiceHealthCheckStep", "databases": ["ft_db"]}


def test_the_plan_checks_the_chains_requirements_first_in_cutpoints_one_and_three(tmp_path: Path) -> None:
    folder = _configs(
        tmp_path,
        {"version": "317500", "dependencies": {"min_source_version": "3.17.0", "max_source_version": "3.17.4",
                                               "required_components": ["ft-manager", "ft-report"],
                                               "required_resources": {"disk": "10GB", "memory": "2GB"}},
         "upgrade_steps": {"pre_business_check": [{"id": "a", **HEALTH}],
                           "startup_post_process": [{"id": "b", **HEALTH}]}},
        {"version": "317501", "dependencies": {"required_base_version": "317500",
                                               "required_components": ["ft-openapi"],
                                               "required_resources": {"disk": "20GB", "cpu": "2cores"}}})
    plan = build_plan(load_configs(folder), "3.17.0", "3.17.5-P1", "CN")
    assert [(s.cutpoint.value, s.step_id) for s in plan.steps] == [
        ("pre_business_check", "dependencies_check"), ("pre_business_check", "a"),
        ("startup_pre_process", "dependencies_recheck"), ("startup_post_process", "b")]
    first, again = plan.steps[0], plan.steps[2]
    assert first.key == "317501:dependencies_check" and first.version == "3.17.5-P1"
    assert first.params["components"] == ["ft-manager", "ft-report", "ft-openapi"]
    assert first.params["resources"] == {"disk": "20GB", "memory": "2GB", "cpu": "2cores"}
    assert [r["id"] for r in first.params["rules"]] == [
        "source_3.17.5", "source_3.17.5-P1", "required_components", "required_memory", "required_disk",
        "required_cpu"]
    assert first.params["sources"][1] == {"config": "3.17.5-P1", "in_effect": "3.17.5", "min_version": None,
                                          "max_version": None, "base_version": "3.17.5"}
    assert again.params["components_running"] is False and again.params["sources"] == []
    only = build_plan(load_configs(folder), "3.17.0", "3.17.5-P1", "CN", "startup_pre_process")
    assert [s.step_id for s in only.steps] == ["dependencies_recheck"]


def test_the_plan_adds_no_check_when_no_config_declares_requirements(tmp_path: Path) -> None:
    folder = _configs(tmp_path, {"version": "317500", "dependencies": {"min_source_version": "3.17.0"},
                                 "upgrade_steps": {"pre_business_check": [{"id": "a", **HEALTH}]}})
    assert [s.step_id for s in build_plan(load_configs(folder), "3.17.0", "3.17.5", "CN").steps] == ["a"]


@pytest.mark.parametrize(("dependencies", "expected"), [
    ({"required_resources": {"memory": "2 banana"}},
     "317500.json: dependencies.required_resources: memory: '2 banana' is not a size (e.g. '2GB', '512MB', '2GiB')"),
    ({"required_resources": {"gpu": "1"}},
     "317500.json: dependencies.required_resources.gpu: Input should be 'memory', 'disk' or 'cpu'"),
    ({"required_resources": {"cpu": "many"}},
     "317500.json: dependencies.required_resources: cpu: 'many' is not a number of cores (e.g. '2cores')"),
])
def test_a_requirement_that_cannot_be_read_is_refused_by_validate(tmp_path: Path, dependencies: dict[str, Any],
                                                                  expected: str) -> None:
    folder = _configs(tmp_path, {"version": "317500", "dependencies": dependencies})
    result = CliRunner().invoke(app, ["validate", "--configs", str(folder), "--sql-root", str(tmp_path)])
    assert result.exit_code == 2 and expected in " ".join(result.output.split()), result.output


def test_the_plans_own_step_ids_are_refused_in_a_config(tmp_path: Path) -> None:
    folder = _configs(tmp_path, {"version": "317500", "upgrade_steps": {"pre_business_check": [
        {"id": "dependencies_check", **HEALTH}]}})
    result = CliRunner().invoke(app, ["validate", "--configs", str(folder), "--sql-root", str(tmp_path)])
    assert result.exit_code == 2
    assert "step id 'dependencies_check' is the plan's own dependency check: choose another id" in result.output
