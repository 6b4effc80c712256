"""Statements in the Prefect UI without a task run per statement: windows over a stream of units.

A task run costs milliseconds of engine work in the step's process (contexts, states, events, log
records), more than most statements. So a lane's statements run on a thread of their own, unit by
unit (one statement, a DML batch, a script's own transaction), and the step's thread shows them as
task runs while they run:

* quick consecutive units share one task run, named after its first unit (``a.sql:3 #3 …``; its log
  line names the last), closed after ``window_seconds``;
* a unit still running after ``long_seconds`` gets a task run of its own while it runs
  (``b.sql:40 #12``; it started ``long_seconds`` before its task run did);
* a unit that fails gets a task run of its own that fails with its error (after the task run of the
  units before it, which completed).

Every statement keeps its log line, its ledger row, its ClickHouse event and its row in the step's
statement table. Nothing about what runs changes: the same runner, the same ledger, in the same order.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

WINDOW_SECONDS = 2.0
LONG_SECONDS = 1.0
T = TypeVar("T")


@dataclass(frozen=True)
class Unit:
    """What the runner runs at once: a statement, a DML batch or a script transaction, as a label."""

    label: str
    count: int


@dataclass
class _Event:
    kind: str  # start | done | failed | end
    unit: Unit | None = None
    error: BaseException | None = None
    at: float = field(default_factory=time.monotonic)


@dataclass
class Window:
    """What one task run showed: the units it covered, and why it closed."""

    first: Unit
    units: list[Unit] = field(default_factory=list)
    closed_by: str = ""  # time | long | failed | end | done
    pending: Unit | None = None  # long or failed: the unit that gets a task run of its own
    error: BaseException | None = None

    def describe(self) -> str:
        if not self.units:
            return f"{self.first.label}: nothing finished"
        return f"{self.units[0].label} … {self.units[-1].label}: {sum(u.count for u in self.units)} statements"


class StatementStream:
    """Runs ``work`` (a generator of ``("start"|"done", unit)``) on a thread of its own, as events.

    The thread runs in a copy of the caller's context (Prefect's run context and settings, progress
    listeners). ``stop()`` lets it finish the unit it is in, then waits for it.
    """

    def __init__(self, work: Callable[[], Iterator[tuple[str, Unit]]]) -> None:
        self._work = work
        self._events: queue.Queue[_Event] = queue.Queue()
        self._stop = threading.Event()
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._run,), name="sql-statements", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        current: Unit | None = None
        try:
            for kind, unit in self._work():
                current = unit
                self._events.put(_Event(kind, unit))
                if kind == "done" and self._stop.is_set():
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the observing thread, which raises it
            self._events.put(_Event("failed", current, exc))
            return
        self._events.put(_Event("end"))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def next_event(self) -> _Event:
        return self._events.get()

    def window(self, first: _Event, *, window_seconds: float, long_seconds: float) -> Window:
        """Follow the stream from a unit's start until the window closes (see the module docstring)."""
        assert first.unit is not None
        window = Window(first=first.unit)
        opened = first.at
        running: _Event | None = first
        while True:
            deadline = running.at + long_seconds if running else opened + window_seconds
            try:
                event = self._events.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                if running is not None:
                    window.closed_by, window.pending = "long", running.unit
                else:
                    window.closed_by = "time"
                return window
            if event.kind == "start":
                running = event
            elif event.kind == "done":
                window.units.append(event.unit)  # type: ignore[arg-type]
                running = None
            elif event.kind == "failed":
                window.closed_by, window.pending, window.error = "failed", event.unit, event.error
                return window
            else:
                window.closed_by = "end"
                return window

    def finish(self, unit: Unit) -> Window:
        """Wait for a long unit to end (raising its failure)."""
        while True:
            event = self._events.get()
            if event.kind == "failed":
                assert event.error is not None
                raise event.error
            if event.kind in ("done", "end"):
                return Window(first=unit, units=[unit], closed_by=event.kind)


Show = Callable[[str, Callable[[], T]], T]


def follow(work: Callable[[], Iterator[tuple[str, Unit]]], show: Show[Any], *,
           window_seconds: float = WINDOW_SECONDS, long_seconds: float = LONG_SECONDS,
           on_long: Callable[[], None] = lambda: None) -> None:
    """Run ``work`` and show its units as task runs through ``show(name, body)``; raise its failure.

    ``on_long`` is called when a unit turns out to run long (the statement log flushes what ran before it).
    """
    stream = StatementStream(work)
    try:
        event = stream.next_event()
        while event.kind != "end":
            if event.kind == "failed":
                error = event.error
                assert error is not None
                show(_failed_name(error, event.unit), lambda e=error: _raise(e))
            if event.kind == "done":  # the end of a long unit, already shown
                event = stream.next_event()
                continue
            assert event.unit is not None
            window = show(f"{event.unit.label} …", lambda e=event: stream.window(
                e, window_seconds=window_seconds, long_seconds=long_seconds))
            if window.closed_by == "long":
                assert window.pending is not None
                on_long()
                after = show(window.pending.label, lambda u=window.pending: stream.finish(u))
                if after.closed_by == "end":
                    return
            elif window.closed_by == "failed":
                error = window.error
                assert error is not None
                show(_failed_name(error, window.pending), lambda e=error: _raise(e))
            elif window.closed_by == "end":
                return
            event = stream.next_event()
    finally:
        stream.stop()


def _failed_name(error: BaseException, unit: Unit | None) -> str:
    """The failed statement itself where the error names it (a batch fails at one of its statements)."""
    return getattr(error, "where", None) or (unit.label if unit else "SQL statement")


def _raise(error: BaseException) -> None:
    raise error
