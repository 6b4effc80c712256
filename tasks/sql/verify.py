"""Integrity checks after the scripts: a query's value against an expectation or another database.

Each check is declared in the step (reviewed like code): a scalar query on a logical database, and
either an expected value with a comparison, or the same comparison against a query on a second
database ("orders in ft_db equals orders synced to middle_db").
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from tasks.core.steps import StepParams

if TYPE_CHECKING:
    from sqlalchemy import Engine

_OPS = {"==": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge, "<": operator.lt,
        "<=": operator.le}


class QueryRef(StepParams):
    database: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    sql: str = Field(min_length=1)


class VerifyCheck(StepParams):
    """``sql`` on ``database`` compared (``op``) with ``expect`` or with ``compare_to``'s value."""

    name: str = Field(min_length=1)
    database: str = Field(default="ft_db", pattern=r"^[a-z][a-z0-9_]*$")
    sql: str = Field(min_length=1)
    op: Literal["==", "!=", ">", ">=", "<", "<="] = "=="
    expect: int | float | str | None = None
    compare_to: QueryRef | None = None

    @model_validator(mode="after")
    def _one_reference(self) -> VerifyCheck:
        if (self.expect is None) == (self.compare_to is None):
            raise ValueError("give exactly one of 'expect' or 'compare_to'")
        return self


@dataclass
class VerifyOutcome:
    name: str
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}

    def describe(self) -> str:
        return f"{self.name}: {self.detail}"


def _scalar(engine_for: Callable[[str], Engine], database: str, sql: str) -> Any:
    from sqlalchemy import text

    with engine_for(database).connect() as conn:
        return conn.execute(text(sql)).scalar()


def _comparable(a: Any, b: Any) -> tuple[Any, Any]:
    try:
        return float(a), float(b)
    except (TypeError, ValueError):
        return str(a), str(b)


def run_checks(checks: list[VerifyCheck], engine_for: Callable[[str], Engine]) -> list[VerifyOutcome]:
    """Each check's query on its logical database (``engine_for`` gives the engine of one)."""
    out = []
    for check in checks:
        try:
            value = _scalar(engine_for, check.database, check.sql)
            other = check.expect if check.compare_to is None else _scalar(
                engine_for, check.compare_to.database, check.compare_to.sql)
        except Exception as exc:  # a broken check fails, with its error
            out.append(VerifyOutcome(check.name, False, f"query failed: {str(exc).splitlines()[0][:300]}"))
            continue
        a, b = _comparable(value, other)
        passed = _OPS[check.op](a, b)
        where = f"{check.compare_to.database}" if check.compare_to else "expected"
        out.append(VerifyOutcome(check.name, passed, f"{check.database}={value!r} {check.op} {where}={other!r}"))
    return out
