"""Notification blocks for the tools FT teams use: DingTalk (钉钉), WeCom (企业微信), Feishu (飞书), e-mail.

Prefect's automations send through notification blocks, and Prefect has none for these. They are
built like Prefect's own, on apprise (whose plugins format each tool's message and sign DingTalk's),
with the webhook's address configurable: a company proxy or bridge, or a local receiver in tests.
Tokens and signing secrets are SecretStr fields of the block, never in versioned configs.

The Prefect server sends an automation's notification itself, so it must know these classes: the
project registers this module in the ``prefect.collections`` entry point group (pyproject.toml), which
every Prefect process, the server included, imports.
"""

from __future__ import annotations

from abc import ABC
from typing import Any, Literal

from prefect.blocks.notifications import AbstractAppriseNotificationBlock
from pydantic import BaseModel, ConfigDict, Field, SecretStr


class ChatWebhook(AbstractAppriseNotificationBlock, ABC):
    """The shared part: an apprise plugin aimed at ``endpoint`` instead of the public address only."""

    def _plugin(self) -> Any:
        raise NotImplementedError

    def block_initialization(self) -> None:
        from apprise import Apprise, AppriseAsset

        self._apprise_client = Apprise(asset=AppriseAsset(app_id="ft-auto-upgrade", app_desc="ft-auto-upgrade",
                                                          app_url="https://github.com/"))
        self._apprise_client.add(self._plugin())


class DingTalkWebhook(ChatWebhook):
    """A DingTalk group robot (自定义机器人): markdown messages, signed when the robot has a secret (加签)."""

    _block_type_name = "FT DingTalk Webhook"
    _description = "DingTalk (钉钉) group robot for ft-auto-upgrade alerts."

    token: SecretStr = Field(description="The robot's access_token (from its webhook address).")
    secret: SecretStr | None = Field(default=None, description="Signing secret (加签, SEC…), if the robot has one.")
    endpoint: str = Field(default="https://oapi.dingtalk.com/robot/send",
                          description="Robot send address without the query (a proxy or bridge may stand here).")

    def _plugin(self) -> Any:
        from apprise.plugins.dingtalk import NotifyDingTalk

        plugin = NotifyDingTalk(token=self.token.get_secret_value(), format="markdown",
                                secret=self.secret.get_secret_value() if self.secret else None)
        plugin.notify_url = self.endpoint + "?access_token={token}"
        return plugin


class WeComWebhook(ChatWebhook):
    """A WeCom (企业微信) group robot: markdown messages."""

    _block_type_name = "FT WeCom Webhook"
    _description = "WeCom (企业微信) group robot for ft-auto-upgrade alerts."

    key: SecretStr = Field(description="The robot's key (from its webhook address).")
    endpoint: str = Field(default="https://qyapi.weixin.qq.com/cgi-bin/webhook/send",
                          description="Robot send address without the query.")

    def _plugin(self) -> Any:
        from apprise.plugins.wecombot import NotifyWeComBot

        plugin = NotifyWeComBot(key=self.key.get_secret_value(), format="markdown")
        plugin.api_url = f"{self.endpoint}?key={self.key.get_secret_value()}"
        return plugin


class FeishuWebhook(ChatWebhook):
    """A Feishu / Lark (飞书) group robot: text messages."""

    _block_type_name = "FT Feishu Webhook"
    _description = "Feishu / Lark (飞书) group robot for ft-auto-upgrade alerts."

    token: SecretStr = Field(description="The robot's hook token (the last part of its webhook address).")
    endpoint: str = Field(default="https://open.feishu.cn/open-apis/bot/v2/hook/",
                          description="Hook address before the token (Lark: https://open.larksuite.com/…).")

    def _plugin(self) -> Any:
        from apprise.plugins.feishu import NotifyFeishu

        plugin = NotifyFeishu(token=self.token.get_secret_value())
        plugin.notify_url = self.endpoint.rstrip("/") + "/{token}/"
        return plugin


