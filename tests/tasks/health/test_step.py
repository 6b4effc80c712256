"""ServiceHealthCheckStep against real local HTTP servers: healthy, unhealthy-then-restarted, dead."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tasks.core.errors import StepFailed
from tasks.health.step import HealthParams, ServiceHealthCheckStep
from tests.helpers import step_context
from tests.prefect_server import free_port


def serve(flag: Path | None = None) -> tuple[ThreadingHTTPServer, str]:
    """/health answers 200 (or 503 until ``flag`` exists), /info gives the version."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's API
            if self.path == "/info":
                body = json.dumps({"build": {"version": "3.17.5-P1"}}).encode()
                self.send_response(200)
            else:
                healthy = flag is None or flag.exists()
                body = b'{"status": "UP"}' if healthy else b'{"status": "DOWN"}'
                self.send_response(200 if healthy else 503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[dict[str, object]]:
    flag = tmp_path / "restarted"
    healthy, healthy_url = serve()
    sick, sick_url = serve(flag)
    try:
        yield {"healthy": healthy_url, "sick": sick_url, "flag": flag}
    finally:
        healthy.shutdown()
        sick.shutdown()


def run(tmp_path: Path, **params: object) -> dict[str, object]:
    with step_context(tmp_path) as ctx:
        return ServiceHealthCheckStep(HealthParams.model_validate(params), ctx).run().details


def test_healthy_service_is_reported_with_its_version(tmp_path: Path, servers: dict[str, object]) -> None:
    details = run(tmp_path, endpoints=[{"name": "ft-manager", "url": f"{servers['healthy']}/health",
                                        "version_path": "/info", "version_field": "build.version"}])
    check = details["checks"][0]
    assert check["healthy"] is True and check["version"] == "3.17.5-P1" and check["detail"] == "HTTP 200"


def test_unhealthy_service_is_restarted_by_its_command_and_checked_again(
        tmp_path: Path, servers: dict[str, object]) -> None:
    restart = {"command": [sys.executable, "-c", f"open({str(servers['flag'])!r}, 'w').close()"],
               "recheck_seconds": 10, "recheck_interval_seconds": 0.2}
    details = run(tmp_path, endpoints=[{"name": "ft-report", "url": f"{servers['sick']}/health",
                                        "restart": restart}])
    check = details["checks"][0]
    assert check["healthy"] is True
    assert "healthy again" in check["detail"]


def test_dead_service_whose_restart_does_not_help_fails_the_step(tmp_path: Path) -> None:
    port = free_port()
    restart = {"command": [sys.executable, "-c", "raise SystemExit(3)"], "recheck_seconds": 1,
               "recheck_interval_seconds": 0.2}
    with pytest.raises(StepFailed) as info:
        run(tmp_path, endpoints=[{"name": "ft-openapi", "url": f"http://127.0.0.1:{port}/health", "restart": restart}],
            ports=[{"name": "ft-openapi port", "port": port}])
    result = info.value.result
    assert "异常 ft-openapi, ft-openapi port" in str(info.value)
    assert result is not None and "| ft-openapi | ❌ 异常 |" in result.markdown
