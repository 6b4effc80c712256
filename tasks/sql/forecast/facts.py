"""What the forecast needs to know of a business database, read without changing anything.

One connection, read-only queries only: ``SELECT VERSION()`` and the session defaults, the tables'
``information_schema`` rows (engine, row format, estimated rows, data and index length, columns,
indexes), and ``EXPLAIN`` of data-changing statements for the rows they will examine (EXPLAIN runs
nothing). The planner of :mod:`tasks.sql.forecast.estimate` works from these facts alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, text

from tasks.sql.forecast.ddl import Column, Index, Server, Session, Table

#: EXPLAINs per database and plan at most: a data script of ten thousand INSERTs is not examined one by one.
EXPLAIN_LIMIT = 300


@dataclass(frozen=True)
class DatabaseFacts:
    """One logical database's server, session defaults, current schema and tables (by lower-case schema.name)."""

    server: Server
    session: Session
    schema: str
    tables: dict[tuple[str, str], Table] = field(default_factory=dict)
    explained: dict[int, int] = field(default_factory=dict)  # statement index → rows EXPLAIN expects to examine

    def table(self, schema: str | None, name: str) -> Table | None:
        return self.tables.get(((schema or self.schema).lower(), name.lower()))


def read_facts(engine: Engine, tables: Iterable[tuple[str | None, str]],
               explain: Sequence[tuple[int, str | None, str]] = ()) -> DatabaseFacts:
    """Facts for ``tables`` (schema None: the connection's database) and EXPLAIN rows of ``explain``
    (index, schema, statement): a statement EXPLAIN cannot plan (its table does not exist yet) is left out."""
    with engine.connect() as conn:
        version, current, fk = conn.execute(text("SELECT VERSION(), DATABASE(), @@foreign_key_checks")).one()
        server = Server.parse(str(version))
        schema = str(current or "")
        session = _session(conn, server, fk)
        wanted = {((s or schema).lower(), n.lower()) for s, n in tables}
        found = _tables(conn, wanted)
        explained = _explain(conn, schema, explain[:EXPLAIN_LIMIT])
        conn.rollback()
    return DatabaseFacts(server, session, schema, found, explained)


def _session(conn: Connection, server: Server, fk: object) -> Session:
    algorithm, old = "DEFAULT", False
    if server.flavor == "mariadb":
        found, old_alter = conn.execute(text("SELECT @@alter_algorithm, @@old_alter_table")).one()
        algorithm = str(found or "DEFAULT")
        old = str(old_alter or "0").upper() in ("1", "ON", "COPY")
    return Session(foreign_key_checks=bool(int(fk or 0)), alter_algorithm=algorithm.upper(), old_alter_table=old)


def _tables(conn: Connection, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], Table]:
    if not wanted:
        return {}
    schemas = sorted({s for s, _ in wanted})
    params = {f"s{i}": s for i, s in enumerate(schemas)}
    where = "LOWER(TABLE_SCHEMA) IN (" + ", ".join(f":s{i}" for i in range(len(schemas))) + ")"
    rows = conn.execute(text(
        "SELECT TABLE_SCHEMA, TABLE_NAME, ENGINE, ROW_FORMAT, TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH, TABLE_COLLATION "
        f"FROM information_schema.TABLES WHERE {where} AND TABLE_TYPE = 'BASE TABLE'"), params).all()
    base = {(r[0].lower(), r[1].lower()): r for r in rows if (r[0].lower(), r[1].lower()) in wanted}
    if not base:
        return {}
    columns: dict[tuple[str, str], dict[str, Column]] = {k: {} for k in base}
    for r in conn.execute(text(
            "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, CHARACTER_OCTET_LENGTH, "
            "CHARACTER_MAXIMUM_LENGTH, CHARACTER_SET_NAME, COLLATION_NAME, EXTRA FROM information_schema.COLUMNS "
            f"WHERE {where} ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"), params):
        key = (r[0].lower(), r[1].lower())
        if key in columns:
            columns[key][r[2]] = Column(r[2], str(r[3]).lower(), r[4] == "YES", _int(r[5]), _int(r[6]), r[7], r[8],
                                        str(r[9] or ""))
    parts: dict[tuple[str, str], dict[str, list[Any]]] = {k: {} for k in base}
    for r in conn.execute(text(
            "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, COLUMN_NAME, INDEX_TYPE, NON_UNIQUE "
            f"FROM information_schema.STATISTICS WHERE {where} ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, "
            "SEQ_IN_INDEX"), params):
        key = (r[0].lower(), r[1].lower())
        if key in parts:
            entry = parts[key].setdefault(r[2], [[], str(r[4] or "BTREE").upper(), not int(r[5])])
            entry[0].append(r[3])
    return {key: Table(schema=r[0], name=r[1], engine=str(r[2] or "InnoDB"), row_format=str(r[3] or "Dynamic"),
                       rows=_int(r[4]) or 0, data_length=_int(r[5]) or 0, index_length=_int(r[6]) or 0,
                       collation=r[7], columns=columns[key],
                       indexes={name: Index(name, tuple(cols), kind, unique)
                                for name, (cols, kind, unique) in parts[key].items()})
            for key, r in base.items()}


def _explain(conn: Connection, schema: str, statements: Sequence[tuple[int, str | None, str]]) -> dict[int, int]:
    """Rows each statement would examine, by EXPLAIN (the largest table's estimate); errors leave it out."""
    found: dict[int, int] = {}
    current = schema
    for index, wanted_schema, sql in statements:
        try:
            if wanted_schema and wanted_schema != current:
                conn.exec_driver_sql(f"USE `{wanted_schema.replace('`', '``')}`")
                current = wanted_schema
            result = conn.exec_driver_sql("EXPLAIN " + sql.replace("%", "%%"))
            names = [c.lower() for c in result.keys()]  # noqa: SIM118 (a Result, not a dict)
            rows = [dict(zip(names, r, strict=True)) for r in result.all()]
        except Exception:  # the statement's table is created earlier in the plan, or EXPLAIN cannot plan it
            continue
        estimates = [_int(r.get("rows")) or 0 for r in rows]
        found[index] = max(estimates, default=0)
    if current != schema and schema:
        conn.exec_driver_sql(f"USE `{schema.replace('`', '``')}`")
    return found


def _int(value: object) -> int | None:
    if value is None:
        return None
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        m = re.match(r"\d+", str(value))
        return int(m[0]) if m else None
