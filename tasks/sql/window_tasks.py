"""The Prefect task run that shows a window of statements (imported only inside a Prefect run)."""

from __future__ import annotations

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
