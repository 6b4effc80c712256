"""Restore a backup, verified twice: file SHA-256s before anything is touched, CHECKSUM TABLE after.

Each table is loaded into a staging table, compared with the manifest (row count and CHECKSUM TABLE),
and only then swapped in with one atomic ``RENAME TABLE``; a mismatch leaves the live table untouched.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from tasks.backup.catalog import StoredBackup
from tasks.backup.dump import quote_ident
from tasks.backup.manifest import FileEntry, TableEntry, sha256_file
from tasks.core.errors import BackupChecksumMismatch, BackupCorrupted, BackupNotFound

STAGE_PREFIX = "__ftr_"
OLD_PREFIX = "__fto_"
ProgressFn = Callable[[int], None]


@dataclass
class RestoreReport:
    backup_id: str
    tables: list[dict[str, object]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


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
                   include_files: bool = False, on_progress: ProgressFn | None = None) -> RestoreReport:
    """Verify, then restore the chosen tables (all by default) and, if asked, the config files."""
    entries = select_tables(backup.manifest.tables, tables)
    files = list(backup.manifest.files) if include_files else []
    verify_files(backup, entries, files)
    report = RestoreReport(backup.manifest.backup_id)
    for entry in entries:
        restore_table(backup.folder / "db" / entry.file, entry, engine_for(entry.database), on_progress)
        report.tables.append({"table": entry.key, "rows": entry.rows, "checksum": entry.checksum})
    for item in files:
        _restore_file(backup.folder / "files" / item.file, Path(item.source))
        report.files.append(item.source)
    return report


def restore_table(path: Path, entry: TableEntry, engine: Engine, on_progress: ProgressFn | None = None) -> None:
    stage = _aux_name(STAGE_PREFIX, entry.table)
    old = _aux_name(OLD_PREFIX, entry.table)
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        with conn.cursor() as cur:
            cur.execute("SET SESSION FOREIGN_KEY_CHECKS=0, UNIQUE_CHECKS=0, SQL_MODE='NO_AUTO_VALUE_ON_ZERO'")
            cur.execute(f"DROP TABLE IF EXISTS {quote_ident(stage)}, {quote_ident(old)}")
            cur.execute(_renamed_create(entry.create_sql, entry.table, stage))
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
            cur.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                        "AND TABLE_NAME = %s", (entry.table,))
            if cur.fetchone()[0]:
                cur.execute(f"RENAME TABLE {quote_ident(entry.table)} TO {quote_ident(old)}, "
                            f"{quote_ident(stage)} TO {quote_ident(entry.table)}")
                cur.execute(f"DROP TABLE {quote_ident(old)}")
            else:
                cur.execute(f"RENAME TABLE {quote_ident(stage)} TO {quote_ident(entry.table)}")
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


def _restore_file(stored: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.restore.tmp")
    with gzip.open(stored, "rb") as src, tmp.open("wb") as dst:
        dst.write(src.read())
        dst.flush()
        os.fsync(dst.fileno())
    tmp.replace(target)
