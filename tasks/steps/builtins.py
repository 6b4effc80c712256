"""The catalogue of built-in step classes; the registry resolves a config's ``class_name`` against it.

A step class says its names itself: its own simple name and ``aliases`` (the requirements' names).
"""

from __future__ import annotations

from tasks.backup.step import BackupStep, RestoreBackupStep
from tasks.cache.step import CacheRebuildStep
from tasks.checks.step import PreBusinessCheckStep
from tasks.cleanup.logs_step import LogCleanupStep
from tasks.cleanup.release_step import ResourceReleaseStep
from tasks.config_files.step import ConfigPreprocessStep
from tasks.health.smoke_step import SmokeTestStep
from tasks.health.step import ServiceHealthCheckStep
from tasks.indexes.step import IndexOptimizationStep
from tasks.migration.step import AsyncDataMigrationStep
from tasks.packages.step import ResourcePackageImportStep
from tasks.sql.step import SqlScriptStep
from tasks.steps.base import UpgradeStep
from tasks.steps.post_process import StartupPostProcessStep
from tasks.steps.post_upgrade import PostUpgradeStep

BUILTIN_STEPS: tuple[type[UpgradeStep], ...] = (
    SqlScriptStep, PreBusinessCheckStep, BackupStep, RestoreBackupStep, ConfigPreprocessStep,
    ResourcePackageImportStep, CacheRebuildStep, IndexOptimizationStep, ServiceHealthCheckStep, SmokeTestStep,
    StartupPostProcessStep, AsyncDataMigrationStep, LogCleanupStep, ResourceReleaseStep, PostUpgradeStep,
)
