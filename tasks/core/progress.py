"""Progress of long work, shown as a Prefect progress artifact on the current run.

Updates are throttled (a 10,000-statement file must not send 10,000 API calls); outside a Prefect
run it only counts, so the same step code runs in tests and the CLI. The artifact only shows progress:
an API that fails to take it (a server overloaded by a wave of sites answers 500) is logged, never
fails the work.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from uuid import UUID

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
        self._artifact: UUID | None = None
        if in_prefect_run():
            from prefect.artifacts import create_progress_artifact

            try:
                self._artifact = create_progress_artifact(progress=0.0, description=description, key=key)
            except Exception as exc:  # noqa: BLE001 - a progress bar is not worth an upgrade
                logger.warning("progress artifact %r not created: %s", description, exc)

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
        now = time.monotonic()
        if self._artifact is None or (not force and now - self._last < self.min_interval):
            return
        self._last = now
        from prefect.artifacts import update_progress_artifact

        try:
            update_progress_artifact(self._artifact, progress=self.percent, description=self.description)
        except Exception as exc:  # noqa: BLE001 - a progress bar is not worth an upgrade; the next update may land
            logger.warning("progress artifact %r not updated: %s", self.description, exc)
