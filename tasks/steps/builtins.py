"""The catalogue of built-in step classes and the names a config may use for each.

A class is named by its import path, so resolving a config imports only the steps it uses (the
whole catalogue costs about a third of a second of imports a run would pay before its first step).
Besides the class's own simple name, a config may use the requirements' names (``aliases``).
"""

from __future__ import annotations

# "module:Class" -> the requirements' other names for it
BUILTIN_STEPS: dict[str, tuple[str, ...]] = {
    "tasks.sql.step:SqlScriptStep": (
        "StartupPreProcessStep", "PatchSqlExecutorStep", "OverseasSpecificProcessStep", "SqlExecutorStep"),
    "tasks.checks.step:PreBusinessCheckStep": (),
    "tasks.checks.dependencies_step:DependencyCheckStep": (),
    "tasks.backup.step:BackupStep": (),
    "tasks.backup.step:RestoreBackupStep": (),
    "tasks.config_files.step:ConfigPreprocessStep": ("PatchConfigUpdaterStep",),
    "tasks.packages.step:ResourcePackageImportStep": ("ResourceImportStep",),
    "tasks.cache.step:CacheRebuildStep": ("RedisCacheRebuildStep",),
    "tasks.indexes.step:IndexOptimizationStep": ("IndexOptimizeStep",),
    "tasks.health.step:ServiceHealthCheckStep": ("HealthCheckStep",),
    "tasks.health.smoke_step:SmokeTestStep": ("SmokeTestsStep",),
    "tasks.composite.post_process:StartupPostProcessStep": (),
    "tasks.migration.step:AsyncDataMigrationStep": (),
    "tasks.cleanup.logs_step:LogCleanupStep": (),
    "tasks.cleanup.release_step:ResourceReleaseStep": (),
    "tasks.composite.post_upgrade:PostUpgradeStep": ("PostUpgradeProcessStep",),
    "tasks.composite.pre_upgrade:PreUpgradeProcessStep": (),
}
