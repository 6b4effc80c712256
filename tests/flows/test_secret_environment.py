"""A secret environment value travels as the name of a Secret block: never in clear through Prefect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from typer.testing import CliRunner

from flows.cli import app
from tasks.core.environment import check_environment, references
from tasks.core.errors import InputError

SECRET = "Sx9-only-in-the-block"


def test_a_secret_looking_key_needs_a_block_reference() -> None:
    with pytest.raises(InputError, match=r"DB_PASSWORD, api_token look secret.*DB_PASSWORD=secret:<block name>"):
        check_environment({"DB_PASSWORD": "hunter2", "api_token": "t", "PIPELINE": "42"})
    with pytest.raises(InputError, match="not a Secret block reference"):
        check_environment({"NOTE": "secret:Upper_Case"})
    check_environment({"DB_PASSWORD": "secret:cn-db-password", "PIPELINE": "42", "TOKEN_TTL": ""})
    assert references({"DB_PASSWORD": "secret:cn-db-password", "PIPELINE": "42"}) == {"DB_PASSWORD": "cn-db-password"}


def run(isolated_env: Path, *env: str) -> tuple[int, str, Path]:
    target = isolated_env / "app" / "settings.properties"
    target.parent.mkdir(parents=True)
    target.write_text("db.password=${DB_PASSWORD}\npipeline=${PIPELINE}\n", encoding="utf-8")
    configs = isolated_env / "configs"
    configs.mkdir()
    (configs / "317500.json").write_text(json.dumps({"version": "317500", "upgrade_steps": {"pre_business_check": [
        {"id": "cfg", "class_name": "ConfigPreprocessStep", "config_files": [str(target)]}]}}), encoding="utf-8")
    args = ["run", "pre_business_check", "--from", "3.17.0", "--to", "3.17.5", "--site", "CN", "--json",
            "--configs", str(configs)]
    for item in env:
        args += ["--env", item]
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output, target


@pytest.mark.usefixtures("prefect_api")
def test_a_secret_given_in_clear_is_refused_before_anything_runs(isolated_env: Path) -> None:
    code, output, target = run(isolated_env, "DB_PASSWORD=hunter2", "PIPELINE=42")
    assert code == 2, output
    assert "DB_PASSWORD=secret:<block name>" in output and "hunter2" not in output
    assert "${DB_PASSWORD}" in target.read_text(encoding="utf-8")
    assert not (isolated_env / "home" / "metadata.db").exists(), "refused before any execution was recorded"


@pytest.mark.usefixtures("prefect_api")
def test_a_secret_from_a_block_reaches_the_step_and_no_trace_of_it_reaches_prefect(isolated_env: Path) -> None:
    Secret(value=SECRET).save("ft-test-db-password", overwrite=True)
    code, output, target = run(isolated_env, "DB_PASSWORD=secret:ft-test-db-password", "PIPELINE=42")
    assert code == 0, output
    assert target.read_text(encoding="utf-8") == f"db.password={SECRET}\npipeline=42\n"
    report = json.loads([line for line in output.splitlines() if line.startswith("{")][-1])
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(report["flow_run_id"])
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[report["flow_run_id"]])))
    assert flow_run.parameters["environment"]["DB_PASSWORD"] == "secret:ft-test-db-password"
    assert artifacts, "the run's reports are there to search"
    seen = json.dumps([flow_run.model_dump(mode="json"), [a.model_dump(mode="json") for a in artifacts], output])
    assert SECRET not in seen  # logs and events: tests/deployments/test_alerts.py, on a real server
