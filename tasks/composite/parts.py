"""Composite steps: one step of a config that runs the parts the config gives, each part the same step class
a config may also name as a step of its own (with finer retries, timeouts and resume).

One semantics for every composite: the configured parts run in the composite's order; the first part that
fails (whatever it raises) stops the rest and fails the composite with every part's report so far, the parts
it stopped marked as not run. :func:`combine` makes the one result: the worst status, a summary line each, a
markdown section each (the part's own, or its summary when it failed before reporting), details per part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import model_validator

from tasks.core.errors import StepFailed
from tasks.core.language import words
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepParams, StepResult
from tasks.steps.base import UpgradeStep, static_problems

#: The mark of a part the failure stopped, a part's line of the summary and what joins them, per language.
TEXT = {
    "zh": {"not_run": "未执行", "part": "{title}：{summary}", "sep": "；"},
    "en": {"not_run": "NOT RUN", "part": "{key}: {summary}", "sep": "; "},
}

#: One part's outcome: (config field, title in the report's language, its result).
Done = tuple[str, str, StepResult]


class CompositeParams(StepParams):
    """A field per part, each the part's own parameter model; a part left out is skipped, but not all of them."""

    #: What a config with no part is told; ``{fields}``: the parts, in order.
    NO_PART: ClassVar[str] = "configure at least one of: {fields}"

    @model_validator(mode="after")
    def _some_part(self) -> CompositeParams:
        fields = list(type(self).model_fields)
        if all(getattr(self, name) is None for name in fields):
            raise ValueError(self.NO_PART.format(fields=", ".join(fields)))
        return self


class CompositeStep(UpgradeStep):
    """Runs the configured parts in ``PARTS`` order; the first failure stops the rest.

    Subclasses set ``PARTS`` (config field → step class, in order), ``TITLES`` (per language, per field) and
    ``Params`` (a :class:`CompositeParams`).
    """

    PARTS: ClassVar[tuple[tuple[str, type[UpgradeStep]], ...]] = ()
    TITLES: ClassVar[dict[str, dict[str, str]]] = {}

    def run(self) -> StepResult:
        titles = words(self.TITLES, self.context.language)
        configured = [(key, cls, titles[key]) for key, cls in self.PARTS if getattr(self.params, key) is not None]
        done: list[Done] = []
        for position, (key, cls, title) in enumerate(configured):
            self.context.logger.info("%s part %d/%d: %s", self.context.cutpoint, position + 1, len(configured), key)
            try:
                result = cls(getattr(self.params, key), self.context).run()
            except Exception as exc:
                found = exc.result if isinstance(exc, StepFailed) and isinstance(exc.result, StepResult) else None
                message = str(exc) if isinstance(exc, StepFailed) else f"{type(exc).__name__}: {exc}"
                done.append((key, title, found or StepResult(StepStatus.FAILED, message)))
                not_run = [(k, t) for k, _, t in configured[position + 1:]]
                combined = self._headed(combine(done, self.context.language, not_run=not_run), title)
                raise StepFailed(f"{key}: {message}", combined) from exc
            done.append((key, title, result))
        return self._headed(combine(done, self.context.language), None)

    def headline(self, failed_title: str | None) -> str | None:
        """A line above the parts' sections (e.g. a verdict the requirements ask for); ``failed_title``: the
        title of the part that failed, None when none did. None: no line."""
        return None

    def _headed(self, result: StepResult, failed_title: str | None) -> StepResult:
        line = self.headline(failed_title)
        if line:
            result.markdown = f"{line}\n\n{result.markdown}" if result.markdown else line
        return result

    @classmethod
    def needs_off_peak(cls, params: Mapping[str, Any]) -> bool:
        """Heavy when a configured part is (a backup part, an index part)."""
        return any(params.get(key) is not None and part.needs_off_peak(params[key]) for key, part in cls.PARTS)

    @classmethod
    def static_checks(cls, params: StepParams, roots: dict[str, Path]) -> list[str]:
        problems = []
        for key, step_class in cls.PARTS:
            part = getattr(params, key)
            if part is not None:
                problems += [f"{key}: {p}" for p in static_problems(step_class, part, roots)]
        return problems


def combine(parts: Sequence[Done], language: str | None = None, *,
            not_run: Sequence[tuple[str, str]] = ()) -> StepResult:
    """One result from the parts' results, in the report's ``language``: the worst status, a summary line each,
    a section each; ``not_run``: (field, title) of the parts a failure stopped."""
    w = words(TEXT, language)
    statuses = [r.status for _, _, r in parts]
    status = (StepStatus.FAILED if StepStatus.FAILED in statuses
              else StepStatus.WARNING if StepStatus.WARNING in statuses else StepStatus.SUCCESS)
    sections = [f"#### {title} — {r.status.value}\n\n{r.markdown or r.summary}".rstrip() for _, title, r in parts]
    sections += [f"#### {title} — {w['not_run']}" for _, title in not_run]
    details: dict[str, Any] = {key: {"status": r.status.value, "summary": r.summary, **r.details}
                               for key, _, r in parts}
    if not_run:
        details["not_run"] = [key for key, _ in not_run]
    return StepResult(status=status,
                      summary=w["sep"].join(w["part"].format(key=key, title=title, summary=r.summary)
                                            for key, title, r in parts),
                      details=details, markdown="\n\n".join(sections))
