"""AsyncDataMigrationStep: post_upgrade's throttled, checkpointed table copies, while the system serves.

Tasks run in order; each resumes from its checkpoint, so a stopped run, a Prefect retry or
``ft-upgrade resume`` continues where the copy was. The progress artifact shows rows done,
remaining, rows/s and ETA; the step result has a table per task.
"""

from __future__ import annotations

from tasks.core.steps import StepResult
from tasks.migration.params import DataMigrationParams
from tasks.steps.base import UpgradeStep

__all__ = ["AsyncDataMigrationStep", "DataMigrationParams"]


class AsyncDataMigrationStep(UpgradeStep):
    """Copies configured tables in key-ordered chunks without hurting the business; resumable and verified."""

    Params = DataMigrationParams
    description = "Async data migration: throttled, checkpointed, verified"
    params: DataMigrationParams

    def run(self) -> StepResult:
        from tasks.migration.running import run_migration  # the runtime: `validate` and `plan` need the parameters

        return run_migration(self.params, self.context)
