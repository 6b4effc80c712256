"""The step loop without Prefect: pure calls with launchers of the test's own, over memory and a real store.

The cutpoint flows run the same loop with Prefect's launcher (a task run per step): tests/flows/
test_cutpoint_flow.py and the deployments' tests drive it through a real Prefect server.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks.core.cutpoints import Cutpoint
from tasks.core.errors import StepFailed
from tasks.core.steps import StepParams, StepResult
from tasks.execution.loop import ExecutionSteps, Launched, MemorySteps, RunScope, StepLoop, in_process
from tasks.execution.service import ExecutionService
from tasks.planning.plan import PlannedStep
from tasks.site.resources import SiteResources
from tasks.steps.base import UpgradeStep

HERE = __name__
RAN: list[str] = []


class SayParams(StepParams):
    text: str = "ok"
    fail: bool = False


class SayStep(UpgradeStep):
    """Says its text; fails (raising, with a secret in the message) when told to."""

    Params = SayParams

    def run(self) -> StepResult:
        RAN.append(self.context.step_id)
        if self.params.fail:  # type: ignore[attr-defined]
            raise StepFailed(f"{self.context.step_id} broke with password hunter2")
        return StepResult(summary=self.params.text)  # type: ignore[attr-defined]


def planned(step_id: str, *, fail: bool = False, required: bool = True, depends_on: tuple[str, ...] = (),
            estimated: int | None = None) -> PlannedStep:
    return PlannedStep(key=f"317500:{step_id}", cutpoint=Cutpoint.PRE_BUSINESS_CHECK, version="3.17.5",
                       version_code=317500, step_id=step_id, name=step_id, class_name=f"{HERE}.SayStep",
                       implementation=f"{HERE}.SayStep", params={"text": f"{step_id} done", "fail": fail},
                       timeout=None, retry_count=0, retry_delay_seconds=0, required=required,
                       estimated_duration=estimated, depends_on=[f"317500:{d}" for d in depends_on],
                       config_file="317500.json", config_fingerprint="f")


@pytest.fixture
def resources(tmp_path: Path) -> Iterator[SiteResources]:
    RAN.clear()
    found = SiteResources(site_id="CN", sql_root=tmp_path, configs_dir=tmp_path, home=tmp_path / "home")
    found.secrets.add("hunter2")
    try:
        yield found
    finally:
        found.close()


def loop_over(book: Any, resources: SiteResources, execution_id: str = "EXEC_LOOP") -> StepLoop:
    scope = RunScope(execution_id=execution_id, cutpoint="pre_business_check", source_version="3.17.0",
                     target_version="3.17.5", site_id="CN")
    return StepLoop(scope, book, resources, allowed_step_modules=(HERE,), logger=logging.getLogger("test"))


def test_an_optional_failure_is_a_warning_its_dependents_are_skipped_and_a_required_one_stops_the_loop(
        resources: SiteResources) -> None:
    book = MemorySteps()
    steps = [planned("a"), planned("optional", fail=True, required=False), planned("after", depends_on=("optional",)),
             planned("b", fail=True), planned("never")]
    outcome = loop_over(book, resources).run(steps, in_process)
    assert outcome.statuses == {"317500:a": "SUCCESS", "317500:optional": "WARNING", "317500:after": "SKIPPED",
                                "317500:b": "FAILED"}
    assert RAN == ["a", "optional", "b"], "a skipped step is not launched, nothing runs after a required failure"
    assert outcome.failed is not None and outcome.failed.step_id == "b"
    assert outcome.failure == "b broke with password ***" and isinstance(outcome.error, StepFailed)
    assert book.runs["317500:optional"].error_message == "optional broke with password ***"
    assert book.runs["317500:after"].summary == "已跳过：依赖的步骤 317500:optional 未成功"
    assert book.runs["317500:a"].summary == "a done" and "317500:never" not in book.runs


def test_a_launch_that_did_not_complete_is_a_failure_even_when_the_step_recorded_nothing(
        resources: SiteResources) -> None:
    def timed_out(loop: StepLoop, step: PlannedStep, order: int) -> Launched:
        return Launched(completed=False, message="Task run exceeded timeout of 5.0 second(s)")

    book = MemorySteps()
    outcome = loop_over(book, resources).run([planned("slow"), planned("next")], timed_out)
    assert outcome.statuses == {"317500:slow": "FAILED"}
    assert outcome.failure == "Task run exceeded timeout of 5.0 second(s)"
    assert (book.runs["317500:slow"].status, book.runs["317500:slow"].error_message) == (
        "FAILED", "Task run exceeded timeout of 5.0 second(s)")


def test_progress_follows_the_estimates_of_the_steps_launched(resources: SiteResources) -> None:
    heard: list[float] = []
    steps = [planned("short", estimated=1), planned("long", estimated=3)]
    loop_over(MemorySteps(), resources).run(steps, in_process, heard.append)
    assert heard == [25.0, 100.0]


def test_a_resume_over_the_store_reuses_done_steps_and_counts_the_failed_ones_attempt(
        tmp_path: Path, resources: SiteResources) -> None:
    service = ExecutionService.open(None, metadata_url=f"sqlite:///{tmp_path / 'metadata.db'}")
    try:
        execution_id = service.store.create_execution(
            source_version="3.17.0", target_version="3.17.5", site_id="CN", cutpoint="pre_business_check",
            environment={}, total_steps=2, flow_run_id=None, plan_fingerprint="x")
        first = loop_over(ExecutionSteps(service, execution_id), resources, execution_id)
        assert first.run([planned("a"), planned("b", fail=True)], in_process).failed is not None
        again = loop_over(ExecutionSteps(service, execution_id), resources, execution_id)
        outcome = again.run([planned("a"), planned("b")], in_process)
        assert outcome.failed is None and RAN == ["a", "b", "b"], "a step done in this execution is not run again"
        runs = {r.step_id: r for r in service.store.step_runs(execution_id)}
        assert [(r.status, r.retry_count) for r in runs.values()] == [("SUCCESS", 0), ("SUCCESS", 1)]
        assert outcome.values["317500:a"]["reused"] is True
    finally:
        service.close()


def test_rollback_steps_are_planned_and_checked_before_the_first_runs(tmp_path: Path) -> None:
    import json

    from tasks.core.errors import InputError
    from tasks.core.settings import Settings
    from tasks.execution.rollback import rollback_plan

    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "317500.json").write_text(json.dumps({"version": "317500", "rollback_steps": {"pre_rollback": [
        {"id": "say", "class_name": f"{HERE}.SayStep", "text": "undone"},
        {"id": "bad", "class_name": f"{HERE}.SayStep", "surprise": 1}]}}), encoding="utf-8")
    settings = Settings(configs=configs, step_modules=HERE)
    with pytest.raises(InputError, match=r"rollback_steps\.pre_rollback\[1\]\.surprise: unknown field"):
        rollback_plan(settings, "CN", "3.17.0", "3.17.5")  # the plan, before the loop: nothing ran
    (configs / "317500.json").write_text(json.dumps({"version": "317500", "rollback_steps": {"pre_rollback": [
        {"id": "say", "class_name": f"{HERE}.SayStep", "text": "undone"}]}}), encoding="utf-8")
    [step], forced = rollback_plan(settings, "CN", "3.17.0", "3.17.5")
    assert (step.key, step.cutpoint, step.required, step.params, forced) == (
        "317500:say", Cutpoint.PRE_UPGRADE_PROCESS, True, {"text": "undone", "fail": False}, [])


def test_rollback_steps_run_newest_version_first_and_rollback_supported_false_refuses(tmp_path: Path) -> None:
    import json

    from tasks.core.errors import Refused
    from tasks.core.settings import Settings
    from tasks.execution.rollback import rollback_plan

    configs = tmp_path / "configs"
    configs.mkdir()
    for code in (317001, 317002, 317500):
        base = {"version_type": "patch", "base_version": "317000"} if code != 317500 else {}
        undo = {"startup_pre_process": [{"id": f"undo_{code}", "class_name": f"{HERE}.SayStep"}],
                "pre_upgrade_process": [{"id": f"restore_{code}", "class_name": f"{HERE}.SayStep"}]}
        steps = {"startup_pre_process": [{"id": "s", "class_name": f"{HERE}.SayStep",
                                          **({"rollback_supported": False} if code == 317002 else {})}]}
        (configs / f"{code}.json").write_text(json.dumps({"version": str(code), **base, "upgrade_steps": steps,
                                                          "rollback_steps": undo}), encoding="utf-8")
    settings = Settings(configs=configs, step_modules=HERE)
    with pytest.raises(Refused, match=r"(?s)317002\.json: step 's'.*--force --reason"):
        rollback_plan(settings, "CN", "3.17.0", "3.17.5")
    with pytest.raises(Refused):
        rollback_plan(settings, "CN", "3.17.0", "3.17.5", force=True)  # forcing needs a reason
    steps, forced = rollback_plan(settings, "CN", "3.17.0", "3.17.5", force=True, reason="the vendor agreed")
    assert [s.step_id for s in steps] == ["undo_317500", "restore_317500", "undo_317002", "restore_317002",
                                          "undo_317001", "restore_317001"], "undo runs backwards"
    assert len(forced) == 1 and "317002.json: step 's'" in forced[0]
