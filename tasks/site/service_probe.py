"""Is each FT service running, stopped, or is that unknown? Schema changes must not run under live services.

A service listed in the site profile (name → base URL) is *running* when its port accepts a connection
and, for an HTTP URL, answers with a status. It is *stopped* only when the connection is refused: nothing
listens there. Everything else proves neither (*unknown*): a connect that times out (a firewall drops it, the
host is down or busy), a name that does not resolve, an unreachable network, a port that accepts and never
answers, a TLS or protocol error, a 502/503/504 (a proxy that cannot reach the service, which may still run,
or the service itself saying it is not ready).
Preconditions fail closed on *unknown*. A running service is *healthy* when its HTTP (health) URL answers 2xx
(a TCP address: when it accepts).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import httpx

GATEWAY_ERRORS = (502, 503, 504)
DEFAULT_TIMEOUT = 2.0

State = Literal["running", "stopped", "unknown"]


@dataclass(frozen=True)
class Probe:
    """What one probe of one service proved, and why."""

    name: str
    url: str
    state: State
    why: str
    status: int | None = None  # the HTTP status it answered with

    @property
    def healthy(self) -> bool:
        """Running and, for an HTTP (health) URL, answering 2xx."""
        return self.state == "running" and (self.status is None or 200 <= self.status < 300)

    def describe(self) -> str:
        return f"{self.name} ({self.url}: {self.why})"


def probe_services(services: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT) -> list[Probe]:
    """Each listed service probed once, in name order."""
    return [Probe(name, url, *_probe(url, timeout)) for name, url in sorted(services.items())]


def running_services(services: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
    """``name (url: why)`` of each service proven to answer; empty when none is."""
    return [p.describe() for p in probe_services(services, timeout=timeout) if p.state == "running"]


def _probe(url: str, timeout: float) -> tuple[State, str, int | None]:
    parts = urlsplit(url if "://" in url else f"tcp://{url}")
    try:
        host, port = parts.hostname, parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError as exc:  # a port that is not a number
        return "unknown", f"cannot read the URL: {exc}", None
    if not host or port is None:
        return "unknown", "the URL names no host or port", None
    addresses = _resolve(host, port, timeout)
    if isinstance(addresses, str):
        return "unknown", addresses, None
    state, why = _connect(addresses, timeout)
    if state != "running":
        return state, why, None
    if parts.scheme not in ("http", "https"):
        return "running", f"port {port} accepts connections", None
    try:
        response = httpx.get(url, timeout=timeout, verify=False, follow_redirects=False)
    except httpx.TimeoutException:
        return "unknown", f"port {port} accepts connections but no answer came within {timeout:g} s", None
    except httpx.HTTPError as exc:
        return "unknown", f"port {port} accepts connections but HTTP failed: {type(exc).__name__}: {exc}", None
    if response.status_code in GATEWAY_ERRORS:
        return "unknown", (f"HTTP {response.status_code}: a gateway's error or the service's own, so it may still "
                           "run; probe the service itself"), response.status_code
    return "running", f"HTTP {response.status_code}", response.status_code


def _resolve(host: str, port: int, timeout: float) -> list[tuple] | str:  # type: ignore[type-arg]
    """The host's addresses, or why there are none: the resolver's own timeouts are not ours to wait for."""
    found: list[list[tuple] | str] = []  # type: ignore[type-arg]

    def resolve() -> None:
        try:
            found.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            found.append(f"the name {host} does not resolve ({exc.strerror or exc})")

    worker = threading.Thread(target=resolve, daemon=True)
    worker.start()
    worker.join(timeout)
    return found[0] if found else f"resolving the name {host} took longer than {timeout:g} s"


def _connect(addresses: list[tuple], timeout: float) -> tuple[State, str]:  # type: ignore[type-arg]
    """Running if any address accepts; stopped only if every address refuses; else unknown."""
    refused, other = 0, ""
    for family, kind, proto, _, address in addresses:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(timeout)
                sock.connect(address)
            return "running", ""
        except ConnectionRefusedError:
            refused += 1
        except TimeoutError:
            other = other or f"the connection timed out after {timeout:g} s"
        except OSError as exc:
            other = other or (exc.strerror or str(exc))
    if refused and not other:
        return "stopped", "connection refused"
    return "unknown", other or "no address to connect to"
