"""PostUpgradeStep (the seed's ``PostUpgradeProcessStep``): the configured parts of post_upgrade, in order.

The seed declares one step, "升级后处理", doing all of chapter 1 section 5. This composite runs
the parts a config gives — ``data_migration``, then ``log_cleanup``, then ``resource_release`` —
each with the same fields as its own step class, and stops at the first part that fails (see
:mod:`tasks.composite.parts`). Every part is safe to run again (the migration resumes from its
checkpoint, cleanups are idempotent), so a retried or resumed step simply continues.
"""

from __future__ import annotations

from tasks.cleanup.logs_step import LogCleanupParams, LogCleanupStep
from tasks.cleanup.release_step import ResourceReleaseParams, ResourceReleaseStep
from tasks.composite.parts import CompositeParams, CompositeStep
from tasks.migration.step import AsyncDataMigrationStep, DataMigrationParams


class PostUpgradeParams(CompositeParams):
    NO_PART = "post-upgrade processing needs at least one of {fields}"

    data_migration: DataMigrationParams | None = None
    log_cleanup: LogCleanupParams | None = None
    resource_release: ResourceReleaseParams | None = None


class PostUpgradeStep(CompositeStep):
    """Runs the configured post-upgrade parts in order: migration, log cleanup, resource release."""

    Params = PostUpgradeParams
    description = "Post-upgrade processing: async migration, log cleanup, resource release"
    params: PostUpgradeParams
    PARTS = (
        ("data_migration", AsyncDataMigrationStep),
        ("log_cleanup", LogCleanupStep),
        ("resource_release", ResourceReleaseStep),
    )
    #: Each part's title in the report, in the site's language.
    TITLES = {
        "zh": {"data_migration": "数据异步迁移", "log_cleanup": "日志清理", "resource_release": "资源释放"},
        "en": {"data_migration": "Async data migration", "log_cleanup": "Log cleanup",
               "resource_release": "Resource release"},
    }
