"""Where the code runs, asked cheaply: importing Prefect costs most of a second of a short command."""

from __future__ import annotations

import sys


def in_prefect_run() -> bool:
    """Whether this code runs inside a Prefect flow or task run; never imports Prefect to find out."""
    context = sys.modules.get("prefect.context")
    return context is not None and (context.FlowRunContext.get() is not None
                                    or context.TaskRunContext.get() is not None)
