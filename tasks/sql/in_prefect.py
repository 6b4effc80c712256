"""The SQL step's Prefect side, imported only inside a Prefect run: window task runs, the statement log's logger."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from tasks.sql.windows import Window


@task(cache_policy=NO_CACHE, log_prints=False)
def sql_window(body: Callable[[], Any]) -> Any:
    """Statements as a task run in the Prefect UI (:mod:`tasks.sql.windows`): a window, a long one, a failure."""
    result = body()
    if isinstance(result, Window) and result.units:
        get_run_logger().info("%s", result.describe())
    return result


def show_window(name: str, body: Callable[[], Any]) -> Any:
    """One window as a task run; its parameter quoted, so Prefect does not walk the runner behind it."""
    return sql_window.with_options(task_run_name=name)(quote(body))


def api_only(logger: logging.Logger | logging.LoggerAdapter[Any]) -> logging.LoggerAdapter[Any]:
    """The run's logger, writing to the Prefect API only (the UI shows every statement line).

    The console handler renders each record with rich: on a long statement log it cost a fifth of the
    statement thread's time in a worker. Warnings and errors still reach the console through the run logger.
    """
    from prefect.logging.handlers import APILogHandler

    statements = logging.getLogger("prefect.task_runs.statements")
    if not statements.handlers:
        statements.addHandler(APILogHandler())
        statements.propagate = False
        statements.setLevel(logging.INFO)
    return logging.LoggerAdapter(statements, dict(getattr(logger, "extra", None) or {}))
