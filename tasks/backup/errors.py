"""Backup failures, named by condition; each carries what an operator needs to act."""

from __future__ import annotations

from tasks.errors import InputError, UpgradeFailed


class BackupError(UpgradeFailed):
    """A backup or restore could not be completed."""


class BackupNotFound(InputError):
    """No complete backup has the given id (or none belongs to the execution)."""


class BackupCorrupted(BackupError):
    """A stored file no longer has the SHA-256 its manifest recorded: nothing was restored."""

    def __init__(self, backup_id: str, problems: list[str]) -> None:
        self.backup_id = backup_id
        self.problems = problems
        super().__init__(f"backup {backup_id} is corrupted, nothing restored: " + "; ".join(problems))


class ChecksumMismatch(BackupError):
    """A restored table's CHECKSUM TABLE or row count differs from the manifest: the table was not swapped in."""

    def __init__(self, table: str, expected: object, actual: object) -> None:
        self.table = table
        self.expected = expected
        self.actual = actual
        super().__init__(f"restored {table}: expected {expected}, got {actual}; the live table was left unchanged")
