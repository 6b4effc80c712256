"""Cutpoint 4, services started: resources, cache, indexes, health, smoke tests."""

from flows.cutpoints import Cutpoint
from flows.runner import cutpoint_flow

startup_post_process = cutpoint_flow(Cutpoint.STARTUP_POST_PROCESS)
