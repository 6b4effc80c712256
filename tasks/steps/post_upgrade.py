"""PostUpgradeStep (the seed's ``PostUpgradeProcessStep``): the configured parts of post_upgrade, in order.

The seed declares one step, "升级后处理", doing all of chapter 1 section 5. This composite runs
the parts a config gives — ``data_migration``, then ``log_cleanup``, then ``resource_release`` —
each with the same fields as its own step class, and stops at the first part that fails. Every
part is safe to run again (the migration resumes from its checkpoint, cleanups are idempotent),
so a retried or resumed step simply continues.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import model_validator

from tasks.cleanup.logs_step import LogCleanupParams, LogCleanupStep
from tasks.cleanup.release_step import ResourceReleaseParams, ResourceReleaseStep
from tasks.core.errors import StepFailed
from tasks.core.language import words
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepParams, StepResult
from tasks.migration.step import AsyncDataMigrationStep, DataMigrationParams
from tasks.steps.base import UpgradeStep

PARTS: tuple[tuple[str, type[UpgradeStep]], ...] = (
    ("data_migration", AsyncDataMigrationStep),
    ("log_cleanup", LogCleanupStep),
    ("resource_release", ResourceReleaseStep),
)

#: Each part's title in the report, in the site's language.
TITLES = {
    "zh": {"data_migration": "数据异步迁移", "log_cleanup": "日志清理", "resource_release": "资源释放"},
    "en": {"data_migration": "Async data migration", "log_cleanup": "Log cleanup",
           "resource_release": "Resource release"},
}
#: A part's line of the summary, and what joins them, in the site's language.
SUMMARY = {"zh": {"part": "{title}：{summary}", "sep": "；"}, "en": {"part": "{name}: {summary}", "sep": "; "}}


class PostUpgradeParams(StepParams):
    data_migration: DataMigrationParams | None = None
    log_cleanup: LogCleanupParams | None = None
    resource_release: ResourceReleaseParams | None = None

    @model_validator(mode="after")
    def _something(self) -> PostUpgradeParams:
        if not any(getattr(self, name) for name, _cls in PARTS):
            raise ValueError("post-upgrade processing needs at least one of data_migration, log_cleanup, "
                             "resource_release")
        return self


class PostUpgradeStep(UpgradeStep):
    """Runs the configured post-upgrade parts in order: migration, log cleanup, resource release."""

    Params = PostUpgradeParams
    description = "Post-upgrade processing: async migration, log cleanup, resource release"
    params: PostUpgradeParams

    def run(self) -> StepResult:
        titles = words(TITLES, self.context.language)
        done: list[tuple[str, str, StepResult]] = []
        for name, step_class in PARTS:
            title = titles[name]
            part_params = getattr(self.params, name)
            if part_params is None:
                continue
            run: Callable[[], StepResult] = step_class(part_params, self.context).run
            try:
                done.append((name, title, run()))
            except StepFailed as exc:
                failed = exc.result if isinstance(exc.result, StepResult) else StepResult(StepStatus.FAILED, str(exc))
                done.append((name, title, failed))
                raise StepFailed(f"{name}: {exc}", combine(done, self.context.language)) from exc
        return combine(done, self.context.language)


def combine(parts: list[tuple[str, str, StepResult]], language: str | None = None) -> StepResult:
    """One result: the worst status, the summaries joined in ``language``, a markdown section and details per part."""
    order = [StepStatus.SUCCESS, StepStatus.WARNING, StepStatus.FAILED]
    status = max((r.status for _n, _t, r in parts), key=lambda s: order.index(s) if s in order else 0)
    w = words(SUMMARY, language)
    summary = w["sep"].join(w["part"].format(name=name, title=title, summary=r.summary) for name, title, r in parts)
    markdown = "\n\n".join(f"### {title}\n\n{r.markdown}" for _n, title, r in parts)
    details = {name: {"status": r.status.value, "summary": r.summary, **r.details} for name, _t, r in parts}
    return StepResult(status=status, summary=summary, details=details, markdown=markdown)
