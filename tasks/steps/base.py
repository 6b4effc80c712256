"""What every step is: a parameter model checked at plan time and a ``run`` that returns a result.

A step never reads configs (the plan did) and never prints: it returns a :class:`StepResult`
whose markdown section goes into the cutpoint report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from tasks.core.steps import NoParams, StepParams, StepResult

if TYPE_CHECKING:
    from tasks.steps.context import StepContext


class UpgradeStep:
    """Base class of built-in and site step classes.

    Subclasses set ``Params`` (a :class:`StepParams` model for the step's own config fields) and
    implement :meth:`run`. Raising an exception fails the step; Prefect retries it per
    ``retry_count``.
    """

    Params: ClassVar[type[StepParams]] = NoParams
    description: ClassVar[str] = ""
    # writes ClickHouse events: the run starts the event log before its first step, so the engine's
    # boot (about a second of CPU when embedded) overlaps the run's start, not the step's statements
    writes_events: ClassVar[bool] = False
    # heavy work for a serving site (index rebuilds, data backups): runs in the site's off-peak window,
    # or outside it only with a waiver (tasks.core.off_peak)
    off_peak: ClassVar[bool] = False

    @classmethod
    def needs_off_peak(cls, params: Mapping[str, Any]) -> bool:
        """Whether this step, with these (planned) parameters, is heavy work for the off-peak window."""
        return cls.off_peak

    def __init__(self, params: StepParams, context: StepContext) -> None:
        self.params = params
        self.context = context

    def run(self) -> StepResult:  # pragma: no cover - abstract
        raise NotImplementedError


def static_problems(step_class: type[UpgradeStep], params: StepParams, roots: dict[str, object]) -> list[str]:
    """Checks a step can make before anything runs (files exist, paths stay inside roots)."""
    check = getattr(step_class, "static_checks", None)
    return list(check(params, roots)) if check else []
