"""The site's resources for one run: a connection pool per logical database, Redis, the event log.

Created once per flow run from blocks (or environment overrides) and handed to step tasks, so no
step loads credentials itself. Engines are verified on first use with retries; a database that
stays unreachable fails the run with a message that names it, never its password.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from blocks.database import env_var, load_database_url
from tasks.errors import InputError, ResourceUnavailable

if TYPE_CHECKING:
    from blocks.site_profile import SiteProfile

CONNECT_ATTEMPTS = 4  # the first try and 3 retries, as the requirements ask


class Resources:
    """Lazily built, shared by all steps of one flow run; ``close()`` disposes every pool."""

    def __init__(self, *, site_id: str, sql_root: Path, configs_dir: Path, home: Path,
                 profile: SiteProfile | None = None, retry_wait: float = 0.5) -> None:
        self.site_id = site_id
        self.sql_root = sql_root
        self.configs_dir = configs_dir
        self.home = home
        self.profile = profile
        self.retry_wait = retry_wait
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()
        self.secrets: set[str] = set()

    def database_url(self, name: str) -> URL:
        url = load_database_url(name, self.site_id)
        if url is None:
            raise InputError(f"logical database {name!r} is not configured: create block "
                             f"'{self.site_id.lower()}-{name.replace('_', '-')}' (ft-upgrade blocks apply) "
                             f"or set {env_var(name)}")
        if url.password:
            self.secrets.add(str(url.password))
        return url

    def engine(self, name: str) -> Engine:
        """The pool for a logical database, verified (``SELECT 1``) with 3 retries and backoff."""
        with self._lock:
            if name in self._engines:
                return self._engines[name]
            url = self.database_url(name)
            engine = create_engine(url, pool_pre_ping=True, pool_recycle=3600, pool_size=5, max_overflow=5)
            shown = url.render_as_string(hide_password=True)
            try:
                for attempt in Retrying(stop=stop_after_attempt(CONNECT_ATTEMPTS),
                                        wait=wait_exponential(multiplier=self.retry_wait, max=10),
                                        retry=retry_if_exception_type(OperationalError), reraise=False):
                    with attempt, engine.connect() as conn:
                        conn.execute(text("SELECT 1"))
            except RetryError as exc:
                engine.dispose()
                cause = exc.last_attempt.exception()
                reason = getattr(cause, "orig", cause)
                raise ResourceUnavailable(
                    f"database {name!r} ({shown}) unreachable after {CONNECT_ATTEMPTS} attempts: {reason}"
                ) from None
            self._engines[name] = engine
            return engine

    def service_url(self, service: str) -> str | None:
        return self.profile.services.get(service) if self.profile else None

    def describe(self) -> dict[str, Any]:
        return {"site_id": self.site_id, "sql_root": str(self.sql_root), "databases": sorted(self._engines)}

    def close(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()
