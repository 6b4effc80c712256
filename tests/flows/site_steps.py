"""A site's own step class, loaded by dotted path in tests of the allowed-module rule."""

from __future__ import annotations

from tasks.core.steps import StepParams, StepResult
from tasks.steps.base import UpgradeStep


class EchoParams(StepParams):
    message: str = "hello"


class EchoStep(UpgradeStep):
    Params = EchoParams

    def run(self) -> StepResult:
        return StepResult(summary=self.params.message)  # type: ignore[attr-defined]
