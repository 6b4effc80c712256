"""Deciding a DDL statement that was in flight when the process died, from the catalog.

Pure: :func:`ddl_probes` turns a statement into catalog questions ("does table x exist?", "is column
c defined as the MODIFY says?"); the executor asks them on the target connection. A probe decides only
what it fully sees: a MODIFY/CHANGE compares the whole column definition
(:mod:`tasks.sql.column_probe`), and every clause of an ALTER must agree. Where no question settles it
(a clause not understood, a type or expression the catalog may spell otherwise, an unnamed UNIQUE key,
clauses that disagree, …) the answer is ``None`` and the operator decides with ``ft-upgrade resume
--inflight applied|retry|skip``. ``CREATE OR REPLACE`` is never decided by existence (the old object
exists either way): a table's ``CREATE_TIME`` or a routine's ``CREATED`` later than the server's clock
when the statement was marked RUNNING proves it ran; an earlier one proves it did not; the same second,
an index or a view: the operator decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tasks.sql.column_probe import CATALOG_SQL, ColumnSpec, compare, parse_definition
from tasks.sql.kinds import top_level_commas as _top_level_commas

_IDENT = r"(?:`(?:[^`]|``)+`|[A-Za-z0-9_$]+)"
_QNAME = rf"(?:(?P<db>{_IDENT})\s*\.\s*)?(?P<name>{_IDENT})"
_FLAGS = re.IGNORECASE | re.DOTALL


@dataclass(frozen=True)
class Probe:
    """``kind`` object named ``name`` (in ``table`` for columns/indexes) should exist iff ``exists``."""

    kind: str  # table | column | index | procedure | function
    schema: str | None
    table: str | None
    name: str
    exists: bool
    definition: ColumnSpec | None = None  # MODIFY / CHANGE: the whole definition the column should have
    replaced: bool = False  # CREATE OR REPLACE: the object existing proves nothing; its creation time does

    def query(self) -> tuple[str, tuple[str, ...]]:
        """SQL and parameters against information_schema; ``DATABASE()`` when no schema is named."""
        schema_sql = "%s" if self.schema else "DATABASE()"
        schema_args: tuple[str, ...] = (self.schema,) if self.schema else ()
        if self.replaced and self.kind == "table":
            return (f"SELECT UNIX_TIMESTAMP(CREATE_TIME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                    f"{schema_sql} AND TABLE_NAME = %s", (*schema_args, self.name))
        if self.replaced:
            return (f"SELECT UNIX_TIMESTAMP(CREATED) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = "
                    f"{schema_sql} AND ROUTINE_TYPE = %s AND ROUTINE_NAME = %s",
                    (*schema_args, self.kind.upper(), self.name))
        if self.kind == "table":
            return (f"SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {schema_sql} "
                    "AND TABLE_NAME = %s", (*schema_args, self.name))
        if self.kind == "column" and self.definition is not None:
            return (CATALOG_SQL.format(schema=schema_sql),
                    (self.definition.charset or "", *schema_args, self.table or "", self.name))
        if self.kind == "column":
            return (f"SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {schema_sql} "
                    "AND TABLE_NAME = %s AND COLUMN_NAME = %s", (*schema_args, self.table or "", self.name))
        if self.kind == "index":
            return (f"SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = {schema_sql} "
                    "AND TABLE_NAME = %s AND INDEX_NAME = %s", (*schema_args, self.table or "", self.name))
        return (f"SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {schema_sql} "
                "AND ROUTINE_TYPE = %s AND ROUTINE_NAME = %s", (*schema_args, self.kind.upper(), self.name))


def _unquote(ident: str | None) -> str | None:
    if ident is None:
        return None
    return ident[1:-1].replace("``", "`") if ident.startswith("`") else ident


def _strip_conditional(text: str) -> str:
    """``/*!50003 CREATE*/ /*!50020 DEFINER=…*/ PROCEDURE`` → plain text."""
    return re.sub(r"/\*!\d*\s?(.*?)\*/", r"\1", text, flags=re.DOTALL)


def ddl_probes(text: str) -> list[Probe] | None:
    """Catalog probes that decide whether ``text`` took effect; None if it cannot be decided."""
    sql = _strip_conditional(text).strip().rstrip(";")
    m = re.match(rf"CREATE\s+(?P<replace>OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"
                 rf"{_QNAME}", sql, _FLAGS)
    if m:
        return [Probe("table", _unquote(m["db"]), None, _unquote(m["name"]) or "", True,
                      replaced=bool(m["replace"]))]
    m = re.match(rf"DROP\s+(?:TEMPORARY\s+)?TABLE\s+(?:IF\s+EXISTS\s+)?{_QNAME}\s*$", sql, _FLAGS)
    if m:
        return [Probe("table", _unquote(m["db"]), None, _unquote(m["name"]) or "", False)]
    m = re.match(rf"CREATE\s+(?P<replace>OR\s+REPLACE\s+)?(?:UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?INDEX\s+"
                 rf"(?:IF\s+NOT\s+EXISTS\s+)?(?P<index>{_IDENT})\s+ON\s+{_QNAME}", sql, _FLAGS)
    if m and m["replace"]:
        return None  # the catalog keeps no creation time for an index
    if m:
        return [Probe("index", _unquote(m["db"]), _unquote(m["name"]), _unquote(m["index"]) or "", True)]
    m = re.match(rf"DROP\s+INDEX\s+(?:IF\s+EXISTS\s+)?(?P<index>{_IDENT})\s+ON\s+{_QNAME}\s*$", sql, _FLAGS)
    if m:
        return [Probe("index", _unquote(m["db"]), _unquote(m["name"]), _unquote(m["index"]) or "", False)]
    m = re.match(rf"CREATE\s+(?P<replace>OR\s+REPLACE\s+)?(?:DEFINER\s*=\s*\S+\s+)?(?P<kind>PROCEDURE|FUNCTION)\s+"
                 rf"(?:IF\s+NOT\s+EXISTS\s+)?{_QNAME}", sql, _FLAGS)
    if m:
        return [Probe(m["kind"].lower(), _unquote(m["db"]), None, _unquote(m["name"]) or "", True,
                      replaced=bool(m["replace"]))]
    m = re.match(rf"DROP\s+(?P<kind>PROCEDURE|FUNCTION)\s+(?:IF\s+EXISTS\s+)?{_QNAME}\s*$", sql, _FLAGS)
    if m:
        return [Probe(m["kind"].lower(), _unquote(m["db"]), None, _unquote(m["name"]) or "", False)]
    m = re.match(rf"ALTER\s+(?:ONLINE\s+|IGNORE\s+)*TABLE\s+{_QNAME}\s+(?P<body>.+)$", sql, _FLAGS)
    if m:
        return _alter_probes(_unquote(m["db"]), _unquote(m["name"]) or "", m["body"])
    return None


def decidable_by_catalog(text: str) -> bool:
    """Whether the catalog alone always tells if ``text`` took effect.

    A MODIFY / CHANGE is left out: the catalog may spell the new definition differently and leave it undecided.
    """
    probes = ddl_probes(text)
    return bool(probes) and all(p.definition is None and not p.replaced for p in probes)


def _alter_probes(schema: str | None, table: str, body: str) -> list[Probe] | None:
    probes: list[Probe] = []
    for clause in _top_level_commas(body):
        if re.match(r"ADD\s+(?:CONSTRAINT\s+(?:\S+\s+)?)?PRIMARY\s+KEY\b", clause, _FLAGS):
            probes.append(Probe("index", schema, table, "PRIMARY", True))
            continue
        m = re.match(rf"ADD\s+(?:CONSTRAINT\s+(?:(?P<sym>{_IDENT})\s+)?)?(?P<kw>UNIQUE|FULLTEXT|SPATIAL|INDEX|KEY)\b"
                     rf"(?:\s+(?:INDEX|KEY)\b)?(?:\s+IF\s+NOT\s+EXISTS)?\s*(?P<n>{_IDENT})?\s*(?:USING\s+\w+\s*)?\(",
                     clause, _FLAGS)
        if m:
            name = _unquote(m["n"]) or _unquote(m["sym"])
            if not name or name.upper() in ("INDEX", "KEY"):
                return None  # an unnamed key: the server names it, the probe cannot know how
            probes.append(Probe("index", schema, table, name, True))
            continue
        m = re.match(rf"DROP\s+(?:INDEX|KEY)\s+(?:IF\s+EXISTS\s+)?(?P<n>{_IDENT})\s*$", clause, _FLAGS)
        if m:
            probes.append(Probe("index", schema, table, _unquote(m["n"]) or "", False))
            continue
        m = re.match(rf"ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?P<n>{_IDENT})\s+\w", clause, _FLAGS)
        if m and m["n"].upper() not in ("CONSTRAINT", "PRIMARY", "FOREIGN", "CHECK", "PARTITION", "SPATIAL"):
            probes.append(Probe("column", schema, table, _unquote(m["n"]) or "", True))
            continue
        m = re.match(rf"DROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?(?P<n>{_IDENT})\s*$", clause, _FLAGS)
        if m and m["n"].upper() not in ("PRIMARY", "FOREIGN", "CONSTRAINT", "CHECK", "PARTITION"):
            probes.append(Probe("column", schema, table, _unquote(m["n"]) or "", False))
            continue
        if re.match(r"(?:ALGORITHM|LOCK)\s*=?\s*\w+$", clause, _FLAGS):
            continue  # how the server works, not what it changes
        m = re.match(rf"MODIFY\s+(?:COLUMN\s+)?(?P<n>{_IDENT})\s+(?P<def>.+)$", clause, _FLAGS)
        if m:
            probes.append(Probe("column", schema, table, _unquote(m["n"]) or "", True,
                                definition=parse_definition(m["def"])))
            continue
        m = re.match(rf"CHANGE\s+(?:COLUMN\s+)?(?P<old>{_IDENT})\s+(?P<n>{_IDENT})\s+(?P<def>.+)$", clause, _FLAGS)
        if m:
            old, new = _unquote(m["old"]) or "", _unquote(m["n"]) or ""
            probes.append(Probe("column", schema, table, new, True, definition=parse_definition(m["def"])))
            if old.lower() != new.lower():
                probes.append(Probe("column", schema, table, old, False))
            continue
        return None
    return probes or None


def decide(probe: Probe, answer: object, started: int | None = None) -> bool | None:
    """Whether a probe's catalog answer shows the statement applied (None: cannot tell).

    ``started`` is the server's clock (epoch seconds) when the statement was marked RUNNING; a
    ``replaced`` probe's answer is the object's creation time on the same clock.
    """
    if probe.replaced:
        if answer is None:
            return False  # not there at all: the statement did not (re)create it
        if started is None:
            return None
        created = int(answer)
        return None if created == started else created > started
    if probe.kind == "column":
        if probe.definition is not None:
            return compare(probe.definition, answer)
        return (answer is not None) == probe.exists
    count = int(answer or 0)
    return (count > 0) == probe.exists
