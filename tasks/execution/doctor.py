"""``ft-upgrade doctor``: is everything a run needs reachable and sane, before CICD calls a cutpoint?

Each check is independent and never raises: one broken part is named, the others still report. A check
that had nothing to look at says "skipped" and why (never "ok"): for example a site's blocks when no
Prefect API is configured to read them from.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import text

from tasks.core.errors import InputError
from tasks.core.masking import mask_url
from tasks.core.settings import Settings, get_settings

MIN_FREE_BYTES = 1 << 30  # 1 GiB
SKIPPED = "skipped: "
DEFAULT_SITE = "doctor"  # the site whose resources are opened when none is given


@dataclass(frozen=True)
class Check:
    """One line of the doctor's answer."""

    name: str
    ok: bool
    detail: str

    @property
    def status(self) -> str:
        """``ok``, ``skipped`` (nothing was checked; the detail says why) or ``failed``."""
        if not self.ok:
            return "failed"
        return "skipped" if self.detail.startswith(SKIPPED) else "ok"

    @property
    def reason(self) -> str:
        """The detail without the ``skipped:`` prefix."""
        return self.detail.removeprefix(SKIPPED)


def _guard(name: str, probe: Callable[[], str]) -> Check:
    """Run one probe; its exception (message only, URLs masked) makes the check fail."""
    try:
        return Check(name, True, probe())
    except Exception as exc:  # noqa: BLE001 - the doctor reports, it does not crash
        return Check(name, False, mask_url(f"{type(exc).__name__}: {exc}")[:500])


def check_prefect_api() -> str:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return SKIPPED + ("PREFECT_API_URL is not set, so no server was checked (each run starts a temporary "
                          "one; CICD, deployments and the sites' blocks need a shared one: export "
                          "PREFECT_API_URL=http://HOST:4200/api)")
    response = httpx.get(url.rstrip("/") + "/health", timeout=5)
    response.raise_for_status()
    return f"{mask_url(url)} healthy"


def blocks_unread(site_id: str | None) -> str:
    """Why a site's blocks were not consulted ('' when they were, or no site was given)."""
    from blocks.database import can_load_blocks

    if site_id is None or can_load_blocks():
        return ""
    return f"site {site_id}'s blocks were not read: PREFECT_API_URL is not set"


def check_metadata(site_id: str | None = None) -> str:
    from tasks.execution.service import ExecutionService

    with ExecutionService.open(site_id) as service, service.store.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        unread = blocks_unread(site_id)
        return f"{service.store.describe()} reachable" + (f" ({unread}; this is the default store)" if unread else "")


def check_log_store(settings: Settings, site_id: str) -> str:
    from tasks.site.resources import open_site_resources

    with open_site_resources(site_id, settings=settings) as resources:
        log = resources.event_log()
        client = log.store.get_client()
        value = client.query("SELECT 1").result_rows[0][0]
        if value != 1:
            raise RuntimeError(f"SELECT 1 returned {value!r}")
        pid = getattr(client, "server_pid", None)  # an embedded store: the host's engine process, shared with runs
        kind = f"embedded chdb, engine process {pid}" if pid else "embedded chdb" if log.store.is_embedded \
            else "ClickHouse server"
        unread = blocks_unread(site_id if site_id != DEFAULT_SITE else None)
        return f"{log.table_ref} ({kind}) answers" + (f" ({unread}; this is the default log store)" if unread else "")


def check_redis(settings: Settings, site_id: str | None) -> str:
    from blocks.redis import RedisConnection
    from tasks.site.resources import open_site_resources

    if RedisConnection.from_env() is None and site_id is None:
        return SKIPPED + "FT_UPGRADE_REDIS_URL not set (pass a site to check its '<site>-redis' block)"
    if RedisConnection.from_env() is None and blocks_unread(site_id):
        return SKIPPED + f"{blocks_unread(site_id)} (its '{(site_id or '').lower()}-redis' block), and " \
                         "FT_UPGRADE_REDIS_URL is not set"
    with open_site_resources(site_id or "-", settings=settings) as resources:
        try:
            client = resources.redis()
        except InputError as exc:  # neither the variable nor the site's block: nothing to check
            return SKIPPED + str(exc)
        client.ping()
        return "PING answered"


def check_marker_schema(settings: Settings, site_id: str | None) -> str:
    """The account of each business database may create the tool's own marker schema (else markers go there)."""
    from tasks.site.resources import open_site_resources
    from tasks.sql.session import DatabaseSession

    with open_site_resources(site_id or "-", settings=settings) as resources:
        checked, problems = [], []
        for name in ("ft_db", "middle_db"):
            try:
                engine = resources.engine(name)
            except InputError:
                continue  # not configured for this site
            session = DatabaseSession(name, engine, statement_timeout=0, reconnect_attempts=1,
                                      marker_schema=settings.marker_schema,
                                      marker_retention_days=settings.marker_retention_days)
            session.close()
            (problems if session.marker_warning else checked).append(session.marker_warning or name)
        if problems:
            raise RuntimeError("; ".join(problems))
        if not checked:
            if site_id is None:
                return SKIPPED + "no business database configured (pass a site, or set FT_UPGRADE_DB_FT_DB)"
            unread = blocks_unread(site_id)
            return SKIPPED + (f"{unread} (its ft_db and middle_db blocks)" if unread else
                              f"site {site_id} has no ft_db or middle_db block") + \
                " and FT_UPGRADE_DB_FT_DB is not set"
        return f"statement markers in schema {settings.marker_schema!r} on {', '.join(checked)}"


def check_configs(settings: Settings) -> str:
    from tasks.planning.validation import validate_tree

    loaded = validate_tree(settings.configs, settings.sql_root, settings.allowed_step_modules)
    return f"{len(loaded)} config(s) in {settings.configs} valid"


def check_disk(home: Path, min_free_bytes: int = MIN_FREE_BYTES) -> str:
    folder = home
    while not folder.exists() and folder != folder.parent:  # FT_UPGRADE_HOME may not exist yet
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    detail = f"{free / (1 << 30):.1f} GiB free at {home}"
    if free < min_free_bytes:
        raise RuntimeError(f"only {detail}; at least {min_free_bytes / (1 << 30):.1f} GiB needed "
                           "(backups, results, the local log store)")
    return detail


def run_doctor(site_id: str | None = None, *, settings: Settings | None = None,
               min_free_bytes: int = MIN_FREE_BYTES) -> list[Check]:
    """All checks, in the order an operator fixes things."""
    settings = settings or get_settings()
    site = site_id or os.environ.get("FT_UPGRADE_SITE_ID") or DEFAULT_SITE
    return [
        _guard("prefect_api", check_prefect_api),
        _guard("metadata_db", lambda: check_metadata(site_id)),
        _guard("log_store", lambda: check_log_store(settings, site)),
        _guard("redis", lambda: check_redis(settings, site_id)),
        _guard("marker_schema", lambda: check_marker_schema(settings, site_id)),
        _guard("configs", lambda: check_configs(settings)),
        _guard("disk", lambda: check_disk(settings.home, min_free_bytes)),
    ]


def problems(checks: list[Check]) -> list[Check]:
    return [c for c in checks if not c.ok]
