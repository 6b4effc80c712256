"""What ``ft-upgrade backup list`` / ``backup restore`` do, as plain functions the CLI wraps.

They return data; only the CLI prints. They take what they use: the site's backup folder and a
function that gives the engine of a logical database (the CLI passes the site's resources' own, so
databases resolve exactly as in a run).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from tasks.backup.catalog import find_backup
from tasks.backup.catalog import list_backups as _stored
from tasks.backup.restore import RestoreReport
from tasks.backup.restore import restore_backup as _restore
from tasks.core.progress import Progress


def list_backups(backup_dir: Path, site_id: str | None = None) -> list[dict[str, Any]]:
    """One row per complete backup, newest first: id, site, execution, versions, time, size, rows, path."""
    return [{"backup_id": b.manifest.backup_id, "site_id": b.manifest.site_id,
             "execution_id": b.manifest.execution_id, "source_version": b.manifest.source_version,
             "target_version": b.manifest.target_version, "created_at": b.manifest.created_at,
             "tables": [t.key for t in b.manifest.tables], "files": [f.source for f in b.manifest.files],
             "rows": b.manifest.total_rows, "bytes": b.manifest.total_bytes, "path": str(b.folder)}
            for b in _stored(backup_dir, site_id)]


def restore_backup(backup_id: str, backup_dir: Path, engine_for: Callable[[str], Engine], *,
                   tables: Sequence[str] | None = None, include_files: bool = False,
                   group: str | None = None) -> RestoreReport:
    """Verify SHA-256s, restore the tables (all, or ``tables``), check CHECKSUM TABLE; raises on any mismatch.

    ``group``: the run's ``backup_group`` (files it writes are readable by that group; none: owner only)."""
    backup = find_backup(backup_dir, backup_id)
    progress = Progress(backup.manifest.total_rows, f"restore {backup_id}")
    report = _restore(backup, engine_for, tables=tables, include_files=include_files,
                      on_progress=progress.advance, group=group)
    progress.finish()
    return report
