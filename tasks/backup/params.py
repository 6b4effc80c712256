"""The backup steps' parameters: what `validate` and `plan` read, without the runtime's drivers."""

from __future__ import annotations

from pydantic import Field, field_validator

from tasks.backup.catalog import KEEP_UPGRADES
from tasks.core.steps import StepParams

ATTEMPTS = 4  # the first try and 3 retries, as the requirements ask


class DatabaseBackup(StepParams):
    """One logical database; ``tables`` empty means every base table of it."""

    database: str = Field(description="Logical database name (ft_db, middle_db…).")
    tables: list[str] = Field(default_factory=list, description="Core tables; empty = whole database.")


class BackupParams(StepParams):
    databases: list[DatabaseBackup] = Field(default_factory=list)
    config_files: list[str] = Field(default_factory=list,
                                    description="Files to back up; relative paths are under the site's config_dir.")
    site_config_dir: bool = Field(default=False, description="Also every file directly in the site's config_dir.")
    keep_upgrades: int = Field(default=KEEP_UPGRADES, ge=1, le=100)
    attempts: int = Field(default=ATTEMPTS, ge=1, le=10)
    batch_rows: int = Field(default=2000, ge=1, le=100_000)

    @field_validator("databases")
    @classmethod
    def _something(cls, value: list[DatabaseBackup]) -> list[DatabaseBackup]:
        names = [d.database for d in value]
        if len(set(names)) != len(names):
            raise ValueError("each database may appear once")
        return value


class RestoreParams(StepParams):
    backup_id: str | None = Field(default=None, description="Default: every backup made by this execution.")
    tables: list[str] = Field(default_factory=list, description="table or database.table; empty = all.")
    include_files: bool = Field(default=True, description="Also put the backed-up config files back.")
