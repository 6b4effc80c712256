"""What a migration task is, as configured: tables, key, condition and the transform per target column.

Checked at plan time (identifiers, single expressions, the key copied unchanged) so a bad config
never starts a copy. ``fingerprint`` covers what decides the target's content: a checkpoint started
under one fingerprint refuses to continue under another.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from blocks.database import check_logical_name
from tasks.core.steps import StepParams

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_$]{0,63}$"
_IDENTIFIER_RE = re.compile(IDENTIFIER)
# Quoted strings, quoted identifiers and comments: where a ';' is harmless text.
_NOT_CODE = re.compile(r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"|`[^`]*`|/\*.*?\*/|(?:--\s|#)[^\n]*",
                       re.DOTALL)


def expression_problem(text: str) -> str | None:
    """Why ``text`` is not one SQL expression (empty, a ';', an open quote or comment), else None."""
    if not text.strip():
        return "is empty"
    code = _NOT_CODE.sub(" ", text)
    if ";" in code:
        return "contains ';' (one expression only, no statements)"
    if any(mark in code for mark in ("'", '"', "`", "/*")):
        return "has an unterminated quote or comment"
    return None


def _is_identity(expression: str, key: str) -> bool:
    bare = expression.strip().replace("`", "")
    return bare in (key, f"src.{key}")


class MigrationTask(StepParams):
    """One table copy: ``source_table`` → ``target_table`` in key order, ``columns`` giving the transform."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$", description="Unique name; keys the checkpoint.")
    source_database: str = Field(description="Logical database of the source table (e.g. ft_db).")
    source_table: str = Field(pattern=IDENTIFIER)
    target_database: str = Field(description="Logical database of the target table.")
    target_table: str = Field(pattern=IDENTIFIER)
    key: str = Field(pattern=IDENTIFIER, description="Source column with a unique index; copied unchanged.")
    target_key: str | None = Field(default=None, pattern=IDENTIFIER, description="Target column of the key; "
                                   "default: same name as key.")
    condition: str | None = Field(default=None, description="SQL condition on source rows (alias src).")
    columns: dict[str, str] = Field(min_length=1, description="Target column → SQL expression on the source row.")
    mode: Literal["auto", "insert_select", "stream"] = Field(
        default="auto", description="insert_select when both databases share a server (auto), else stream.")

    @field_validator("source_database", "target_database")
    @classmethod
    def _logical(cls, value: str) -> str:
        return check_logical_name(value)

    @field_validator("condition")
    @classmethod
    def _condition(cls, value: str | None) -> str | None:
        if value is not None and (problem := expression_problem(value)):
            raise ValueError(f"condition {problem}")
        return value

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: dict[str, str]) -> dict[str, str]:
        for column, expression in value.items():
            if not _IDENTIFIER_RE.match(column):
                raise ValueError(f"target column {column!r} is not a plain identifier")
            if problem := expression_problem(expression):
                raise ValueError(f"expression for {column!r} {problem}")
        return value

    @model_validator(mode="after")
    def _key_copied_unchanged(self) -> MigrationTask:
        target_key = self.target_key or self.key
        given = self.columns.get(target_key)
        if given is not None and not _is_identity(given, self.key):
            raise ValueError(f"columns.{target_key} must be the key {self.key!r} itself: the key is copied "
                             "unchanged (resume and verification rely on it)")
        return self

    @property
    def target_key_column(self) -> str:
        return self.target_key or self.key

    @property
    def mapping(self) -> dict[str, str]:
        """Target column → expression, the key first (added when the config leaves it out)."""
        key_col = self.target_key_column
        rest = {c: e for c, e in self.columns.items() if c != key_col}
        return {key_col: f"src.`{self.key}`", **rest}

    def fingerprint(self) -> str:
        """Hash of what decides the target rows (not the name, mode or throttle)."""
        data = {"source": [self.source_database, self.source_table], "target": [self.target_database,
                self.target_table], "key": self.key, "condition": self.condition, "columns": self.mapping}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
