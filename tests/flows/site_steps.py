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


class FlakyParams(StepParams):
    counter: str  # a file counting the attempts
    failures: int = 1  # the first this many attempts fail


class FlakyStep(UpgradeStep):
    """Fails its first ``failures`` attempts (counted in a file), then succeeds: a step worth retrying."""

    Params = FlakyParams

    def run(self) -> StepResult:
        from pathlib import Path

        counter = Path(self.params.counter)  # type: ignore[attr-defined]
        attempt = int(counter.read_text() or 0) + 1 if counter.exists() else 1
        counter.write_text(str(attempt))
        if attempt <= self.params.failures:  # type: ignore[attr-defined]
            raise RuntimeError(f"attempt {attempt} fails")
        return StepResult(summary=f"attempt {attempt} succeeded")
