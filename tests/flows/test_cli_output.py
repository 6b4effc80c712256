"""The CLI as a CI log reads it: through a pipe, full width; its version, exit codes and choices in help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT

CLI = str(Path(sys.executable).parent / "ft-upgrade")


def piped(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "PREFECT_API_URL")}
    return subprocess.run([CLI, *args], cwd=PROJECT, env={**env, "FT_UPGRADE_HOME": str(home)},
                          capture_output=True, text=True, timeout=120)


def test_a_plan_read_through_a_pipe_is_not_cut_to_80_columns(tmp_path: Path) -> None:
    result = piped("plan", "--from", "3.17.0", "--to", "3.17.5-P1", "--site", "CN", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pre_business_check_001" in result.stdout and "PreBusinessCheckStep" in result.stdout
    assert "…" not in result.stdout


def test_version_exit_codes_and_choices_are_in_the_help(tmp_path: Path) -> None:
    version = piped("--version", home=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("ft-auto-upgrade 0.1.0 (prefect 3.")
    assert "Exit codes: 0 done" in " ".join(piped("--help", home=tmp_path).stdout.split())
    assert "<applied|retry|skip>" in piped("resume", "--help", home=tmp_path).stdout
    bad = piped("resume", "EXEC_X", "--inflight", "maybe", home=tmp_path)
    assert bad.returncode == 2 and "'applied', 'retry', 'skip'" in " ".join(bad.stderr.replace("│", " ").split())


def test_under_json_a_failure_is_a_json_object_on_stdout(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "317500.json").write_text('{"version": "317500", "upgrade_steps": {', encoding="utf-8")
    for args in (["validate", "--configs", str(configs), "--json"],
                 ["plan", "--from", "3.17.0", "--to", "3.17.10", "--site", "CN", "--json"]):
        result = piped(*args, home=tmp_path)
        assert result.returncode == 2, result
        failure = json.loads(result.stdout)
        assert failure["status"] == "error" and failure["exit_code"] == 2 and failure["error"], failure
    assert "317500.json:1:" in json.loads(piped("validate", "--configs", str(configs), "--json", home=tmp_path)
                                          .stdout)["error"]
