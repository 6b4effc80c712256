"""The composite post-upgrade step: what a config may say, checked at plan time, and how parts combine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from tasks.composite.parts import combine
from tasks.composite.post_upgrade import PostUpgradeParams, PostUpgradeStep
from tasks.core.errors import ConfigError
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepResult
from tasks.planning.config_loader import parse_config_text
from tasks.planning.plan import build_plan
from tests.helpers import step_context
from tests.support.files import aged
from tests.support.orders import task


def plan_with(step: dict[str, object]) -> object:
    text = json.dumps({"version": "317500", "upgrade_steps": {"post_upgrade": [
        {"id": "post_upgrade_process_001", "class_name": "com.ft.upgrade.steps.PostUpgradeProcessStep", **step}]}})
    return build_plan([parse_config_text(text, source="317500.json")], "3.17.0", "3.17.5", "CN")


def test_a_composite_with_no_part_is_refused_at_plan_time() -> None:
    """Written with fields that leave every part out (written without any field, it follows its convention)."""
    with pytest.raises(ConfigError, match=r"post_upgrade\[0\]: post-upgrade processing needs at least one of"):
        plan_with({"data_migration": None})


def test_a_bad_nested_field_is_reported_with_its_path_at_plan_time() -> None:
    with pytest.raises(ConfigError, match=r"post_upgrade\[0\]\.data_migration\.tasks\.0\.condition: .*contains ';'"):
        plan_with({"data_migration": {"tasks": [task(condition="1; DROP TABLE orders")]}})
    with pytest.raises(ConfigError, match=r"post_upgrade\[0\]\.log_cleanup\.rules\.0\.surprise: unknown field"):
        plan_with({"log_cleanup": {"rules": [{"folder": "/var/log/ft", "surprise": 1}]}})


def test_a_valid_composite_plans_with_its_defaults_filled_in() -> None:
    plan = plan_with({"data_migration": {"tasks": [task()]}, "resource_release": {"paths": ["/tmp/ft-up-*"]}})
    params = plan.steps[0].params  # type: ignore[attr-defined]
    assert params["data_migration"]["max_rows_per_second"] == 10_000
    assert params["log_cleanup"] is None


def test_parts_run_in_order_and_the_worst_status_wins(tmp_path: Path) -> None:
    aged(tmp_path / "logs" / "old.log", 30)
    params = PostUpgradeParams.model_validate({
        "log_cleanup": {"rules": [{"folder": str(tmp_path / "logs"), "action": "delete"}], "clean_event_log": False},
        "resource_release": {"paths": [f"{tmp_path}/nothing-here-*"]}})
    with step_context(tmp_path, cutpoint="post_upgrade") as context:
        result = PostUpgradeStep(params, context).run()
    assert list(result.details) == ["log_cleanup", "resource_release"]
    assert result.status == StepStatus.SUCCESS
    assert result.markdown.index("### 日志清理") < result.markdown.index("### 资源释放")
    mixed_parts = [("a", "A", StepResult(StepStatus.SUCCESS, "ok")), ("b", "B", StepResult(StepStatus.WARNING, "1 "
                   "skipped"))]
    mixed = combine(mixed_parts)
    assert mixed.status == StepStatus.WARNING and mixed.summary == "A：ok；B：1 skipped"
    assert combine(mixed_parts, "en").summary == "a: ok; b: 1 skipped"


def test_unknown_part_names_are_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        PostUpgradeParams.model_validate({"performance_tuning": {}})
