"""Restore a backup to exactly what it holds, verified twice: file SHA-256s before anything is touched,
the catalog and every table's CHECKSUM TABLE after.

A whole restore first drops what the databases gained since the backup (events, triggers, views,
routines, tables: the manifest's catalog lists everything that was there), then restores each table (see
:func:`restore_table`: a table already equal to the backup is left alone, another is loaded into a
staging copy, compared with the manifest and only then swapped in), then routines, views, the other
tables' triggers and the events, each only where it differs. Every part is idempotent and a journal in
the backup's folder keeps verified staging copies, so a restore killed at any instant is finished by
the next one. Last, :func:`~tasks.backup.verify.compare_with_backup` proves the result; a difference
fails the restore (:class:`~tasks.core.errors.RestoreMismatch`).
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pymysql
from sqlalchemy import Engine

from tasks.backup.catalog import StoredBackup
from tasks.backup.manifest import FileEntry, TableEntry, ViewEntry, sha256_file
from tasks.backup.schema import (
    KINDS,
    STAGE_PREFIX,
    SchemaCatalog,
    SchemaObject,
    create_object,
    drop_object,
    is_business,
    put_triggers,
    quote_ident,
    read_catalog,
)
from tasks.backup.verify import CatalogComparison, compare_with_backup, trigger_name
from tasks.core.errors import BackupChecksumMismatch, BackupCorrupted, BackupNotFound, RestoreMismatch
from tasks.core.files import Private

ProgressFn = Callable[[int], None]
#: A view that names a view or function not created yet: created in a later pass.
_NOT_YET = {1146, 1356, 1305}


@dataclass
class RestoreReport:
    backup_id: str
    tables: list[dict[str, object]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)  # tables an earlier, killed attempt had finished
    unchanged: list[str] = field(default_factory=list)  # tables already equal to the backup: not loaded
    dropped: list[str] = field(default_factory=list)  # objects created after the backup ("view ft_db.v")
    recreated: list[str] = field(default_factory=list)  # routines, views, triggers, events put back
    comparison: CatalogComparison | None = None

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "comparison"}
        return {**data, "comparison": self.comparison.to_json() if self.comparison else None}


def select_tables(entries: Sequence[TableEntry], wanted: Sequence[str] | None) -> list[TableEntry]:
    """``wanted`` names ``table`` or ``database.table``; an unknown name is an error listing the choices."""
    if not wanted:
        return list(entries)
    chosen = [e for e in entries if e.table in wanted or e.key in wanted]
    unknown = [w for w in wanted if not any(w in (e.table, e.key) for e in entries)]
    if unknown:
        raise BackupNotFound(f"not in this backup: {', '.join(unknown)}; it holds {', '.join(e.key for e in entries)}")
    return chosen


def verify_files(backup: StoredBackup, tables: Sequence[TableEntry], files: Sequence[FileEntry]) -> None:
    """Every stored file still has its recorded SHA-256, or :class:`BackupCorrupted` lists each bad one."""
    problems = []
    for name, expected in [(f"db/{t.file}", t.sha256) for t in tables] + [(f"files/{f.file}", f.sha256)
                                                                          for f in files]:
        path = backup.folder / name
        if not path.exists():
            problems.append(f"{name} is missing")
        elif (actual := sha256_file(path)) != expected:
            problems.append(f"{name} sha256 {actual[:12]}… != manifest {expected[:12]}…")
    if problems:
        raise BackupCorrupted(backup.manifest.backup_id, problems)


def restore_backup(backup: StoredBackup, engine_for: Callable[[str], Engine], *, tables: Sequence[str] | None = None,
                   include_files: bool = False, on_progress: ProgressFn | None = None,
                   group: str | None = None) -> RestoreReport:
    """Bring the databases back to the backup (only ``tables`` when given) and, if asked, the config files;
    the report's ``comparison`` proves it, and a difference raises :class:`RestoreMismatch`.

    Whole (no ``tables``): objects created after the backup are dropped and every object restored. An
    attempt that was killed is finished by this one (tables it finished are found equal and not loaded
    again). The journal is private like the backup (``group`` as when it was made).
    """
    manifest = backup.manifest
    entries = select_tables(manifest.tables, tables)
    files = list(manifest.files) if include_files else []
    verify_files(backup, entries, files)
    journal = RestoreJournal.open(backup.folder, Private(group))
    earlier = journal.done
    report = RestoreReport(manifest.backup_id)
    recorded = {c.database: c for c in manifest.catalogs}
    catalogs = recorded if not tables else {}  # only a whole restore drops and puts back the other objects
    for catalog in catalogs.values():
        report.dropped += drop_new_objects(engine_for(catalog.database), catalog)
    for entry in entries:
        catalog = recorded.get(entry.database)
        triggers = catalog.triggers_of(entry.table) if catalog else [
            SchemaObject("trigger", trigger_name(t), t, table=entry.table) for t in entry.triggers]
        outcome = restore_table(backup.folder / "db" / entry.file, entry, engine_for(entry.database), on_progress,
                                journal=journal, triggers=triggers)
        if outcome == "unchanged":
            report.unchanged.append(entry.key)
            if entry.key in earlier:
                report.resumed.append(entry.key)
        report.tables.append({"table": entry.key, "rows": entry.rows, "checksum": entry.checksum,
                              "triggers": len(triggers), "outcome": outcome})
    if not tables:
        for catalog in catalogs.values():
            dumped = {e.table for e in entries if e.database == catalog.database}
            report.recreated += put_objects(engine_for(catalog.database), catalog, dumped)
        for view in manifest.views:
            if view.database not in catalogs:  # a backup older than catalogs: its views, as before
                _restore_view(view, engine_for(view.database))
            report.views.append(f"{view.database}.{view.view}")
    for item in files:
        _restore_file(backup.folder / "files" / item.file, Path(item.source), item.mode)
        report.files.append(item.source)
    report.comparison = compare_with_backup(manifest, engine_for, tables=entries if tables else None, files=files)
    if not report.comparison.ok:
        raise RestoreMismatch(report.comparison)
    journal.finish()
    return report


def drop_new_objects(engine: Engine, catalog: SchemaCatalog) -> list[str]:
    """Drop every object the catalog does not list (events first, tables last); returns what was dropped."""
    wanted = {o.key for o in catalog.objects}
    dropped = []
    raw = engine.raw_connection()
    try:
        with raw.driver_connection.cursor() as cur:
            cur.execute("SET SESSION FOREIGN_KEY_CHECKS=0")
            live = read_catalog(cur, catalog.database)
            for kind in reversed(KINDS):
                for obj in live.of_kind(kind):
                    if obj.key not in wanted and is_business(kind, obj.name):
                        drop_object(cur, kind, obj.name)
                        dropped.append(f"{kind} {catalog.database}.{obj.name}")
    finally:
        raw.close()
    return dropped


def put_objects(engine: Engine, catalog: SchemaCatalog, dumped: set[str]) -> list[str]:
    """Routines, views, the triggers of tables the backup holds no rows of, then events: each only where it
    differs from the catalog. Returns what was (re)created. The database's default character set too."""
    done = []
    raw = engine.raw_connection()
    try:
        with raw.driver_connection.cursor() as cur:
            live = read_catalog(cur, catalog.database)
            if (live.charset, live.collation) != (catalog.charset, catalog.collation):
                cur.execute(f"ALTER DATABASE CHARACTER SET {catalog.charset} COLLATE {catalog.collation}")
                done.append(f"database {catalog.database}: {catalog.charset}/{catalog.collation}")
            present = {o.key: o for o in live.objects}

            def differs(o: SchemaObject) -> bool:
                return o.key not in present or not o.matches(present[o.key])

            for obj in [o for kind in ("procedure", "function") for o in catalog.of_kind(kind) if differs(o)]:
                create_object(cur, obj)
                done.append(f"{obj.kind} {catalog.database}.{obj.name}")
            done += _put_views(cur, catalog.database, [v for v in catalog.of_kind("view") if differs(v)])
            existing = {o.name for o in live.of_kind("table")}
            for table in [o.name for o in catalog.of_kind("table") if o.name not in dumped and o.name in existing]:
                if put_triggers(cur, table, catalog.triggers_of(table)):
                    done.append(f"triggers of {catalog.database}.{table}")
            for obj in [o for o in catalog.of_kind("event") if differs(o)]:
                create_object(cur, obj)
                done.append(f"event {catalog.database}.{obj.name}")
    finally:
        raw.close()
    return done


