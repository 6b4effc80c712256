"""The five cutpoint flows by cutpoint, for the CLI and deployments."""

from __future__ import annotations

from prefect import Flow

from flows.post_upgrade import post_upgrade
from flows.pre_business_check import pre_business_check
from flows.pre_upgrade_process import pre_upgrade_process
from flows.startup_post_process import startup_post_process
from flows.startup_pre_process import startup_pre_process
from tasks.core.cutpoints import Cutpoint

CUTPOINT_FLOWS: dict[Cutpoint, Flow] = {
    Cutpoint.PRE_BUSINESS_CHECK: pre_business_check,
    Cutpoint.PRE_UPGRADE_PROCESS: pre_upgrade_process,
    Cutpoint.STARTUP_PRE_PROCESS: startup_pre_process,
    Cutpoint.STARTUP_POST_PROCESS: startup_post_process,
    Cutpoint.POST_UPGRADE: post_upgrade,
}
