"""Cutpoint 4, services started: resources, cache, indexes, health, smoke tests."""

from flows.runner import cutpoint_flow
from tasks.core.cutpoints import Cutpoint

startup_post_process = cutpoint_flow(Cutpoint.STARTUP_POST_PROCESS)
