"""``validate`` checks what ``plan`` checks, for every range of versions and every site it knows.

Each case breaks a copy of the sample configs in one way that used to pass ``validate`` and fail only
in ``plan`` or ``run``; ``validate`` must now exit 2 naming the file.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.conftest import PROJECT

Config = dict[str, Any]


def _steps(config: Config, cutpoint: str) -> list[Config]:
    return config["upgrade_steps"][cutpoint]


def cycle(folder: Path) -> str:
    def edit(c: Config) -> None:
        _steps(c, "post_upgrade")[0]["dependencies"] = ["overseas_specific_process_001"]
    return _edit(folder, "317500", edit)


def unknown_dependency(folder: Path) -> str:
    def edit(c: Config) -> None:  # a US-only step: found by planning for the site that names it
        _steps(c, "post_upgrade")[1]["dependencies"] = ["no_such_step"]
    return _edit(folder, "317500", edit)


def patch_without_base(folder: Path) -> str:
    (folder / "configs" / "317500.json").unlink()
    return "317501.json"


def site_specific_without_sites(folder: Path) -> str:
    def edit(c: Config) -> None:
        _steps(c, "startup_pre_process")[0]["is_common"] = False
    return _edit(folder, "317501", edit)


def unknown_database(folder: Path) -> str:
    script = folder / "sql" / "patch" / "317501" / "001_fix_order_status.sql"
    script.write_text("-- @database: unknown\n" + script.read_text(encoding="utf-8"), encoding="utf-8")
    return "317501.json"


def _edit(folder: Path, code: str, edit: Callable[[Config], None]) -> str:
    path = folder / "configs" / f"{code}.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    edit(config)
    path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    return path.name


CASES = {
    "cycle": (cycle, "step dependencies form a cycle among: 317500:overseas_specific_process_001, "
                     "317500:post_upgrade_process_001"),
    "unknown_dependency": (unknown_dependency, "upgrade_steps.post_upgrade[1]: step 'overseas_specific_process_001' "
                                               "depends on unknown step id 'no_such_step'"),
    "patch_without_base": (patch_without_base, "dependencies: 3.17.5-P1 requires base version 3.17.5, but 3.17.0 "
                                               "(base 3.17.0) is in effect at that point; there is no config for "
                                               "its base 3.17.5 in the folder"),
    "site_specific_without_sites": (site_specific_without_sites, "upgrade_steps.startup_pre_process[0]: step "
                                                                 "'patch_sql_execution_001': is_common is false but "
                                                                 "site_ids is empty"),
    "unknown_database": (unknown_database, "upgrade_steps.startup_pre_process[0]: patch/317501/"
                                           "001_fix_order_status.sql:1:1: unknown database 'unknown' in @database "
                                           "annotation (known: ft_db, metadata, middle_db)"),
}


@pytest.fixture
def samples(isolated_env: Path) -> Path:
    """A copy of the sample configs and scripts, which ``validate`` passes as they are."""
    shutil.copytree(PROJECT / "configs", isolated_env / "configs")
    shutil.copytree(PROJECT / "sql", isolated_env / "sql")
    assert validate(isolated_env)[0] == 0
    return isolated_env


def validate(folder: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["validate", "--configs", str(folder / "configs"),
                                      "--sql-root", str(folder / "sql")])
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize("case", list(CASES))
def test_validate_refuses_what_plan_would_refuse_naming_the_file(samples: Path, case: str) -> None:
    breaks, expected = CASES[case]
    file = breaks(samples)
    code, output = validate(samples)
    assert code == 2, output
    assert f"configs/{file}: {expected}" in output, output


# issue 31: a patch whose base has no config, from a source below the base

PATCH_ONLY = {"version": "100101", "version_type": "patch", "base_version": "100100"}
EMPTY_BASE = {"version": "100100", "version_type": "baseline"}
MISSING_BASE = ("configs/100101.json: patch 1.0.1-P1 is applied on its base 1.0.1, which a range from {source} "
                "crosses, but the folder has no config for 1.0.1: 1.0.1's upgrade would be skipped without a word. "
                "Add 1.0.1's config (100100.json) to the folder, or, if 1.0.1 has no upgrade work, an empty one: "
                '{{"version": "100100", "version_type": "baseline"}}')


HERE = ["--configs", "configs", "--sql-root", "sql"]
FOLDERS = {"validate": HERE, "run": HERE, "baseline": []}


def release_folder(root: Path, *configs: Config) -> Path:
    (root / "configs").mkdir()
    (root / "sql").mkdir()
    for data in configs:
        (root / "configs" / f"{data['version']}.json").write_text(json.dumps(data), encoding="utf-8")
    return root


def cli(*args: str) -> tuple[int, str]:
    """The command on the folder in the working directory."""
    result = CliRunner().invoke(app, [*args, *FOLDERS[args[0]]], terminal_width=400)
    return result.exit_code, " ".join(result.output.split())


def test_validate_refuses_a_patch_without_its_base_from_a_source_below_the_base(
        isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(release_folder(isolated_env, PATCH_ONLY))
    assert cli("validate")[0] == 0  # a patch package for sites on 1.0.1 already: nothing crosses the base
    code, output = cli("validate", "--from", "1.0.0")
    assert code == 2 and MISSING_BASE.format(source="1.0.0 (--from)") in output, output
    assert cli("validate", "--from", "1.0.1")[0] == 0
    assert cli("baseline", "--site", "CN", "--version", "1.0.0", "--by", "test")[0] == 0
    code, output = cli("validate", "--site", "CN")
    assert code == 2 and MISSING_BASE.format(source="1.0.0 (site CN's version)") in output, output
    (isolated_env / "configs" / "100000.json").write_text(json.dumps({"version": "100000"}), encoding="utf-8")
    code, output = cli("validate")  # now a range inside the folder crosses the base
    assert code == 2 and MISSING_BASE.format(source="1.0.0 (configs/100000.json)") in output, output
    (isolated_env / "configs" / "100100.json").write_text(json.dumps(EMPTY_BASE), encoding="utf-8")
    assert cli("validate", "--site", "CN", "--from", "1.0.0")[0] == 0


def test_every_cutpoint_refuses_to_run_a_range_that_skips_a_patchs_base(
        isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(release_folder(isolated_env, PATCH_ONLY))
    for cutpoint in ("pre_business_check", "pre_upgrade_process", "startup_pre_process", "startup_post_process",
                     "post_upgrade"):
        code, output = cli("run", cutpoint, "--from", "1.0.0", "--to", "1.0.1-P1", "--site", "CN")
        assert code == 2 and MISSING_BASE.format(source="1.0.0 (--from)") in output, (cutpoint, output)
    assert not (isolated_env / "home" / "metadata.db").exists(), "refused before any execution was recorded"


@pytest.mark.usefixtures("prefect_api")
def test_a_deployed_cutpoint_refuses_it_too_with_a_refusal_report_cicd_reads_as_exit_2(
        isolated_env: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from deployments.cicd import REFUSED_MARK
    from flows.registry import CUTPOINT_FLOWS
    from tasks.core.cutpoints import Cutpoint
    from tasks.core.errors import PlanError

    root = release_folder(isolated_env, PATCH_ONLY)
    state = CUTPOINT_FLOWS[Cutpoint.STARTUP_PRE_PROCESS](
        source_version="1.0.0", target_version="1.0.1-P1", site_id="CN", environment={},
        configs_dir=str(root / "configs"), sql_root=str(root / "sql"), return_state=True)
    assert state.is_failed() and isinstance(state.result(raise_on_failure=False), PlanError)
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    markdown = " ".join(" ".join(str(a.data) for a in artifacts if a.type == "markdown").split())
    assert REFUSED_MARK in markdown and "patch 1.0.1-P1 is applied on its base 1.0.1" in markdown, markdown
    assert not (isolated_env / "home" / "metadata.db").exists(), "nothing was recorded: nothing ran"
