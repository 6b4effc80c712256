"""Prefect block pointing at the ClickHouse store that keeps per-statement / per-step log events.

The same clickhouse-connect client serves a real ClickHouse server (``clickhouse://``, ``http(s)://``)
and the embedded default, ``chdb://`` (chdb-core: the real ClickHouse engine as a library), so a site
without a ClickHouse server still gets the full log store. What clickhouse-connect 1.12 / chdb-core
26.9 do with ``chdb`` DSNs (checked against the library source and by experiment):

* ``chdb://`` / ``chdb://memory`` / ``chdb://:memory:`` is an in-memory engine, lost at exit.
* ``chdb:///abs/dir`` (three slashes) is a persistent engine in ``/abs/dir``; the directory is created
  if missing, data survives closing and reopening. The path is ``os.path.realpath``-normalised.
* ``chdb://name/x`` reads ``name`` as the location and ``x`` as the *database*, so a relative path
  cannot be written in a DSN: the default DSN here is therefore always absolute.
* Query parameters: ``ch_<setting>=`` become ClickHouse settings; host/port/user/password are
  ignored with a warning (chdb has no authentication).
* One process hosts at most ONE engine path, and a path is open in at most one process (the engine
  locks ``<dir>/status``): two processes on one host could not share a store. So a ``chdb:///dir`` store
  is never opened in the caller's process: :mod:`blocks.clickhouse_process` serves each directory from
  one process per host, started by whoever needs it first, and every process (runs, ``doctor``, log
  cleanup, tests) is a client of it. Only the in-memory engine runs in the caller's process.
* Within a process, any number of clients may be open on the same path (each has its own session:
  ``USE``/``SET`` are per client); a chdb client may be used from another thread (calls are serialised
  by a per-client lock). The async client is not supported for chdb.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect.blocks.core import Block
from pydantic import Field, PrivateAttr, SecretStr

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

HOME_ENV = "FT_UPGRADE_HOME"
DSN_ENV = "FT_UPGRADE_CLICKHOUSE_DSN"
EMBEDDED_EXTRA = "embedded-clickhouse"


class EmbeddedClickHouseMissing(ImportError):
    """A ``chdb://`` store without chdb installed (the optional extra ``embedded-clickhouse``)."""


def require_embedded_engine(dsn: str) -> None:
    """Raise :class:`EmbeddedClickHouseMissing`, saying both ways out, when chdb is not installed.

    Only checks that the package is there (``find_spec``), so it costs nothing: importing chdb loads
    more than 500 MB and is left to where the engine starts.
    """
    if importlib.util.find_spec("chdb") is None:
        raise EmbeddedClickHouseMissing(
            f"{dsn.split('?')[0]!r} is the embedded ClickHouse engine (chdb), which is not installed: "
            f"install ft-auto-upgrade[{EMBEDDED_EXTRA}] (pip install -e '.[{EMBEDDED_EXTRA}]', or a wheelhouse "
            f"built with --extras {EMBEDDED_EXTRA}) or configure a ClickHouse server: "
            f"FT_UPGRADE_CLICKHOUSE_DSN=clickhouse://user:password@host:8123 / block <site>-clickhouse "
            "(ft-upgrade blocks apply)", name="chdb")


def default_home() -> Path:
    """Tool home: ``$FT_UPGRADE_HOME`` or ``./.ft-upgrade``, resolved so it can go into a chdb DSN."""
    return Path(os.environ.get(HOME_ENV) or ".ft-upgrade").expanduser().resolve()


def default_dsn() -> str:
    """Embedded, persistent store under the tool home: ``chdb:///<home>/clickhouse``."""
    return f"chdb://{(default_home() / 'clickhouse').as_posix()}"


class ClickHouseLogStore(Block):
    """
    Block pointing at the ClickHouse database that stores detailed upgrade log events.

    The clickhouse-connect client is created lazily on first use and kept until ``close()``;
    use the block as a context manager so the client (its connection to the host's engine process,
    for ``chdb:///dir``) is released. Load and use it within one task or flow: the client is not
    carried across pickling.

    Attributes:
        dsn: clickhouse-connect DSN, e.g. ``clickhouse://user:password@host:8123`` or
            ``chdb:///abs/path`` for the embedded engine. Secret because it may carry a password.
        database: Database holding the event table; created if missing.
        table: Name of the event table.
        retention_days: Days events are kept (table TTL and ``drop_older_than``).

    Example:
        Load the stored log store and query it:
        ```python
        from blocks.clickhouse import ClickHouseLogStore

        with ClickHouseLogStore.load("BLOCK_NAME") as store:
            client = store.get_client()
            print(client.command("SELECT version()"))
        ```
    """

    _block_type_name = "FT ClickHouse Log Store"

    dsn: SecretStr = Field(
        default_factory=lambda: SecretStr(default_dsn()),
        description=(
            "clickhouse-connect DSN. 'clickhouse://user:password@host:8123' for a server, "
            "'chdb:///absolute/dir' for the embedded engine (default: <FT_UPGRADE_HOME>/clickhouse)."
        ),
    )
    database: str = Field(default="ft_upgrade_log", description="Database holding the event table.")
    table: str = Field(default="upgrade_event", description="Name of the event table.")
    retention_days: int = Field(default=30, ge=1, description="Days log events are kept before dropping.")

    _client: Any = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def from_env_or_default(cls) -> ClickHouseLogStore:
        """Store from ``$FT_UPGRADE_CLICKHOUSE_DSN`` when set, else the embedded default."""
        dsn = os.environ.get(DSN_ENV)
        return cls(dsn=SecretStr(dsn)) if dsn else cls()

    @property
    def is_embedded(self) -> bool:
        """True for chdb: one engine path per process, no credentials."""
        return self.dsn.get_secret_value().startswith("chdb:")

    @property
    def directory(self) -> Path | None:
        """The data directory of an embedded store (None for a server or the in-memory engine)."""
        if not self.is_embedded:
            return None
        from blocks.clickhouse_process import embedded_directory

        return embedded_directory(self.dsn.get_secret_value())

    def get_client(self) -> Client:
        """The shared client, created on first call; the only place the DSN is read.

        A ``chdb:///dir`` store is a client of the host's engine process for ``dir``
        (:class:`blocks.clickhouse_process.EngineProcess`, the few calls the event log makes).
        """
        with self._lock:
            if self._client is None:
                if self.is_embedded:
                    require_embedded_engine(self.dsn.get_secret_value())
                if self.directory is not None:
                    from blocks.clickhouse_process import EngineProcess

                    self._client = EngineProcess(self.dsn.get_secret_value())
                else:
                    import clickhouse_connect

                    self._client = clickhouse_connect.get_client(dsn=self.dsn.get_secret_value())
            return self._client

    def close(self) -> None:
        """Close the client (an engine process goes on serving its other clients, and ends when idle)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> ClickHouseLogStore:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the live client and lock; they are recreated on the other side."""
        state = super().__getstate__()
        private = dict(state.get("__pydantic_private__") or {})
        private.update(_client=None, _lock=None)
        return {**state, "__pydantic_private__": private}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._lock = threading.Lock()
