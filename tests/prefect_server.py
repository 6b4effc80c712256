"""A real Prefect server and process worker in subprocesses, for tests that go through deployments.

The ephemeral API drops task-run records when its process exits, so deployment tests use a real
``prefect server start`` with its own PREFECT_HOME (SQLite) on a free port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

PROJECT = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).parent / "prefect")
POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432"


def psql(statement: str, database: str = "postgres") -> str:
    """Run one statement on the local PostgreSQL (trust auth); its rows, unaligned."""
    result = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1",
                             "-tA", "-c", statement], check=True, capture_output=True, text=True, timeout=60)
    return result.stdout


@contextmanager
def postgres_database(prefix: str = "prefect") -> Iterator[str]:
    """A fresh database on the local PostgreSQL for a Prefect server (its URL), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    psql(f"CREATE DATABASE {name}")
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def tuned_settings() -> dict[str, str]:
    """deployments/server.env.example without its placeholder database URL (the caller brings its own)."""
    pairs = (line.split("=", 1) for line in (PROJECT / "deployments" / "server.env.example").read_text().splitlines()
             if line.strip() and not line.startswith("#"))
    return {k: v for k, v in pairs if k != "PREFECT_API_DATABASE_CONNECTION_URL"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PrefectServer:
    api_url: str
    home: Path
    env: dict[str, str]
    log: Path
    pid: int = 0  # of `prefect server start`, the leader of its process group (the API is a child)

    def cli(self, *args: str, check: bool = True, timeout: float = 300,
            extra_env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``prefect <args>`` against this server from the project root."""
        result = subprocess.run([PREFECT, "--no-prompt", *args], cwd=PROJECT, env={**self.env, **(extra_env or {})},
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"prefect {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n"
                                 f"{result.stderr}")
        return result

    def cli_ft(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``ft-upgrade <args>`` against this server."""
        result = subprocess.run([str(Path(sys.executable).parent / "ft-upgrade"), *args], cwd=PROJECT, env=self.env,
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(f"ft-upgrade {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n"
                                 f"{result.stderr}")
        return result

    def python(self, code: str, timeout: float = 120) -> str:
        """Run a Python snippet against this server (for API calls the CLI has no verb for)."""
        result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, env=self.env, capture_output=True,
                                text=True, timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(f"python snippet failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def start_worker(self, pool: str, *, extra_env: Mapping[str, str] | None = None,
                     name: str = "test-worker") -> subprocess.Popen[bytes]:
        """A process worker polling ``pool``, output appended to ``worker-<name>.log`` (stop: ``stop_process``)."""
        with open(self.home / f"worker-{name}.log", "ab") as log:
            return subprocess.Popen([PREFECT, "worker", "start", "--pool", pool, "--name", name, "--type", "process"],
                                    cwd=PROJECT, env={**self.env, **(extra_env or {})}, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    @contextmanager
    def worker(self, pool: str, *, extra_env: Mapping[str, str] | None = None,
               name: str = "test-worker") -> Iterator[subprocess.Popen[bytes]]:
        """A process worker polling ``pool`` until the block exits."""
        proc = self.start_worker(pool, extra_env=extra_env, name=name)
        try:
            yield proc
        finally:
            stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for_health(api: str, log_path: Path, *, running: Callable[[], bool] = lambda: True,
                    timeout: float = 120) -> None:
    """Until the server at ``api`` answers its health check (RuntimeError with its log's end if it never does)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(api + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if not running() or time.monotonic() > deadline:
            raise RuntimeError(f"prefect server did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)


def offline_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(home),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "FT_UPGRADE_PROJECT_DIR": str(PROJECT),
    })
    return env


@contextmanager
def prefect_server(home: Path, *, database_url: str | None = None,
                   extra_env: dict[str, str] | None = None) -> Iterator[PrefectServer]:
    """Start ``prefect server start`` on a free port; stop it (and its children) afterwards."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**offline_env(home), **(extra_env or {})}
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    env["PREFECT_UI_API_URL"] = f"http://127.0.0.1:{port}/api"  # the UI must call this server, not :4200
    log_path = home / "server.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], cwd=PROJECT,
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    try:
        wait_for_health(api, log_path, running=lambda: proc.poll() is None)
        env["PREFECT_API_URL"] = api
        yield PrefectServer(api_url=api, home=home, env=env, log=log_path, pid=proc.pid)
    finally:
        stop_process(proc)
        log.close()
