"""Cutpoint 1, before anything changes: can this site be upgraded?"""

from flows.cutpoints import Cutpoint
from flows.runner import cutpoint_flow

pre_business_check = cutpoint_flow(Cutpoint.PRE_BUSINESS_CHECK)
