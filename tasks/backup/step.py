"""BackupStep and RestoreBackupStep: the verified, non-blocking backup of cutpoint 2 and its rollback.

The backup streams the configured tables from one consistent snapshot per database (writers keep
committing), copies the configured files, writes a manifest, then removes backups older than the site's
last 3 upgrades. A failed attempt is removed and retried (3 retries); then the step fails and the upgrade
stops. ``RestoreBackupStep`` is meant for a config's ``rollback_steps``: it restores this execution's backup.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasks.backup.params import ATTEMPTS, BackupParams, DatabaseBackup, RestoreParams
from tasks.core.steps import StepResult
from tasks.steps.base import UpgradeStep

__all__ = ["ATTEMPTS", "BackupParams", "BackupStep", "DatabaseBackup", "RestoreBackupStep", "RestoreParams"]


class BackupStep(UpgradeStep):
    """Consistent, compressed, manifest-verified backup of core tables and config files."""

    Params = BackupParams
    description = "Non-blocking backup: snapshot dump, manifest with CHECKSUM TABLE and SHA-256, retention"
    params: BackupParams

    @classmethod
    def needs_off_peak(cls, params: Mapping[str, Any]) -> bool:
        """A backup of database tables reads them whole while the site serves: heavy (configs alone are not)."""
        return bool(params.get("databases"))

    def run(self) -> StepResult:
        from tasks.backup.running import run_backup  # the runtime: `validate` and `plan` need only the parameters

        return run_backup(self.params, self.context)


class RestoreBackupStep(UpgradeStep):
    """Rollback: bring the databases back to this upgrade's backup (verified by SHA-256 first; proved by a
    comparison of every object and CHECKSUM TABLE with the manifest after, in ``details``; a difference fails)."""

    Params = RestoreParams
    description = "Restore the upgrade's backup (rollback_steps)"
    params: RestoreParams

    def run(self) -> StepResult:
        from tasks.backup.running import run_restore

        return run_restore(self.params, self.context)
