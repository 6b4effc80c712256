"""Make one backup: snapshot dumps of the planned databases, copies of config files, then the manifest."""

from __future__ import annotations

import gzip
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from tasks.backup.catalog import site_folder
from tasks.backup.dump import ProgressFn, SnapshotPlan, dump_database
from tasks.backup.manifest import FileEntry, Manifest, TableEntry, ViewEntry, sha256_file
from tasks.backup.schema import SchemaCatalog
from tasks.core.files import Private


def new_backup_id(site_id: str, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{site_id}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def create_backup(backup_root: Path, *, site_id: str, execution_id: str, source_version: str,
                  target_version: str, plans: Sequence[SnapshotPlan], engine_for: Callable[[str], Engine],
                  config_files: Sequence[Path] = (), on_progress: ProgressFn | None = None,
                  batch_rows: int = 2000, group: str | None = None) -> tuple[Path, Manifest]:
    """Write a complete backup folder; on any error the partial folder is removed and the error raised.

    Customer data: every folder it creates is ``0700`` and every file ``0600`` whatever the umask
    (``0750``/``0640`` owned by ``group`` when given).
    """
    private = Private(group)
    started = time.perf_counter()
    created = datetime.now(UTC)
    backup_id = new_backup_id(site_id, created)
    folder = site_folder(backup_root, site_id) / backup_id
    if folder.exists():
        raise FileExistsError(folder)
    private.mkdir(folder)
    try:
        tables: list[TableEntry] = []
        views: list[ViewEntry] = []
        catalogs: list[SchemaCatalog] = []
        for plan in plans:
            tables += dump_database(engine_for(plan.database), plan, folder / "db", batch_rows=batch_rows,
                                    on_progress=on_progress, views=views, catalogs=catalogs,
                                    private=private)
        files = [_copy_file(path, folder / "files", index, private) for index, path in enumerate(config_files)]
        manifest = Manifest(
            backup_id=backup_id, site_id=site_id, execution_id=execution_id, source_version=source_version,
            target_version=target_version, created_at=created.isoformat(timespec="microseconds"),
            tables=tuple(tables), files=tuple(files), views=tuple(views), catalogs=tuple(catalogs),
            duration_seconds=round(time.perf_counter() - started, 3))
        manifest.save(folder, private)
        return folder, manifest
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _copy_file(source: Path, folder: Path, index: int, private: Private) -> FileEntry:
    """A gzip copy; the source's permission bits are recorded so a restore gives them back."""
    private.mkdir(folder)
    stored = folder / f"{index:03d}_{source.name}.gz"
    with source.open("rb") as src, private.open(stored) as raw, gzip.open(raw, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst)
    return FileEntry(source=str(source.resolve()), file=stored.name, sha256=sha256_file(stored),
                     bytes=stored.stat().st_size, mode=source.stat().st_mode & 0o777,
                     content_sha256=sha256_file(source))
