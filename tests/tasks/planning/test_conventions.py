"""Steps written without details: each seed step name gets its documented convention in the plan.

Pure planning (configs in a folder, no database): the plan shows exactly what the convention means;
the runs themselves are in tests/flows/test_seed_example.py and tests/tasks/planning/test_conventions_at_site.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tasks.checks.default_rules import BUILTIN_SOURCE, DEFAULT_RULES
from tasks.core.errors import ConfigError
from tasks.planning.config_loader import load_configs
from tasks.planning.plan import PlannedStep, build_plan


def plan(tmp_path: Path, cutpoint: str, class_name: str, *, version: str = "317500", site: str = "CN",
         **step: Any) -> PlannedStep:
    """The planned step of a one-step config (the seed's shape: a class name and nothing of its own)."""
    configs = tmp_path / "configs"
    configs.mkdir(exist_ok=True)
    config = {"version": version, "upgrade_steps": {cutpoint: [
        {"id": "s1", "class_name": f"com.ft.upgrade.steps.{class_name}", **step}]}}
    (configs / f"{version}.json").write_text(json.dumps(config), encoding="utf-8")
    source = "3.17.5" if version == "317501" else "3.17.0"
    built = build_plan(load_configs(configs), source, version, site, sql_root=tmp_path / "sql")
    return next(s for s in built.steps if s.step_id == "s1")


def scripts(tmp_path: Path, folder: str, *names: str) -> None:
    for name in names:
        path = tmp_path / "sql" / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("SELECT 1;\n", encoding="utf-8")


def test_a_business_check_without_rules_runs_the_projects_default_rule_set(tmp_path: Path) -> None:
    step = plan(tmp_path, "pre_business_check", "PreBusinessCheckStep")
    assert [r["id"] for r in step.params["rules"]] == [r["id"] for r in DEFAULT_RULES]
    assert step.params["rule_sources"][0]["file"] == BUILTIN_SOURCE


def test_a_business_check_without_rules_runs_the_configs_folders_default_rule_file_when_there_is_one(
        tmp_path: Path) -> None:
    (tmp_path / "configs" / "rules").mkdir(parents=True)
    (tmp_path / "configs" / "rules" / "default.json").write_text(json.dumps({"rules": [
        {"id": "ours", "title": "无主键表检测", "type": "missing_primary_key", "target": "ft_db"}]}), encoding="utf-8")
    step = plan(tmp_path, "pre_business_check", "PreBusinessCheckStep")
    assert [r["id"] for r in step.params["rules"]] == ["ours"]
    assert step.params["rule_sources"][0]["file"] == "rules/default.json"


def test_a_sql_step_without_scripts_runs_its_versions_folder_in_name_order(tmp_path: Path) -> None:
    scripts(tmp_path, "baseline/317500", "010_b.sql", "002_a.sql", "notes.txt")
    scripts(tmp_path, "baseline/317500/overseas", "001_tz.sql")
    step = plan(tmp_path, "startup_pre_process", "StartupPreProcessStep")
    assert step.params["sql_scripts"] == ["baseline/317500/002_a.sql", "baseline/317500/010_b.sql"]


def test_a_patch_sql_step_without_scripts_runs_the_patch_folder(tmp_path: Path) -> None:
    scripts(tmp_path, "patch/317501", "001_fix.sql")
    step = plan(tmp_path, "startup_pre_process", "PatchSqlExecutorStep", version="317501")
    assert step.params["sql_scripts"] == ["patch/317501/001_fix.sql"]


def test_a_sql_step_without_scripts_and_an_empty_folder_is_refused_naming_the_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"upgrade_steps.startup_pre_process\[0\]: no sql_scripts given and no "
                                          r"\*.sql file in baseline/317500/ under the SQL root"):
        plan(tmp_path, "startup_pre_process", "StartupPreProcessStep")


def test_the_overseas_step_without_scripts_runs_the_overseas_folder(tmp_path: Path) -> None:
    scripts(tmp_path, "baseline/317500", "001_main.sql")
    scripts(tmp_path, "baseline/317500/overseas", "001_tz.sql")
    step = plan(tmp_path, "post_upgrade", "OverseasSpecificProcessStep", site="JP", is_common=False,
                site_ids=["US", "EU", "JP"])
    assert step.params["sql_scripts"] == ["baseline/317500/overseas/001_tz.sql"]


def test_the_pre_upgrade_process_without_parts_backs_up_renders_and_checks_the_site(tmp_path: Path) -> None:
    params = plan(tmp_path, "pre_upgrade_process", "PreUpgradeProcessStep").params
    assert [d["database"] for d in params["backup"]["databases"]] == ["ft_db", "middle_db"]
    assert params["backup"]["site_config_dir"] is True
    assert params["config_files"] == {"config_files": [], "site_templates": True}
    assert params["services"]["site_services"] is True and params["services"]["databases"] == ["ft_db", "middle_db"]


def test_the_startup_post_process_without_parts_checks_the_sites_services_and_ft_db(tmp_path: Path) -> None:
    params = plan(tmp_path, "startup_post_process", "StartupPostProcessStep").params
    assert [key for key, part in params.items() if part is not None] == ["health"]
    assert params["health"]["site_services"] is True and params["health"]["databases"] == ["ft_db"]


def test_the_post_upgrade_process_without_parts_archives_old_logs_and_empties_staging(tmp_path: Path) -> None:
    params = plan(tmp_path, "post_upgrade", "PostUpgradeProcessStep").params
    assert params["data_migration"] is None
    rule = params["log_cleanup"]["rules"][0]
    assert (rule["named_path"], rule["action"], rule["after_days"]) == ("log_dir", "archive", 7)
    assert params["resource_release"]["named_paths"] == ["staging_dir"]


def test_a_step_with_any_field_of_its_own_gets_no_convention(tmp_path: Path) -> None:
    step = plan(tmp_path, "startup_post_process", "StartupPostProcessStep", health={"databases": ["middle_db"]})
    assert step.params["health"]["databases"] == ["middle_db"] and step.params["health"]["site_services"] is False
