"""Cutpoint 1, before anything changes: can this site be upgraded?"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.cutpoints import Cutpoint
from flows.runner import run_cutpoint


@flow(
    name="pre_business_check",
    flow_run_name="pre_business_check {site_id} {source_version}→{target_version}",
    log_prints=True,
)
def pre_business_check(
    source_version: str, target_version: str, site_id: str, environment: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run the pre_business_check steps of every config from source to target for one site.

    Args:
        source_version: Version the site runs now, e.g. 3.17.0.
        target_version: Version to upgrade to, e.g. 3.17.5-P1.
        site_id: The site (局点) id, e.g. CN or US.
        environment: CICD's environment values (secret-looking keys are masked when recorded).
    """
    return run_cutpoint(Cutpoint.PRE_BUSINESS_CHECK, source_version, target_version, site_id, environment)
