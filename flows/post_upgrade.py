"""Cutpoint 5, back in service: async migration, cleanup, resource release."""

from flows.runner import cutpoint_flow
from tasks.core.cutpoints import Cutpoint

post_upgrade = cutpoint_flow(Cutpoint.POST_UPGRADE)
