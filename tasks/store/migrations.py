"""Creates and upgrades the metadata schema; the tool does this itself on every start.

Each migration is a numbered function of a connection, applied once and recorded in
``ft_upgrade_schema_version``. Migrations must be safe on a database where the table they touch was
already created by :data:`schema.metadata` (a fresh install creates the current tables first).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, inspect, select

from tasks.store import schema

Migration = Callable[[Connection], None]


def _initial(conn: Connection) -> None:
    schema.metadata.create_all(conn, checkfirst=True)


def _site_lock(conn: Connection) -> None:
    schema.site_lock.create(conn, checkfirst=True)


MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "the five tables of the requirements, with their indexes", _initial),
    (2, "one upgrade per site: the site lock table", _site_lock),
]

CURRENT_VERSION = MIGRATIONS[-1][0]


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table(schema.schema_version.name):
        return 0
    found = conn.execute(select(schema.schema_version.c.version).order_by(
        schema.schema_version.c.version.desc()).limit(1)).scalar()
    return int(found or 0)


def migrate(engine: Engine) -> int:
    """Bring the schema to :data:`CURRENT_VERSION`; returns the number of migrations applied."""
    applied = 0
    with engine.begin() as conn:
        schema.schema_version.create(conn, checkfirst=True)
        version = current_version(conn)
        for number, _title, fn in MIGRATIONS:
            if number <= version:
                continue
            fn(conn)
            conn.execute(schema.schema_version.insert().values(
                version=number, applied_time=datetime.now(UTC).replace(tzinfo=None)))
            applied += 1
    return applied
