"""Cutpoint 5, back in service: async migration, cleanup, resource release."""

from flows.cutpoints import Cutpoint
from flows.runner import cutpoint_flow

post_upgrade = cutpoint_flow(Cutpoint.POST_UPGRADE)
