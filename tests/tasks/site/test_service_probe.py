"""The service probe proves a service running or stopped, or says it cannot tell (real sockets, short timeouts)."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tasks.site.service_probe import probe_services
from tests.helpers import AnsweringService


@contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@contextmanager
def closed_port() -> Iterator[int]:
    """A port nothing listens on: a connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield port


@contextmanager
def gateway(status: int) -> Iterator[str]:
    class Gateway(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health"
    finally:
        server.shutdown()
        server.server_close()


def test_running_stopped_and_each_way_of_not_knowing() -> None:
    up = AnsweringService()
    try:
        with silent_port() as silent, closed_port() as closed, gateway(502) as proxied:
            services = {"a-up": up.url(), "b-closed": f"http://127.0.0.1:{closed}/health",
                        "c-silent": f"http://127.0.0.1:{silent}/health", "d-nowhere": "http://ft-nowhere.invalid:8080/",
                        "e-gateway": proxied, "f-tcp": f"127.0.0.1:{silent}", "g-no-port": "tcp://127.0.0.1"}
            seen = {p.name: (p.state, p.why) for p in probe_services(services, timeout=0.3)}
    finally:
        up.stop()
    assert seen["a-up"] == ("running", "HTTP 200")
    assert seen["b-closed"] == ("stopped", "connection refused")
    assert seen["c-silent"] == ("unknown", f"port {silent} accepts connections but no answer came within 0.3 s")
    assert seen["d-nowhere"][0] == "unknown" and "the name ft-nowhere.invalid does not resolve" in seen["d-nowhere"][1]
    assert seen["e-gateway"][0] == "unknown" and seen["e-gateway"][1].startswith("HTTP 502: a gateway's error")
    assert seen["f-tcp"] == ("running", f"port {silent} accepts connections")
    assert seen["g-no-port"] == ("unknown", "the URL names no host or port")
