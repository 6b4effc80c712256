"""Cutpoint 1, before anything changes: can this site be upgraded?"""

from flows.runner import cutpoint_flow
from tasks.core.cutpoints import Cutpoint

pre_business_check = cutpoint_flow(Cutpoint.PRE_BUSINESS_CHECK)
