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
