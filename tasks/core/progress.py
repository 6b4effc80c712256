"""Progress of long work, shown as a Prefect progress artifact on the current run.

Updates are throttled (a 10,000-statement file must not send 10,000 API calls), work that ends within
``min_interval`` shows no artifact at all (a release of twenty statements would pay more for its bar than
for its SQL), and the API calls run off the path (:mod:`tasks.core.background`); outside a Prefect run it
only counts, so the same step code runs in tests and the CLI. The artifact only shows progress: an API
that fails to take it (a server overloaded by a wave of sites answers 500) is logged, never fails the work.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from uuid import UUID

from tasks.core import background
from tasks.core.runtime import in_prefect_run

ProgressListener = Callable[["Progress"], None]
logger = logging.getLogger(__name__)

_LISTENERS: ContextVar[tuple[ProgressListener, ...]] = ContextVar("ft_upgrade_progress_listeners", default=())


@contextlib.contextmanager
def listening(listener: ProgressListener) -> Iterator[None]:
    """Within the block (and the work it starts in this context), every :class:`Progress` reports to ``listener``."""
    token = _LISTENERS.set((*_LISTENERS.get(), listener))
    try:
        yield
    finally:
        _LISTENERS.reset(token)


class Progress:
    """Counts ``done`` of ``total`` and mirrors the percentage to a progress artifact.

    The listeners in force where it is created (the CLI's terminal progress bar, see :func:`listening`)
    also see every update.
    """

    def __init__(self, total: float, description: str, *, min_interval: float = 1.0, key: str | None = None) -> None:
        self.listeners = _LISTENERS.get()
        self.total = max(float(total), 1.0)
        self.done = 0.0
        self.description = description
        self.min_interval = min_interval
        self._last = 0.0
        self._started = time.monotonic()
        self._key = key
        self._artifact: UUID | None = None
        self._shown = False  # the artifact was asked for (it is created off the path, see tasks.core.background)
        self._in_run = in_prefect_run()

    @property
    def percent(self) -> float:
        return min(100.0, 100.0 * self.done / self.total)

    def advance(self, amount: float = 1.0) -> None:
        self.done += amount
        self._publish(force=self.done >= self.total)

    def set(self, done: float) -> None:
        self.done = done
        self._publish(force=self.done >= self.total)

    def finish(self) -> None:
        self.done = max(self.done, self.total)
        self._publish(force=True)

    def _publish(self, *, force: bool) -> None:
        for listener in self.listeners:
            listener(self)
        if not self._in_run:
            return
        now = time.monotonic()
        if not self._shown:  # work done within a second shows no bar: its artifact would cost more than it
            if now - self._started < self.min_interval:
                return
            self._shown, self._last = True, now
            background.submit(self._create(self.percent), f"progress artifact {self.description!r}")
            return
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        background.submit(self._update(self.percent), f"progress artifact {self.description!r}")

    def _create(self, percent: float) -> Callable[[], None]:
        def create() -> None:
            from prefect.artifacts import create_progress_artifact

            self._artifact = create_progress_artifact(progress=percent, description=self.description, key=self._key)
        return create

    def _update(self, percent: float) -> Callable[[], None]:
        def update() -> None:
            if self._artifact is None:  # its creation failed (logged)
                return
            from prefect.artifacts import update_progress_artifact

            update_progress_artifact(self._artifact, progress=percent, description=self.description)
        return update
