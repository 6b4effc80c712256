"""A site's own step class, loaded by dotted path in tests of the allowed-module rule."""

from __future__ import annotations

from tasks.steps.base import StepParams, StepResult, UpgradeStep


class EchoParams(StepParams):
    message: str = "hello"


class EchoStep(UpgradeStep):
    Params = EchoParams

    def run(self) -> StepResult:
        return StepResult(summary=self.params.message)  # type: ignore[attr-defined]
