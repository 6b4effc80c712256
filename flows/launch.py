"""The launcher of a cutpoint run's steps: a step as a task run (its retries, timeout and cached result),
or consecutive SQL steps as one task run (a task run costs tens of milliseconds; a chain of seventy one-file
releases paid that seventy times while the services were down)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from prefect.utilities.annotations import quote

from tasks.core.statuses import STEP_DONE
from tasks.execution.loop import Launched, StepLoop
from tasks.planning.plan import PlannedStep


def _step_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Prefect's cache sits on top of the ledger: same execution + same step + same params."""
    step: PlannedStep = parameters["step"]
    return f"ft-step-{parameters['execution_id']}-{step.key}-{step.config_fingerprint}"


@task(persist_result=True, cache_key_fn=_step_cache_key, log_prints=False)
def run_step(step: PlannedStep, execution_id: str, order: int, loop: StepLoop) -> dict[str, Any]:
    """Run one step, unless the ledger says it already finished in this execution."""
    return loop.run_step(step, order, get_run_logger())


def launch_task(loop: StepLoop, step: PlannedStep, order: int) -> Launched:
    """The launcher: one step as a task run, with the step's retries and timeout."""
    configured = run_step.with_options(
        name=step.step_id, task_run_name=f"{step.step_id} ({step.version})",
        retries=step.retry_count, retry_delay_seconds=step.retry_delay_seconds, timeout_seconds=step.timeout)
    # the loop is quoted: Prefect would otherwise walk it (the resources, the store) as a parameter
    state = configured(step, loop.scope.execution_id, order, quote(loop), return_state=True)
    return Launched(completed=state.is_completed(), message=state.message or "")


@dataclass
class _Group:
    """Consecutive SQL steps run by one task run: what each came to, and how far the task got."""

    members: list[tuple[PlannedStep, int]]
    results: dict[str, Launched] = field(default_factory=dict)
    reached: int = -1


@task(cache_policy=NO_CACHE, log_prints=False)
def run_sql_steps(group: _Group, loop: StepLoop) -> None:
    """Consecutive SQL steps, each recorded and shown (its statements' task runs, its log lines, its table) as
    when it has a task run of its own; the first failure ends the task run, failed."""
    logger = get_run_logger()
    for index, (step, order) in enumerate(group.members):
        group.reached = index
        try:
            value = loop.run_step(step, order, logger)
        except Exception as exc:
            group.results[step.key] = Launched(completed=False, message=str(exc), error=exc)
            raise
        group.results[step.key] = Launched(completed=True, value=value)


class TaskLauncher:
    """The launcher of a cutpoint run: a step as a task run with its retries and timeout
    (:func:`launch_task`); a run of consecutive SQL steps without retries as one task run.

    A task run costs the engine tens of milliseconds (contexts, states, a persisted result); a chain of
    seventy one-file releases paid that seventy times while the services were down. Within the group each
    step is still its own record, report section and statement task runs; the group's timeout is the sum of
    its steps' (every statement has its own timeout on the server). Which steps ran, and their order, is the
    loop's, as before: the group stops at the first failure and the loop settles every step as it comes."""

    def __init__(self) -> None:
        self._ready: dict[str, Launched] = {}

    def __call__(self, loop: StepLoop, step: PlannedStep, order: int) -> Launched:
        if step.key in self._ready:
            return self._ready.pop(step.key)
        members = self._group(loop, step, order)
        if len(members) < 2:
            return launch_task(loop, step, order)
        group = _Group(members)
        timeouts = [m.timeout for m, _ in members]
        first, last = members[0][0], members[-1][0]
        configured = run_sql_steps.with_options(
            name="sql-steps", task_run_name=f"{first.step_id} … {last.step_id} ({len(members)} SQL steps)",
            timeout_seconds=None if None in timeouts else sum(t or 0 for t in timeouts))
        state = configured(quote(group), quote(loop), return_state=True)
        first_result = Launched(completed=False, message=state.message or "step did not start")
        for index, (member, _) in enumerate(members[: group.reached + 1]):
            found = group.results.get(member.key)
            if found is None:  # the task run ended (a timeout, a crash) before this step said how it went
                found = Launched(completed=False, message=state.message or "step did not complete")
            if index:
                self._ready[member.key] = found
            else:
                first_result = found
        return first_result

    @staticmethod
    def _group(loop: StepLoop, step: PlannedStep, order: int) -> list[tuple[PlannedStep, int]]:
        """``step`` and the SQL steps right after it that can share its task run."""
        members: list[tuple[PlannedStep, int]] = []
        done = {key for key, status in loop.statuses.items() if status in STEP_DONE}
        for position, candidate in enumerate(loop.steps[order:], start=order):
            if not _groupable(loop, candidate) or not set(candidate.depends_on) <= done:
                break
            members.append((candidate, position))
            done.add(candidate.key)  # a later member runs only when this one succeeded (the group stops)
        return members


def _groupable(loop: StepLoop, step: PlannedStep) -> bool:
    """A SQL step without retries (a retry is a task run's own)."""
    from tasks.sql.step import SqlScriptStep
    from tasks.steps.registry import resolve_step_class

    if step.retry_count:
        return False
    found = resolve_step_class(step.class_name, loop.allowed_step_modules).step_class
    return found is not None and issubclass(found, SqlScriptStep)
