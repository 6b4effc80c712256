"""Process-wide settings from the environment (``FT_UPGRADE_*``), with project-relative defaults."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Where configs, SQL and local state live, and which modules may provide site steps."""

    model_config = SettingsConfigDict(env_prefix="FT_UPGRADE_", extra="ignore")

    home: Path = Field(default=PROJECT_ROOT / ".ft-upgrade", description="Local state: SQLite, chdb, results.")
    configs: Path = Field(default=PROJECT_ROOT / "configs", description="Folder of version configs.")
    sql_root: Path = Field(default=PROJECT_ROOT / "sql", description="Root of SQL scripts named by configs.")
    step_modules: str = Field(default="", description="Comma-separated module prefixes allowed for site steps.")
    statement_window_seconds: float = Field(default=2.0, gt=0, description="Consecutive quick statements share "
                                            "a task run for at most this long.")
    statement_long_seconds: float = Field(default=1.0, gt=0, description="A statement running longer gets a task "
                                          "run of its own.")
    site_lock_wait_seconds: float = Field(default=0, ge=0, description="How long a second run for a busy site waits.")
    site_lock_check_seconds: float = Field(default=15, gt=0, le=3600, description="How often the holder checks its "
                                           "site lock is still its own (a holder on another host silent for ten "
                                           "times this is taken over).")
    check_max_age_hours: float = Field(default=24, gt=0, description="How old a passed pre_business_check may be "
                                       "when pre_upgrade_process starts.")
    services: dict[str, str] = Field(default_factory=dict, description="FT services (name → URL, JSON) probed "
                                     "beside the site profile's, which they override by name: a site without "
                                     "a profile (no Prefect API) lists its services here.")
    service_probe_seconds: float = Field(default=2.0, gt=0, le=60, description="Timeout of one service probe "
                                         "(connect, then one HTTP answer) for the services preconditions.")
    marker_schema: str = Field(default="ft_upgrade", pattern=r"^[A-Za-z0-9_$]{1,64}$",
                               description="Schema of the tool's own on each target server for DML markers.")
    client_charset: str = Field(default="utf8mb3", pattern=r"^[A-Za-z0-9_]{1,32}$", description="Character set "
                                "of the connection SQL scripts run on, as the site's `mariadb` client has it "
                                "(`--default-character-set`): objects take their charsets from it. Default: what "
                                "the MariaDB 10.11 client picks by itself (auto) under a UTF-8 locale, utf8mb3; "
                                "per database: the site profile's client_charset.")
    marker_retention_days: int = Field(default=30, ge=8, description="Days marker rows are kept (longer than a "
                                       "breakpoint's 7 days).")
    notify_blocks: str = Field(default="", description="Comma-separated notification blocks a run tells when its "
                               "site names none of its own (an unknown site, a site without a profile).")
    report_retention_days: int = Field(default=90, ge=1, description="Days a report stays GENERATED in "
                                       "upgrade_report before it is marked ARCHIVED (the requirements' "
                                       "report-retention-days, 90).")
    decide_in_ui: bool = Field(default=True, description="Deployment runs: a statement's breakpoint suspends "
                               "the flow run with a decision form in the Prefect UI (false: the run ends Failed).")
    decision_timeout_seconds: float | None = Field(default=None, gt=0, description="How long a run waits for the "
                                                   "decision before it ends Failed; default and at most: until "
                                                   "its breakpoint expires (7 days).")
    backup_group: str | None = Field(default=None, description="Group (name or id) that may read backups and "
                                     "config copies: files 0640, folders 0750; unset: 0600/0700, owner only.")

    @cached_property
    def allowed_step_modules(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.step_modules.split(",") if p.strip())

    @property
    def fallback_notify_blocks(self) -> tuple[str, ...]:
        return tuple(n.strip() for n in self.notify_blocks.split(",") if n.strip())

    @property
    def default_metadata_url(self) -> str:
        return f"sqlite:///{(self.home / 'metadata.db').resolve()}"


def get_settings(**overrides: object) -> Settings:
    """Settings as the environment says now: configs and env are re-read for each run (hot reload).

    Built again only when an ``FT_UPGRADE_*`` variable or an override changed: validating them costs a few
    milliseconds, which a chain of seventy one-file releases paid several times per step."""
    given = tuple(sorted((k, repr(v)) for k, v in overrides.items() if v is not None))
    environment = tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith("FT_UPGRADE_")))
    key = (given, environment)
    found = _last.get(key)
    if found is None:
        found = Settings(**{k: v for k, v in overrides.items() if v is not None})
        _last.clear()
        _last[key] = found
    return found.model_copy()


_last: dict[tuple[object, ...], Settings] = {}
