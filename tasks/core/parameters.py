"""What CICD and operators pass to a cutpoint run, typed so a form can refuse a bad value.

Prefect turns a flow's parameter types into the deployment's JSON schema: the UI's Run form and the API
(deployments are created with ``enforce_parameter_schema``) refuse a value that does not match before
any flow run exists. The version pattern accepts exactly what :meth:`Version.parse` accepts, written
the canonical way (tests compare the two); ``3.17.10`` is refused because the patch has one digit in
the six-digit code.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

VERSION_PATTERN = r"^(?:[1-9]\.(?:0|[1-9][0-9]?)\.[0-9](?:-P[1-9][0-9]?)?|[1-9][0-9]{5})$"
SITE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"

VersionText = Annotated[str, Field(pattern=VERSION_PATTERN, examples=["3.17.5", "3.17.5-P1", "317501"],
                                   description="MAJOR.MINOR.PATCH[-Pn] (patch one digit) or the six-digit code.")]
SiteId = Annotated[str, Field(pattern=SITE_ID_PATTERN, examples=["CN"],
                              description="Letters, digits, _ and -, starting with a letter or digit.")]

#: A precondition an operator may waive (with a reason): a cutpoint that must have completed before, the FT
#: services being stopped (or started and healthy), or the site's off-peak window for heavy work.
#: ``tasks.execution.admission.PRECONDITIONS`` uses exactly these names.
Waivable = Literal["pre_business_check", "pre_upgrade_process", "services_stopped", "startup_pre_process",
                   "services_started", "startup_post_process", "off_peak"]

#: What an operator decides about the statement a run stopped at (``resume --inflight``).
InflightDecision = Literal["applied", "retry", "skip"]
