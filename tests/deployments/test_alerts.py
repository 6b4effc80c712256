"""Operators on Prefect, on a real server and process worker: typed parameters, secrets, alerts.

One site, one server: the Run form's schema refuses ``3.17.10``; a run whose environment names a Secret
block leaves no trace of the secret in the flow run, its logs, artifacts or events; a refused start (its
precondition missing) and a run whose worker is killed (no heartbeat: the server sets it Crashed) each
deliver a DingTalk message to a local receiver through the site's block.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import create_engine, select, text

from tasks.store.schema import site_lock
from tests.conftest import PROJECT
from tests.deployments.sites_helpers import PYTHON, site_env, wait_for_lock, write_tree
from tests.prefect_server import PrefectServer, prefect_server

pytestmark = pytest.mark.prefect_server
SECRET = "Sx9-only-in-the-secret-block"


class Receiver(BaseHTTPRequestHandler):
    """Answers as DingTalk does and keeps what it received."""

    received: list[tuple[str, dict[str, Any]]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"errcode": 0, "errmsg": "ok"}')

    def do_GET(self) -> None:  # noqa: N802 - the slow health endpoint a run waits on while its worker dies
        time.sleep(60)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def receiving() -> Iterator[str]:
    """A local webhook receiver (its URL) recording what it gets in ``Receiver.received``."""
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[str]:
    with receiving() as url:
        yield url


def wait_for_message(containing: str, timeout: float = 150) -> tuple[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path, body in list(Receiver.received):
            if containing in json.dumps(body, ensure_ascii=False):
                return path, body
        time.sleep(0.5)
    raise AssertionError(f"no message containing {containing!r}; received: {Receiver.received}")


def setup_site(server: PrefectServer, tmp_path: Path, receiver: str, database: str) -> None:
    sites = tmp_path / "sites"
    sites.mkdir()
    (sites / "al.json").write_text(json.dumps({
        "site_id": "AL", "databases": {"ft_db": database},
        "notifications": {"al-dingtalk": {"type": "dingtalk", "token": "0123abcdal", "secret": "SECal0sign0123",
                                          "endpoint": f"{receiver}/robot/send"}},
        "alerts": {"notify": ["al-dingtalk"], "heartbeat_seconds": 30, "missed_heartbeats": 2}}), encoding="utf-8")
    server.cli_ft("blocks", "apply", "--file", str(sites / "al.json"))
    result = subprocess.run([PYTHON, "deployments/deploy_sites.py", "--site", "AL", "--sites-dir", str(sites)],
                            cwd=PROJECT, env=server.env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "automations ft-upgrade alert AL: ended badly" in result.stdout, result.stdout


def no_trace(server: PrefectServer, flow_run_id: str, secret: str) -> None:
    """The flow run, its logs, artifacts and events as the API gives them: none holds the secret."""
    found = server.python(f"""
import json
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId
with get_client(sync_client=True) as client:
    run = client.read_flow_run('{flow_run_id}')
    logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=['{flow_run_id}'])))
    artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=['{flow_run_id}'])))
    events = client.request("POST", "/events/filter", json={{
        "filter": {{"any_resource": {{"id": ["prefect.flow-run.{flow_run_id}"]}}}}, "limit": 50}}).json()["events"]
print(json.dumps({{"parameters": run.parameters, "logs": [l.message for l in logs],
                  "artifacts": [a.model_dump(mode="json") for a in artifacts], "events": events}}))
""")
    seen = json.loads(found.strip().splitlines()[-1])
    assert seen["parameters"]["environment"]["DB_PASSWORD"] == "secret:al-db-password"
    assert seen["logs"] and seen["artifacts"] and seen["events"], "the run left logs, artifacts and events"
    assert secret not in found


def test_typed_parameters_secrets_by_reference_and_alerts_on_a_refused_start_and_a_killed_worker(
        tmp_path: Path, mariadb_database: str, receiver: str) -> None:
    settings = tmp_path / "app" / "settings.properties"
    settings.parent.mkdir()
    settings.write_text("db.password=${DB_PASSWORD}\n", encoding="utf-8")
    tree = write_tree(tmp_path, {
        "pre_business_check": [{"id": "cfg", "class_name": "ConfigPreprocessStep", "config_files": [str(settings)]}],
        "pre_upgrade_process": [{"id": "slow_check", "class_name": "ServiceHealthCheckStep",
                                 "endpoints": [{"url": f"{receiver}/health", "timeout": 90}]}]}, {})
    env = {**tree, **site_env(tmp_path, "AL", mariadb_database)}
    home = Path(env["FT_UPGRADE_HOME"])
    with prefect_server(tmp_path / "prefect") as server:
        setup_site(server, tmp_path, receiver, mariadb_database)
        bad = server.cli("deployment", "run", "startup_pre_process/startup-pre-process-al",
                         "-p", "source_version=3.17.10", "-p", "target_version=3.17.5", check=False)
        assert bad.returncode != 0 and "3.17.10" in bad.stdout + bad.stderr, "the typed parameter refuses it"
        server.python("from prefect.blocks.system import Secret; "
                      f"Secret(value='{SECRET}').save('al-db-password', overwrite=True)")
        with server.worker("ft-upgrade-al", extra_env=env, name="first") as worker:
            # a secret by reference: the step gets the value, Prefect only the block's name
            server.cli("deployment", "run", "pre_business_check/pre-business-check-al", "-p", "source_version=3.17.0",
                       "-p", "target_version=3.17.5", "-p", 'environment={"DB_PASSWORD": "secret:al-db-password"}',
                       "--watch", timeout=180)
            assert settings.read_text(encoding="utf-8") == f"db.password={SECRET}\n"
            engine = create_engine(f"sqlite:///{home / 'metadata.db'}")
            with engine.connect() as conn:
                first_run = conn.execute(text("SELECT flow_run_id FROM upgrade_execution")).scalar_one()
            no_trace(server, first_run, SECRET)

            # refused: startup_pre_process before pre_upgrade_process; nothing runs, the run ends Failed
            server.cli("deployment", "run", "startup_pre_process/startup-pre-process-al",
                       "-p", "source_version=3.17.0", "-p", "target_version=3.17.5")
            path, message = wait_for_message("Failed")
            query = parse_qs(urlparse(path).query)
            assert query["access_token"] == ["0123abcdal"] and query["sign"] and query["timestamp"], path
            assert message["msgtype"] == "markdown"
            title, body = message["markdown"]["title"], message["markdown"]["text"]
            assert title.startswith("【FT 升级告警】站点 AL：startup_pre_process AL 3.17.0→3.17.5"), title
            assert "pre_upgrade_process has not completed" in body and "Retry" in body, body

            # a worker killed mid-run: its run sends no more heartbeats, the server sets it Crashed
            server.cli("deployment", "run", "pre_upgrade_process/pre-upgrade-process-al",
                       "-p", "source_version=3.17.0", "-p", "target_version=3.17.5")
            wait_for_lock(home, "AL")
            with engine.connect() as conn:
                flow_pid = conn.execute(select(site_lock.c.pid).where(site_lock.c.site_id == "AL")).scalar_one()
            engine.dispose()
            os.killpg(worker.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(flow_pid, signal.SIGKILL)
            worker.wait(timeout=10)
        _, crashed = wait_for_message("Crashed", timeout=180)
    body = crashed["markdown"]["text"]
    assert "pre_upgrade_process AL 3.17.0→3.17.5" in body and "心跳" in body, body
    bodies = json.dumps([body for _, body in Receiver.received])
    assert "0123abcdal" not in bodies and "SECal0sign0123" not in bodies and SECRET not in bodies
