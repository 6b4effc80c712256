"""Cutpoint 2, still serving: backups, config preprocessing, service status."""

from flows.cutpoints import Cutpoint
from flows.runner import cutpoint_flow

pre_upgrade_process = cutpoint_flow(Cutpoint.PRE_UPGRADE_PROCESS)
