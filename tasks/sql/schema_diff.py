"""What a SQL step changed in each database's schema: a catalog snapshot before and after, and their diff.

A DBA reviewing an upgrade wants to see the objects the run touched — tables created or dropped,
columns and keys added, changed or removed, views, routines and triggers replaced — not a list of
statements. :func:`snapshot` reads ``information_schema`` of the connection's default schema in a few
bulk queries (cheap on a schema of thousands of tables); :func:`diff` and :func:`render` are pure.
The "before" of a step is taken once, when its first attempt starts, and kept beside the run's
state, so a resumed step still reports against the schema as it was before the upgrade.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text

from tasks.core.language import words

Snapshot = dict[str, dict[str, str]]  # "table t" → {"column a": "int NOT NULL", "key PRIMARY": "(a)", …}

_QUERIES = {
    "columns": "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA "
               "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()",
    "keys": "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, INDEX_TYPE, "
            "GROUP_CONCAT(CONCAT(COLUMN_NAME, IFNULL(CONCAT('(', SUB_PART, ')'), '')) ORDER BY SEQ_IN_INDEX) "
            "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
            "GROUP BY TABLE_NAME, INDEX_NAME, NON_UNIQUE, INDEX_TYPE",
    "tables": "SELECT TABLE_NAME, TABLE_TYPE, ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
    "views": "SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()",
    "routines": "SELECT ROUTINE_TYPE, ROUTINE_NAME, ROUTINE_DEFINITION FROM information_schema.ROUTINES "
                "WHERE ROUTINE_SCHEMA = DATABASE()",
    "triggers": "SELECT TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_STATEMENT "
                "FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()",
}


def snapshot(engine: Engine) -> Snapshot:
    """The objects of the connection's default schema, each as comparable parts (MySQL/MariaDB catalog)."""
    found: Snapshot = {}
    with engine.connect() as conn:
        rows = {name: conn.execute(text(sql)).all() for name, sql in _QUERIES.items()}
    for table, kind, engine_name in rows["tables"]:
        if kind != "VIEW":
            found[f"table {table}"] = {"engine": str(engine_name or "")}
    for table, column, ctype, nullable, default, extra in rows["columns"]:
        if f"table {table}" in found:
            parts = [ctype, "NULL" if nullable == "YES" else "NOT NULL"]
            parts += [f"DEFAULT {default}"] if default is not None else []
            parts += [extra] if extra else []
            found[f"table {table}"][f"column {column}"] = " ".join(parts)
    for table, index, non_unique, index_type, columns in rows["keys"]:
        if f"table {table}" in found:
            unique = "" if int(non_unique) else "UNIQUE "
            found[f"table {table}"][f"key {index}"] = f"{unique}{index_type} ({columns})"
    for view, definition in rows["views"]:
        found[f"view {view}"] = {"definition": _flat(definition)}
    for kind, name, definition in rows["routines"]:
        found[f"{str(kind).lower()} {name}"] = {"definition": _flat(definition)}
    for name, timing, event, table, statement in rows["triggers"]:
        found[f"trigger {name}"] = {"on": f"{timing} {event} ON {table}", "definition": _flat(statement)}
    return found


def _flat(value: object) -> str:
    return " ".join(str(value or "").split())


@dataclass(frozen=True)
class ObjectChange:
    """One object the run created, dropped or changed, with what changed in it."""

    name: str  # "table orders", "procedure p_fix", …
    change: str  # created | dropped | changed
    details: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"object": self.name, "change": self.change, "details": self.details}


def diff(before: Mapping[str, Mapping[str, str]], after: Mapping[str, Mapping[str, str]]) -> list[ObjectChange]:
    """Objects that differ between two snapshots, in name order."""
    changes = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if old is None:
            changes.append(ObjectChange(name, "created", _parts(new or {})))
        elif new is None:
            changes.append(ObjectChange(name, "dropped"))
        else:
            changes.append(ObjectChange(name, "changed", _part_changes(old, new)))
    return changes


def _parts(parts: Mapping[str, str]) -> list[str]:
    return [f"{part}: {value}" for part, value in parts.items() if value]


def _part_changes(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    lines = []
    for part in sorted(set(old) | set(new)):
        a, b = old.get(part), new.get(part)
        if a == b:
            continue
        if a is None:
            lines.append(f"+ {part}: {b}")
        elif b is None:
            lines.append(f"- {part}: {a}")
        else:
            lines.append(f"~ {part}: {a} → {b}")
    return lines


_WORDS = {
    "zh": {"title": "结构变更（升级前 → 升级后）", "created": "新建", "dropped": "删除", "changed": "变更",
           "none": "本步骤未改变数据库结构。", "header": "| 数据库 | 对象 | 变更 | 明细 |"},
    "en": {"title": "Schema changes (before → after)", "created": "created", "dropped": "dropped",
           "changed": "changed", "none": "This step changed no schema object.",
           "header": "| database | object | change | details |"},
}


def render(changes: Mapping[str, list[ObjectChange]], language: str | None = None) -> str:
    """A markdown table of the changes per logical database, in the report's language."""
    t = words(_WORDS, language)
    rows = [(db, c) for db, found in changes.items() for c in found]
    if not rows:
        return f"**{t['title']}**: {t['none']}"
    lines = [f"**{t['title']}**", "", t["header"], "|---|---|---|---|"]
    for db, c in rows:
        details = "<br>".join(d.replace("|", "\\|") for d in c.details[:40])
        more = f"<br>… (+{len(c.details) - 40})" if len(c.details) > 40 else ""
        lines.append(f"| {db} | `{c.name}` | {t[c.change]} | {details[:2000]}{more} |")
    return "\n".join(lines)
