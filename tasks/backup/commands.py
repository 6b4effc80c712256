"""What ``ft-upgrade backup list`` / ``backup restore`` do, as plain functions the CLI wraps.

They return data; only the CLI prints. ``resources`` is the site's :class:`tasks.resources.Resources`
(its ``path("backup_dir")`` and ``engine(name)``), so the CLI resolves databases exactly as a run does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tasks.backup.catalog import find_backup
from tasks.backup.catalog import list_backups as _stored
from tasks.backup.restore import RestoreReport
from tasks.backup.restore import restore_backup as _restore
from tasks.core.progress import Progress

if TYPE_CHECKING:
    from tasks.resources import Resources


def list_backups(resources: Resources, site_id: str | None = None) -> list[dict[str, Any]]:
    """One row per complete backup, newest first: id, site, execution, versions, time, size, rows, path."""
    return [{"backup_id": b.manifest.backup_id, "site_id": b.manifest.site_id,
             "execution_id": b.manifest.execution_id, "source_version": b.manifest.source_version,
             "target_version": b.manifest.target_version, "created_at": b.manifest.created_at,
             "tables": [t.key for t in b.manifest.tables], "files": [f.source for f in b.manifest.files],
             "rows": b.manifest.total_rows, "bytes": b.manifest.total_bytes, "path": str(b.folder)}
            for b in _stored(resources.path("backup_dir"), site_id)]


def restore_backup(backup_id: str, resources: Resources, *, tables: Sequence[str] | None = None,
                   include_files: bool = False) -> RestoreReport:
    """Verify SHA-256s, restore the tables (all, or ``tables``), check CHECKSUM TABLE; raises on any mismatch."""
    backup = find_backup(resources.path("backup_dir"), backup_id)
    progress = Progress(backup.manifest.total_rows, f"restore {backup_id}")
    report = _restore(backup, resources.engine, tables=tables, include_files=include_files,
                      on_progress=progress.advance)
    progress.finish()
    return report
