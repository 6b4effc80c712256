"""Imports every module that defines built-in steps, so that they register themselves."""

import tasks.backup.step  # noqa: F401
import tasks.cache.step  # noqa: F401
import tasks.checks.step  # noqa: F401
import tasks.cleanup.logs_step  # noqa: F401
import tasks.cleanup.release_step  # noqa: F401
import tasks.config_files.step  # noqa: F401
import tasks.health.smoke_step  # noqa: F401
import tasks.health.step  # noqa: F401
import tasks.indexes.step  # noqa: F401
import tasks.migration.step  # noqa: F401
import tasks.packages.step  # noqa: F401
import tasks.sql.step  # noqa: F401
import tasks.steps.post_process  # noqa: F401
import tasks.steps.post_upgrade  # noqa: F401
