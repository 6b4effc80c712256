"""Every end of a cutpoint run is told, also one that never got an execution (a broken config, an unknown
site, a refused trigger): the run's own message, through every channel it knows of at that point.

Channels, each filled in as the run learns it: the config's ``notifications`` (its ``webhook_url``, and its
``on_success``/``on_failure`` recipients mailed through the site's e-mail block), and the site's notification
blocks (the profile's ``notify_blocks``; for a site without any, the worker's ``FT_UPGRADE_NOTIFY_BLOCKS``).
Delivery never changes a run's outcome: what happened goes into the report and the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from blocks.database import can_load_blocks
from blocks.notifications import mail_to, send_to_blocks
from tasks.core.errors import Refused, SiteBusy
from tasks.core.masking import mask_text, mask_url
from tasks.core.statuses import ExecutionStatus
from tasks.notify.message import REFUSED, render_message
from tasks.notify.webhook import notify


@dataclass
class RunNotice:
    """The channels of one run and whether its end was told (so a failure is told exactly once)."""

    site_id: str
    cutpoint: str
    source_version: str
    target_version: str
    logger: Any
    fallback_blocks: tuple[str, ...] = ()
    notifications: Mapping[str, Any] | None = None  # the config's section, once the plan exists
    notify_blocks: tuple[str, ...] = ()  # the site profile's
    smtp_block: str | None = None  # the site profile's e-mail block for the config's recipients
    language: str = "zh"
    secrets: set[str] = field(default_factory=set)
    execution_id: str | None = None
    told: bool = False

    def use_profile(self, profile: Any, language: str) -> None:
        """The site's blocks and language, from its profile (None: the site has none)."""
        self.language = language
        if profile is not None:
            self.notify_blocks = tuple(getattr(profile, "notify_blocks", None) or ())
            self.smtp_block = getattr(profile, "smtp_block", None)

    def tell(self, report: Mapping[str, Any], *, waiting_url: str | None = None) -> dict[str, Any]:
        """Send the report's message on every channel; what happened per channel (for the report)."""
        self.told = True
        sent: dict[str, Any] = {}
        subject, body = render_message(report, self.language, waiting_url=waiting_url)
        subject, body = self._masked(subject), self._masked(body)
        notified = notify(self.notifications, report, logger=self.logger)
        if notified:
            sent["notification"] = notified
        mailed = self._mail(report, subject, body)
        if mailed:
            sent["mail"] = mailed
        blocks = list(self.notify_blocks or self.fallback_blocks)
        if blocks and can_load_blocks():
            sent["notification_blocks"] = send_to_blocks(blocks, subject, body)
            for failed in (o for o in sent["notification_blocks"] if not o["delivered"]):
                self.logger.warning("notification through block %s failed: %s", failed["block"], failed["error"])
        return sent

    def tell_failure(self, exc: BaseException) -> None:
        """A run that ended by ``exc`` without telling it: its message (never raises)."""
        report = {"status": REFUSED if isinstance(exc, (Refused, SiteBusy)) else ExecutionStatus.FAILED,
                  "site_id": self.site_id, "cutpoint": self.cutpoint, "source_version": self.source_version,
                  "target_version": self.target_version, "execution_id": self.execution_id,
                  "error": self._masked(str(exc) or type(exc).__name__), "step_results": [], "resume": []}
        try:
            self.tell(report)
        except Exception as problem:  # noqa: BLE001 - telling must never hide the run's own error
            self.logger.warning("the run's failure could not be told: %s", problem)

    def _mail(self, report: Mapping[str, Any], subject: str, body: str) -> dict[str, Any] | None:
        """The config's recipients for this outcome, mailed through the site's e-mail block."""
        outcome = "on_success" if report["status"] == ExecutionStatus.SUCCESS else "on_failure"
        recipients = list((self.notifications or {}).get(outcome) or [])
        if not recipients:
            return None
        if not self.smtp_block or not can_load_blocks():
            why = (f"site {self.site_id} names no e-mail block (smtp_block in its site file, or an `email` "
                   "notification)")
            self.logger.warning("the config's recipients %s were not mailed: %s", ", ".join(recipients), why)
            return {"block": None, "recipients": recipients, "delivered": False, "error": why}
        mailed = mail_to(self.smtp_block, recipients, subject, body)
        if not mailed["delivered"]:
            self.logger.warning("mail to %s through block %s failed: %s", ", ".join(recipients), self.smtp_block,
                                mailed["error"])
        return mailed

    def _masked(self, text: str) -> str:
        return mask_url(mask_text(text, self.secrets))
