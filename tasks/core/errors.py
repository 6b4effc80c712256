"""The one errors module: every failure the tool reports on purpose, in one hierarchy.

Errors carry their data (file, line, field, …) on the instance so that the CLI, the flows and the
reports can each render them; ``str()`` is the one-line message an operator reads, and ``exit_code``
what the CLI exits with: 2 bad input or a refusal (nothing was executed), 1 a failure (state saved).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class UpgradeError(Exception):
    """Base of every error this tool raises on purpose."""

    exit_code: int = 1


class InputError(UpgradeError):
    """Bad input (version, config, SQL file, option): nothing was executed. CLI exit code 2."""

    exit_code = 2


class VersionError(InputError):
    """A version string or code that does not encode uniquely."""

    def __init__(self, value: object, reason: str) -> None:
        self.value = value
        self.reason = reason
        super().__init__(f"invalid version {value!r}: {reason}")


class ConfigError(InputError):
    """A version config that cannot be loaded: names the file and the line:column or field path."""

    def __init__(self, file: str, reason: str, *, line: int | None = None, column: int | None = None,
                 field: str | None = None, in_file: bool = False) -> None:
        self.file = file
        self.reason = reason
        self.line = line
        self.column = column
        self.field = field
        self.in_file = in_file  # the problem is in a file the step uses (a SQL script…), not in the config
        where = file
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        if field:
            where += f": {field}"
        super().__init__(f"{where}: {reason}")


class ConfigErrors(InputError):
    """Several config errors found in one pass, reported together."""

    def __init__(self, errors: list[InputError], *, advice: str = "") -> None:
        self.errors = errors
        self.advice = advice  # how to proceed, after the list
        super().__init__("\n".join([*(str(e) for e in errors), *([advice] if advice else [])]))


class PlanError(InputError):
    """The configs cannot produce a plan for the requested upgrade."""


class StepResolutionError(InputError):
    """A step's ``class_name`` has no implementation, or its module is not allowed."""


class UpgradeFailed(UpgradeError):
    """A step failed; state is saved and the run can be resumed. CLI exit code 1."""

    def __init__(self, message: str, *, execution_id: str | None = None, step_id: str | None = None) -> None:
        self.execution_id = execution_id
        self.step_id = step_id
        super().__init__(message)


class StepFailed(UpgradeFailed):
    """A step ran and its outcome is a failure; ``result`` holds what it found, for the report."""

    def __init__(self, message: str, result: object = None, *, where: str | None = None) -> None:
        self.result = result
        self.where = where  # the statement, for a failed SQL step: ``file:line #sequence``
        super().__init__(message)


class ResourceUnavailable(UpgradeFailed):
    """A database or service could not be reached after retries; the message names it (no password)."""


class CheckError(UpgradeFailed):
    """A check that could not run to the end; the message names what and where (never a password).

    The checks runner turns it into a ``fail`` outcome of the rule; it is never a crash.
    """


class ProbeUnavailable(CheckError):
    """A middleware, database or host stayed unreachable after the retries."""


class RuleSqlError(CheckError):
    """A rule's SQL failed (syntax error, missing table…): checking stops, as the requirements ask."""

    def __init__(self, message: str, sql: str | None = None) -> None:
        self.sql = sql
        super().__init__(message)


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


class BackupChecksumMismatch(BackupError):
    """A restored table's CHECKSUM TABLE or row count differs from the manifest: the table was not swapped in."""

    def __init__(self, table: str, expected: object, actual: object) -> None:
        self.table = table
        self.expected = expected
        self.actual = actual
        super().__init__(f"restored {table}: expected {expected}, got {actual}; the live table was left unchanged")


class RestoreMismatch(BackupError):
    """After a restore the databases differ from the backup (catalog or CHECKSUM TABLE); ``comparison`` says how.

    The restore's journal stays unfinished: the next restore puts back what differs.
    """

    def __init__(self, comparison: Any) -> None:
        self.comparison = comparison  # tasks.backup.verify.CatalogComparison
        super().__init__(f"the restore did not bring the databases back to the backup: {comparison.describe()}")


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


class MigrationChecksumMismatch(MigrationError):
    """Source (transformed) and target differ in some key segments after the copy."""

    def __init__(self, task: str, segments: list[dict[str, object]]) -> None:
        self.segments = segments
        first = segments[0]
        super().__init__(task, f"verification failed in {len(segments)} key segment(s), first "
                               f"({first['from_key']!r}, {first['to_key']!r}]: source {first['source']} vs "
                               f"target {first['target']} (count, sum, xor of row CRC32). Rows changed in the "
                               "source after their chunk was copied show up here too; repair the target rows of "
                               "these key ranges, then retry the flow run (verification runs again)")


class EditedAfterRun(InputError):
    """A statement that already ran was changed in its file; resuming would diverge from what ran."""


class SqlScriptError(InputError):
    """A script that cannot run as written; the message names file:line (``problems``: each, when several)."""

    def __init__(self, message: str, *, problems: Sequence[str] = ()) -> None:
        self.problems = list(problems) or [message]
        super().__init__(message)


class PackageRejected(UpgradeFailed):
    """A package failed a safety or integrity check; nothing outside its staging folder was written."""

    def __init__(self, package: str, problems: Sequence[str]) -> None:
        self.package = package
        self.problems = list(problems)
        shown = "; ".join(self.problems[:5]) + (f"; … {len(self.problems) - 5} more" if len(self.problems) > 5 else "")
        super().__init__(f"package {package} rejected: {shown}")


class CacheBuildFailed(UpgradeFailed):
    """The new generation could not be built or verified; it was dropped and readers still use the old one."""


class IndexOperationFailed(UpgradeFailed):
    """An index operation failed; what this step created was dropped again."""


class BudgetExhausted(UpgradeFailed):
    """The time budget ran out (before or during an operation); finished work is kept."""


class PreprocessError(UpgradeFailed):
    """Preprocessing failed; ``restored`` lists the files put back to their previous content."""

    def __init__(self, message: str, *, missing: Mapping[str, list[str]] | None = None,
                 restored: Sequence[str] = ()) -> None:
        self.missing = dict(missing or {})
        self.restored = list(restored)
        super().__init__(message)


class SiteBusy(UpgradeError):
    """Another upgrade of the same site is running: refused, nothing was done (exit 2, as any refusal)."""

    exit_code = 2


class SiteLockLost(UpgradeFailed):
    """This run no longer holds its site's lock (connection gone, row taken over): it stopped, or may not write."""


class Refused(InputError):
    """A trigger that may not run (precondition missing, wrong version, …): nothing was executed. Exit 2."""

    def __init__(self, message: str, *, site_id: str, cutpoint: str) -> None:
        self.site_id = site_id
        self.cutpoint = cutpoint
        super().__init__(message)