def _put_views(cur: Any, database: str, views: list[SchemaObject]) -> list[str]:
    """Views in as many passes as their dependencies need (one may name another not created yet)."""
    done: list[str] = []
    while views:
        waiting, error = [], None
        for view in views:
            try:
                create_object(cur, view)
                done.append(f"view {database}.{view.name}")
            except pymysql.MySQLError as exc:
                if exc.args[0] not in _NOT_YET:
                    raise
                waiting.append(view)
                error = exc
        if len(waiting) == len(views) and error is not None:
            raise error
        views = waiting
    return done


class RestoreJournal:
    """What an attempt finished, in the backup's folder (``restore-journal.json``, written atomically).

    Per table: ``verified`` (its staging copy holds exactly the backup's rows: the next attempt swaps it
    in without loading it again) and ``done`` (live again, with its foreign keys and triggers; the next
    attempt still checks it against the backup, and reports it as resumed). A journal is finished only
    when the comparison found no difference; a finished one is started afresh by the next restore.
    """

    NAME = "restore-journal.json"

    def __init__(self, path: Path, states: dict[str, str], private: Private = Private()) -> None:
        self.path = path
        self.states = states
        self.private = private

    @classmethod
    def open(cls, folder: Path, private: Private = Private()) -> RestoreJournal:
        path = folder / cls.NAME
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        states = {} if data.get("finished") else dict(data.get("tables", {}))
        journal = cls(path, states, private)
        journal._write(finished=False)
        return journal

    @property
    def done(self) -> set[str]:
        return {k for k, v in self.states.items() if v == "done"}

    def mark(self, key: str, state: str) -> None:
        self.states[key] = state
        self._write(finished=False)

    def finish(self) -> None:
        self._write(finished=True)

    def _write(self, *, finished: bool) -> None:
        tmp = self.path.with_suffix(".tmp")
        self.private.write_text(tmp, json.dumps({"tables": self.states, "finished": finished}, indent=1))
        os.replace(tmp, self.path)


