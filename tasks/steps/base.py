"""What every step is: a parameter model checked at plan time and a ``run`` that returns a result.

A step never reads configs (the plan did) and never prints: it returns a :class:`StepResult`
whose markdown section goes into the cutpoint report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from tasks.steps.context import StepContext


class StepStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


class StepParams(BaseModel):
    """Base of every step's parameter model: unknown fields are errors, values are frozen."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class NoParams(StepParams):
    """For steps that take no fields of their own."""


@dataclass
class StepResult:
    """What a step hands back: status, one-line summary, details for JSON, a markdown section."""

    status: StepStatus = StepStatus.SUCCESS
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    markdown: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status.value, "summary": self.summary, "details": self.details,
                "markdown": self.markdown}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepResult:
        return cls(StepStatus(data["status"]), data.get("summary", ""), data.get("details", {}),
                   data.get("markdown", ""))


class UpgradeStep:
    """Base class of built-in and site step classes.

    Subclasses set ``Params`` (a :class:`StepParams` model for the step's own config fields) and
    implement :meth:`run`. Raising an exception fails the step; Prefect retries it per
    ``retry_count``.
    """

    Params: ClassVar[type[StepParams]] = NoParams
    description: ClassVar[str] = ""

    def __init__(self, params: StepParams, context: StepContext) -> None:
        self.params = params
        self.context = context

    def run(self) -> StepResult:  # pragma: no cover - abstract
        raise NotImplementedError


def static_problems(step_class: type[UpgradeStep], params: StepParams, roots: dict[str, object]) -> list[str]:
    """Checks a step can make before anything runs (files exist, paths stay inside roots)."""
    check = getattr(step_class, "static_checks", None)
    return list(check(params, roots)) if check else []
