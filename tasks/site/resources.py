"""The site's resources for one run: a connection pool per logical database, Redis, the event log.

Built by one factory, :func:`open_site_resources`, a context manager that closes everything it opened.
Where each comes from, first found wins: what the caller gave explicitly (:class:`SiteOverrides`: the
CLI's ``--db``, never written to the environment), the process environment (``FT_UPGRADE_DB_<NAME>``,
``FT_UPGRADE_REDIS_URL``, ``FT_UPGRADE_CLICKHOUSE_DSN``: a worker's configuration), the site's blocks.
Steps get them through their context; engines take only the connection, client or path they need.
Engines are verified on first use with retries; a database that stays unreachable fails the run with
a message that names it, never its password.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from blocks.clickhouse import DSN_ENV, ClickHouseLogStore
from blocks.database import can_load_blocks, env_var, load_database_url
from blocks.redis import RedisConnection
from tasks.core.errors import InputError, ResourceUnavailable
from tasks.core.settings import Settings, get_settings
from tasks.events.logstore import BatchingWriter, ClickHouseEventLog
from tasks.site.connect import share_tls_context
from tasks.store.metadata_store import MetadataStore

if TYPE_CHECKING:
    from blocks.site_profile import SiteProfile

CONNECT_ATTEMPTS = 4  # the first try and 3 retries, as the requirements ask


@dataclass(frozen=True)
class SiteOverrides:
    """Connections a caller gives explicitly instead of the site's blocks (URLs hold passwords)."""

    databases: Mapping[str, str] = field(default_factory=dict)

    def database(self, name: str) -> URL | None:
        url = self.databases.get(name)
        return make_url(url) if url else None


PRIVATE_FOLDERS = frozenset({"backup_dir", "config_history"})