def restore_table(path: Path, entry: TableEntry, engine: Engine, on_progress: ProgressFn | None = None, *,
                  journal: RestoreJournal | None = None, triggers: Sequence[SchemaObject] = ()) -> str:
    """Make the live table the backup's: its definition, rows, foreign keys and ``triggers`` (in firing order).

    A live table that already has the backup's definition (without foreign keys) and CHECKSUM TABLE is
    left in place ("unchanged"). Otherwise the rows go into a staging table first (the backup's
    definition without its foreign keys, whose names are unique per schema) and are compared with the
    manifest (row count and CHECKSUM TABLE): a mismatch leaves the live table untouched. Then, with
    foreign key checks off, the live table is dropped and the staging table renamed in its place, so
    child tables' foreign keys, which name the table, point at the restored one (a RENAME of the live
    table would take them along to the old copy) ("loaded"; "resumed" when a killed attempt had
    verified the staging copy). Its own foreign keys are then made the backup's, and its triggers.
    """
    stage = _aux_name(STAGE_PREFIX, entry.table)
    table = quote_ident(entry.table)
    plain_create, foreign_keys = split_foreign_keys(entry.create_sql)
    state = journal.states.get(entry.key) if journal else None
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        with conn.cursor() as cur:
            cur.execute("SET SESSION FOREIGN_KEY_CHECKS=0, UNIQUE_CHECKS=0, SQL_MODE='NO_AUTO_VALUE_ON_ZERO'")
            staged = _exists(cur, stage)
            if state == "verified" and staged and _checksum(cur, stage) == entry.checksum:
                outcome = "resumed"  # (the same check tells a copy left by a restore of another backup)
            elif _equal_to_backup(cur, entry, plain_create):
                outcome, staged = "unchanged", False
                cur.execute(f"DROP TABLE IF EXISTS {quote_ident(stage)}")
            else:
                _load_stage(cur, conn, path, entry, stage, plain_create, on_progress)
                outcome, staged = "loaded", True
                if journal:
                    journal.mark(entry.key, "verified")
            if staged:
                cur.execute(f"DROP TABLE IF EXISTS {table}")
                cur.execute(f"RENAME TABLE {quote_ident(stage)} TO {table}")
            cur.execute(f"SHOW CREATE TABLE {table}")
            present = dict(split_foreign_keys(cur.fetchone()[1])[1])
            wanted = dict(foreign_keys)
            for name, clause in present.items():
                if wanted.get(name) != clause:
                    cur.execute(f"ALTER TABLE {table} DROP FOREIGN KEY {quote_ident(name)}")
            for name, clause in foreign_keys:
                if present.get(name) != clause:
                    cur.execute(f"ALTER TABLE {table} ADD {clause}")
            put_triggers(cur, entry.table, triggers)
            conn.commit()
        if journal:
            journal.mark(entry.key, "done")
        return outcome
    finally:
        raw.close()


def _checksum(cur: Any, table: str) -> int | None:
    cur.execute(f"CHECKSUM TABLE {quote_ident(table)}")
    return cur.fetchone()[1]


