"""The pure parts of the CICD script and the per-site deployment naming, without a server."""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.conftest import PROJECT
from tests.prefect_server import free_port


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"ft_{name}", PROJECT / "deployments" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


cicd = load("cicd")
deploy_sites = load("deploy_sites")


def test_a_valid_request_names_the_per_site_deployment_and_carries_the_parameters() -> None:
    request = cicd.validate_request("startup_pre_process", "3.17.0", "317501", "CN", ["PIPELINE=42", "A=b=c"], "-cn")
    assert request.deployment_name == "startup_pre_process/startup-pre-process-cn"
    assert request.parameters == {"source_version": "3.17.0", "target_version": "3.17.5-P1", "site_id": "CN",
                                  "environment": {"PIPELINE": "42", "A": "b=c"}}
    assert request.report_key == "ft-cn-startup-pre-process"


@pytest.mark.parametrize(("args", "message"), [
    (("nope", "3.17.0", "3.17.5", "CN"), "unknown cutpoint"),
    (("post_upgrade", "3.17", "3.17.5", "CN"), "invalid version"),
    (("post_upgrade", "3.17.5", "3.17.5", "CN"), "not newer"),
    (("post_upgrade", "3.17.0", "3.17.5", "C N"), "site id"),
])
def test_bad_input_is_refused_before_anything_is_started(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(cicd.BadInput, match=message):
        cicd.validate_request(*args)
    assert cicd.main(["--cutpoint", args[0], "--from", args[1], "--to", args[2], "--site", args[3]]) == 2


def test_an_env_value_without_equals_sign_is_bad_input() -> None:
    with pytest.raises(cicd.BadInput, match="KEY=VALUE"):
        cicd.parse_env(["PIPELINE"])
    assert cicd.main(["--cutpoint", "post_upgrade"]) == 2, "missing arguments are bad input too"


def test_the_failure_lines_give_the_execution_id_and_the_three_ways_to_resume() -> None:
    request = cicd.validate_request("post_upgrade", "3.17.0", "3.17.5", "US")
    report = "| execution id | `EXEC_20260101_000000_abcd` |\n"
    lines = cicd.failure_lines(request, "run-1", "Failed: boom", report)
    assert "execution id: EXEC_20260101_000000_abcd" in lines
    assert any("flow run run-1" in line and "Retry" in line for line in lines)
    assert lines[-1] == "  - CLI: ft-upgrade resume EXEC_20260101_000000_abcd"
    assert "execution id: - (the run stopped before starting an execution)" in cicd.failure_lines(
        request, "run-2", None, None)


def test_each_site_gets_its_own_pool_and_five_deployments_defaulting_to_it() -> None:
    planned = deploy_sites.plan_site("CN")
    assert {d.pool for d in planned} == {"ft-upgrade-cn"}
    assert [d.full_name for d in planned] == [
        "pre_business_check/pre-business-check-cn", "pre_upgrade_process/pre-upgrade-process-cn",
        "startup_pre_process/startup-pre-process-cn", "startup_post_process/startup-post-process-cn",
        "post_upgrade/post-upgrade-cn"]
    assert planned[2].entrypoint == "flows/startup_pre_process.py:startup_pre_process"
    assert deploy_sites.sites_from_files(PROJECT / "deployments" / "sites") == ["CN", "US"]
    with pytest.raises(ValueError, match="letters, digits"):
        deploy_sites.plan_site("C/N")


def test_deployments_start_the_engine_of_the_worker_hosts_checkout_directly() -> None:
    """prefect.yaml and the per-site deployments run the same command, read on the worker's host."""
    config = yaml.safe_load((PROJECT / "deployments" / "prefect.yaml").read_text(encoding="utf-8"))
    assert config["definitions"]["work_pool"]["job_variables"]["command"] == deploy_sites.ENGINE_COMMAND
    assert config["definitions"]["work_pool"]["job_variables"]["env"] == deploy_sites.job_variables()["env"]
    argv = shlex.split(deploy_sites.ENGINE_COMMAND)
    assert argv[:2] == ["sh", "-c"] and len(argv) == 3
    assert argv[2].startswith('py="$FT_UPGRADE_PROJECT_DIR/.venv/bin/python"\n')
    assert '\n  exec "$py" -m prefect.engine\n' in argv[2]


def test_an_interpreter_without_prefect_is_named_with_the_fix_and_the_run_never_starts(tmp_path: Path) -> None:
    """The engine command as the worker runs it, on a checkout whose .venv is another Python (no Prefect in it)."""
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").symlink_to("/usr/bin/python3")
    env = {"PATH": "/usr/bin:/bin", "FT_UPGRADE_PROJECT_DIR": str(tmp_path),
           "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api", "PREFECT__FLOW_RUN_ID": "0" * 32}
    result = subprocess.run(shlex.split(deploy_sites.ENGINE_COMMAND), env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 127
    assert (f"ft-auto-upgrade: cannot start the flow run: the interpreter {tmp_path}/.venv/bin/python does not run, "
            "or has no prefect installed. On the worker host, install the project") in result.stderr
    assert "could not mark the flow run failed" in result.stderr, "nobody listens at that API"
