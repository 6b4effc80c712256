"""Restart-and-recheck around the foundation's ServiceHealthCheckStep, with real HTTP servers and processes."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tasks.core.errors import StepFailed
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepResult
from tasks.health.restart import RestartCommand, restart_and_recheck, run_command
from tasks.health.step import HealthParams, ServiceHealthCheckStep
from tests.helpers import step_context
from tests.support.builders import Route, http_service

SPAWN_SERVER = """
import subprocess, sys
process = subprocess.Popen([sys.executable, "-m", "http.server", sys.argv[1], "--bind", "127.0.0.1"],
                           cwd=sys.argv[3], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
open(sys.argv[2], "w").write(str(process.pid))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def health_check(tmp_path: Path, url: str) -> Iterator[Callable[[], StepResult]]:
    """The foundation's health step for one endpoint, as a check function (its result, pass or fail)."""
    with step_context(tmp_path, cutpoint="startup_post_process") as ctx:
        step = ServiceHealthCheckStep(HealthParams.model_validate({"endpoints": [{"url": url, "timeout": 2}]}), ctx)

        def check() -> StepResult:
            try:
                return step.run()
            except StepFailed as exc:
                assert isinstance(exc.result, StepResult)
                return exc.result

        yield check


@pytest.fixture
def spawned(tmp_path: Path) -> Iterator[Path]:
    """Where a restart command writes the pid of the server it started; that process is ended after."""
    pid_file = tmp_path / "server.pid"
    yield pid_file
    if pid_file.exists():
        os.kill(int(pid_file.read_text()), signal.SIGTERM)


def healthy(result: StepResult) -> bool:
    return result.status is StepStatus.SUCCESS


def test_a_dead_service_is_restarted_by_its_command_and_found_healthy(tmp_path: Path, spawned: Path) -> None:
    port = free_port()
    with health_check(tmp_path, f"http://127.0.0.1:{port}/") as check:
        first = check()
        assert first.status is StepStatus.FAILED
        spec = RestartCommand(command=[sys.executable, "-c", SPAWN_SERVER, str(port), str(spawned), str(tmp_path)],
                              recheck_seconds=20, recheck_interval_seconds=0.2)
        recovery = restart_and_recheck(f"127.0.0.1:{port}", first, check, healthy, spec)
    assert recovery.healthy, recovery.describe()
    assert recovery.attempts == 1 and recovery.runs[0].returncode == 0
    assert "✅ 正常" in recovery.last.markdown


def test_an_unhealthy_service_is_healthy_after_restart(tmp_path: Path) -> None:
    flag = tmp_path / "restarted"
    routes = {"GET /health": Route(lambda: 200 if flag.exists() else 503, {"status": "UP"})}
    with http_service(routes) as service, health_check(tmp_path, service.url + "/health") as check:
        first = check()
        assert "HTTP 503" in first.markdown
        spec = RestartCommand(command=[sys.executable, "-c", "import pathlib, sys; pathlib.Path(sys.argv[1])"
                                                              ".touch()", str(flag)],
                              recheck_seconds=5, recheck_interval_seconds=0.1)
        recovery = restart_and_recheck("ft-manager", first, check, healthy, spec)
    assert recovery.healthy
    assert recovery.describe().startswith("restarted 1x (exit 0 in ")


def test_a_service_that_stays_dead_is_reported_after_every_attempt(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-c", "import sys; print('restart failed, password=hunter22'); sys.exit(3)"]
    with health_check(tmp_path, f"http://127.0.0.1:{port}/") as check:
        start = time.monotonic()
        recovery = restart_and_recheck("ft-report", check(), check, healthy,
                                       RestartCommand(command=command, attempts=2, recheck_seconds=0.3,
                                                      recheck_interval_seconds=0.1), secrets=["hunter22"])
    assert not recovery.healthy
    assert [r.returncode for r in recovery.runs] == [3, 3]
    assert recovery.checks >= 4, "re-checked during each attempt's window"
    assert "password=***" in recovery.runs[0].output and "hunter22" not in recovery.runs[0].output
    assert "still unhealthy" in recovery.describe()
    assert time.monotonic() - start < 10


def test_a_hanging_or_missing_restart_command_is_recorded_not_raised() -> None:
    slow = run_command(RestartCommand(command=[sys.executable, "-c", "import time; time.sleep(5)"],
                                      timeout_seconds=0.5))
    assert slow.timed_out and slow.describe() == f"timed out after {slow.seconds:.1f}s"
    missing = run_command(RestartCommand(command=["/nonexistent/restart-ft"]))
    assert missing.returncode is None and "No such file" in missing.output
