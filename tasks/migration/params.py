"""The data migration step's parameters: what `validate` and `plan` read, without the runtime's drivers."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from tasks.core.steps import StepParams
from tasks.migration.spec import MigrationTask
from tasks.migration.throttle import Throttle


class DataMigrationParams(StepParams):
    """Tasks plus the throttle shared by them."""

    tasks: list[MigrationTask] = Field(min_length=1, description="Copied one after another, in this order.")
    max_rows_per_second: float | None = Field(default=10_000, gt=0, description="Ceiling; null: unthrottled.")
    max_threads_running: int | None = Field(default=32, ge=1, description="Pause while a server's "
                                            "Threads_running is above this; null: never.")
    pause_file: str | None = Field(default=None, description="Pause while this file exists (absolute path).")
    pause_redis_key: str | None = Field(default=None, min_length=1, description="Pause while this Redis key exists.")
    pause_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    target_chunk_seconds: float = Field(default=0.5, gt=0, le=30, description="Chunk size adapts to this.")
    min_chunk_rows: int = Field(default=100, ge=1)
    max_chunk_rows: int = Field(default=50_000, ge=1, le=1_000_000)
    initial_chunk_rows: int = Field(default=1_000, ge=1)
    retries: int = Field(default=3, ge=0, le=10, description="Retries of a failed chunk before the step fails.")
    retry_wait_seconds: float = Field(default=1.0, ge=0, le=300, description="First retry wait; doubles.")
    verify: bool = Field(default=True, description="Count and checksum the migrated key range at the end.")
    verify_segment_rows: int = Field(default=100_000, ge=100, description="Keys per verification segment.")

    @model_validator(mode="after")
    def _consistent(self) -> DataMigrationParams:
        names = [t.name for t in self.tasks]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"task names must be unique (they key the checkpoints): {', '.join(twice)}")
        if not self.min_chunk_rows <= self.initial_chunk_rows <= self.max_chunk_rows:
            raise ValueError("chunk rows must satisfy min_chunk_rows <= initial_chunk_rows <= max_chunk_rows")
        if self.pause_file is not None and not Path(self.pause_file).is_absolute():
            raise ValueError(f"pause_file must be an absolute path, got {self.pause_file!r}")
        return self

    def throttle(self) -> Throttle:
        return Throttle(max_rows_per_second=self.max_rows_per_second, max_threads_running=self.max_threads_running,
                        target_chunk_seconds=self.target_chunk_seconds, min_chunk_rows=self.min_chunk_rows,
                        max_chunk_rows=self.max_chunk_rows, initial_chunk_rows=self.initial_chunk_rows,
                        pause_poll_seconds=self.pause_poll_seconds)
