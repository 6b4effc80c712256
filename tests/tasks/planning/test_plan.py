"""The plan: chain selection, dependency checks, ordering, site filtering — pure, from literals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tasks.core.cutpoints import Cutpoint
from tasks.core.errors import ConfigError, PlanError, StepResolutionError
from tasks.core.settings import get_settings
from tasks.core.versions import Version
from tasks.planning.config_loader import LoadedConfig, load_configs, parse_config_text
from tasks.planning.plan import build_plan, plan_for

HEALTH = {"class_name": "ServiceHealthCheckStep", "databases": ["ft_db"]}


def config(version: str, steps: dict[str, list[dict[str, Any]]] | None = None, **extra: Any) -> LoadedConfig:
    code = Version.parse(version).code
    data = {"version": str(code), "upgrade_steps": steps or {}, **extra}
    return parse_config_text(json.dumps(data), source=f"configs/{code}.json")


def step(step_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, **HEALTH, **fields}


def spanning_set() -> list[LoadedConfig]:
    """Baselines and patches from 3.16.x to 3.18.x, each with one step per cutpoint it touches."""
    out = []
    for v in ["3.16.0", "3.16.5", "3.16.5-P1", "3.17.0", "3.17.0-P1", "3.17.0-P2", "3.17.5", "3.17.5-P1",
              "3.18.0", "3.18.2", "3.18.2-P1", "3.18.2-P2", "3.18.2-P3", "3.18.2-P4", "3.18.5"]:
        code = Version.parse(v).code
        deps = {"required_base_version": str(Version.parse(v).baseline.code)} if "-P" in v else {}
        out.append(config(v, {
            "pre_business_check": [step(f"check_{code}")],
            "startup_pre_process": [step(f"sql_{code}_b", order=2), step(f"sql_{code}_a", order=1)],
        }, dependencies=deps))
    return out


def test_a_range_across_baselines_and_patches_plans_in_version_then_declared_order() -> None:
    plan = build_plan(spanning_set(), "3.17.0", "3.18.2-P3", "CN")
    assert plan.chain == ["3.17.0-P1", "3.17.0-P2", "3.17.5", "3.17.5-P1", "3.18.0", "3.18.2", "3.18.2-P1",
                          "3.18.2-P2", "3.18.2-P3"]
    checks = [s.step_id for s in plan.for_cutpoint(Cutpoint.PRE_BUSINESS_CHECK)]
    assert checks == ["check_317001", "check_317002", "check_317500", "check_317501", "check_318000",
                      "check_318200", "check_318201", "check_318202", "check_318203"]
    sql = [s.step_id for s in plan.for_cutpoint(Cutpoint.STARTUP_PRE_PROCESS)]
    assert sql[:4] == ["sql_317001_a", "sql_317001_b", "sql_317002_a", "sql_317002_b"]
    assert sql[-2:] == ["sql_318203_a", "sql_318203_b"]
    assert [s.cutpoint for s in plan.steps] == sorted((s.cutpoint for s in plan.steps), key=lambda c: c.position)


def test_one_cutpoint_only_keeps_its_steps() -> None:
    plan = build_plan(spanning_set(), "3.17.0", "3.17.5", "CN", Cutpoint.PRE_BUSINESS_CHECK)
    assert [s.step_id for s in plan.steps] == ["check_317001", "check_317002", "check_317500"]


def test_site_specific_step_runs_only_at_its_sites() -> None:
    configs = [config("3.17.5", {"post_upgrade": [
        step("post_upgrade_process_001"),
        step("overseas_specific_process_001", is_common=False, site_ids=["US", "EU", "JP"]),
    ]})]
    us = build_plan(configs, "3.17.0", "3.17.5", "US")
    cn = build_plan(configs, "3.17.0", "3.17.5", "CN")
    assert [s.step_id for s in us.steps] == ["post_upgrade_process_001", "overseas_specific_process_001"]
    assert [s.step_id for s in cn.steps] == ["post_upgrade_process_001"]


def test_step_dependencies_move_a_step_after_what_it_needs() -> None:
    configs = [config("3.17.5", {"startup_pre_process": [
        step("migrate", dependencies=["schema"]), step("schema"), step("verify", dependencies=["migrate"])]})]
    plan = build_plan(configs, "3.17.0", "3.17.5", "CN")
    assert [s.step_id for s in plan.steps] == ["schema", "migrate", "verify"]
    assert plan.steps[1].depends_on == ["317500:schema"]


def test_a_dependency_cycle_is_an_error_naming_the_steps() -> None:
    cyclic = [step("a", dependencies=["b"]), step("b", dependencies=["a"])]
    configs = [config("3.17.5", {"startup_pre_process": cyclic})]
    with pytest.raises(PlanError, match="cycle among: 317500:a, 317500:b"):
        build_plan(configs, "3.17.0", "3.17.5", "CN")


def test_a_dependency_on_a_missing_step_id_is_an_error() -> None:
    configs = [config("3.17.5", {"startup_pre_process": [step("a", dependencies=["nope"])]})]
    with pytest.raises(PlanError, match="step 'a' depends on unknown step id 'nope'"):
        build_plan(configs, "3.17.0", "3.17.5", "CN")


def test_a_dependency_on_a_later_cutpoint_is_an_error() -> None:
    configs = [config("3.17.5", {"pre_business_check": [step("a", dependencies=["b"])],
                                 "post_upgrade": [step("b")]})]
    with pytest.raises(PlanError, match="depends on 'b', which runs later"):
        build_plan(configs, "3.17.0", "3.17.5", "CN")


def test_no_config_covering_the_range_names_the_versions_that_exist() -> None:
    configs = [config("3.17.0", dependencies={"min_source_version": "3.16.5"}),
               config("3.17.5", dependencies={"min_source_version": "3.17.0"})]
    with pytest.raises(PlanError) as info:
        build_plan(configs, "3.16.2", "3.17.5", "CN")
    assert "no config covers 3.16.2 → 3.17.5" in str(info.value)
    assert "3.17.0 needs source ≥ 3.16.5, but 3.16.2 is in effect" in str(info.value)
    assert "configs exist for: 3.17.0, 3.17.5" in str(info.value)
    with pytest.raises(PlanError, match="there is no config for 3.17.6"):
        build_plan(configs, "3.17.0", "3.17.6", "CN")


def test_dependencies_are_checked_against_the_version_in_effect_along_the_chain() -> None:
    configs = [
        config("3.17.0", dependencies={"min_source_version": "3.16.0", "max_source_version": "3.16.9"}),
        config("3.17.5", dependencies={"min_source_version": "3.17.0", "max_source_version": "3.17.4"}),
        config("3.17.5-P1", dependencies={"required_base_version": "317500"}),
    ]
    assert build_plan(configs, "3.16.2", "3.17.5-P1", "CN").chain == ["3.17.0", "3.17.5", "3.17.5-P1"]
    with pytest.raises(PlanError, match="3.17.0 needs source ≥ 3.16.0, but 3.15.9 is in effect"):
        build_plan(configs, "3.15.9", "3.17.5-P1", "CN")
    wrong_base = [config("3.17.5-P2", dependencies={"required_base_version": "317000"})]
    with pytest.raises(PlanError, match="requires base version 3.17.0"):
        build_plan(wrong_base, "3.17.5-P1", "3.17.5-P2", "CN")


def test_target_not_newer_than_source_is_an_error() -> None:
    with pytest.raises(PlanError, match="target 3.17.0 is not newer than source 3.17.5"):
        build_plan([config("3.17.5")], "3.17.5", "3.17.0", "CN")


def test_unresolved_class_is_shown_in_the_plan_and_refused_for_running() -> None:
    configs = [config("3.17.5", {"pre_business_check": [
        {"id": "x", "class_name": "com.ft.upgrade.steps.PreBusinessCheckStepThatDoesNotExist"}]})]
    plan = build_plan(configs, "3.17.0", "3.17.5", "CN")
    assert plan.steps[0].implementation is None
    assert "no step implementation" in plan.steps[0].unresolved_reason
    with pytest.raises(StepResolutionError, match="step 'x': no step implementation"):
        plan.require_resolved()


def test_java_class_names_resolve_to_builtins_by_simple_name() -> None:
    configs = [config("3.17.5", {"pre_business_check": [
        step("x", class_name="com.ft.upgrade.steps.ServiceHealthCheckStep")]})]
    plan = build_plan(configs, "3.17.0", "3.17.5", "CN")
    assert plan.steps[0].implementation == "tasks.health.step.ServiceHealthCheckStep"


def test_every_catalogued_builtin_imports_as_the_step_class_it_names() -> None:
    from tasks.steps.base import UpgradeStep
    from tasks.steps.builtins import BUILTIN_STEPS
    from tasks.steps.registry import builtin_class, builtin_names

    for path in BUILTIN_STEPS:
        cls = builtin_class(path)
        assert issubclass(cls, UpgradeStep) and f"{cls.__module__}:{cls.__name__}" == path
    assert builtin_names()["StartupPreProcessStep"] == "tasks.sql.step:SqlScriptStep"


def test_site_step_modules_load_only_from_allowed_prefixes() -> None:
    configs = [config("3.17.5", {"pre_business_check": [
        {"id": "x", "class_name": "tests.flows.site_steps.EchoStep"}]})]
    refused = build_plan(configs, "3.17.0", "3.17.5", "CN")
    assert refused.steps[0].implementation is None
    assert "not in the allowed step modules" in refused.steps[0].unresolved_reason
    allowed = build_plan(configs, "3.17.0", "3.17.5", "CN", allowed_step_modules=["tests.flows"])
    assert allowed.steps[0].implementation == "tests.flows.site_steps.EchoStep"


def test_step_parameters_are_validated_at_plan_time_with_field_paths() -> None:
    configs = [config("3.17.5", {"pre_business_check": [step("x", databases="ft_db")]})]
    with pytest.raises(ConfigError, match=r"upgrade_steps.pre_business_check\[0\].databases: Input should be"):
        build_plan(configs, "3.17.0", "3.17.5", "CN")


def test_the_plan_round_trips_through_json() -> None:
    plan = build_plan(spanning_set(), "3.17.0", "3.18.2-P3", "CN")
    again = type(plan).model_validate_json(plan.model_dump_json())
    assert again == plan
    assert json.loads(plan.model_dump_json())["steps"][0]["key"] == "317001:check_317001"


# issue 31: a plan never silently skips a release

PATCH_ONLY = {"100101.json": {"version": "100101", "version_type": "patch", "base_version": "100100",
                              "upgrade_steps": {"startup_pre_process": [step("fix")]}}}
EMPTY_BASE = {"100100.json": {"version": "100100", "version_type": "baseline"}}


def folder(path: Path, files: dict[str, dict[str, Any]]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (path / name).write_text(json.dumps(data), encoding="utf-8")
    return path


def test_a_patch_whose_base_has_no_config_is_refused_from_below_the_base_naming_file_base_and_remedy(
        tmp_path: Path) -> None:
    configs = load_configs(folder(tmp_path / "configs", PATCH_ONLY))
    with pytest.raises(PlanError) as info:
        build_plan(configs, "1.0.0", "1.0.1-P1", "CN")
    message = str(info.value)
    assert message.startswith(f"{configs[0].path}: patch 1.0.1-P1 is applied on its base 1.0.1, which "
                              "1.0.0 → 1.0.1-P1 crosses, but the folder has no config for 1.0.1"), message
    assert "Add 1.0.1's config (100100.json)" in message
    assert 'an empty one: {"version": "100100", "version_type": "baseline"}' in message
    assert info.value.exit_code == 2
    on_base = build_plan(configs, "1.0.1", "1.0.1-P1", "CN")  # a site already on the base: unaffected
    assert on_base.chain == ["1.0.1-P1"] and [s.step_id for s in on_base.steps] == ["fix"]


def test_every_cutpoint_refuses_a_plan_that_skips_a_patchs_base(tmp_path: Path) -> None:
    settings = get_settings(configs=folder(tmp_path / "configs", PATCH_ONLY), sql_root=tmp_path)
    for cutpoint in Cutpoint:
        with pytest.raises(PlanError, match="no config for 1.0.1"):
            plan_for(cutpoint, "1.0.0", "1.0.1-P1", "CN", settings)
        assert plan_for(cutpoint, "1.0.1", "1.0.1-P1", "CN", settings).chain == ["1.0.1-P1"]


def test_an_explicit_empty_config_for_the_base_is_accepted_and_listed_among_the_releases(tmp_path: Path) -> None:
    configs = load_configs(folder(tmp_path / "configs", {**PATCH_ONLY, **EMPTY_BASE}))
    plan = build_plan(configs, "1.0.0", "1.0.1-P1", "CN")
    assert plan.chain == ["1.0.1", "1.0.1-P1"] and [s.step_id for s in plan.steps] == ["fix"]
    assert [(r.version, r.kind, r.config_file, r.steps) for r in plan.releases] == [
        ("1.0.1", "baseline", configs[0].path, 0), ("1.0.1-P1", "patch", configs[1].path, 1)]


def test_the_releases_crossed_include_earlier_patches_that_have_no_config() -> None:
    configs = [config("3.17.5"), config("3.17.5-P3"), config("3.18.0")]
    plan = build_plan(configs, "3.17.5-P1", "3.18.0", "CN")
    assert [(r.version, r.config_file, r.known_from) for r in plan.releases] == [
        ("3.17.5-P2", None, "numbered before 3.17.5-P3"), ("3.17.5-P3", "configs/317503.json", ""),
        ("3.18.0", "configs/318000.json", "")]


def test_plan_shows_the_releases_it_crosses_in_text_and_json(isolated_env: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(isolated_env)  # config files shown relative to it
    configs = folder(isolated_env / "configs", {**PATCH_ONLY, **EMPTY_BASE,
                                                "100103.json": {"version": "100103", "version_type": "patch"}})
    args = ["plan", "--from", "1.0.0", "--to", "1.0.1-P3", "--site", "CN", "--configs", str(configs)]
    text = CliRunner().invoke(app, args, terminal_width=200)
    assert text.exit_code == 0, text.output
    rows = [" ".join(line.strip("│┃ ").split()) for line in text.output.splitlines() if line.startswith("│ 1.0.1")]
    assert rows == ["1.0.1 │ baseline │ configs/100100.json │ 0", "1.0.1-P1 │ patch │ configs/100101.json │ 1",
                    "1.0.1-P2 │ patch │ no config (numbered before 1.0.1-P3): nothing of it runs │ 0",
                    "1.0.1-P3 │ patch │ configs/100103.json │ 0"], text.output
    data = json.loads(CliRunner().invoke(app, [*args, "--json"]).output)
    assert [(r["version"], r["config_file"]) for r in data["releases"]] == [
        ("1.0.1", "configs/100100.json"), ("1.0.1-P1", "configs/100101.json"), ("1.0.1-P2", None),
        ("1.0.1-P3", "configs/100103.json")]
    (configs / "100100.json").unlink()
    refused = CliRunner().invoke(app, args, terminal_width=200)
    assert refused.exit_code == 2 and "configs/100101.json: patch 1.0.1-P1 is applied on its base 1.0.1" in \
        " ".join(refused.output.split())
