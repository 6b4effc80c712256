"""Config-file preprocessing: four formats, missing values listed, originals restored on any failure."""

from __future__ import annotations

import json
import os
import stat
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import javaproperties
import pytest
import yaml

from tasks.config_files import preprocess
from tasks.config_files.encoding import PlaceholderProblem
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


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_000() -> Iterator[None]:
    """Whatever the umask lets through: only explicit modes keep files private."""
    old = os.umask(0)
    yield
    os.umask(old)


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
    assert result.summary == "已修改 4 个配置文件，0 个无变化"
    assert (folder / "app.json").read_text() == '{"db": "10.0.0.5", "port": 3306}\n'
    assert (folder / "app.yml").read_text() == "server:\n  host: 10.0.0.5\n  site: CN\n"
    assert (folder / "app.properties").read_bytes() == b"db.host=10.0.0.5\r\ndb.port=3306\r\n", "CRLF kept"
    assert 'name="FILE"' in (folder / "logback.xml").read_text()
    history = tmp_path / "home" / "config_history" / "EXEC_TEST" / "cfg"
    assert sorted(p.read_bytes() for p in history.iterdir()) == sorted(originals.values())
    again = run_step(tmp_path, list(FILES), ENV)
    assert again.summary == "已修改 0 个配置文件，4 个无变化", "a resumed run is a no-op"


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
    ("z.json", '{"a": "${V}"', "invalid JSON at line 1 column 10"),
    ("z.yml", "a: [${V}\n", "invalid YAML at line 2"),
    ("z.xml", "<a>${V}</b>", "invalid XML at line 1"),
    ("z.properties", "k=\\u12G4${V}\n", "invalid properties at line 1"),
])
def test_an_invalid_result_fails_before_any_file_is_written(
        tmp_path: Path, bad_name: str, bad_body: str, message: str) -> None:
    folder = tmp_path / "home" / "config_dir"
    originals = write_files(folder, {**FILES, bad_name: bad_body})
    with pytest.raises(StepFailed, match=message) as info:
        run_step(tmp_path, [*FILES, bad_name], {**ENV, "V": "v"})
    assert "no file was changed" in str(info.value)
    assert {n: (folder / n).read_bytes() for n in originals} == originals
    assert not (tmp_path / "home" / "config_history" / "EXEC_TEST").exists()


def test_a_failure_while_writing_restores_every_file_already_changed_with_its_mode(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask_000: None) -> None:
    folder = tmp_path / "home" / "config_dir"
    originals = write_files(folder, FILES)
    (folder / "app.yml").chmod(0o640)
    real_write = preprocess.atomic_write

    def write(path: Path, data: str) -> None:
        if path.name == "logback.xml":
            raise OSError("disk full")
        real_write(path, data)

    monkeypatch.setattr(preprocess, "atomic_write", write)
    with pytest.raises(StepFailed, match="disk full; restored 4 changed file") as info:
        run_step(tmp_path, list(FILES), ENV)
    assert len(info.value.result.details["restored"]) == 4, "the file that failed is put back too"
    assert {n: (folder / n).read_bytes() for n in FILES} == originals
    assert mode(folder / "app.yml") == 0o640, "the restored file has its own mode back"
    assert mode(folder / "app.json") == 0o666, "as it was (made under umask 000)"
    history = tmp_path / "home" / "config_history" / "EXEC_TEST" / "cfg"
    assert [mode(history.parent), mode(history)] == [0o700, 0o700]
    assert {mode(p) for p in history.iterdir()} == {0o600}, "history copies are private whatever the umask"


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


SPECIAL = ['a"b', "line1\nline2", "pw #x", "a<b", "a&b;", "c:\\d\\", "*S3cret", "- a: b", "' x"]

# Each template puts ${V} where a format holds values; each reader returns those values as read back.
PLACES = {
    "json": ('{"s": "${V}", "in": "x-${V}-y", "${V}": 1}',
             lambda d, v: [d["s"], d["in"][2:-2], *(k for k in d if k not in ("s", "in"))]),
    "yaml": ("bare: ${V}\ndq: \"${V}\"\nlist:\n  - ${V}\nflow: [${V}, z]\n${V}: key\n"
             "block: |\n  ${V}\n",
             lambda d, v: [d["bare"], d["dq"], d["list"][0], d["flow"][0], d["block"][:-1],
                           *(k for k in d if d[k] == "key")]),
    "properties": ("a=${V}\nb = x${V}\n${V}=key\nc ${V}\n",
                   lambda d, v: [d["a"], d["b"][1:], d["c"], *(k for k in d if d[k] == "key")]),
    "xml": ("<r a=\"${V}\" b='${V}'><t>${V}</t><u>x ${V} y</u></r>",
            lambda r, v: [r.get("a"), r.get("b"), r.find("t").text, r.find("u").text[2:-2]]),
}
READERS = {"json": json.loads, "yaml": yaml.safe_load, "properties": javaproperties.loads, "xml": ET.fromstring}


