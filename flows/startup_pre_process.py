"""Cutpoint 3, services stopped: SQL scripts statement by statement, migration, checks."""

from flows.runner import cutpoint_flow
from tasks.core.cutpoints import Cutpoint

startup_pre_process = cutpoint_flow(Cutpoint.STARTUP_PRE_PROCESS)
