"""Building blocks for step tests: a StepContext on real resources, without a Prefect run."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tasks.site.resources import SiteResources
from tasks.steps.context import StepContext


@contextmanager
def step_context(tmp_path: Path, *, databases: Mapping[str, str] = (), site_id: str = "CN",
                 sql_root: Path | None = None, environment: Mapping[str, Any] | None = None,
                 step_id: str = "step_under_test", cutpoint: str = "startup_pre_process",
                 source_version: str = "3.17.0", target_version: str = "3.17.5",
                 execution_id: str = "EXEC_TEST", language: str | None = None) -> Iterator[StepContext]:
    """A context whose logical databases point at the given URLs (``FT_UPGRADE_DB_<NAME>``).

    ``language`` gives the site a profile saying it (no profile: the default, Chinese).
    """
    saved = dict(os.environ)
    for name, url in dict(databases).items():
        os.environ["FT_UPGRADE_DB_" + name.upper()] = url
    profile = None
    if language is not None:
        from blocks.site_profile import SiteProfile

        profile = SiteProfile(site_id=site_id, language=language)
    resources = SiteResources(site_id=site_id, sql_root=sql_root or tmp_path / "sql", configs_dir=tmp_path / "configs",
                              home=tmp_path / "home", retry_wait=0.05, profile=profile)
    try:
        yield StepContext(execution_id=execution_id, cutpoint=cutpoint, step_id=step_id,
                          step_key=f"317500:{step_id}", step_name=step_id, version=target_version,
                          source_version=source_version, target_version=target_version, site_id=site_id,
                          environment=dict(environment or {}), resources=resources)
    finally:
        resources.close()
        os.environ.clear()
        os.environ.update(saved)


def open_store(site_id: str | None = None) -> Any:
    """The metadata store a run of ``site_id`` uses, opened the way the execution service opens it."""
    from tasks.execution.service import ExecutionService

    return ExecutionService.open(site_id).store


class AnsweringService:
    """A local HTTP service answering 200 to every GET, as a running FT service's health URL does.

    ``stop()`` refuses connections, as a stopped service; ``start()`` again keeps the port (the site
    profile's URL stays right).
    """

    def __init__(self) -> None:
        self.server: Any = None
        self.port = 0
        self.start()

    def start(self) -> None:
        import http.server
        import threading

        class Up(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                body = b'{"status": "UP"}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Up)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str = "/actuator/health") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@contextmanager
def answering_service() -> Iterator[AnsweringService]:
    service = AnsweringService()
    try:
        yield service
    finally:
        service.stop()


@contextmanager
def smtp_receiver() -> Iterator[tuple[int, list[Any]]]:
    """A local SMTP server (aiosmtpd) on a free port; yields (port, the envelopes it received)."""
    from aiosmtpd.controller import Controller

    from tests.prefect_server import free_port

    received: list[Any] = []

    class Keep:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's
            received.append(envelope)
            return "250 OK"

    controller = Controller(Keep(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, received
    finally:
        controller.stop()


def write_configs(folder: Path, upgrade_steps: Mapping[str, Any], **sections: Any) -> Path:
    """A configs folder holding one config, 317500, with these steps and top-level sections (notifications…)."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "317500.json").write_text(json.dumps({"version": "317500", "upgrade_steps": dict(upgrade_steps),
                                                    **sections}), encoding="utf-8")
    return folder
