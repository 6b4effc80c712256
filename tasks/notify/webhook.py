"""Notifications on completion and failure: a JSON POST to the configured webhook.

The payload names the site, cutpoint, versions, status, the failure and the exact ways to resume,
and the recipients the config lists for that outcome (the receiving side, e.g. a mail or chat
bridge, delivers to them). Delivery is retried 3 times; a notification that cannot be delivered
is reported and logged, and never changes the upgrade's outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from tasks.core.masking import mask_url
from tasks.core.statuses import ExecutionStatus, StepStatus
from tasks.notify.message import REFUSED

ATTEMPTS = 4


def build_payload(report: Mapping[str, Any], recipients: list[str]) -> dict[str, Any]:
    """What the webhook receives (pure)."""
    failed = [s for s in report.get("step_results", []) if s.get("status") == StepStatus.FAILED]
    events = {ExecutionStatus.SUCCESS: "succeeded", ExecutionStatus.PAUSED: "waiting", REFUSED: "refused"}
    return {
        "event": "ft-upgrade." + events.get(report["status"], "failed"),
        "site_id": report["site_id"],
        "cutpoint": report["cutpoint"],
        "source_version": report["source_version"],
        "target_version": report["target_version"],
        "status": report["status"],
        "execution_id": report["execution_id"],
        "flow_run_id": report.get("flow_run_id"),
        "failure": failed[0]["error"] if failed else report.get("error"),
        "failed_step": failed[0]["step_id"] if failed else None,
        "resume": report.get("resume", []) if report["status"] != ExecutionStatus.SUCCESS else [],
        "recipients": recipients,
    }


def notify(notifications: Mapping[str, Any] | None, report: Mapping[str, Any], *, logger: Any = None,
           retry_wait: float = 0.5) -> dict[str, Any] | None:
    """POST the payload to ``webhook_url``; returns what happened (for the report), None if not configured."""
    if not notifications or not notifications.get("webhook_url"):
        return None
    log = logger or logging.getLogger(__name__)
    url = str(notifications["webhook_url"])
    outcome = "on_success" if report["status"] == ExecutionStatus.SUCCESS else "on_failure"
    recipients = list(notifications.get(outcome) or [])
    payload = build_payload(report, recipients)
    try:
        for attempt in Retrying(stop=stop_after_attempt(ATTEMPTS), reraise=True,
                                wait=wait_exponential(multiplier=retry_wait, max=5),
                                retry=retry_if_exception_type(httpx.HTTPError)):
            with attempt:
                response = httpx.post(url, json=payload, timeout=10)
                response.raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("notification to %s failed after %d attempts: %s", mask_url(url), ATTEMPTS, exc)
        return {"webhook": mask_url(url), "delivered": False, "error": str(exc)[:300], "recipients": recipients}
    return {"webhook": mask_url(url), "delivered": True, "recipients": recipients}
