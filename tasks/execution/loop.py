"""The step loop: a run's planned steps one after the other, each recorded (cf. Alembic's
``MigrationContext.run_migrations``).

A step whose dependency did not succeed is skipped; any other is *launched* by the caller's launcher (a
cutpoint runs each step as a Prefect task; a rollback and the tests run it in this process), which comes
back into :meth:`StepLoop.run_step`: the step's record is started, its class runs, the record is finished
(a step already done in this execution is not run again). The loop then reads the record once: a step that
did not complete is FAILED (also when Prefect stopped it before it recorded anything); an optional step's
failure is recorded as a WARNING and the loop goes on; a required step's failure stops it.

Records go to a :class:`StepBook`: the execution's rows (:class:`ExecutionSteps`) or, for a rollback that has
no execution of its own yet, memory (:class:`MemorySteps`). The loop knows no orchestrator and no store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from tasks.core.errors import StepFailed, UpgradeFailed
from tasks.core.language import language_of
from tasks.core.masking import mask_text
from tasks.core.statuses import STEP_BLOCKING, STEP_DONE, StepStatus
from tasks.core.steps import StepResult
from tasks.execution.report_text import report_text
from tasks.planning.plan import PlannedStep
from tasks.steps.context import StepContext
from tasks.steps.registry import resolve_step_class
from tasks.store.records import StepRun

if TYPE_CHECKING:
    from tasks.execution.service import ExecutionService
    from tasks.site.resources import SiteResources

Logger = logging.Logger | logging.LoggerAdapter[Any]


class StepBook(Protocol):
    """Where a loop records its steps."""

    def get(self, step_key: str) -> StepRun | None: ...

    def start(self, step: PlannedStep, order: int, metadata: Mapping[str, Any]) -> None: ...

    def finish(self, step_key: str, status: str, result: Mapping[str, Any] | None, error: str | None) -> None: ...

    def skip(self, step: PlannedStep, order: int, reason: str) -> None: ...

    def check_lock(self) -> None:
        """Raise if the run lost its site's lock: the next step does not start."""

    def record_effects(self, run: StepRun | None) -> None:
        """What a launched step leaves beyond its own record (the scripts it applied at the site)."""


@dataclass(frozen=True)
class RunScope:
    """Who, what and where of the run, as every step's context carries it."""

    execution_id: str
    cutpoint: str
    source_version: str
    target_version: str
    site_id: str
    environment: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Launched:
    """What launching one step came to: completed, or why not (and the exception, when the launcher has it)."""

    completed: bool
    message: str = ""
    error: BaseException | None = None
    value: dict[str, Any] | None = None  # what run_step returned, when the launcher has it


#: Runs one step (``loop.run_step(step, order, logger)`` in the end) and says how that went.
Launcher = Callable[["StepLoop", PlannedStep, int], Launched]


@dataclass
class LoopOutcome:
    """Each step's status by key, what launched steps returned, and the required step that stopped the loop."""

    statuses: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: PlannedStep | None = None
    failure: str = ""  # the failed step's recorded error
    error: BaseException | None = None


class StepLoop:
    """The steps of one run over one book.

    Example:
        ```python
        loop = StepLoop(scope, MemorySteps(), resources, allowed_step_modules=(), logger=log)
        outcome = loop.run(steps, in_process)
        ```
    """

    def __init__(self, scope: RunScope, book: StepBook, resources: SiteResources, *,
                 allowed_step_modules: Sequence[str], logger: Logger) -> None:
        self.scope = scope
        self.book = book
        self.resources = resources
        self.allowed_step_modules = tuple(allowed_step_modules)
        self.logger = logger
        self.text = report_text(language_of(resources.profile))
        #: The steps of the run in progress and their statuses so far: a launcher may look ahead (a Prefect
        #: launcher runs consecutive SQL steps in one task run) but decides nothing the loop decides.
        self.steps: Sequence[PlannedStep] = ()
        self.statuses: Mapping[str, str] = {}

    def run(self, steps: Sequence[PlannedStep], launch: Launcher,
            progress: Callable[[float], None] | None = None) -> LoopOutcome:
        """Every step in order until a required one fails; ``progress`` hears the percentage done (by estimate)."""
        outcome = LoopOutcome()
        self.steps, self.statuses = steps, outcome.statuses
        weights = [max(s.estimated_duration or 1, 1) for s in steps]
        for order, step in enumerate(steps):
            blocker = next((d for d in step.depends_on if outcome.statuses.get(d) in STEP_BLOCKING), None)
            if blocker:
                self.book.skip(step, order, self.text["step_blocked"].format(blocker=blocker))
                outcome.statuses[step.key] = StepStatus.SKIPPED
                continue
            launched = launch(self, step, order)
            if launched.value is not None:
                outcome.values[step.key] = launched.value
            status = self._settle(step, order, launched, outcome)
            outcome.statuses[step.key] = status
            if status == StepStatus.FAILED:
                break
            if progress is not None:
                progress(100.0 * sum(weights[: order + 1]) / sum(weights))
        return outcome

    def _settle(self, step: PlannedStep, order: int, launched: Launched, outcome: LoopOutcome) -> str:
        """The step's status from its record after the launch; a launch that did not complete is a failure."""
        run = self.book.get(step.key)
        self.book.record_effects(run)
        if launched.completed and run is not None:
            return run.status
        if run is not None and run.status == StepStatus.FAILED:
            error = run.error_message
        else:  # e.g. a Prefect timeout before the step recorded its failure
            error = launched.message or "step did not complete"
            if run is None:
                self.book.start(step, order, {})
            self.book.finish(step.key, StepStatus.FAILED, None, error)
        if not step.required:
            self.book.finish(step.key, StepStatus.WARNING, None, error)
            self.logger.warning("optional step %s failed; recorded as a warning, going on", step.step_id)
            return StepStatus.WARNING
        outcome.failed, outcome.failure, outcome.error = step, error or "", launched.error
        return StepStatus.FAILED

    def run_step(self, step: PlannedStep, order: int, logger: Logger | None = None) -> dict[str, Any]:
        """Run one step and record it, unless the book says it already finished; raises what the step raised."""
        logger = logger or self.logger
        done = self.book.get(step.key)
        if done is not None and done.status in STEP_DONE:
            return {"status": done.status, "summary": self.text["step_reused"], "reused": True}
        self.book.check_lock()  # lost between steps: this step does not start
        self.book.start(step, order, {"version": step.version, "implementation": step.implementation,
                                      "config_file": step.config_file, "params": step.params,
                                      **({"description": step.description} if step.description else {})})
        self.resources.steps_started.append(step.key)
        cls = resolve_step_class(step.class_name, self.allowed_step_modules).step_class
        assert cls is not None, "plan.require_resolved() guarantees this"
        s, resources = self.scope, self.resources
        context = StepContext(
            execution_id=s.execution_id, cutpoint=s.cutpoint, step_id=step.step_id, step_key=step.key,
            step_name=step.name, version=step.version, source_version=s.source_version,
            target_version=s.target_version, site_id=s.site_id,
            environment=resources.step_environment(s.environment), resources=resources, logger=logger)
        logger.info("step %s (%s) started", step.step_id, step.class_name)
        try:
            result = cls(cls.Params.model_validate(step.params), context).run()
        except Exception as exc:
            found = exc.result if isinstance(exc, StepFailed) and isinstance(exc.result, StepResult) else None
            raw = str(exc) if isinstance(exc, UpgradeFailed) else f"{type(exc).__name__}: {exc}"
            message = mask_text(raw, resources.secrets)
            self.book.finish(step.key, StepStatus.FAILED, found.to_json() if found else None, message)
            logger.error("step %s failed: %s", step.step_id, message)
            raise
        status = result.status if result.status != StepStatus.FAILED else StepStatus.WARNING
        self.book.finish(step.key, status, result.to_json(), None)
        logger.info("step %s %s: %s", step.step_id, status.value, result.summary)
        return result.to_json()


