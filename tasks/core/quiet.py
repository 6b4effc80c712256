"""Expected failures (a failed statement, a refusal, bad input) logged without a Python traceback.

Prefect logs a task's or flow's exception with its traceback, once per level it crosses: an ordinary SQL
error printed four of them. The message already says what failed and what to do; the traceback is for
``--debug`` (or ``FT_UPGRADE_DEBUG=1``). Unexpected exceptions keep theirs.
"""

from __future__ import annotations

import logging

from tasks.core.errors import UpgradeError

#: Loggers whose records carry a run's exception (Prefect's task and flow run engines).
LOGGERS = ("prefect.task_runs", "prefect.flow_runs", "prefect.flows", "prefect.tasks")


class _DropExpectedTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, UpgradeError):
            record.exc_info, record.exc_text = None, None
        return True


_FILTER = _DropExpectedTraceback()


def quiet_expected_failures(enabled: bool = True) -> None:
    """Install (or remove) the filter on Prefect's run loggers; idempotent."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if enabled and _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        elif not enabled and _FILTER in logger.filters:
            logger.removeFilter(_FILTER)
