"""The one errors module: every failure the tool reports on purpose.

Errors carry their data (file, line, field, …) on the instance so that the CLI, the flows and the
reports can each render them; ``str()`` is the one-line message an operator reads.
"""

from __future__ import annotations


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
                 field: str | None = None) -> None:
        self.file = file
        self.reason = reason
        self.line = line
        self.column = column
        self.field = field
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

    def __init__(self, errors: list[InputError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


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

    def __init__(self, message: str, result: object = None) -> None:
        self.result = result
        super().__init__(message)


class ResourceUnavailable(UpgradeFailed):
    """A database or service could not be reached after retries; the message names it (no password)."""
