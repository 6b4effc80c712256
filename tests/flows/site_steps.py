"""A site's own step classes, loaded by dotted path in tests of the allowed-module rule."""

from __future__ import annotations

from pathlib import Path

from tasks.core.steps import StepParams, StepResult
from tasks.steps.base import UpgradeStep


class EchoParams(StepParams):
    message: str = "hello"


class EchoStep(UpgradeStep):
    Params = EchoParams

    def run(self) -> StepResult:
        return StepResult(summary=self.params.message)  # type: ignore[attr-defined]


class SettingsRecordParams(StepParams):
    record: str


class SettingsRecordStep(UpgradeStep):
    """Writes the configs folder its context's settings name: what the run gave, not what the environment says."""

    Params = SettingsRecordParams

    def run(self) -> StepResult:
        Path(self.params.record).write_text(str(self.context.settings.configs), encoding="utf-8")  # type: ignore[attr-defined]
        return StepResult(summary="recorded")