@pytest.mark.parametrize("value", SPECIAL)
@pytest.mark.parametrize("fmt", list(PLACES))
def test_every_special_character_reads_back_as_exactly_the_value(fmt: str, value: str) -> None:
    template, read_back = PLACES[fmt]
    if fmt == "yaml" and value.startswith(("\n", " ")):
        pytest.skip("a block scalar line cannot begin with a space")
    result = substitute(template, {"V": value}, fmt)
    assert validate_format(result, fmt) is None, result
    parsed = READERS[fmt](result)
    found = read_back(parsed, value)
    assert found == [value] * len(found) and len(found) >= 3, result
    assert len(parsed if fmt != "xml" else parsed.attrib) == (3 if fmt == "json" else 6 if fmt == "yaml" else
                                                              4 if fmt == "properties" else 2), "no key added"


@pytest.mark.parametrize("fmt, template, value, reason", [
    ("json", '{"port": ${V}}', "80; rm", "stands unquoted in JSON, so its value must be a JSON number"),
    ("yaml", "a: '${V}'\n", "x\ny", "single-quoted YAML scalar, which cannot hold a line break"),
    ("yaml", "a: x-${V}\n", "y #z", "part of an unquoted YAML value"),
    ("yaml", "# note ${V}\n", "x\ny: 1", "stands in a YAML comment and its value has a line break"),
    ("properties", "# ${V}\n", "x\ny=1", "properties comment and its value has a line break"),
    ("xml", "<a><![CDATA[${V}]]></a>", "x]]><b/>", "CDATA section"),
    ("xml", "<a><!-- ${V} --></a>", "x -- y", "XML comment"),
    ("xml", "<${V}/>", "a b", "not an XML name"),
])
def test_a_value_that_cannot_stand_where_it_is_is_refused(fmt: str, template: str, value: str, reason: str) -> None:
    with pytest.raises(PlaceholderProblem, match=reason) as info:
        substitute(template, {"V": value}, fmt)
    assert (info.value.line, info.value.name) == (1, "V")


def test_a_refused_value_names_file_line_and_placeholder_and_nothing_is_written(tmp_path: Path) -> None:
    folder = tmp_path / "home" / "config_dir"
    originals = write_files(folder, {**FILES, "z.json": '{\n  "port": ${PORT}\n}\n'})
    with pytest.raises(StepFailed, match=r"z\.json:2: \$\{PORT\} stands unquoted in JSON") as info:
        run_step(tmp_path, [*FILES, "z.json"], {**ENV, "PORT": "web"})
    assert "no file was changed" in str(info.value)
    assert {n: (folder / n).read_bytes() for n in originals} == originals


def test_a_value_stored_masked_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    folder = tmp_path / "home" / "config_dir"
    originals = write_files(folder, {**FILES, "db.properties": "password=${DB_PASSWORD}\n"})
    with pytest.raises(StepFailed) as info:
        run_step(tmp_path, [*FILES, "db.properties"], {**ENV, "DB_PASSWORD": "***"})
    assert "DB_PASSWORD only known masked" in str(info.value)
    assert "ft-upgrade resume EXECUTION_ID --env DB_PASSWORD=secret:<Secret block name>" in str(info.value)
    assert {n: (folder / n).read_bytes() for n in originals} == originals


def test_secrets_are_masked_in_a_format_error(tmp_path: Path) -> None:
    folder = tmp_path / "home" / "config_dir"
    write_files(folder, {"app.yml": "pw: *${DB_PASSWORD}\n", "b.yml": "host: *${HOST}\n"})
    with step_context(tmp_path, environment={"DB_PASSWORD": "S3cret", "HOST": "h0st"}) as ctx:
        ctx.resources.secrets.add("h0st")  # known as a secret although its name does not look secret
        with pytest.raises(StepFailed) as info:
            ConfigPreprocessStep(ConfigPreprocessParams(config_files=["app.yml", "b.yml"]), ctx).run()
    assert str(info.value).count("found undefined alias '***'") == 2, "the issue's example, masked"
    assert "S3cret" not in str(info.value) and "h0st" not in str(info.value)
