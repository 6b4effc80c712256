"""Why a check could not measure anything. Raised by probes, turned into ``fail`` outcomes by the runner."""

from __future__ import annotations


class CheckError(Exception):
    """A check that could not run to the end; the message names what and where (never a password)."""


class ProbeUnavailable(CheckError):
    """A middleware, database or host stayed unreachable after the retries."""


class RuleSqlError(CheckError):
    """A rule's SQL failed (syntax error, missing table…): checking stops, as the requirements ask."""

    def __init__(self, message: str, sql: str | None = None) -> None:
        self.sql = sql
        super().__init__(message)
