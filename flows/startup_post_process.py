"""Cutpoint 4, services started: resources, cache, indexes, health, smoke tests."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.cutpoints import Cutpoint
from flows.runner import run_cutpoint


@flow(
    name="startup_post_process",
    flow_run_name="startup_post_process {site_id} {source_version}→{target_version}",
    log_prints=True,
)
def startup_post_process(
    source_version: str, target_version: str, site_id: str, environment: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run the startup_post_process steps of every config from source to target for one site.

    Args:
        source_version: Version the site runs now, e.g. 3.17.0.
        target_version: Version to upgrade to, e.g. 3.17.5-P1.
        site_id: The site (局点) id, e.g. CN or US.
        environment: CICD's environment values (secret-looking keys are masked when recorded).
    """
    return run_cutpoint(Cutpoint.STARTUP_POST_PROCESS, source_version, target_version, site_id, environment)
