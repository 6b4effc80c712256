"""Malformed rules are refused when the plan is built, with a message that names the rule and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import tasks.checks.step  # noqa: F401  (registers the step)
from tasks.checks.rules import VersionRange, parse_rules
from tasks.checks.step import BusinessCheckParams
from tasks.checks.verdict import skip_reason
from tasks.core.errors import ConfigError, ConfigErrors
from tasks.core.versions import Version
from tasks.planning.config_loader import load_configs
from tasks.planning.plan import build_plan
from tasks.planning.validation import validate_tree

DUP = {"id": "orders_pk", "title": "主键冲突检测", "type": "duplicate_keys", "target": "ft_db", "table": "orders",
       "columns": ["id"]}


def errors_of(rule: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        parse_rules([rule])
    return str(info.value)


@pytest.mark.parametrize(("change", "message"), [
    ({"type": "row_count"}, "does not match any of the expected tags: 'middleware_version'"),
    ({"versions": "3.17.9~3.17.5"}, "version range '3.17.9~3.17.5' is empty: 3.17.9 is after 3.17.5"),
    ({"versions": "3.17.5~3.17.10"}, "version range '3.17.5~3.17.10': invalid version '3.17.10'"),
    ({"versions": "3.17.5~3.17.6~3.17.7"}, "has more than one '~'"),
    ({"threshold": "abc"}, "threshold must be a number ≥ 0, not 'abc'"),
    ({"threshold": -1}, "threshold must be a number ≥ 0, not -1"),
    ({"threshold": True}, "threshold must be a number ≥ 0, not True"),
    ({"severity": "error"}, "Input should be 'warn' or 'fail'"),
    ({"table": "orders; DROP TABLE users"}, "'orders; DROP TABLE users' is not an allowed table/column name"),
    ({"columns": []}, "at least 1 item"),
    ({"columns": ["id", "ID"]}, "a column is listed twice"),
    ({"suggestion": "运行 {fix_script}"}, "unknown placeholder(s) ['fix_script'] in suggestion"),
    ({"target": ""}, "rule 'orders_pk' (duplicate_keys) needs a 'target'"),
    ({"where": "id > 0"}, "Extra inputs are not permitted"),
])
def test_a_malformed_rule_is_refused_with_a_clear_message(change: dict[str, Any], message: str) -> None:
    assert message in errors_of({**DUP, **change})


@pytest.mark.parametrize(("rule", "message"), [
    ({"type": "middleware_version", "component": "mysql", "target": "ft_db"}, "give min_version and/or max_version"),
    ({"type": "middleware_version", "component": "mysql", "target": "ft_db", "min_version": "8.0",
      "max_version": "5.7"}, "max_version 5.7 is below min_version 8.0"),
    ({"type": "middleware_version", "component": "kafka", "target": "zk"}, "Input should be 'mysql', 'mariadb'"),
    ({"type": "custom_sql", "target": "ft_db", "sql": "DELETE FROM orders"}, "read-only SELECT, not DELETE"),
    ({"type": "custom_sql", "target": "ft_db", "sql": "SELECT 1; SELECT 2"}, "one statement, found 2"),
    ({"type": "column_fit", "target": "ft_db", "table": "t", "column": "c"}, "give max_length, target_type"),
    ({"type": "column_fit", "target": "ft_db", "table": "t", "column": "c", "target_type": "text"}, "not one of"),
    ({"type": "illegal_characters", "target": "ft_db", "table": "t", "columns": ["c"], "patterns": ["(unclosed"]},
     "is not a valid regex"),
    ({"type": "disk_free", "path": "data"}, "give min_free_gb and/or min_free_percent"),
    ({"type": "disk_free", "path": "data", "min_free_gb": 1}, "'data' is not an absolute path"),
    ({"type": "zookeeper_data_disk"}, "give 'data_dir', or 'target'"),
    ({"type": "kafka_topics", "target": "zk"}, "give 'topics' and/or 'min_brokers'"),
    ({"type": "kafka_topics", "target": "zk", "topics": [{"name": "a b"}]}, "'a b' is not a Kafka topic name"),
])
def test_each_rule_type_checks_its_own_fields(rule: dict[str, Any], message: str) -> None:
    assert message in errors_of({"id": "r1", "title": "t", **rule})


def test_redis_needs_no_target_and_defaults_are_filled() -> None:
    (rule,) = parse_rules([{"id": "r", "title": "Redis", "type": "middleware_version", "component": "redis",
                            "min_version": "6.2"}])
    assert rule.target == "redis" and rule.severity == "fail" and rule.threshold == 0


def test_a_rule_applies_when_source_or_target_lies_in_its_range() -> None:
    (rule,) = parse_rules([{**DUP, "versions": "3.17.5~3.17.9"}])
    assert rule.versions == "3.17.5~3.17.9"
    assert skip_reason(rule, Version.parse("3.17.0"), Version.parse("3.17.5")) is None
    assert skip_reason(rule, Version.parse("3.17.9"), Version.parse("3.18.0")) is None
    assert skip_reason(rule, Version.parse("3.17.5-P1"), Version.parse("3.17.6")) is None
    assert skip_reason(rule, Version.parse("3.16.0"), Version.parse("3.17.4")) == \
        "源版本3.16.0和目标版本3.17.4均不在适用范围3.17.5~3.17.9内"
    assert str(VersionRange.parse("3.17.5~")) == "3.17.5~"
    assert VersionRange.parse("~3.17.5").contains(Version.parse("3.0.0"))
    assert str(VersionRange.parse(" 3.17.5 ")) == "3.17.5"


def test_rule_ids_must_be_unique_within_the_step() -> None:
    with pytest.raises(ValidationError, match="rule id 'orders_pk' is used twice"):
        BusinessCheckParams.model_validate({"rules": [DUP, DUP]})
    with pytest.raises(ValidationError, match="needs at least one rule"):
        BusinessCheckParams.model_validate({})


def write_tree(root: Path, step: dict[str, Any], rule_files: dict[str, str]) -> Path:
    configs = root / "configs"
    (configs / "rules").mkdir(parents=True)
    for name, content in rule_files.items():
        (configs / name).write_text(content, encoding="utf-8")
    config = {"version": "317500", "upgrade_steps": {"pre_business_check": [
        {"id": "pre_business_check_001", "class_name": "com.ft.upgrade.steps.PreBusinessCheckStep", **step}]}}
    (configs / "317500.json").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    return configs


def plan_errors(configs: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FT_UPGRADE_CONFIGS", str(configs))
    with pytest.raises((ConfigError, ConfigErrors)) as info:
        build_plan(load_configs(configs), "3.17.0", "3.17.5", "CN", "pre_business_check")
    with pytest.raises((ConfigError, ConfigErrors)) as again:
        validate_tree(configs, configs.parent / "sql")
    assert str(again.value) == str(info.value), "ft-upgrade validate reports the same"
    return str(info.value)


def test_rule_files_are_inlined_into_the_plan_with_their_checksum(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    configs = write_tree(tmp_path, {"rule_files": ["rules/checks.json"], "rules": [DUP]},
                         {"rules/checks.json": json.dumps({"rules": [{**DUP, "id": "users_pk", "table": "users"}]})})
    monkeypatch.setenv("FT_UPGRADE_CONFIGS", str(configs))
    plan = build_plan(load_configs(configs), "3.17.0", "3.17.5", "CN", "pre_business_check")
    params = plan.steps[0].params
    assert [r["id"] for r in params["rules"]] == ["orders_pk", "users_pk"]
    assert params["rule_files"] == [] and params["rule_sources"][0]["file"] == "rules/checks.json"
    assert len(params["rule_sources"][0]["sha256"]) == 64
    again = BusinessCheckParams.model_validate(params)  # what the worker does: no file is read again
    assert [r.id for r in again.rules] == ["orders_pk", "users_pk"]


@pytest.mark.parametrize(("content", "message"), [
    ('{"rules": [ {"id": "a",} ]}', "rule file rules/checks.json:1:24: Expecting property name"),
    ('{"rules": [], "rules": []}', "rule file rules/checks.json: duplicate key 'rules'"),
    ('[]', "expected an object with a 'rules' list"),
    (json.dumps({"rules": [{**DUP, "type": "nope"}]}), "rule file rules/checks.json: rules[0]: Input tag 'nope'"),
    (json.dumps({"rules": [{**DUP, "threshold": "ten"}]}),
     "rule file rules/checks.json: rules[0].threshold: threshold must be a number ≥ 0, not 'ten'"),
    (json.dumps({"rules": [{**DUP, "versions": "3.17.x~3.17.9"}]}), "rules[0].versions: version range '3.17.x~3.17.9'"),
])
def test_a_malformed_rule_file_stops_the_plan_naming_file_and_position(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, message: str) -> None:
    configs = write_tree(tmp_path, {"rule_files": ["rules/checks.json"]}, {"rules/checks.json": content})
    error = plan_errors(configs, monkeypatch)
    assert "upgrade_steps.pre_business_check[0]" in error
    assert message in error


@pytest.mark.parametrize(("path", "message"), [
    ("rules/missing.json", "rule file rules/missing.json: cannot read"),
    ("../outside.json", "rule file '../outside.json' leaves the configs folder"),
    ("/etc/passwd", "rule file '/etc/passwd' must be relative to the configs folder"),
])
def test_a_rule_file_must_exist_inside_the_configs_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          path: str, message: str) -> None:
    (tmp_path / "outside.json").write_text('{"rules": []}')
    configs = write_tree(tmp_path, {"rule_files": [path]}, {})
    assert message in plan_errors(configs, monkeypatch)


def test_an_inline_malformed_rule_names_its_field_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configs = write_tree(tmp_path, {"rules": [{**DUP, "threshold": "many"}]}, {})
    error = plan_errors(configs, monkeypatch)
    assert "upgrade_steps.pre_business_check[0].rules.0.duplicate_keys.threshold" in error
    assert "threshold must be a number ≥ 0, not 'many'" in error


def test_the_shipped_sample_rule_file_is_valid() -> None:
    from tasks.checks.rule_files import load_rule_file
    from tasks.core.settings import PROJECT_ROOT

    rules, _ = load_rule_file(PROJECT_ROOT / "configs", "rules/ft_317500_checks.json")
    types = {r["type"] for r in rules}
    assert {"middleware_version", "duplicate_keys", "missing_primary_key"} <= types
