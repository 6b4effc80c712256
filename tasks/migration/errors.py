"""Why a migration stops. Each error names the task and where it stopped, so the operator knows the next step."""

from __future__ import annotations

from typing import Any

from tasks.errors import UpgradeFailed


class MigrationError(UpgradeFailed):
    """Base of migration failures; the checkpoint is intact and a rerun continues from it.

    ``outcome`` is set by the runner to what the run did before it stopped (for the report).
    """

    def __init__(self, task: str, message: str) -> None:
        self.task = task
        self.outcome: Any = None
        super().__init__(f"migration {task}: {message}")


class MigrationSetupError(MigrationError):
    """The tables do not allow a safe migration (missing table, key without a unique index, bad type)."""


class DefinitionChanged(MigrationError):
    """The task's definition differs from the one its checkpoint was started with."""

    def __init__(self, task: str, started: str, now: str, last_key: object) -> None:
        self.started = started
        self.now = now
        self.last_key = last_key
        super().__init__(task, f"its definition changed since it started (fingerprint {started[:12]} → {now[:12]}, "
                               f"copied up to key {last_key!r}); restore the original definition, or empty the "
                               "target table and delete the task's row from ft_upgrade_migration_checkpoint "
                               "to start over")


class ChunkFailed(MigrationError):
    """A chunk kept failing after its retries; nothing of it was committed."""

    def __init__(self, task: str, after_key: object, attempts: int, cause: str) -> None:
        self.after_key = after_key
        self.attempts = attempts
        self.cause = cause
        where = "at the start" if after_key is None else f"after key {after_key!r}"
        super().__init__(task, f"chunk {where} failed {attempts} times: {cause}. Fix the cause and retry the "
                               "flow run: the migration continues from this key")


class ChecksumMismatch(MigrationError):
    """Source (transformed) and target differ in some key segments after the copy."""

    def __init__(self, task: str, segments: list[dict[str, object]]) -> None:
        self.segments = segments
        first = segments[0]
        super().__init__(task, f"verification failed in {len(segments)} key segment(s), first "
                               f"({first['from_key']!r}, {first['to_key']!r}]: source {first['source']} vs "
                               f"target {first['target']} (count, sum, xor of row CRC32). Rows changed in the "
                               "source after their chunk was copied show up here too; repair the target rows of "
                               "these key ranges, then retry the flow run (verification runs again)")