def in_process(loop: StepLoop, step: PlannedStep, order: int) -> Launched:
    """The launcher without an orchestrator: the step runs here and now (no retries, no timeout)."""
    try:
        value = loop.run_step(step, order)
    except Exception as exc:  # noqa: BLE001 - recorded by run_step; the loop decides what it means
        return Launched(completed=False, message=str(exc), error=exc)
    return Launched(completed=True, value=value)


class ExecutionSteps:
    """The book of one execution: its ``step_execution`` rows, written under the run's site lock."""

    def __init__(self, service: ExecutionService, execution_id: str) -> None:
        self.service = service
        self.store = service.store
        self.execution_id = execution_id

    def get(self, step_key: str) -> StepRun | None:
        return self.store.step_run(self.execution_id, step_key)

    def start(self, step: PlannedStep, order: int, metadata: Mapping[str, Any]) -> None:
        self.store.start_step(execution_id=self.execution_id, step_key=step.key, step_id=step.step_id,
                              step_name=step.name, cutpoint=step.cutpoint.value, class_name=step.class_name,
                              order=order, metadata=metadata)

    def finish(self, step_key: str, status: str, result: Mapping[str, Any] | None, error: str | None) -> None:
        self.store.finish_step(execution_id=self.execution_id, step_key=step_key, status=status, result=result,
                               error_message=error)

    def skip(self, step: PlannedStep, order: int, reason: str) -> None:
        self.store.record_skipped_step(execution_id=self.execution_id, step_key=step.key, step_id=step.step_id,
                                       step_name=step.name, cutpoint=step.cutpoint.value,
                                       class_name=step.class_name, order=order, reason=reason)

    def check_lock(self) -> None:
        if self.store.lock is not None:
            self.store.lock.ensure_held()

    def record_effects(self, run: StepRun | None) -> None:
        self.service.record_step(self.execution_id, run)


class MemorySteps:
    """A book kept in memory, for a run with no execution of its own (a rollback, until it gets one)."""

    def __init__(self) -> None:
        self.runs: dict[str, StepRun] = {}

    def get(self, step_key: str) -> StepRun | None:
        return self.runs.get(step_key)

    def start(self, step: PlannedStep, order: int, metadata: Mapping[str, Any]) -> None:
        earlier = self.runs.get(step.key)
        self.runs[step.key] = StepRun(
            step_id=step.step_id, step_key=step.key, status=StepStatus.RUNNING, step_name=step.name,
            cutpoint=step.cutpoint.value, class_name=step.class_name, metadata=dict(metadata), execution_order=order,
            retry_count=earlier.retry_count + 1 if earlier else 0)

    def finish(self, step_key: str, status: str, result: Mapping[str, Any] | None, error: str | None) -> None:
        self.runs[step_key] = replace(self.runs[step_key], status=status, error_message=error,
                                      result=dict(result) if result is not None else None)

    def skip(self, step: PlannedStep, order: int, reason: str) -> None:
        self.start(step, order, {})
        self.finish(step.key, StepStatus.SKIPPED, {"status": StepStatus.SKIPPED, "summary": reason}, None)

    def check_lock(self) -> None:
        return None

    def record_effects(self, run: StepRun | None) -> None:
        return None