def _equal_to_backup(cur: Any, entry: TableEntry, plain_create: str) -> bool:
    """The live table has the backup's definition (foreign keys aside) and its CHECKSUM TABLE (row count)."""
    if not _exists(cur, entry.table):
        return False
    cur.execute(f"SHOW CREATE TABLE {quote_ident(entry.table)}")
    if split_foreign_keys(cur.fetchone()[1])[0] != plain_create:
        return False
    if entry.checksum is None:
        cur.execute(f"SELECT COUNT(*) FROM {quote_ident(entry.table)}")
        return cur.fetchone()[0] == entry.rows
    return _checksum(cur, entry.table) == entry.checksum


def _load_stage(cur: Any, conn: Any, path: Path, entry: TableEntry, stage: str, plain_create: str,
                on_progress: ProgressFn | None) -> None:
    cur.execute(f"DROP TABLE IF EXISTS {quote_ident(stage)}")
    cur.execute(_renamed_create(plain_create, entry.table, stage))
    insert = f"INSERT INTO {quote_ident(stage)} VALUES "
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            cur.execute(insert + line.rstrip("\n"))
            conn.commit()
            if on_progress:
                on_progress(line.count("),(") + 1)
    cur.execute(f"SELECT COUNT(*) FROM {quote_ident(stage)}")
    rows = cur.fetchone()[0]
    cur.execute(f"CHECKSUM TABLE {quote_ident(stage)}")
    checksum = cur.fetchone()[1]
    if rows != entry.rows or (entry.checksum is not None and checksum != entry.checksum):
        cur.execute(f"DROP TABLE {quote_ident(stage)}")
        raise BackupChecksumMismatch(entry.key, f"{entry.rows} rows, checksum {entry.checksum}",
                                     f"{rows} rows, checksum {checksum}")


def _exists(cur: Any, name: str) -> bool:
    cur.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
                (name,))
    return bool(cur.fetchone()[0])


_FOREIGN_KEY = re.compile(r"^CONSTRAINT (`(?:[^`]|``)+`) FOREIGN KEY ")


def split_foreign_keys(create_sql: str) -> tuple[str, list[tuple[str, str]]]:
    """SHOW CREATE TABLE without its FOREIGN KEY clauses, and those clauses as (name, clause). Pure."""
    lines = create_sql.split("\n")
    close = next(i for i in range(1, len(lines)) if lines[i].startswith(")"))
    items = [line.strip().rstrip(",") for line in lines[1:close]]
    keys = [(m.group(1)[1:-1].replace("``", "`"), item) for item in items if (m := _FOREIGN_KEY.match(item))]
    kept = [item for item in items if not _FOREIGN_KEY.match(item)]
    return "\n".join([lines[0], ",\n".join(f"  {item}" for item in kept), *lines[close:]]), keys


def _restore_view(view: ViewEntry, engine: Engine) -> None:
    """The view as the backup has it (CREATE OR REPLACE: a view the upgrade changed is put back)."""
    if not view.create_sql.startswith("CREATE "):
        raise ValueError(f"unexpected SHOW CREATE VIEW for {view.view}: {view.create_sql[:80]}")
    raw = engine.raw_connection()
    try:
        with raw.driver_connection.cursor() as cur:
            cur.execute("CREATE OR REPLACE " + view.create_sql[len("CREATE "):])
    finally:
        raw.close()


def _aux_name(prefix: str, table: str) -> str:
    return (prefix + table)[:64]


def _renamed_create(create_sql: str, table: str, new_name: str) -> str:
    """The snapshot's CREATE TABLE for another name (SHOW CREATE TABLE always quotes it with backticks); the
    AUTO_INCREMENT counter stays the backup's, so the next id is the one it would have been."""
    head = f"CREATE TABLE {quote_ident(table)}"
    if not create_sql.startswith(head):
        raise ValueError(f"unexpected CREATE TABLE for {table}: {create_sql[:80]}")
    return f"CREATE TABLE {quote_ident(new_name)}" + create_sql[len(head):]  # AUTO_INCREMENT as backed up


def _restore_file(stored: Path, target: Path, mode: int | None) -> None:
    """Put a config file back with the permission bits it had when backed up (``0600`` if the backup is
    older than that record), whatever the umask; the temp file is ``0600`` until it takes its place."""
    Private().mkdir(target.parent)
    tmp = target.with_name(f".{target.name}.restore.tmp")
    with gzip.open(stored, "rb") as src, Private().open(tmp) as dst:
        dst.write(src.read())
        dst.flush()
        os.fsync(dst.fileno())
    os.chmod(tmp, 0o600 if mode is None else mode & 0o777)
    tmp.replace(target)
