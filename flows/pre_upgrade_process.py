"""Cutpoint 2, still serving: backups, config preprocessing, service status."""

from flows.runner import cutpoint_flow
from tasks.core.cutpoints import Cutpoint

pre_upgrade_process = cutpoint_flow(Cutpoint.PRE_UPGRADE_PROCESS)
