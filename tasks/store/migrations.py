"""Creates and upgrades the metadata schema; the tool does this itself on every start.

Each migration is a numbered function of a connection, applied once and recorded in
``ft_upgrade_schema_version``. Migrations must be safe on a database where the table they touch was
already created by :data:`schema.metadata` (a fresh install creates the current tables first).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, Table, inspect, select, text, update

from tasks.store import schema

Migration = Callable[[Connection], None]


def _initial(conn: Connection) -> None:
    schema.metadata.create_all(conn, checkfirst=True)


def _site_lock(conn: Connection) -> None:
    schema.site_lock.create(conn, checkfirst=True)


def _add_missing_columns(conn: Connection, table: Table) -> None:
    """ALTER TABLE … ADD the columns of ``table`` that an older store lacks (a fresh one has them all)."""
    present = {c["name"] for c in inspect(conn).get_columns(table.name)}
    preparer = conn.dialect.identifier_preparer
    for column in table.columns:
        if column.name not in present:
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE {preparer.quote(table.name)} ADD COLUMN "
                              f"{preparer.quote(column.name)} {kind}"))


def _site_state(conn: Connection) -> None:
    for table in (schema.site_state, schema.site_cutpoint, schema.site_history, schema.site_script):
        table.create(conn, checkfirst=True)
    _add_missing_columns(conn, schema.upgrade_execution)
    _add_missing_columns(conn, schema.upgrade_breakpoint)


def _statement_state(conn: Connection) -> None:
    _add_missing_columns(conn, schema.sql_execution_record)


def _lock_token(conn: Connection) -> None:
    _add_missing_columns(conn, schema.site_lock)


def _throughput(conn: Connection) -> None:
    schema.site_throughput.create(conn, checkfirst=True)


def _report_status(conn: Connection) -> None:
    """``upgrade_report.status`` is the report's own (GENERATED/ARCHIVED), no longer the execution's outcome
    (which stays in the report's content); archiving finds old reports by an index."""
    from tasks.core.statuses import ReportStatus

    t = schema.upgrade_report
    conn.execute(update(t).where(t.c.status.not_in([s.value for s in ReportStatus]))
                 .values(status=ReportStatus.GENERATED.value))
    for index in t.indexes:
        if index.name == "idx_report_status_time":
            index.create(conn, checkfirst=True)


MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "the five tables of the requirements, with their indexes", _initial),
    (2, "one upgrade per site: the site lock table", _site_lock),
    (3, "site state: version, cutpoints, history, applied scripts; execution terms; typed decisions", _site_state),
    (4, "statements: recorded session values and the server's clock at RUNNING", _statement_state),
    (5, "site lock: a fencing token per holder", _lock_token),
    (6, "per-site throughput of DDL and DML work, for the downtime forecast", _throughput),
    (7, "reports: status GENERATED/ARCHIVED, an index to archive by", _report_status),
    (8, "statements: the server connection that ran a statement marked RUNNING", _statement_state),
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
