"""Prove a restore: the live databases' objects and every restored table's CHECKSUM TABLE against the manifest.

The comparison is data (:class:`CatalogComparison`), for the rollback's report; a restore raises
:class:`~tasks.core.errors.RestoreMismatch` when it is not empty. Tables are compared item by item from
their SHOW CREATE TABLE (columns and their order, indexes, foreign keys, checks, table options with the
AUTO_INCREMENT counter), so a difference names the column or key. A backup made before manifests held a
catalog is compared on what it holds (its tables, their triggers, its views), and the comparison says what
it could not compare.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from tasks.backup.manifest import FileEntry, Manifest, TableEntry, sha256_file
from tasks.backup.schema import SchemaCatalog, SchemaObject, is_business, quote_ident, read_catalog

FULL = ("tables", "columns", "indexes", "foreign keys", "checks", "table options", "triggers", "views",
        "procedures", "functions", "events", "objects created after the backup", "CHECKSUM TABLE")
#: What a manifest without a catalog (made before it had one) cannot tell.
WITHOUT_CATALOG = ("procedures", "functions", "events", "objects created after the backup",
                   "tables outside the backup", "sql_mode and character sets of triggers and views")
SHOWN = 20  # differences named in an error message


@dataclass(frozen=True)
class Difference:
    database: str
    kind: str
    name: str
    what: str

    def __str__(self) -> str:
        where = f"{self.database}.{self.name}" if self.database else self.name
        return f"{self.kind} {where}: {self.what}"


@dataclass(frozen=True)
class CatalogComparison:
    """The live databases against a backup: what was compared, what could not be, and every difference."""

    backup_id: str
    compared: tuple[str, ...]
    not_compared: tuple[str, ...] = ()
    objects: int = 0
    checksummed: tuple[str, ...] = ()  # database.table whose CHECKSUM TABLE was compared
    files: tuple[str, ...] = ()  # config files whose content was compared
    outside_backup: tuple[str, ...] = ()  # tables that existed then but whose rows the backup does not hold
    differences: tuple[Difference, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.differences

    def describe(self) -> str:
        if self.ok:
            text = (f"equal to backup {self.backup_id}: {self.objects} objects, CHECKSUM TABLE of "
                    f"{len(self.checksummed)} tables" + (f", {len(self.files)} config files" if self.files else ""))
        else:
            named = "; ".join(str(d) for d in self.differences[:SHOWN])
            more = f"; and {len(self.differences) - SHOWN} more" if len(self.differences) > SHOWN else ""
            n = len(self.differences)
            text = f"{n} difference{'s' if n > 1 else ''} from backup {self.backup_id}: {named}{more}"
        if self.not_compared:
            text += f" (not compared, the backup does not record them: {', '.join(self.not_compared)})"
        return text

    def to_json(self) -> dict[str, Any]:
        data = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        return {**data, "ok": self.ok, "differences": [str(d) for d in self.differences]}


def compare_with_backup(manifest: Manifest, engine_for: Callable[[str], Engine], *,
                        tables: Sequence[TableEntry] | None = None,
                        files: Sequence[FileEntry] = ()) -> CatalogComparison:
    """Compare the live databases with the backup (only ``tables`` and their triggers when given), and the
    content of ``files`` (those whose content hash the backup recorded)."""
    whole = tables is None
    entries = list(manifest.tables if tables is None else tables)
    catalogs = {c.database: c for c in manifest.catalogs} if whole else {}
    databases = list(dict.fromkeys([e.database for e in entries] + list(catalogs)
                                   + ([v.database for v in manifest.views] if whole else [])))
    differences: list[Difference] = []
    objects, checksummed, outside = 0, [], []
    for database in databases:
        mine = [e for e in entries if e.database == database]
        catalog = catalogs.get(database)
        raw = engine_for(database).raw_connection()
        try:
            with raw.driver_connection.cursor() as cur:
                live = read_catalog(cur, database)
                expected = expected_objects(manifest, database, catalog, mine, whole)
                dumped = {e.table for e in mine}
                out = {o.name for o in expected if o.kind == "table" and o.name not in dumped}
                outside += [f"{database}.{name}" for name in sorted(out)]
                differences += compare_objects(database, expected, live, outside=out,
                                               everything=catalog is not None,
                                               tables={o.name for o in expected if o.kind == "table"})
                if catalog and (catalog.charset, catalog.collation) != (live.charset, live.collation):
                    differences.append(Difference(database, "database", database, "default character set "
                                                  f"{live.charset}/{live.collation}, backup "
                                                  f"{catalog.charset}/{catalog.collation}"))
                objects += len(expected)
                for entry in mine:
                    if (problem := _data_difference(cur, entry)) is not None:
                        differences.append(Difference(database, "table", entry.table, problem))
                    checksummed.append(entry.key)
        finally:
            raw.close()
    compared = FULL if whole and catalogs else ("tables", "columns", "indexes", "foreign keys", "checks",
                                                "table options", "triggers", *(("views",) if whole else ()),
                                                "CHECKSUM TABLE")
    checked = [f for f in files if f.content_sha256]
    for item in checked:
        path = Path(item.source)
        if not path.is_file():
            differences.append(Difference("", "file", item.source, "missing"))
        elif sha256_file(path) != item.content_sha256:
            differences.append(Difference("", "file", item.source, "content differs from the backup's"))
    return CatalogComparison(manifest.backup_id, compared,
                             WITHOUT_CATALOG if whole and not catalogs else (), objects, tuple(checksummed),
                             tuple(f.source for f in checked), tuple(outside), tuple(differences))


def expected_objects(manifest: Manifest, database: str, catalog: SchemaCatalog | None,
                     entries: Sequence[TableEntry], whole: bool) -> list[SchemaObject]:
    """What the backup says the database holds: the catalog, with the dumped tables as their snapshot had them;
    without a catalog, the dumped tables, their triggers and (whole) the views. Pure."""
    snapshot = {e.table: e.create_sql for e in entries}
    if catalog is not None:
        return [SchemaObject("table", o.name, snapshot.get(o.name, o.create)) if o.kind == "table" else o
                for o in catalog.objects]
    found = [SchemaObject("table", e.table, e.create_sql) for e in entries]
    found += [SchemaObject("trigger", trigger_name(t), t, table=e.table) for e in entries for t in e.triggers]
    if whole:
        found += [SchemaObject("view", v.view, v.create_sql) for v in manifest.views if v.database == database]
    return found


def compare_objects(database: str, expected: Sequence[SchemaObject], live: SchemaCatalog, *, outside: set[str],
                    everything: bool, tables: set[str]) -> list[Difference]:
    """Differences between what the backup holds and the live catalog. Pure.

    ``everything``: the backup lists every object, so a live one it does not list was created after it;
    otherwise only what it lists and the triggers of the tables in ``tables`` are looked at. Tables in ``outside`` are
    compared by existence only (the backup does not hold their rows to restore them).
    """
    listed = {o.key for o in expected}

    def in_scope(o: SchemaObject) -> bool:
        return everything or o.key in listed or (o.kind == "trigger" and o.table in tables)

    present = {o.key: o for o in live.objects if is_business(o.kind, o.name) and in_scope(o)}
    found: list[Difference] = []
    for want in expected:
        have = present.pop(want.key, None)
        if have is None:
            found.append(Difference(database, want.kind, want.name, "missing" + (
                " (it existed at backup time, but the backup holds no rows of it)" if want.name in outside
                and want.kind == "table" else "")))
        elif want.kind == "table" and want.name not in outside:
            found += [Difference(database, "table", want.name, d) for d in table_differences(want.create, have.create)]
        elif want.kind != "table" and not want.matches(have):
            found.append(Difference(database, want.kind, want.name, _object_difference(want, have)))
    found += [Difference(database, o.kind, o.name, "created after the backup") for o in present.values()]
    for table in sorted(tables):
        order = [o.name for o in expected if o.kind == "trigger" and o.table == table]
        now = [o.name for o in live.objects if o.kind == "trigger" and o.table == table]
        if set(order) == set(now) and order != now:
            found.append(Difference(database, "table", table, f"triggers fire in the order {', '.join(now)}, "
                                                              f"backup {', '.join(order)}"))
    return found


def _object_difference(want: SchemaObject, have: SchemaObject) -> str:
    changed = [f"{k} {getattr(have, k)!r}, backup {v!r}" for k, v in asdict(want).items()
               if k not in ("create", "kind", "name") and v is not None and v != getattr(have, k)]
    if want.create != have.create:
        changed.insert(0, "definition differs")
    return "; ".join(changed)


def _data_difference(cur: Any, entry: TableEntry) -> str | None:
    cur.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
                (entry.table,))
    if not cur.fetchone()[0]:
        return None  # already named as missing
    if entry.checksum is None:
        cur.execute(f"SELECT COUNT(*) FROM {quote_ident(entry.table)}")
        rows = cur.fetchone()[0]
        return None if rows == entry.rows else f"{rows} rows, backup {entry.rows}"
    cur.execute(f"CHECKSUM TABLE {quote_ident(entry.table)}")
    checksum = cur.fetchone()[1]
    return None if checksum == entry.checksum else f"CHECKSUM TABLE {checksum}, backup {entry.checksum}"


# ---- tables item by item --------------------------------------------------------------------------------

_IDENT = r"`((?:[^`]|``)+)`"
_ITEMS = [("column", re.compile(_IDENT + " ")), ("index", re.compile(r"(PRIMARY) KEY")),
          ("index", re.compile(r"(?:UNIQUE |FULLTEXT |SPATIAL |VECTOR )?KEY " + _IDENT)),
          ("foreign key", re.compile(r"CONSTRAINT " + _IDENT + " FOREIGN KEY")),
          ("check", re.compile(r"CONSTRAINT " + _IDENT + " CHECK"))]


def table_items(create: str) -> tuple[list[tuple[str, str, str]], str]:
    """SHOW CREATE TABLE as (kind, name, definition) items in order, and its options (the text after them). Pure."""
    lines = create.split("\n")
    close = next((i for i in range(1, len(lines)) if lines[i].startswith(")")), len(lines))
    items = []
    for line in lines[1:close]:
        item = line.strip().rstrip(",")
        for kind, pattern in _ITEMS:
            if m := pattern.match(item):
                items.append((kind, m.group(1).replace("``", "`"), item))
                break
        else:
            items.append(("definition", item, item))
    return items, "\n".join(lines[close:]).lstrip(") ")


def table_differences(expected: str, live: str) -> list[str]:
    """What differs between two SHOW CREATE TABLE texts, named per column, index, key or option. Pure."""
    if expected == live:
        return []
    want, want_options = table_items(expected)
    have, have_options = table_items(live)
    wanted = {(k, n): d for k, n, d in want}
    had = {(k, n): d for k, n, d in have}
    found = [f"{k} `{n}` missing" for k, n, _ in want if (k, n) not in had]
    found += [f"{k} `{n}` added" for k, n, _ in have if (k, n) not in wanted]
    found += [f"{k} `{n}` is {had[(k, n)]}, backup {d}" for k, n, d in want if (k, n) in had and had[(k, n)] != d]
    columns = [n for k, n, _ in want if k == "column" and ("column", n) in had]
    if columns != [n for k, n, _ in have if k == "column" and ("column", n) in wanted]:
        found.append("column order differs")
    if want_options != have_options:
        found.append(f"table options {have_options}, backup {want_options}")
    return found or ["definition differs"]


def trigger_name(create: str) -> str:
    """The trigger's name in a CREATE TRIGGER text. Pure."""
    match = re.search(r"\bTRIGGER\s+(`(?:[^`]|``)+`|\S+)", create)
    if not match:
        raise ValueError(f"not a CREATE TRIGGER: {create[:80]}")
    name = match.group(1)
    return name[1:-1].replace("``", "`") if name.startswith("`") else name
