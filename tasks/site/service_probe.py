"""Are the FT services stopped? startup_pre_process changes the schema and must not run under them.

A service listed in the site profile (name → base URL) counts as running when its port accepts a
connection and, for an HTTP URL, something answers there that is not a gateway error (a reverse
proxy in front of a stopped service answers 502/503/504). A refused or timed-out connection is stopped.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

GATEWAY_ERRORS = (502, 503, 504)


def running_services(services: Mapping[str, str], *, timeout: float = 2.0) -> list[str]:
    """``name (url: why)`` of each service that still answers; empty when all are stopped."""
    running = []
    for name, url in sorted(services.items()):
        why = _answers(url, timeout)
        if why:
            running.append(f"{name} ({url}: {why})")
    return running


def _answers(url: str, timeout: float) -> str:
    parts = urlsplit(url if "://" in url else f"tcp://{url}")
    host = parts.hostname or "127.0.0.1"
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    if port is None:
        return ""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError:
        return ""
    if parts.scheme not in ("http", "https"):
        return f"port {port} open"
    try:
        response = httpx.get(url, timeout=timeout, verify=False, follow_redirects=False)
    except httpx.HTTPError:
        return ""
    if response.status_code in GATEWAY_ERRORS:
        return ""
    return f"HTTP {response.status_code}"
