"""A site (局点): its id, service endpoints, paths and environment, as a Prefect block."""

from __future__ import annotations

from typing import Literal

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, field_validator

from tasks.core.environment import is_secret_key
from tasks.core.off_peak import OffPeak, OffPeakWindows, TimeZoneName


class SiteProfile(Block):
    """What the upgrade needs to know about one site that is not a credential.

    Attributes:
        site_id: The site id CICD passes (e.g. ``CN``, ``US``).
        environment_name: dev / test / prod.
        services: Service name → base URL (ft-manager, ft-report, ft-openapi).
        paths: Named folders (backup_dir, config_dir, log_dir, staging_dir).
        environment: Values for ``${NAME}`` placeholders and steps (none that looks secret).
        secrets: Secret values for placeholders and steps (stored as secrets, shown masked).
        notify_blocks: Notification blocks the run's own end-of-run message goes to.
        language: zh (default) or en, for the site's messages.
        off_peak: Daily windows (``22:00-06:00``) in ``timezone`` when heavy work may run without a waiver.
        timezone: The site's IANA time zone (``Asia/Shanghai``), for ``off_peak``.
        smtp_block: The e-mail block the configs' ``notifications`` recipients are mailed through.
        client_charset: Logical database (``*``: every one) → the character set the site's ``mariadb``
            client uses there (``--default-character-set``); SQL scripts run with it. Default:
            ``FT_UPGRADE_CLIENT_CHARSET`` (utf8mb3).

    Example:
        ```python
        from blocks.site_profile import SiteProfile

        profile = SiteProfile.load("site-us")
        ```
    """

    _block_type_name = "FT Site Profile"
    _description = "One FT site: id, service endpoints, paths and environment values."

    site_id: str = Field(description="Site id as CICD passes it.")
    environment_name: str = Field(default="prod", description="dev / test / prod.")
    services: dict[str, str] = Field(default_factory=dict, description="Service name → base URL.")
    paths: dict[str, str] = Field(default_factory=dict, description="Named folders used by steps.")
    environment: dict[str, str] = Field(default_factory=dict, description="Values for placeholders and steps.")
    secrets: dict[str, SecretStr] = Field(default_factory=dict, description="Secret values for placeholders "
                                                                            "and steps.")
    notify_blocks: list[str] = Field(default_factory=list, description="Notification blocks a run reports to "
                                                                       "when it ends (the site file's alerts).")
    language: Literal["zh", "en"] = Field(default="zh", description="Language of the site's messages.")
    off_peak: OffPeakWindows = Field(default_factory=list, description="Off-peak windows (HH:MM-HH:MM, site time): "
                                     "index optimization and data backups run outside them only with a waiver.")
    timezone: TimeZoneName = Field(default="UTC", description="The site's time zone (IANA name), for off_peak.")
    smtp_block: str | None = Field(default=None, description="E-mail block (FT SMTP Email) the configs' "
                                                             "notification recipients are mailed through.")
    client_charset: dict[str, str] = Field(default_factory=dict, description="Logical database (* for every one) "
                                           "→ character set of the site's mariadb client there (utf8mb3, utf8mb4, "
                                           "…); SQL scripts run with it.")

    def off_peak_windows(self) -> OffPeak | None:
        """The site's off-peak windows (None: it declares none)."""
        windows = getattr(self, "off_peak", None)
        return OffPeak.parse(windows, getattr(self, "timezone", None) or "UTC") if windows else None

    @field_validator("environment")
    @classmethod
    def _nothing_secret_in_clear(cls, value: dict[str, str]) -> dict[str, str]:
        secret = sorted(k for k in value if is_secret_key(k))
        if secret:
            raise ValueError(f"{', '.join(secret)} look secret: put them under `secrets`, not `environment`")
        return value

    def secret_values(self) -> dict[str, str]:
        """Key → value of ``secrets`` (a profile loaded without validation may hold plain strings)."""
        return {k: v.get_secret_value() if isinstance(v, SecretStr) else str(v)
                for k, v in (getattr(self, "secrets", None) or {}).items()}

    @staticmethod
    def block_name(site_id: str) -> str:
        return f"site-{site_id.lower()}"


def load_site_profile(site_id: str) -> SiteProfile | None:
    """The site's profile block (``site-<site>``), or None when there is none or no Prefect API to ask."""
    from blocks.database import can_load_blocks

    if not can_load_blocks():
        return None
    try:
        return SiteProfile.load(SiteProfile.block_name(site_id), validate=False)
    except (ValueError, KeyError):
        return None
