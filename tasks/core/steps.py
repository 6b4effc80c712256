"""What every step is made of that other layers see: its parameter model base and its result.

The step classes themselves (with their ``run``) live with their capability; the plan validates a
step's fields with its ``Params`` and the reports read its :class:`StepResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from tasks.core.statuses import StepStatus


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
