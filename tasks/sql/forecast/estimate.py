"""The downtime forecast of startup_pre_process: per statement how the server runs it and how long it takes.

Pure: the statements in the order they run, the facts of each database (:mod:`tasks.sql.forecast.facts`),
and the site's throughputs (rows per second of each kind of work, learned from earlier runs, else a
default) in; a :class:`Forecast` out. The statements are walked in order per database with the
session as the script leaves it (``USE``, ``SET foreign_key_checks``, ``SET alter_algorithm``) and the
tables as earlier statements leave them (a table the plan creates is empty; one it drops is gone).

Seconds of a statement = a fixed cost + rows ÷ rows per second of its work:

* ``copy`` (COPY), ``rebuild`` (INPLACE with rebuild), ``index`` (an index build): the table's rows;
* ``dml``: the rows EXPLAIN expects the statement to examine (an UPDATE/DELETE without WHERE: the table);
* ``metadata``: the fixed cost only.

A statement whose rows the forecast cannot know (no facts for its database, a DML EXPLAIN could not
plan) is counted at its fixed cost and marked uncertain: the total says how many there are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tasks.core.masking import mask_sql
from tasks.sql import kinds as k
from tasks.sql.forecast.ddl import (
    INDEX,
    METADATA,
    REBUILD,
    TABLE_COPY,
    Execution,
    Session,
    Table,
    classify,
    target,
    unquote,
)
from tasks.sql.forecast.facts import DatabaseFacts

DML = "dml"
WORKS = (TABLE_COPY, REBUILD, INDEX, DML)
#: Rows per second before a site has taught better: measured by ``tests/bench/bench_forecast_rates.py`` on the
#: 2-core test machine (MariaDB 10.11, InnoDB, 300,000 rows of seven columns and three indexes), rounded down.
DEFAULT_RATES = {TABLE_COPY: 150_000.0, REBUILD: 300_000.0, INDEX: 1_000_000.0, DML: 450_000.0}
DDL_SECONDS = 0.01  # the fixed cost of a DDL statement (catalog, metadata lock, files)
STATEMENT_SECONDS = 0.001  # of any other statement
ONLINE_ADVICE_SECONDS = 1.0  # an online-capable statement shorter than this is not worth moving
DOMINANT_SHARE = 0.8  # the dominating statements are the largest ones making up this share of the total

_DML_TARGET = re.compile(r"(?:UPDATE|DELETE\s+FROM|INSERT\s+(?:IGNORE\s+)?INTO|REPLACE\s+INTO)\s+"
                         r"(?:(?P<db>`(?:[^`]|``)+`|\w+)\s*\.\s*)?(?P<name>`(?:[^`]|``)+`|\w+)", re.I)


@dataclass(frozen=True)
class Statement:
    """One statement to forecast, as the engine will send it."""

    database: str  # logical database
    file: str
    line: int
    sequence: int
    kind: str  # tasks.sql.kinds
    sql: str
    step: str = ""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Rate:
    """Rows per second of one kind of work at a site, and where it comes from."""

    rows_per_second: float
    learned_from: int = 0  # statements it was learned from (0: the default)


@dataclass(frozen=True)
class StatementForecast:
    """How one statement will run, and for how long."""

    database: str
    file: str
    line: int
    sequence: int
    step: str
    verb: str
    table: str
    category: str  # INSTANT | INPLACE (no lock) | INPLACE (lock) | COPY | DML | OTHER
    algorithm: str
    lock: str
    work: str
    rows: int
    seconds: float
    reasons: tuple[str, ...]
    certain: bool
    online: bool  # could run while the services still write (advice only)
    sql: str  # masked, as every statement the tool shows

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def shown(self) -> bool:
        """Every DDL, and any other statement that does work (a script of ten thousand INSERTs is summed only)."""
        return self.category not in ("OTHER", "DML") or self.rows > 0 or self.seconds >= 0.05

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "where": self.where, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class Forecast:
    """The whole forecast; ``seconds`` is the forecast downtime of the SQL it covers."""

    statements: tuple[StatementForecast, ...]
    rates: dict[str, Rate]
    servers: dict[str, str]  # logical database → "MariaDB 10.11.19"
    unavailable: dict[str, str] = field(default_factory=dict)  # logical database → why no facts

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.statements)

    @property
    def uncertain(self) -> list[StatementForecast]:
        return [s for s in self.statements if not s.certain]

    @property
    def dominating(self) -> list[StatementForecast]:
        """The largest statements that together make up most of the forecast (at most five)."""
        ranked = sorted((s for s in self.statements if s.rows > 0), key=lambda s: s.seconds, reverse=True)
        out: list[StatementForecast] = []
        total, running = self.seconds, 0.0
        for s in ranked[:5]:
            if total <= 0 or running >= DOMINANT_SHARE * total or s.seconds < 0.01 * total:
                break
            out.append(s)
            running += s.seconds
        return out

    @property
    def online_candidates(self) -> list[StatementForecast]:
        """DDL that could run before the stop, with the services still writing (advice only)."""
        return [s for s in self.statements if s.online and s.work in (INDEX, REBUILD)
                and s.seconds >= ONLINE_ADVICE_SECONDS]

    def to_json(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 3),
                "statements": [s.to_json() for s in self.statements if s.shown],
                "statement_count": len(self.statements),
                "dominating": [s.where for s in self.dominating],
                "online_candidates": [s.where for s in self.online_candidates],
                "uncertain": len(self.uncertain),
                "rates": {w: asdict(r) for w, r in self.rates.items()},
                "servers": self.servers, "unavailable": self.unavailable}


def rates_with_defaults(learned: Mapping[str, Rate]) -> dict[str, Rate]:
    return {w: learned.get(w) or Rate(DEFAULT_RATES[w]) for w in WORKS}


def wanted_tables(statements: Sequence[Statement]) -> dict[str, set[tuple[str | None, str]]]:
    """Per logical database, the tables the facts reader should read (schema None: the connection's)."""
    out: dict[str, set[tuple[str | None, str]]] = {}
    for s in statements:
        found = _table_of(s)
        if found is not None:
            out.setdefault(s.database, set()).add(found)
    return out


def to_explain(statements: Sequence[Statement]) -> dict[str, list[tuple[int, str | None, str]]]:
    """Per logical database, the DML whose examined rows EXPLAIN should estimate: (index, schema, sql).

    The schema is the one the script's ``USE`` left (None: the connection's). A DML on a table that a plain
    ``CREATE TABLE`` before it makes is not asked: the table is new (EXPLAIN could not plan it anyway), and a
    release that creates its table and fills it asks the server nothing for it."""
    out: dict[str, list[tuple[int, str | None, str]]] = {}
    schemas: dict[str, str | None] = {}
    created: set[tuple[str, str | None, str]] = set()
    for i, s in enumerate(statements):
        if s.kind == k.USE:
            schemas[s.database] = _use(s.sql)
        elif s.kind == k.DDL and _NEW_TABLE.match(k.plain(s.sql)):
            found = _table_of(s)
            if found is not None:
                created.add((s.database, (found[0] or schemas.get(s.database) or "").lower(), found[1].lower()))
        elif s.kind == k.DML and not re.match(r"\s*(INSERT|REPLACE)\b(?![\s\S]*\bSELECT\b)", k.plain(s.sql), re.I):
            found = _table_of(s)
            if found is not None and (s.database, (found[0] or schemas.get(s.database) or "").lower(),
                                      found[1].lower()) in created:
                continue
            out.setdefault(s.database, []).append((i, schemas.get(s.database), k.plain(s.sql)))
    return out


_NEW_TABLE = re.compile(r"\s*CREATE\s+TABLE\s+(?!IF\s+NOT\s+EXISTS\b)(?!\S+\s+(?:AS\s+)?SELECT\b)", re.I)


def forecast(statements: Sequence[Statement], facts: Mapping[str, DatabaseFacts], rates: Mapping[str, Rate],
             unavailable: Mapping[str, str] | None = None) -> Forecast:
    """Walk the statements in order; see the module docstring for the model."""
    tables: dict[str, dict[tuple[str, str], Table | None]] = {
        db: dict(f.tables) for db, f in facts.items()}
    sessions = {db: f.session for db, f in facts.items()}
    schemas = {db: f.schema for db, f in facts.items()}
    out: list[StatementForecast] = []
    for i, s in enumerate(statements):
        db_facts = facts.get(s.database)
        if db_facts is None:
            why = (unavailable or {}).get(s.database, "no facts for this database")
            named = target(s.sql)
            out.append(_result(s, named.name, "UNKNOWN", METADATA, 0, DDL_SECONDS, (why,), False) if named
                       else _other(s, certain=s.kind != k.DML))
            continue
        if s.kind == k.USE:
            schemas[s.database] = _use(s.sql) or schemas[s.database]
        elif s.kind in (k.SESSION, k.SESSION_RECORD):
            sessions[s.database] = _session_after(sessions[s.database], s.sql)
        found = _table_of(s)
        key = ((found[0] or schemas[s.database]).lower(), found[1].lower()) if found else None
        table = tables[s.database].get(key) if key else None
        if s.kind == k.DML:
            out.append(_dml(s, table, key, db_facts.explained.get(i), rates))
            continue
        step_target = target(s.sql)
        if step_target is None:
            out.append(_other(s))
            continue
        execution = classify(s.sql, db_facts.server, table, sessions[s.database])
        out.append(_ddl(s, execution, table, key, rates))
        _track(tables[s.database], step_target, key, schemas[s.database], s.sql)
    servers = {db: str(f.server) for db, f in facts.items()}
    return Forecast(tuple(out), dict(rates), servers, dict(unavailable or {}))


def _ddl(s: Statement, execution: Execution, table: Table | None, key: tuple[str, str] | None,
         rates: Mapping[str, Rate]) -> StatementForecast:
    rows = table.rows if table is not None and execution.work != METADATA else 0
    known = table is not None or execution.work == METADATA
    reasons = execution.reasons + (() if known else ("the table is not known to the forecast (rows unknown)",))
    seconds = DDL_SECONDS + (rows / rates[execution.work].rows_per_second if rows else 0.0)
    return _result(s, ".".join(key) if key else "", execution.category, execution.work, rows, seconds, reasons,
                   execution.certain and known, algorithm=execution.algorithm, lock=execution.lock,
                   online=execution.online)


def _dml(s: Statement, table: Table | None, key: tuple[str, str] | None, explained: int | None,
         rates: Mapping[str, Rate]) -> StatementForecast:
    sql = k.plain(s.sql)
    if explained is not None:
        rows, certain, reason = explained, True, f"EXPLAIN expects {explained} rows examined"
    elif re.match(r"\s*(INSERT|REPLACE)\b", sql, re.I) and not re.search(r"\bSELECT\b", sql, re.I):
        rows, certain, reason = 0, True, "INSERT … VALUES: its own rows only"
    elif table is not None and not re.search(r"\bWHERE\b", sql, re.I):
        rows, certain, reason = table.rows, True, "no WHERE: every row of the table"
    else:
        rows, certain, reason = 0, False, "rows examined unknown (EXPLAIN could not plan it before the run)"
    return _result(s, ".".join(key) if key else "", "DML", DML, rows,
                   STATEMENT_SECONDS + rows / rates[DML].rows_per_second, (reason,), certain)


def _other(s: Statement, *, certain: bool = True) -> StatementForecast:
    return _result(s, "", "OTHER", METADATA, 0, STATEMENT_SECONDS, (), certain)


def _result(s: Statement, table: str, category: str, work: str, rows: int, seconds: float, reasons: tuple[str, ...],
            certain: bool, *, algorithm: str = "", lock: str = "", online: bool = False) -> StatementForecast:
    return StatementForecast(s.database, s.file, s.line, s.sequence, s.step, _verb(s.sql), table, category,
                             algorithm, lock, work, rows, seconds, reasons, certain, online, mask_sql(s.sql))


def _track(tables: dict[tuple[str, str], Table | None], found: Any, key: tuple[str, str] | None, schema: str,
           sql: str) -> None:
    """The tables as the statement leaves them: created empty, dropped, renamed."""
    if key is None:
        return
    if found.verb in ("CREATE", "CREATE_SELECT") and tables.get(key) is None:
        tables[key] = Table(schema=key[0], name=key[1])
    elif found.verb == "DROP":
        tables[key] = None
    elif found.verb == "TRUNCATE" and tables.get(key) is not None:
        tables[key] = _emptied(tables[key])
    elif found.verb in ("RENAME", "ALTER"):
        m = re.search(r"\bRENAME\s+(?:TABLE\s+\S+\s+)?(?:TO|AS)?\s*(?:(`(?:[^`]|``)+`|\w+)\s*\.\s*)?"
                      r"(`(?:[^`]|``)+`|\w+)\s*$", k.plain(sql), re.I)
        if m and (found.verb == "RENAME" or re.search(r"\bRENAME\s+(TO|AS)\b", sql, re.I)):
            new = ((unquote(m[1]) or schema).lower(), (unquote(m[2]) or "").lower())
            tables[new], tables[key] = tables.get(key), None


def _emptied(table: Table | None) -> Table | None:
    from dataclasses import replace

    return replace(table, rows=0, data_length=0, index_length=0) if table is not None else None


def _table_of(s: Statement) -> tuple[str | None, str] | None:
    if s.kind == k.DML:
        m = _DML_TARGET.search(k.plain(s.sql))
        return (unquote(m["db"]), unquote(m["name"]) or "") if m else None
    found = target(s.sql)
    return (found.schema, found.name) if found else None


def _use(sql: str) -> str | None:
    m = re.match(r"\s*USE\s+(`(?:[^`]|``)+`|\S+)", k.plain(sql), re.I)
    return unquote(m[1].rstrip(";")) if m else None


def _session_after(session: Session, sql: str) -> Session:
    from dataclasses import replace

    text = k.plain(sql)
    fk = re.search(r"\bFOREIGN_KEY_CHECKS\s*:?=\s*(\w+)", text, re.I)
    if fk:
        session = replace(session, foreign_key_checks=fk[1].upper() in ("1", "ON", "TRUE"))
    algorithm = re.search(r"\bALTER_ALGORITHM\s*:?=\s*'?(\w+)", text, re.I)
    if algorithm:
        session = replace(session, alter_algorithm=algorithm[1].upper())
    old = re.search(r"\bOLD_ALTER_TABLE\s*:?=\s*'?(\w+)", text, re.I)
    if old:
        session = replace(session, old_alter_table=old[1].upper() in ("1", "ON", "COPY"))
    return session


def _verb(sql: str) -> str:
    words = re.findall(r"[A-Za-z_]+", k.plain(sql)[:60])
    return " ".join(words[:2]).upper()
