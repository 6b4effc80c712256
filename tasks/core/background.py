"""Work off the statements' path: API calls that only show something (artifacts, progress) run in order on
one thread of the process, in the context of whoever asked, while the run goes on.

A Prefect artifact costs a round trip to the API (tens of milliseconds on a busy server); a chain of 70
one-file releases made about 200 of them between statements. Jobs run in the submitter's
``contextvars`` context (Prefect's flow and task run contexts are context variables), so an artifact
lands on the run it belongs to. :func:`drain` waits for everything submitted (the flow calls it before its
report): nothing is lost on a normal end; a killed process loses only what was still queued, which never
held state (the ledger and the store are written on the path, as before).
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

_jobs: queue.Queue[tuple[contextvars.Context, Callable[[], Any], str] | None] = queue.Queue()
_thread: threading.Thread | None = None
_guard = threading.Lock()


def submit(job: Callable[[], Any], what: str) -> None:
    """Run ``job`` later, in order, in this context; its failure is logged as ``what``, never raised."""
    global _thread
    with _guard:
        if _thread is None or not _thread.is_alive():
            if _thread is None:  # a process that ends without drain() (a rollback, a command) still delivers
                atexit.register(drain)
            _thread = threading.Thread(target=_work, name="ft-upgrade-background", daemon=True)
            _thread.start()
    _jobs.put((contextvars.copy_context(), job, what))


def drain() -> None:
    """Return once every job submitted so far has run."""
    if _thread is None or not _thread.is_alive():
        return
    _jobs.join()


def _work() -> None:
    while True:
        item = _jobs.get()
        try:
            if item is not None:
                context, job, what = item
                context.run(job)
        except Exception as exc:  # noqa: BLE001 - what is shown must never fail the work it shows
            logger.warning("%s failed off the path: %s", item[2] if item else "job", exc)
        finally:
            _jobs.task_done()
