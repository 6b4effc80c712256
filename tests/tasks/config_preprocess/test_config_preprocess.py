"""Config-file preprocessing: four formats, missing values listed, originals restored on any failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.config_files.preprocess import missing, placeholders, substitute, validate_format
from tasks.config_files.step import ConfigPreprocessParams, ConfigPreprocessStep
from tasks.core.errors import StepFailed
from tests.helpers import step_context

FILES = {
    "app.json": '{"db": "${DB_HOST}", "port": ${DB_PORT}}\n',
    "app.yml": "server:\n  host: ${DB_HOST}\n  site: ${SITE_ID}\n",
    "app.properties": "db.host=${DB_HOST}\r\ndb.port=${DB_PORT}\r\n",
    "logback.xml": '<configuration><appender name="${APPENDER}"/></configuration>\n',
}
ENV = {"DB_HOST": "10.0.0.5", "DB_PORT": "3306", "APPENDER": "FILE"}


def write_files(folder: Path, files: dict[str, str]) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (folder / name).write_bytes(body.encode())
    return {name: (folder / name).read_bytes() for name in files}


def run_step(tmp_path: Path, names: list[str], env: dict[str, str]):
    params = ConfigPreprocessParams(config_files=names)
    with step_context(tmp_path, environment=env, cutpoint="pre_upgrade_process", step_id="cfg") as ctx:
        return ConfigPreprocessStep(params, ctx).run()


def test_all_four_formats_are_filled_validated_and_kept_in_history(tmp_path: Path) -> None:
    folder = tmp_path / "home" / "config_dir"
    originals = write_files(folder, FILES)
    result = run_step(tmp_path, list(FILES), ENV)
    assert result.summary == "4 config file(s) changed, 0 unchanged"
    assert (folder / "app.json").read_text() == '{"db": "10.0.0.5", "port": 3306}\n'
    assert (folder / "app.yml").read_text() == "server:\n  host: 10.0.0.5\n  site: CN\n"
    assert (folder / "app.properties").read_bytes() == b"db.host=10.0.0.5\r\ndb.port=3306\r\n", "CRLF kept"
    assert 'name="FILE"' in (folder / "logback.xml").read_text()
    history = tmp_path / "home" / "config_history" / "EXEC_TEST" / "cfg"
    assert sorted(p.read_bytes() for p in history.iterdir()) == sorted(originals.values())
    again = run_step(tmp_path, list(FILES), ENV)
    assert again.summary == "0 config file(s) changed, 4 unchanged", "a resumed run is a no-op"


def test_every_missing_placeholder_is_listed_and_no_file_changes(tmp_path: Path) -> None:
    folder = tmp_path / "home" / "config_dir"
    originals = write_files(folder, FILES)
    with pytest.raises(StepFailed) as info:
        run_step(tmp_path, list(FILES), {"DB_HOST": "h"})
    assert "missing values for placeholders APPENDER, DB_PORT" in str(info.value)
    assert info.value.result.details["missing"] == {
        str(folder / "app.json"): ["DB_PORT"], str(folder / "app.properties"): ["DB_PORT"],
        str(folder / "logback.xml"): ["APPENDER"]}
    assert {n: (folder / n).read_bytes() for n in FILES} == originals


@pytest.mark.parametrize("bad_name, bad_body, message", [
    ("z.json", '{"a": ${V}}', "invalid JSON at line 1 column 7"),
    ("z.yml", "a: ${V}\n", "invalid YAML"),
    ("z.xml", "<a>${V}</a>", "invalid XML at line 1"),
    ("z.properties", "${V}\n", "invalid properties at line 1"),
])
def test_an_invalid_result_restores_every_file_already_changed(
        tmp_path: Path, bad_name: str, bad_body: str, message: str) -> None:
    folder = tmp_path / "home" / "config_dir"
    originals = write_files(folder, {**FILES, bad_name: bad_body})
    env = {**ENV, "V": {"z.json": "oops", "z.yml": "[unclosed", "z.xml": "<b>", "z.properties": "=x"}[bad_name]}
    with pytest.raises(StepFailed, match=message) as info:
        run_step(tmp_path, [*FILES, bad_name], env)
    assert "restored 4 changed file(s)" in str(info.value)
    assert len(info.value.result.details["restored"]) == 4
    assert {n: (folder / n).read_bytes() for n in originals} == originals


def test_a_template_is_rendered_onto_its_target(tmp_path: Path) -> None:
    folder = tmp_path / "home" / "config_dir"
    write_files(folder, {"app.yml.tpl": "host: ${DB_HOST}\n"})
    params = ConfigPreprocessParams(config_files=[{"path": "app.yml", "template": "app.yml.tpl"}])
    with step_context(tmp_path, environment=ENV) as ctx:
        result = ConfigPreprocessStep(params, ctx).run()
    assert (folder / "app.yml").read_text() == "host: 10.0.0.5\n"
    assert result.details["changed"][0]["history"] == ""


def test_the_run_environment_overrides_the_site_profile(tmp_path: Path) -> None:
    from blocks.site_profile import SiteProfile

    folder = tmp_path / "home" / "config_dir"
    write_files(folder, {"a.properties": "x=${A}\ny=${B}\n"})
    with step_context(tmp_path, environment={"A": "run"}) as ctx:
        ctx.resources.profile = SiteProfile(site_id="CN", environment={"A": "profile", "B": "profile"})
        ConfigPreprocessStep(ConfigPreprocessParams(config_files=["a.properties"]), ctx).run()
    assert (folder / "a.properties").read_text() == "x=run\ny=profile\n"


def test_placeholder_helpers_are_pure() -> None:
    text = "${A} ${B.c} ${A} $NOT {X} ${1bad}"
    assert placeholders(text) == ["A", "B.c"]
    assert missing(text, {"A": "1"}) == ["B.c"]
    assert substitute("${A}-${A}", {"A": "z"}) == "z-z"
    assert validate_format('{"a": 1}', "json") is None
    assert validate_format("k=v\nlong=a\\\n  b\n# c\n", "properties") is None
    assert validate_format("k=\\u12G4", "properties") == "invalid properties at line 1: malformed \\uXXXX escape"


def test_duplicate_files_are_refused_at_plan_time() -> None:
    with pytest.raises(ValueError, match="listed twice: a.json"):
        ConfigPreprocessParams(config_files=["a.json", {"path": "a.json"}])
