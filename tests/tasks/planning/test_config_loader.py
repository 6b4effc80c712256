"""Configs: the seed's examples load; every malformed config is rejected with file:line:col or field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tasks.core.cutpoints import Cutpoint
from tasks.core.errors import ConfigError
from tasks.planning.config_loader import (
    ConfigWarning,
    config_checksum,
    load_config_file,
    load_configs,
    parse_config_text,
)

SEED = Path(__file__).resolve().parents[2] / "data" / "seed"


def test_seed_baseline_example_loads_as_it_is() -> None:
    loaded = load_config_file(SEED / "317500.json")
    assert loaded.version.code == 317500
    assert list(loaded.config.upgrade_steps) == list(Cutpoint)
    overseas = loaded.config.upgrade_steps[Cutpoint.POST_UPGRADE][1]
    assert overseas.id == "overseas_specific_process_001"
    assert overseas.site_ids == ["US", "EU", "JP"]
    assert overseas.class_name == "com.ft.upgrade.steps.OverseasSpecificProcessStep"


def test_seed_patch_example_reports_its_trailing_comma_with_line_and_column() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_file(SEED / "317501.json")
    assert str(info.value) == f"{SEED / '317501.json'}:16:52: trailing comma before '}}' (strict JSON)"


def test_seed_patch_example_loads_once_its_trailing_comma_is_removed(tmp_path: Path) -> None:
    text = (SEED / "317501.json").read_text(encoding="utf-8").replace('"ft-report"],\n  },', '"ft-report"]\n  },')
    (tmp_path / "317501.json").write_text(text, encoding="utf-8")
    loaded = load_config_file(tmp_path / "317501.json")
    assert loaded.config.kind == "patch"
    steps = loaded.config.upgrade_steps[Cutpoint.STARTUP_PRE_PROCESS]
    assert steps[0].params["sql_scripts"][0] == "patch/317501/001_fix_order_status.sql"
    assert steps[1].required is False


def test_chapter_two_config_with_dotted_version_and_pre_upgrade_key_loads_with_a_warning() -> None:
    text = (SEED / "chapter2_15.2_config.json").read_text(encoding="utf-8")
    with pytest.warns(ConfigWarning, match="'pre_upgrade' is deprecated"):
        loaded = parse_config_text(text, source="317500.json")
    assert str(loaded.version) == "3.17.5"
    step = loaded.config.upgrade_steps[Cutpoint.PRE_UPGRADE_PROCESS][0]
    assert step.rollback_supported is False and step.dependencies == []
    assert loaded.config.rollback_steps["pre_rollback"][0].class_name.endswith("RestoreBackupStep")
    assert loaded.config.notifications is not None
    assert loaded.config.notifications.on_failure == ["admin@company.com", "dev-team@company.com"]
    assert loaded.config.dependencies.required_resources["disk"] == "10GB"


GOOD = {
    "version": "317500",
    "upgrade_steps": {
        "pre_business_check": [
            {"id": "a", "class_name": "ServiceHealthCheckStep", "databases": ["ft_db"]},
        ]
    },
}


def _with(**changes: object) -> str:
    data = json.loads(json.dumps(GOOD))
    data.update(changes)
    return json.dumps(data, indent=2)


def _step(**changes: object) -> str:
    step = {"id": "a", "class_name": "ServiceHealthCheckStep", "databases": ["ft_db"], **changes}
    return _with(upgrade_steps={"pre_business_check": [step]})


MALFORMED: list[tuple[str, str, str, str]] = [
    ("trailing_comma", "317500.json", '{\n  "version": "317500",\n}', "317500.json:2:22: trailing comma"),
    ("missing_brace", "317500.json", '{\n  "version": "317500"\n', "317500.json:3:1: Expecting ',' delimiter"),
    ("single_quotes", "317500.json", "{\n  'version': '317500'\n}", "317500.json:2:3: Expecting property name"),
    ("comment", "317500.json", '{\n  // no comments in JSON\n  "version": "317500"\n}', "317500.json:2:3:"),
    ("nan", "317500.json", '{"version": "317500", "upgrade_steps": {"pre_business_check": '
     '[{"id": "a", "class_name": "X", "timeout": NaN}]}}', "NaN is not valid JSON"),
    ("duplicate_key", "317500.json", '{\n  "version": "317500",\n  "version": "317501"\n}',
     "317500.json:3:3: duplicate key 'version'"),
    ("not_an_object", "317500.json", "[1, 2]", "317500.json:1:1: a version config is a JSON object"),
    ("bad_version", "317500.json", _with(version="3.17.10"), "version: invalid version '3.17.10'"),
    ("unknown_cutpoint", "317500.json", _with(upgrade_steps={"pre_check": []}),
     "upgrade_steps.pre_check: unknown cutpoint key 'pre_check'"),
    ("duplicate_step_id", "317500.json", _with(upgrade_steps={
        "pre_business_check": [{"id": "a", "class_name": "ServiceHealthCheckStep", "databases": ["ft_db"]}],
        "post_upgrade": [{"id": "a", "class_name": "ServiceHealthCheckStep", "databases": ["ft_db"]}]}),
     "duplicate step id 'a'"),
    ("patch_base_mismatch", "317501.json", _with(version="317501", base_version="317400"),
     "base_version 3.17.4 does not match patch 3.17.5-P1"),
    ("file_name_disagrees", "317600.json", _with(), "file name says 3.17.6 but \"version\" is 3.17.5"),
    ("file_name_not_a_version", "latest.json", _with(), "file name must be the version code, e.g. 317500.json"),
    ("unknown_top_field", "317500.json", _with(verison="317500"), "verison: unknown field"),
    ("wrong_type_timeout", "317500.json", _step(timeout="fast"),
     "upgrade_steps.pre_business_check[0].timeout: Input should be a valid integer"),
    ("negative_retry", "317500.json", _step(retry_count=-1), "retry_count: Input should be greater than or equal"),
    ("missing_class_name", "317500.json", _with(upgrade_steps={"pre_business_check": [{"id": "a"}]}),
     "upgrade_steps.pre_business_check[0].class_name: Field required"),
    ("unknown_step_class", "317500.json", _step(class_name="com.ft.upgrade.steps.NoSuchStep"),
     "upgrade_steps.pre_business_check[0].class_name: no step implementation for 'com.ft.upgrade.steps.NoSuchStep'"),
    ("step_param_unknown_field", "317500.json", _step(databsaes=["x"]),
     "upgrade_steps.pre_business_check[0].databsaes: unknown field for ServiceHealthCheckStep"),
    ("step_param_wrong_type", "317500.json", _step(databases="ft_db"),
     "upgrade_steps.pre_business_check[0].databases: Input should be a valid list"),
    ("version_type_mismatch", "317500.json", _with(version_type="patch"),
     "version_type is 'patch' but version 3.17.5 is a baseline"),
    ("bad_utf8", "317500.json", b'{"version": "317500", "description": "\xff"}', "317500.json:1: not UTF-8"),
]


@pytest.mark.parametrize(("name", "file", "text", "expected"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_config_is_rejected_by_validate_with_its_location_and_exit_2(
    tmp_path: Path, name: str, file: str, text: str | bytes, expected: str
) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    path = configs / file
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", "--configs", str(configs), "--sql-root", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split()), result.output
    assert file in result.output


def test_validate_reports_every_broken_config_at_once(tmp_path: Path) -> None:
    (tmp_path / "317500.json").write_text(_with(verison="x"), encoding="utf-8")
    (tmp_path / "317600.json").write_text('{"version": "317600",}', encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", "--configs", str(tmp_path)])
    assert result.exit_code == 2
    assert "317500.json: verison: unknown field" in result.output
    assert "317600.json:1:21: trailing comma" in result.output


def test_a_metadata_checksum_is_verified_against_the_configs_content(tmp_path: Path) -> None:
    data = {"version": "317500", "metadata": {"created_by": "ft-team"}, "upgrade_steps": {}}
    for algorithm in ("sha256", "md5"):
        signed = {**data, "metadata": {**data["metadata"], "checksum": config_checksum(data, algorithm)}}
        loaded = parse_config_text(json.dumps(signed, indent=2), source="317500.json")
        assert loaded.warnings == ()
    signed = {**data, "metadata": {**data["metadata"], "checksum": config_checksum(data)}}
    tampered = json.dumps({**signed, "description": "edited after sign-off"}, indent=2)
    with pytest.raises(ConfigError) as info:
        parse_config_text(tampered, source="317500.json")
    assert str(info.value).startswith("317500.json:5:5: metadata.checksum does not match the content (sha256 is ")


def test_a_placeholder_checksum_is_reported_as_not_verified() -> None:
    with pytest.warns(ConfigWarning, match="metadata.checksum 'md5hash_value' is not an MD5 or SHA-256 hex digest"):
        load_config_file(SEED / "317500.json")


def test_the_checksum_command_prints_what_the_config_must_carry(tmp_path: Path) -> None:
    path = tmp_path / "317500.json"
    data = {"version": "317500", "metadata": {"checksum": "0" * 64}, "upgrade_steps": {}}
    path.write_text(json.dumps(data), encoding="utf-8")
    result = CliRunner().invoke(app, ["checksum", str(path)])
    assert result.exit_code == 0, result.output
    data["metadata"]["checksum"] = result.output.split()[0]
    path.write_text(json.dumps(data), encoding="utf-8")
    assert load_config_file(path).warnings == ()


def test_an_empty_config_declares_a_release_without_upgrade_work_and_a_patch_names_its_base(tmp_path: Path) -> None:
    (tmp_path / "100100.json").write_text('{"version": "100100", "version_type": "baseline"}', encoding="utf-8")
    (tmp_path / "100101.json").write_text('{"version": "100101", "version_type": "patch", "base_version": "100100"}',
                                          encoding="utf-8")
    base, patch = load_configs(tmp_path)
    assert (str(base.version), base.config.upgrade_steps, base.config.base) == ("1.0.1", {}, None)
    assert str(patch.config.base) == "1.0.1"
