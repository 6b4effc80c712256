"""A step's config ``timeout``, enforced by the step loop whatever thread the step runs in.

Prefect's task timeout interrupts only a task on the main thread, and never the server: a statement it
abandons keeps running (an ``ALTER TABLE`` goes on rebuilding). At the deadline this watchdog kills, from
a connection of its own, every query the step started and still runs (``KILL QUERY``): the step fails on
its interrupted statement and records it. A step busy in Python (or still running a few seconds after the
kill) gets :class:`StepTimedOut` raised in its thread. The loop records the step FAILED with a message naming
the timeout.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import time
from types import TracebackType
from typing import Any

import pymysql

from tasks.core.errors import UpgradeFailed
from tasks.site.connect import STEP_SCOPE, running_queries

log = logging.getLogger(__name__)
#: Seconds a step whose statements were killed has to fail on its own before it is interrupted.
INTERRUPT_GRACE = 5.0


class StepTimedOut(UpgradeFailed):
    """A step ran longer than its config ``timeout`` (raised in its thread without arguments, hence the default)."""

    def __init__(self, message: str = "the step exceeded its timeout") -> None:
        super().__init__(message)


class StepDeadline:
    """``with StepDeadline(step_id, seconds):`` around a step's run; ``expired`` says whether it fired."""

    def __init__(self, step_id: str, seconds: float | None) -> None:
        self.step_id, self.seconds = step_id, seconds
        self.expired = False
        self.killed: list[int] = []
        self._lock = threading.Lock()
        self._done = False
        self._timer: threading.Timer | None = None
        self._interrupted = False
        self._token: Any = None

    @property
    def message(self) -> str:
        killed = f"; its statements still running on the server were killed ({len(self.killed)})" \
            if self.killed else ""
        return f"step {self.step_id} exceeded its timeout of {self.seconds:g} s{killed}"

    def __enter__(self) -> StepDeadline:
        if self.seconds:
            self._started, self._thread = time.monotonic(), threading.get_ident()
            self._token = STEP_SCOPE.set(self)
            self._timer = threading.Timer(self.seconds, self._expire)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._timer is None:
            return
        with self._lock:
            self._done = True
            self._timer.cancel()
            if self._interrupted:  # the step ended by itself meanwhile: the exception must not fire later
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread), None)
        STEP_SCOPE.reset(self._token)
        if self.expired and kind is None:  # e.g. a killed SLEEP() returns 1 and the step ends "well": too late
            raise StepTimedOut(self.message)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for conn in running_queries(self._started, self):
                with contextlib.suppress(Exception):  # best effort: the connection may have just finished
                    self.killed.append(kill_query(conn))
        log.warning("%s", self.message)
        if self.killed:  # the step fails on its killed statement and records it; interrupt only one that hangs on
            self._timer = threading.Timer(INTERRUPT_GRACE, self._interrupt)
            self._timer.daemon = True
            self._timer.start()
        else:
            self._interrupt()

    def _interrupt(self) -> None:
        """Raise :class:`StepTimedOut` in the step's thread (at its next Python instruction)."""
        with self._lock:
            if not self._done:
                self._interrupted = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread),
                                                           ctypes.py_object(StepTimedOut))


def kill_query(conn: pymysql.connections.Connection) -> int:
    """``KILL QUERY`` the statement ``conn`` runs, from a second connection to the same server; its thread id."""
    thread_id = int(conn.thread_id())
    other = pymysql.connect(host=conn.host, port=conn.port, user=conn.user, password=conn.password,
                            unix_socket=conn.unix_socket, connect_timeout=5)
    try:
        with other.cursor() as cur:
            cur.execute(f"KILL QUERY {thread_id}")
    finally:
        other.close()
    return thread_id
