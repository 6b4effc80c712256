"""Many sites at once: tests/bench/bench_fleet.py's fleet, small — four sites whose workers share one host.

One Prefect server on PostgreSQL, deploy_sites.py, a pool and a worker per site, the four workers on one
worker host (one FT_UPGRADE_HOME: one embedded ClickHouse log store for all their runs), cicd.py triggering
every site at once.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.bench.bench_fleet import Fleet, FleetOptions, engine_processes
from tests.conftest import PROJECT
from tests.deployments.sites_helpers import cicd

pytestmark = pytest.mark.prefect_server

OPTIONS = FleetOptions(sites=4, chain=2, statements=8, sites_per_host=4, worker_poll=1, cicd_poll=1,
                       run_timeout=300, gate=True)


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with Fleet(OPTIONS, echo=lambda _: None) as running:
        yield running


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_four_sites_at_once_on_one_host_store_every_statement_in_its_embedded_clickhouse_and_doctor_passes(
        fleet: Fleet) -> None:
    engines: list[int] = []

    def meanwhile() -> None:  # every run waits at its first statement while the doctor checks the host
        wait_for(lambda: fleet.waiting_at_gate() == 4, "the four runs at their first statement")
        engines.extend(engine_processes(fleet.root))
        fleet.run_doctor(fleet.sites[0])
        assert fleet.waiting_at_gate() == 4, "the doctor ran while the four runs were in the middle of their chain"
        fleet.open_gate()

    fleet.close_gate()
    runs = fleet.wave("startup_pre_process", during=meanwhile)

    assert [r.code for r in runs] == [0, 0, 0, 0], [r.output for r in runs]
    assert fleet.doctor is not None and fleet.doctor["exit"] == 0 and fleet.doctor["status"] == "ok", fleet.doctor
    log_store = next(c for c in fleet.doctor["checks"] if c["name"] == "log_store")
    assert f"embedded chdb, engine process {engines[0]}" in log_store["detail"]
    assert len(engines) == 1, "the host's runs and the doctor share one engine process"
    figures = fleet.figures()
    assert figures["statements_in_ledgers"] == 4 * OPTIONS.chain * OPTIONS.statements
    assert figures["statement_events_in_clickhouse"] == figures["statements_in_ledgers"]
    assert figures["events_dropped"] == 0 and figures["site_lock_refusals"] == 0


def test_the_fleet_limit_holds_runs_beyond_it_and_a_second_deploy_keeps_it(fleet: Fleet) -> None:
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    deployed = subprocess.run([sys.executable, "deployments/deploy_sites.py", *[a for s in fleet.sites for a in
                                                                                 ("--site", s)],
                               "--fleet-concurrency", "2"], cwd=PROJECT, env=fleet.server.env, capture_output=True,
                              text=True, timeout=300)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "fleet: at most 2 cutpoint runs at once (global concurrency limit ft-upgrade-fleet)" in deployed.stdout

    runs = fleet.wave("startup_post_process", waive=("startup_pre_process", "services_started"))

    assert [r.code for r in runs] == [0, 0, 0, 0], [r.output for r in runs]
    with fleet.api(), fleet.client() as client:
        deployment = client.read_deployment_by_name("startup_post_process/startup-post-process-s001")
        assert (deployment.global_concurrency_limit.name, deployment.global_concurrency_limit.limit) == \
            ("ft-upgrade-fleet", 2)
        wave = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["startup_post_process"])))
        waited = [any(s.name == "AwaitingConcurrencySlot" for s in client.read_flow_run_states(r.id)) for r in wave]
    spans = sorted((r.start_time, r.end_time) for r in wave)
    at_once = max(sum(1 for start, end in spans if start <= t < end) for t, _ in spans)
    assert len(wave) == 4 and at_once <= 2, spans
    assert any(waited), "two of the four runs waited for a slot"


def test_a_worker_host_without_the_projects_interpreter_fails_the_run_naming_it_and_the_fix(
        fleet: Fleet, tmp_path: Path) -> None:
    deployed = subprocess.run([sys.executable, "deployments/deploy_sites.py", "--site", "ELSEWHERE"], cwd=PROJECT,
                              env=fleet.server.env, capture_output=True, text=True, timeout=300)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    elsewhere = tmp_path / "checkout"  # installed in another virtualenv: no .venv here
    with fleet.server.worker("ft-upgrade-elsewhere", name="elsewhere",
                             extra_env={"FT_UPGRADE_PROJECT_DIR": str(elsewhere), "PREFECT_WORKER_QUERY_SECONDS": "1"}):
        code, out = cicd(fleet.server.env, "startup_pre_process", "ELSEWHERE")
    assert code == 1, out
    flat = " ".join(out.split())
    assert (f"reason: Failed: cannot start the flow run: the interpreter {elsewhere}/.venv/bin/python does not "
            "exist. On the worker host, install the project in the checkout FT_UPGRADE_PROJECT_DIR names "
            "(bash deployments/install.sh there makes its .venv)") in flat, out