class SmtpEmail(ChatWebhook):
    """E-mail through the site's own SMTP server (sites often have no other way out)."""

    _block_type_name = "FT SMTP Email"
    _description = "E-mail through an SMTP server for ft-auto-upgrade alerts."

    host: str = Field(description="SMTP server host.")
    port: int = Field(default=25, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = Field(default="starttls", description="Transport security.")
    username: str | None = Field(default=None, description="Login, if the server asks for one.")
    password: SecretStr | None = Field(default=None)
    from_addr: str = Field(description="Sender address.")
    to: list[str] = Field(min_length=1, description="Recipients.")

    def _plugin(self) -> Any:
        from apprise.plugins.email import NotifyEmail

        return NotifyEmail(host=self.host, port=self.port, smtp_host=self.host, user=self.username,
                           password=self.password.get_secret_value() if self.password else None,
                           from_addr=self.from_addr, targets=list(self.to), secure=self.security != "none",
                           secure_mode={"none": "insecure", "starttls": "starttls", "ssl": "ssl"}[self.security])


#: Site-file notification ``type`` → block class.
NOTIFICATION_TYPES: dict[str, type[ChatWebhook]] = {"dingtalk": DingTalkWebhook, "wecom": WeComWebhook,
                                                   "feishu": FeishuWebhook, "email": SmtpEmail}


class AlertSettings(BaseModel):
    """The ``alerts`` section of a site file: who is told, in which language, and when a run is overdue."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    notify: list[str] = Field(min_length=1, description="Notification block names (the site file's "
                                                        "`notifications`, or blocks made in the UI).")
    language: Literal["zh", "en"] = "zh"
    running_hours: float = Field(default=6, gt=0, le=24 * 7, description="A run still running this long alerts.")
    heartbeat_seconds: int = Field(default=30, ge=30, le=3600, description="Flow-run heartbeat interval.")
    missed_heartbeats: int = Field(default=3, ge=2, le=20, description="Missed heartbeats before a run is Crashed.")


def mail_to(block_name: str, recipients: list[str], subject: str, body: str) -> dict[str, Any]:
    """Mail ``recipients`` (a config's ``notifications``) through the SMTP server of the site's e-mail block.

    The block's own ``to`` (the site's alert recipients) is left aside. What happened, for the report; a missing
    block, a block of another type or a refusing server is reported, never raised.
    """
    outcome: dict[str, Any] = {"block": block_name, "recipients": list(recipients)}
    try:
        block = SmtpEmail.load(block_name)
        block.to = list(recipients)
        block.block_initialization()  # apprise's client is built from the recipients
        with block.raise_on_failure():
            block.notify(body=body, subject=subject)
    except Exception as exc:  # reported with the run, whatever went wrong
        return {**outcome, "delivered": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {**outcome, "delivered": True}


def send_to_blocks(names: list[str], subject: str, body: str) -> list[dict[str, Any]]:
    """Send through each named notification block (any type: these, Prefect's, a collection's).

    What happened per block, for the report; a block that is missing or fails is reported, never raised:
    a notification never changes an upgrade's outcome.
    """
    if not names:
        return []
    from prefect.blocks.core import Block
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        documents = {d.name: d for d in client.read_block_documents(include_secrets=True) if d.name in names}
    outcomes: list[dict[str, Any]] = []
    for name in names:
        document = documents.get(name)
        if document is None:
            outcomes.append({"block": name, "delivered": False, "error": "no such block"})
            continue
        try:
            block = Block._from_block_document(document)
            with block.raise_on_failure():  # type: ignore[attr-defined]  # apprise reports failure as False
                block.notify(body=body, subject=subject)  # type: ignore[attr-defined]
            outcomes.append({"block": name, "delivered": True})
        except Exception as exc:  # reported with the run, whatever the block type raises
            outcomes.append({"block": name, "delivered": False, "error": f"{type(exc).__name__}: {exc}"[:300]})
    return outcomes
