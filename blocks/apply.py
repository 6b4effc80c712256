"""``ft-upgrade blocks apply``: create or update every block of one site from a spec.

A spec (a JSON file or CLI options) names the site, its logical databases, Redis, ClickHouse,
service endpoints, paths and environment. Saving overwrites the site's blocks; the return value
lists block names only, never a URL or a password.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from blocks.clickhouse import ClickHouseLogStore
from blocks.database import block_names, check_logical_name, connector_from_url
from blocks.notifications import NOTIFICATION_TYPES, AlertSettings, ChatWebhook
from blocks.redis import RedisConnection
from blocks.site_profile import SiteProfile
from tasks.core.environment import is_secret_key
from tasks.core.errors import ConfigError, ConfigErrors
from tasks.core.off_peak import OffPeakWindows, TimeZoneName


class SiteSpec(BaseModel):
    """The content of a site file (``deployments/sites/<site>.json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    site_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_\-]+$")
    environment_name: str = "prod"
    databases: dict[str, SecretStr] = Field(default_factory=dict, description="Logical name → SQLAlchemy URL.")
    redis: SecretStr | None = None
    clickhouse: SecretStr | None = None
    services: dict[str, str] = Field(default_factory=dict)
    paths: dict[str, str] = Field(default_factory=dict)
    environment: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, SecretStr] = Field(default_factory=dict,
                                          description="Secret environment values (kept in the profile's SecretStr).")
    notifications: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Block name → {type: dingtalk|wecom|feishu, token/key, secret, endpoint}.")
    alerts: AlertSettings | None = Field(default=None, description="Automations made by deploy_sites.py.")
    off_peak: OffPeakWindows = Field(default_factory=list, description="Off-peak windows, HH:MM-HH:MM in timezone.")
    timezone: TimeZoneName = Field(default="UTC", description="The site's IANA time zone (Asia/Shanghai).")
    client_charset: dict[str, str] = Field(default_factory=dict, description="Logical database (* for every one) "
                                           "→ character set of the site's mariadb client there.")
    smtp_block: str | None = Field(default=None, description="E-mail block the configs' notification recipients "
                                                             "are mailed through; default: the first `email` one "
                                                             "of notifications.")

    def mail_block(self) -> str | None:
        """The block that mails the configs' recipients: the one named, else the first e-mail notification."""
        return self.smtp_block or next((name for name, fields in self.notifications.items()
                                        if fields.get("type") == "email"), None)

    @classmethod
    def from_data(cls, data: dict[str, Any], *, source: str) -> SiteSpec:
        try:
            spec = cls.model_validate(data)
        except ValidationError as exc:
            errors = [ConfigError(source, e["msg"], field=".".join(str(p) for p in e["loc"]))
                      for e in exc.errors(include_url=False)]
            raise (errors[0] if len(errors) == 1 else ConfigErrors(errors)) from None
        for name in spec.databases:
            try:
                check_logical_name(name)
            except ValueError as exc:
                raise ConfigError(source, str(exc), field=f"databases.{name}") from None
        spec.notification_blocks(source)
        for key in spec.environment:
            if is_secret_key(key):
                raise ConfigError(source, "looks secret: put it under `secrets` (kept as a secret, shown masked)",
                                  field=f"environment.{key}")
        return spec

    def notification_blocks(self, source: str = "site file") -> dict[str, ChatWebhook]:
        """Block name → notification block, each checked (its type, its fields, its name)."""
        blocks: dict[str, ChatWebhook] = {}
        for name, fields in self.notifications.items():
            where = f"notifications.{name}"
            if not _BLOCK_NAME.match(name):
                raise ConfigError(source, "a block name has lower-case letters, digits and -", field=where)
            kind = fields.get("type")
            if kind not in NOTIFICATION_TYPES:
                raise ConfigError(source, f"type must be one of {', '.join(NOTIFICATION_TYPES)}", field=where)
            try:
                blocks[name] = NOTIFICATION_TYPES[kind](**{k: v for k, v in fields.items() if k != "type"})
            except ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                raise ConfigError(source, first["msg"], field=".".join([where, *map(str, first["loc"])])) from None
        return blocks


_BLOCK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def apply_site(spec: SiteSpec) -> list[str]:
    """Save the site's blocks (overwriting); returns the block names saved."""
    saved: list[str] = []
    site = spec.site_id
    for name, url in spec.databases.items():
        block = block_names(name, site)[0]
        connector_from_url(url.get_secret_value()).save(block, overwrite=True)
        saved.append(block)
    if spec.redis is not None:
        block = f"{site.lower()}-redis"
        RedisConnection.from_url(spec.redis.get_secret_value()).save(block, overwrite=True)
        saved.append(block)
    if spec.clickhouse is not None:
        block = f"{site.lower()}-clickhouse"
        ClickHouseLogStore(dsn=spec.clickhouse).save(block, overwrite=True)
        saved.append(block)
    for name, notification in spec.notification_blocks().items():
        notification.save(name, overwrite=True)
        saved.append(name)
    profile = SiteProfile(site_id=site, environment_name=spec.environment_name, services=spec.services,
                          paths=spec.paths, environment=spec.environment, secrets=spec.secrets,
                          notify_blocks=list(spec.alerts.notify) if spec.alerts else [],
                          language=spec.alerts.language if spec.alerts else "zh", off_peak=spec.off_peak,
                          timezone=spec.timezone, smtp_block=spec.mail_block(),
                          client_charset=spec.client_charset)
    profile.save(SiteProfile.block_name(site), overwrite=True)
    saved.append(SiteProfile.block_name(site))
    return saved
