"""``bash deployments/demo.sh stop`` stops what the demo started: a process worker that has run flows and is
running one, its flow-run process and the Prefect server, each started the way the demo starts them
(``deployments/background.sh``, from a non-interactive shell), with one SIGTERM each."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import PROJECT
from tests.prefect_server import PREFECT, free_port, offline_env, wait_for_health

pytestmark = pytest.mark.prefect_server

FLOW = "import time\nfrom prefect import flow\n\n@flow\ndef nap(seconds: float = 0):\n    time.sleep(seconds)\n"


def background(*lines: str, env: dict[str, str]) -> str:
    """Run lines in a non-interactive bash that sourced the demo's helpers (as deployments/demo.sh does)."""
    script = "set -euo pipefail\nsource deployments/background.sh\n" + "\n".join(lines)
    done = subprocess.run(["bash", "-c", script], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


def test_one_stop_ends_the_worker_its_flow_run_and_the_server(tmp_path: Path) -> None:
    home, port = tmp_path / "prefect", free_port()
    home.mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "nap.py").write_text(FLOW, encoding="utf-8")
    api = f"http://127.0.0.1:{port}/api"
    env = {**offline_env(home), "PREFECT_API_URL": api, "PREFECT_WORKER_QUERY_SECONDS": "1",
           "PREFECT_WORKER_PREFETCH_SECONDS": "1"}
    server_pid, worker_pid = home / "server.pid", home / "worker.pid"
    try:
        background(f'start_background "{server_pid}" "{home}/server.log" "{PREFECT}" server start --host 127.0.0.1 '
                   f'--port {port}', env=env)
        wait_for_health(api, home / "server.log")
        subprocess.run([PREFECT, "--no-prompt", "work-pool", "create", "naps", "--type", "process"], env=env,
                       cwd=PROJECT, check=True, capture_output=True, timeout=120)
        subprocess.run([str(Path(PREFECT).parent / "python"), "-c", (
            "from prefect import flow\n"
            f"flow.from_source(source={str(tmp_path / 'src')!r}, entrypoint='nap.py:nap')"
            ".deploy(name='nap', work_pool_name='naps')")], env=env, cwd=PROJECT, check=True, capture_output=True,
            timeout=120)
        background(f'start_background "{worker_pid}" "{home}/worker.log" "{PREFECT}" worker start --pool naps',
                   env=env)
        worker = int(worker_pid.read_text())
        for seconds in ("0", "600"):  # one flow run done, one running when the stop comes
            subprocess.run([PREFECT, "deployment", "run", "nap/nap", "-p", f"seconds={seconds}",
                            *(["--watch"] if seconds == "0" else [])], env=env, cwd=PROJECT, check=True,
                           capture_output=True, timeout=180)
        deadline = time.monotonic() + 120
        while not children(worker):
            assert time.monotonic() < deadline, (home / "worker.log").read_text()[-2000:]
            time.sleep(0.5)
        flow_runs, server = children(worker), int(server_pid.read_text())

        started = time.monotonic()
        said = subprocess.run(["bash", "-c", 'source deployments/background.sh; stop_started "$@"', "stop",
                               str(worker_pid), str(server_pid)], cwd=PROJECT, env=env, capture_output=True,
                              text=True, timeout=120).stdout
        took = time.monotonic() - started
        assert f"worker ({worker}): stopped" in said and f"server ({server}): stopped" in said, said
        assert "signalling again" not in said, "one SIGTERM each, as Prefect expects"
        assert not any(alive(p) for p in (worker, server, *flow_runs)), said
        assert took < 30, f"stopping took {took:.1f}s"
        assert not worker_pid.exists() and not server_pid.exists()
    finally:
        for pidfile in (worker_pid, server_pid):  # a failed assertion must not leave them running
            if pidfile.exists():
                subprocess.run(["bash", "-c", 'source deployments/background.sh; STOP_WAIT_SECONDS=5 stop_started '
                                f'"{pidfile}"'], cwd=PROJECT, timeout=60)
