"""Logical databases as prefect-sqlalchemy ``SqlAlchemyConnector`` blocks.

A config names a logical database (``ft_db``, ``middle_db`` for the 中台 database, ``metadata`` for
this tool's own store). Its block is ``<site>-<name>`` (per site on a shared Prefect server), else
``<name>``, with ``_`` written ``-``. For CI and workers ``FT_UPGRADE_DB_<NAME>=URL`` in the process
environment overrides the block (the CLI's ``--db NAME=URL`` is passed explicitly, see
``tasks.site.resources.SiteOverrides``). Passwords live only in the block's ``SecretStr`` field and are
unwrapped only where the engine is built.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from tasks.core.runtime import in_prefect_run

if TYPE_CHECKING:  # prefect-sqlalchemy imports Prefect (most of a second): only where a block is used;
    # SQLAlchemy a third of a second: not for `validate` and `plan`, which only check names
    from prefect_sqlalchemy import SqlAlchemyConnector
    from sqlalchemy.engine import URL

LOGICAL_DATABASES = ("ft_db", "middle_db", "metadata")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def check_logical_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"logical database name {name!r} must be lower-case letters, digits and _")
    return name


def env_var(name: str) -> str:
    return "FT_UPGRADE_DB_" + name.upper()


def block_names(name: str, site_id: str | None = None) -> list[str]:
    """Block document names tried for a logical database, most specific first."""
    base = name.replace("_", "-")
    names = [f"{site_id.lower()}-{base}"] if site_id else []
    return [*names, base]


def connector_from_url(url: str) -> SqlAlchemyConnector:
    """A block whose password sits in a SecretStr (``ConnectionComponents``), never in a URL string."""
    from prefect_sqlalchemy import ConnectionComponents, SqlAlchemyConnector
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return SqlAlchemyConnector(connection_info=ConnectionComponents(
        driver=parsed.drivername, username=parsed.username, password=parsed.password,
        host=parsed.host, port=parsed.port, database=parsed.database or "",
        query={k: str(v) for k, v in parsed.query.items()} or None,
    ))


def connector_url(connector: SqlAlchemyConnector) -> URL:
    """The SQLAlchemy URL of a connector block (password included: only for building engines)."""
    from prefect_sqlalchemy import ConnectionComponents
    from sqlalchemy.engine import make_url

    info = connector.connection_info
    if isinstance(info, ConnectionComponents):
        return info.create_url()
    return make_url(str(info))


def can_load_blocks() -> bool:
    """Whether a Prefect API is at hand: configured, or the one of the run we are in.

    Looking a block up must never start a temporary Prefect server (seconds of start-up) just to
    learn there is no such block: outside a run and without ``PREFECT_API_URL`` there are no blocks.
    """
    return bool(os.environ.get("PREFECT_API_URL")) or in_prefect_run()


def url_from_environment(name: str) -> str | None:
    return os.environ.get(env_var(name)) or None


def load_database_url(name: str, site_id: str | None = None) -> URL | None:
    """Environment override first, then the site's block, then the shared block; None if none."""
    from sqlalchemy.engine import make_url

    env = url_from_environment(name)
    if env:
        return make_url(env)
    if not can_load_blocks():
        return None
    block = _existing_block(block_names(name, site_id))
    if block is None:
        return None
    from prefect_sqlalchemy import SqlAlchemyConnector

    return connector_url(SqlAlchemyConnector.load(block, validate=False))


def _existing_block(names: list[str]) -> str | None:
    """The first of ``names`` saved as a SqlAlchemyConnector block: one API read each, without importing
    prefect-sqlalchemy (a tenth of a second) to learn that a site has no such block."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        for name in names:
            try:
                client.read_block_document_by_name(name, block_type_slug="sqlalchemy-connector",
                                                   include_secrets=False)
            except ObjectNotFound:
                continue
            return name
    return None
