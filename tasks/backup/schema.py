"""The schema objects of one database, as a backup records them and a restore puts them back.

Every object is kept as the server shows it (``SHOW CREATE …``) with the session settings it was
created under (sql_mode, client character set and collation, an event's time zone): recreating it from
that text under those settings gives the same object back, and comparing the texts compares the
objects. Tables are listed whole (the dumped ones' definitions also live in their manifest entries);
sequences and system-versioned tables count as tables. Triggers are listed in firing order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

#: Kinds in the order a restore creates them (tables first, events last: nothing fires mid-restore).
KINDS = ("table", "procedure", "function", "view", "trigger", "event")
#: The tool's own tables (markers, package loads, checkpoints) when they fall back into a business schema:
#: the tool's memory, not the site's data: a restore neither drops nor compares them.
TOOL_PREFIX = "ft_upgrade_"
STAGE_PREFIX = "__ftr_"  # a restore's staging copies


@dataclass(frozen=True)
class SchemaObject:
    """One object: ``create`` is its SHOW CREATE text; ``table`` a trigger's table."""

    kind: str
    name: str
    create: str
    table: str = ""
    sql_mode: str | None = None
    charset: str | None = None  # character_set_client
    collation: str | None = None  # collation_connection
    time_zone: str | None = None  # events only

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)

    def matches(self, live: SchemaObject) -> bool:
        """Equal to the live object in every field this record has (an older backup has no settings)."""
        return all(v is None or v == getattr(live, k) for k, v in asdict(self).items())


@dataclass(frozen=True)
class SchemaCatalog:
    """Everything in one logical database at backup time, with its default character set and collation."""

    database: str
    charset: str
    collation: str
    objects: tuple[SchemaObject, ...] = field(default_factory=tuple)

    def of_kind(self, kind: str) -> list[SchemaObject]:
        return [o for o in self.objects if o.kind == kind]

    def triggers_of(self, table: str) -> list[SchemaObject]:
        return [o for o in self.objects if o.kind == "trigger" and o.table == table]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SchemaCatalog:
        return cls(data["database"], data["charset"], data["collation"],
                   tuple(SchemaObject(**o) for o in data.get("objects", ())))


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def is_business(kind: str, name: str) -> bool:
    """Tables of a restore's staging or of the tool itself are not the site's objects."""
    return kind != "table" or not (name.startswith(STAGE_PREFIX) or name.startswith(TOOL_PREFIX))


def read_catalog(cur: Any, database: str) -> SchemaCatalog:
    """The catalog of the cursor's current database (``database`` is its logical name)."""
    cur.execute("SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
                "WHERE SCHEMA_NAME = DATABASE()")
    charset, collation = cur.fetchone()
    objects: list[SchemaObject] = []
    cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                "AND TABLE_TYPE IN ('BASE TABLE', 'SEQUENCE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME")
    for (name,) in cur.fetchall():
        if is_business("table", name):
            cur.execute(f"SHOW CREATE TABLE {quote_ident(name)}")
            objects.append(SchemaObject("table", name, cur.fetchone()[1]))
    for kind in ("procedure", "function"):
        cur.execute("SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() "
                    "AND ROUTINE_TYPE = %s ORDER BY ROUTINE_NAME", (kind.upper(),))
        for (name,) in cur.fetchall():
            cur.execute(f"SHOW CREATE {kind.upper()} {quote_ident(name)}")
            _, mode, create, cs, coll, _db = cur.fetchone()
            objects.append(SchemaObject(kind, name, create, sql_mode=mode, charset=cs, collation=coll))
    cur.execute("SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME")
    for (name,) in cur.fetchall():
        cur.execute(f"SHOW CREATE VIEW {quote_ident(name)}")
        _, create, cs, coll = cur.fetchone()
        objects.append(SchemaObject("view", name, create, charset=cs, collation=coll))
    objects += read_triggers(cur)
    cur.execute("SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() ORDER BY EVENT_NAME")
    for (name,) in cur.fetchall():
        cur.execute(f"SHOW CREATE EVENT {quote_ident(name)}")
        _, mode, zone, create, cs, coll, _db = cur.fetchone()
        objects.append(SchemaObject("event", name, create, sql_mode=mode, charset=cs, collation=coll, time_zone=zone))
    return SchemaCatalog(database, charset, collation, tuple(objects))


def read_triggers(cur: Any, table: str | None = None) -> list[SchemaObject]:
    """The triggers of the current database (or of one table), in firing order per table."""
    where = " AND EVENT_OBJECT_TABLE = %s" if table is not None else ""
    cur.execute("SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = "
                f"DATABASE(){where} ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER",
                (table,) if table is not None else None)
    found = []
    for name, on in cur.fetchall():
        cur.execute(f"SHOW CREATE TRIGGER {quote_ident(name)}")
        row = cur.fetchone()
        found.append(SchemaObject("trigger", name, row[2], table=on, sql_mode=row[1], charset=row[3],
                                  collation=row[4]))
    return found


# ---- putting objects back ------------------------------------------------------------------------------

DROP = {"table": "TABLE", "view": "VIEW", "procedure": "PROCEDURE", "function": "FUNCTION", "trigger": "TRIGGER",
        "event": "EVENT"}


def drop_object(cur: Any, kind: str, name: str) -> None:
    """Idempotent; a table goes whatever refers to it (the caller has foreign key checks off)."""
    cur.execute(f"DROP {DROP[kind]} IF EXISTS {quote_ident(name)}")


@contextmanager
def created_as_recorded(cur: Any, obj: SchemaObject) -> Iterator[None]:
    """Run the creation under the object's recorded session settings, then give the session its own back."""
    names = [("sql_mode", obj.sql_mode), ("character_set_client", obj.charset),
             ("collation_connection", obj.collation), ("time_zone", obj.time_zone)]
    wanted = [(n, v) for n, v in names if v is not None]
    if not wanted:
        yield
        return
    cur.execute("SELECT " + ", ".join(f"@@SESSION.{n}" for n, _ in wanted))
    saved = cur.fetchone()
    cur.execute("SET " + ", ".join(f"SESSION {n} = %s" for n, _ in wanted), [v for _, v in wanted])
    try:
        yield
    finally:
        cur.execute("SET " + ", ".join(f"SESSION {n} = %s" for n, _ in wanted), list(saved))


def create_object(cur: Any, obj: SchemaObject, *, replace: bool = True) -> None:
    """Create (or replace) a view, routine, event or trigger from its recorded text and settings."""
    if not obj.create.startswith("CREATE "):
        raise ValueError(f"unexpected SHOW CREATE for {obj.kind} {obj.name}: {obj.create[:80]}")
    sql = "CREATE OR REPLACE " + obj.create[len("CREATE "):] if replace else obj.create
    with created_as_recorded(cur, obj):
        cur.execute(sql)


def put_triggers(cur: Any, table: str, wanted: Sequence[SchemaObject]) -> bool:
    """Make the table's triggers exactly ``wanted``, in that firing order; returns whether anything changed.

    When they differ at all, every trigger of the table is dropped and the wanted ones created in order
    (replacing one alone would move it to the end of its firing order).
    """
    live = read_triggers(cur, table)
    if len(live) == len(wanted) and all(w.matches(a) for a, w in zip(live, wanted, strict=True)):
        return False
    for trigger in live:
        drop_object(cur, "trigger", trigger.name)
    for trigger in wanted:
        drop_object(cur, "trigger", trigger.name)  # the same name on another table (renamed by the upgrade)
        create_object(cur, trigger, replace=False)
    return True