class SiteResources:
    """Lazily built, shared by all steps of one flow run; ``close()`` disposes every pool."""

    def __init__(self, *, site_id: str, sql_root: Path, configs_dir: Path, home: Path,
                 profile: SiteProfile | None = None, retry_wait: float = 0.5,
                 overrides: SiteOverrides | None = None, settings: Settings | None = None) -> None:
        self.site_id = site_id
        #: The run's settings (CLI overrides included), which steps read through their context; a library
        #: caller that gives none gets the environment's, with these folders.
        self.settings = settings if settings is not None else get_settings(sql_root=sql_root, configs=configs_dir,
                                                                           home=home)
        self.overrides = overrides or SiteOverrides()
        self.sql_root = sql_root
        self.configs_dir = configs_dir
        self.home = home
        self.profile = profile
        self.retry_wait = retry_wait
        self._engines: dict[str, Engine] = {}
        self._lock = threading.RLock()
        self.secrets: set[str] = set()
        #: Environment values read from Secret blocks (the run's parameters carry only their names).
        self.environment_secrets: dict[str, str] = {}
        if profile is not None:  # the profile's secret values are masked wherever the run writes
            self.secrets.update(v for v in profile.secret_values().values() if v)
        self.store: MetadataStore | None = None
        self._owns_store = False
        self._redis: redis.Redis | None = None
        self._event_log: ClickHouseEventLog | None = None
        self._event_writer: BatchingWriter | None = None
        #: Step keys in the order this process started them, and each database's catalog as the SQL step that
        #: ran last on it left it: the next SQL step, if it starts right after that one, needs no "before" read.
        self.steps_started: list[str] = []
        self.schema_after: dict[str, tuple[str, Any]] = {}

    def resolve_environment(self, environment: Mapping[str, Any] | None) -> None:
        """Read the Secret blocks a run's environment names (a missing one is bad input) and mask their values."""
        from blocks.secrets import resolve_secret_environment

        self.environment_secrets = resolve_secret_environment(environment)
        self.secrets.update(v for v in self.environment_secrets.values() if v)

    def step_environment(self, environment: Mapping[str, Any]) -> dict[str, Any]:
        """What a step sees: the run's environment with each Secret block reference replaced by its value."""
        return {**environment, **self.environment_secrets}

    def database_url(self, name: str) -> URL:
        url = self.overrides.database(name) or load_database_url(name, self.site_id)
        if url is None and name == "metadata":
            url = make_url(self.metadata_store().engine.url.render_as_string(hide_password=False))
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
            engine = share_tls_context(create_engine(url, pool_pre_ping=True, pool_recycle=3600, pool_size=5,
                                                     max_overflow=5))
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

    def metadata_store(self) -> MetadataStore:
        """This tool's own store (ledger, breakpoints); the flow sets it, tests get the embedded default."""
        with self._lock:
            if self.store is None:
                url = self.overrides.database("metadata") or load_database_url("metadata", self.site_id)
                self.store = MetadataStore.open(url.render_as_string(hide_password=False) if url else
                                                f"sqlite:///{(self.home / 'metadata.db').resolve()}")
                self._owns_store = True
            return self.store

    def event_writer(self) -> BatchingWriter:
        """One background writer for the whole run: steps never wait for ClickHouse (start-up included)."""
        log = self.event_log()
        with self._lock:
            if self._event_writer is None:
                self._event_writer = log.writer()
            return self._event_writer

    def service_url(self, service: str) -> str | None:
        return self.profile.services.get(service) if self.profile else None

    def path(self, name: str) -> Path:
        """A named folder from the site profile (backup_dir, staging_dir…), else ``<home>/<name>``."""
        configured = self.profile.paths.get(name) if self.profile else None
        folder = Path(configured) if configured else self.home / name
        if name in PRIVATE_FOLDERS:  # customer data and credentials: created private whatever the umask
            from tasks.core.files import Private

            Private(self.settings.backup_group).mkdir(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def redis(self) -> redis.Redis:
        """The site's Redis: ``FT_UPGRADE_REDIS_URL``, else block ``<site>-redis``."""
        with self._lock:
            if self._redis is None:
                block = RedisConnection.from_env()
                if block is None:
                    if not can_load_blocks():
                        raise InputError("Redis is not configured: set FT_UPGRADE_REDIS_URL")
                    try:
                        block = RedisConnection.load(f"{self.site_id.lower()}-redis", validate=False)
                    except (ValueError, KeyError):
                        raise InputError(f"Redis is not configured: create block '{self.site_id.lower()}-redis' "
                                         "(ft-upgrade blocks apply --redis URL) or set FT_UPGRADE_REDIS_URL") from None
                if block.password:
                    self.secrets.add(block.password.get_secret_value())
                self._redis = block.get_client()
            return self._redis

    def event_log(self) -> ClickHouseEventLog:
        """The detailed event log: ``FT_UPGRADE_CLICKHOUSE_DSN``, block ``<site>-clickhouse``, else embedded chdb."""
        with self._lock:
            if self._event_log is None:
                store: ClickHouseLogStore | None = None
                if not os.environ.get(DSN_ENV) and can_load_blocks():
                    try:
                        store = ClickHouseLogStore.load(f"{self.site_id.lower()}-clickhouse", validate=False)
                    except (ValueError, KeyError):
                        store = None
                if store is None:
                    store = (ClickHouseLogStore.from_env_or_default() if os.environ.get(DSN_ENV) else
                             ClickHouseLogStore(dsn=f"chdb://{(self.home / 'clickhouse').resolve()}"))
                # connected by the writer's thread (event_writer): an embedded engine boots in the host's
                # engine process (blocks.clickhouse_process), beside the run, shared with the host's other runs
                self._event_log = ClickHouseEventLog(store, secrets=tuple(self.secrets))
            return self._event_log

    def describe(self) -> dict[str, Any]:
        return {"site_id": self.site_id, "sql_root": str(self.sql_root), "databases": sorted(self._engines)}

    def close(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()
            if self._redis is not None:
                self._redis.close()
                self._redis = None
            if self._owns_store and self.store is not None:
                self.store.close()
                self.store = None
            if self._event_writer is not None:
                self._event_writer.close()
                self._event_writer = None
            if self._event_log is not None:
                self._event_log.store.close()
                self._event_log = None


@contextlib.contextmanager
def open_site_resources(site_id: str, *, settings: Settings, overrides: SiteOverrides | None = None,
                        profile: SiteProfile | None = None, store: MetadataStore | None = None,
                        retry_wait: float = 0.5) -> Iterator[SiteResources]:
    """The site's resources for a block of work; every pool, client and writer it opened is closed after.

    ``store``: the metadata store the caller already holds (the run's), shared instead of opened again.
    """
    resources = SiteResources(site_id=site_id, sql_root=settings.sql_root, configs_dir=settings.configs,
                              home=settings.home, profile=profile, retry_wait=retry_wait, overrides=overrides,
                              settings=settings)
    resources.store = store
    try:
        yield resources
    finally:
        resources.close()
