"""pymysql connections that share one TLS context per process.

With no TLS option in the URL, pymysql (1.2) prefers TLS and builds a new certificate context for
every connection, loading the system CA store: about 17 ms, more than a hundred small statements
take. That preferred-mode context never verifies the server (``CERT_NONE``), so one context shared
by all connections is the same thing, built once. Explicit TLS options are handled by pymysql as
before.

Each connection also says, while a query of it runs, since when and for which step (:data:`STEP_SCOPE`):
a step over its ``timeout`` kills the statements it still has on the server (tasks/execution/step_deadline.py).
"""

from __future__ import annotations

import ssl
import threading
import time
from contextvars import ContextVar
from typing import Any, ClassVar

import pymysql
from sqlalchemy import Engine, event


class SharedTlsConnection(pymysql.connections.Connection):
    """A pymysql connection whose preferred-mode TLS context is built once per process."""

    _preferred: ClassVar[ssl.SSLContext | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
        if sslp:  # explicit options (CA, certificate, verification): pymysql's own handling
            return super()._create_ssl_ctx(sslp)
        with SharedTlsConnection._lock:
            if SharedTlsConnection._preferred is None:
                SharedTlsConnection._preferred = super()._create_ssl_ctx(sslp)
            return SharedTlsConnection._preferred

    def query(self, sql: Any, unbuffered: bool = False) -> int:
        RUNNING[id(self)] = (self, time.monotonic(), STEP_SCOPE.get())
        try:
            return super().query(sql, unbuffered)
        finally:
            RUNNING.pop(id(self), None)

    def next_result(self, unbuffered: bool = False) -> int:  # the next statement of a multi-statement query
        RUNNING[id(self)] = (self, time.monotonic(), STEP_SCOPE.get())
        try:
            return super().next_result(unbuffered)
        finally:
            RUNNING.pop(id(self), None)


#: The step whose thread runs a query (set by the step loop; threads a step starts carry none).
STEP_SCOPE: ContextVar[object | None] = ContextVar("ft_step_scope", default=None)
#: Queries running now: id(connection) → (connection, started (monotonic), step scope).
RUNNING: dict[int, tuple[SharedTlsConnection, float, object | None]] = {}


def running_queries(since: float, scope: object) -> list[SharedTlsConnection]:
    """Connections with a query started at or after ``since`` by ``scope`` (or by a thread of no scope)."""
    return [c for c, started, owner in list(RUNNING.values()) if started >= since and owner in (None, scope)]


def share_tls_context(engine: Engine) -> Engine:
    """Make a pymysql engine's pool open :class:`SharedTlsConnection` connections."""
    if engine.dialect.driver == "pymysql":
        @event.listens_for(engine, "do_connect")
        def _connect(dialect: Any, record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> Any:
            return SharedTlsConnection(*cargs, **cparams)
    return engine
