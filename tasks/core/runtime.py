"""Where the code runs, asked cheaply: importing Prefect costs most of a second of a short command."""

from __future__ import annotations

import sys


def in_prefect_run() -> bool:
    """Whether this code runs inside a Prefect flow or task run; never imports Prefect to find out."""
    context = sys.modules.get("prefect.context")
    return context is not None and (context.FlowRunContext.get() is not None
                                    or context.TaskRunContext.get() is not None)


def flow_run_page(flow_run_id: object) -> str:
    """The flow run's page in the Prefect UI, the one link every message, report and log gives (``/runs/…``,
    as the UI routes it); ``flow run <id>`` when no UI address is configured."""
    from prefect.utilities.urls import url_for

    return url_for("flow-run", obj_id=str(flow_run_id)) or f"flow run {flow_run_id}"
