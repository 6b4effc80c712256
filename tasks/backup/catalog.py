"""The backups of a site on disk: listing, lookup by id or execution, and the keep-last-N-upgrades rule.

Layout: ``<backup_dir>/<site_id>/<backup_id>/manifest.json`` plus data files. Only folders with a
manifest count; an interrupted backup (no manifest) is never listed or restored.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tasks.backup.manifest import MANIFEST, Manifest
from tasks.core.errors import BackupNotFound

KEEP_UPGRADES = 3


@dataclass(frozen=True)
class StoredBackup:
    folder: Path
    manifest: Manifest


def site_folder(backup_root: Path, site_id: str) -> Path:
    return backup_root / site_id


def list_backups(backup_root: Path, site_id: str | None = None) -> list[StoredBackup]:
    """Complete backups, newest first; every site when ``site_id`` is None."""
    sites = [site_folder(backup_root, site_id)] if site_id else sorted(p for p in backup_root.glob("*") if p.is_dir())
    found = [StoredBackup(m.parent, Manifest.load(m.parent)) for site in sites for m in site.glob(f"*/{MANIFEST}")]
    return sorted(found, key=lambda b: (b.manifest.created_at, b.manifest.backup_id), reverse=True)


def find_backup(backup_root: Path, backup_id: str) -> StoredBackup:
    for backup in list_backups(backup_root):
        if backup.manifest.backup_id == backup_id:
            return backup
    raise BackupNotFound(f"no complete backup {backup_id!r} under {backup_root} (see: ft-upgrade backup list)")


def backups_of_execution(backup_root: Path, site_id: str, execution_id: str) -> list[StoredBackup]:
    return [b for b in list_backups(backup_root, site_id) if b.manifest.execution_id == execution_id]


def expired(manifests: Sequence[Manifest], keep: int = KEEP_UPGRADES) -> list[Manifest]:
    """Pure rule: keep every backup of the ``keep`` most recent upgrades (executions); the rest expire.

    An upgrade's age is that of its newest backup, so a resumed upgrade that backed up twice is one upgrade.
    """
    newest: dict[str, str] = {}
    for m in manifests:
        newest[m.execution_id] = max(newest.get(m.execution_id, ""), m.created_at)
    kept = set(sorted(newest, key=lambda e: newest[e], reverse=True)[:keep])
    return [m for m in manifests if m.execution_id not in kept]


def apply_retention(backup_root: Path, site_id: str, keep: int = KEEP_UPGRADES) -> list[Manifest]:
    """Remove the backups of a site older than its last ``keep`` upgrades; returns what was removed."""
    stored = list_backups(backup_root, site_id)
    doomed = {m.backup_id for m in expired([b.manifest for b in stored], keep)}
    removed = []
    for backup in stored:
        if backup.manifest.backup_id in doomed:
            shutil.rmtree(backup.folder)
            removed.append(backup.manifest)
    return removed
