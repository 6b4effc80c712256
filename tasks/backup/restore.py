"""Restore a backup, verified twice: file SHA-256s before anything is touched, CHECKSUM TABLE after.

Each table is loaded into a staging table, compared with the manifest (row count and CHECKSUM TABLE),
and only then put in place of the live table (see :func:`restore_table`), with its foreign keys and
triggers; then the databases' views. A mismatch leaves the live table untouched; a journal in the
backup's folder lets the next try resume an attempt that was killed.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from tasks.backup.catalog import StoredBackup
from tasks.backup.dump import quote_ident
from tasks.backup.manifest import FileEntry, TableEntry, ViewEntry, sha256_file
from tasks.core.errors import BackupChecksumMismatch, BackupCorrupted, BackupNotFound
from tasks.core.files import Private

STAGE_PREFIX = "__ftr_"
ProgressFn = Callable[[int], None]


@dataclass
class RestoreReport:
    backup_id: str
    tables: list[dict[str, object]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)  # tables an earlier, killed attempt had finished


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
    """Verify, then restore the chosen tables (all by default, then the databases' views) and, if asked,
    the config files. An attempt that was killed is resumed from its journal: tables it finished are
    not loaded again. The journal is private like the backup (``group`` as when it was made)."""
    entries = select_tables(backup.manifest.tables, tables)
    files = list(backup.manifest.files) if include_files else []
    verify_files(backup, entries, files)
    journal = RestoreJournal.open(backup.folder, Private(group))
    report = RestoreReport(backup.manifest.backup_id, resumed=sorted(journal.done))
    for entry in entries:
        if entry.key not in journal.done:
            restore_table(backup.folder / "db" / entry.file, entry, engine_for(entry.database), on_progress,
                          journal=journal)
        report.tables.append({"table": entry.key, "rows": entry.rows, "checksum": entry.checksum,
                              "triggers": len(entry.triggers)})
    if not tables:
        for view in backup.manifest.views:
            _restore_view(view, engine_for(view.database))
            report.views.append(f"{view.database}.{view.view}")
    for item in files:
        _restore_file(backup.folder / "files" / item.file, Path(item.source), item.mode)
        report.files.append(item.source)
    journal.finish()
    return report


class RestoreJournal:
    """What an attempt finished, in the backup's folder (``restore-journal.json``, written atomically).

    Per table: ``verified`` (its staging copy holds exactly the backup's rows) and ``done`` (live again,
    with its foreign keys and triggers). A finished journal is started afresh by the next restore.
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
                  journal: RestoreJournal | None = None) -> None:
    """Load, verify, then replace the live table, keeping what refers to it.

    The rows go into a staging table first (the backup's definition without its foreign keys, whose
    names are unique per schema) and are compared with the manifest (row count and CHECKSUM TABLE): a
    mismatch leaves the live table untouched. Then, with foreign key checks off, the live table is
    dropped and the staging table renamed in its place, so child tables' foreign keys, which name the
    table, point at the restored one (a RENAME of the live table would take them along to the old
    copy); its own foreign keys and its triggers are put back as the backup has them.
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
            if state != "verified" or not (staged or _exists(cur, entry.table)):
                _load_stage(cur, conn, path, entry, stage, plain_create, on_progress)
                staged = True
                if journal:
                    journal.mark(entry.key, "verified")
            if staged:  # else the rename happened before the attempt was killed
                cur.execute(f"DROP TABLE IF EXISTS {table}")
                cur.execute(f"RENAME TABLE {quote_ident(stage)} TO {table}")
            cur.execute("SELECT CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS "
                        "WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = %s", (entry.table,))
            present = {row[0] for row in cur.fetchall()}
            for name, clause in foreign_keys:
                if name not in present:
                    cur.execute(f"ALTER TABLE {table} ADD {clause}")
            for create in entry.triggers:
                cur.execute(f"DROP TRIGGER IF EXISTS {quote_ident(_trigger_name(create))}")
                cur.execute(create)
            conn.commit()
        if journal:
            journal.mark(entry.key, "done")
    finally:
        raw.close()


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


def _trigger_name(create: str) -> str:
    match = re.search(r"\bTRIGGER\s+(`(?:[^`]|``)+`|\S+)", create)
    if not match:
        raise ValueError(f"not a CREATE TRIGGER: {create[:80]}")
    name = match.group(1)
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


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
    """The snapshot's CREATE TABLE for another name (SHOW CREATE TABLE always quotes it with backticks)."""
    head = f"CREATE TABLE {quote_ident(table)}"
    if not create_sql.startswith(head):
        raise ValueError(f"unexpected CREATE TABLE for {table}: {create_sql[:80]}")
    return re.sub(r"\bAUTO_INCREMENT=\d+\s*", "", f"CREATE TABLE {quote_ident(new_name)}" + create_sql[len(head):])


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
