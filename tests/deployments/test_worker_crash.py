"""A site worker killed (SIGKILL) mid-run: after a restart, the crashed run is retried to completion.

The flow run is left Running by a dead worker; the operator (or an automation) marks it Crashed, then
presses Retry (AwaitingRetry). The new run takes over the dead holder's site lock and continues the
same execution: the step that had finished is not run again. (The worker is killed during a health
check: a SQL statement cut off mid-flight is "in doubt" and needs the operator's `--inflight` decision,
which test_resume_paths and the SQL engine's tests cover.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from tasks.store.schema import site_lock
from tests.deployments.sites_helpers import deploy_sites, site_env, wait_for_lock, write_tree
from tests.prefect_server import PrefectServer, prefect_server

pytestmark = pytest.mark.prefect_server

DELAY = 8  # the slow endpoint answers after this many seconds: the worker is killed while it waits
FIRST, SECOND = "CREATE TABLE marker (n INT);\nINSERT INTO marker VALUES (1);\n", "INSERT INTO marker VALUES (2);\n"


def steps(url: str) -> dict[str, list[dict[str, object]]]:
    return {"startup_pre_process": [
        {"id": "sql_001", "class_name": "StartupPreProcessStep", "sql_scripts": ["first.sql"]},
        {"id": "slow_check", "class_name": "ServiceHealthCheckStep", "endpoints": [{"url": url, "timeout": 30}]},
        {"id": "sql_002", "class_name": "StartupPreProcessStep", "sql_scripts": ["second.sql"]}]}


class SlowHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        time.sleep(DELAY)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health"
    finally:
        server.shutdown()
        server.server_close()


def flow_run_state(server: PrefectServer, run_id: str) -> str:
    return server.python(f"""
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as client:
    print(client.read_flow_run('{run_id}').state.name)
""").strip().splitlines()[-1]


def crash_then_retry(server: PrefectServer, run_id: str) -> None:
    """What the operator does in the UI for a run whose worker died: mark it crashed, press Retry."""
    server.python(f"""
from prefect.client.orchestration import get_client
from prefect.states import AwaitingRetry, Crashed
with get_client(sync_client=True) as client:
    client.set_flow_run_state('{run_id}', Crashed(message='worker killed'), force=True)
    client.set_flow_run_state('{run_id}', AwaitingRetry(), force=True)
""")


def test_a_killed_worker_restarted_lets_the_crashed_run_be_retried_to_completion(
        tmp_path: Path, mariadb_database: str, slow_endpoint: str) -> None:
    tree = write_tree(tmp_path, steps(slow_endpoint), {"first.sql": FIRST, "second.sql": SECOND})
    env = {**tree, **site_env(tmp_path, "CN", mariadb_database)}
    home = Path(env["FT_UPGRADE_HOME"])
    with prefect_server(tmp_path / "prefect") as server:
        deploy_sites(server, "CN")
        server.cli("deployment", "run", "startup_pre_process/startup-pre-process-cn", "-p", "source_version=3.17.0",
                   "-p", "target_version=3.17.5", "-p", 'waive=["pre_upgrade_process"]',
                   "-p", "reason=test: this cutpoint alone")
        with server.worker("ft-upgrade-cn", extra_env=env, name="first") as worker:
            wait_for_lock(home, "CN")
            engine = create_engine(f"sqlite:///{home / 'metadata.db'}")
            with engine.connect() as conn:
                flow_pid = conn.execute(select(site_lock.c.pid).where(site_lock.c.site_id == "CN")).scalar_one()
            run_id = None
            for _ in range(100):  # the execution is recorded once the trigger is admitted, just after the lock
                with engine.connect() as conn:
                    run_id = conn.execute(text("SELECT flow_run_id FROM upgrade_execution")).scalar()
                if run_id:
                    break
                time.sleep(0.2)
            assert run_id, "no execution recorded"
            time.sleep(3)  # sql_001 done, slow_check waiting for the endpoint
            os.killpg(worker.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):  # the flow-run process, if it had its own session
                os.kill(flow_pid, signal.SIGKILL)
            worker.wait(timeout=10)
        assert flow_run_state(server, run_id) == "Running", "a dead worker leaves its run Running"

        crash_then_retry(server, run_id)
        with server.worker("ft-upgrade-cn", extra_env=env, name="restarted"):
            final = server.python(f"""
import sys
sys.path.insert(0, 'deployments')
from cicd import wait_for_final
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as client:
    print(wait_for_final(client, '{run_id}', timeout=90, poll=1, echo=lambda line: None).state.name)
""", timeout=120)
    assert final.strip().splitlines()[-1] == "Completed"
    db = create_engine(mariadb_database)
    with db.connect() as conn:
        assert conn.execute(text("SELECT n FROM marker ORDER BY n")).scalars().all() == [1, 2]
    db.dispose()
    with engine.connect() as conn:
        row = conn.execute(text("SELECT status, resume_count FROM upgrade_execution")).one()
    engine.dispose()
    assert tuple(row) == ("SUCCESS", 1)
