"""StartupPostProcessStep: the seed's single 启动后处理 step, running the configured parts in order.

The seed's baseline config names one ``com.ft.upgrade.steps.StartupPostProcessStep`` for the whole
cutpoint, so this composite runs whichever parts its config gives, in the requirements' order:
resource packages → cache rebuild → index optimization → health checks → smoke tests. Each part is
the same class a config can also name as a step of its own (finer retries, timeouts and resume);
the first part that fails stops the rest and fails the step with every part's report so far.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import model_validator

from tasks.cache.step import CacheRebuildParams, CacheRebuildStep
from tasks.core.errors import StepFailed
from tasks.core.language import words
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepParams, StepResult
from tasks.health.smoke_step import SmokeParams, SmokeTestStep
from tasks.health.step import HealthParams, ServiceHealthCheckStep
from tasks.indexes.step import IndexOptimizationStep, IndexOptimizeParams
from tasks.packages.step import ResourcePackageImportStep, ResourcePackageParams
from tasks.steps.base import UpgradeStep, static_problems

#: (config field, step class), in the order the requirements list the work.
PARTS: tuple[tuple[str, type[UpgradeStep]], ...] = (
    ("resource_packages", ResourcePackageImportStep),
    ("cache", CacheRebuildStep),
    ("indexes", IndexOptimizationStep),
    ("health", ServiceHealthCheckStep),
    ("smoke", SmokeTestStep),
)

#: Each part's title in the report, the mark of a part the failure stopped, and a part's line of the summary,
#: in the site's language.
TEXT = {
    "zh": {"resource_packages": "资源包导入", "cache": "缓存重建", "indexes": "索引优化", "health": "服务健康检查",
           "smoke": "冒烟测试", "not_run": "未执行", "part": "{title}：{summary}", "sep": "；"},
    "en": {"resource_packages": "Resource packages", "cache": "Cache rebuild", "indexes": "Index optimization",
           "health": "Health checks", "smoke": "Smoke tests", "not_run": "NOT RUN", "part": "{key}: {summary}",
           "sep": "; "},
}


class StartupPostProcessParams(StepParams):
    """Each part takes exactly the fields of its own step; leave a part out to skip it."""

    resource_packages: ResourcePackageParams | None = None
    cache: CacheRebuildParams | None = None
    indexes: IndexOptimizeParams | None = None
    health: HealthParams | None = None
    smoke: SmokeParams | None = None

    @model_validator(mode="after")
    def _something(self) -> StartupPostProcessParams:
        if all(getattr(self, key) is None for key, _ in PARTS):
            raise ValueError(f"configure at least one of: {', '.join(key for key, _ in PARTS)}")
        return self


class StartupPostProcessStep(UpgradeStep):
    """Runs the configured post-start parts in order; the first failure stops the rest."""

    Params = StartupPostProcessParams
    description = "Startup post-process: resource packages, cache rebuild, index optimization, health, smoke tests"
    params: StartupPostProcessParams

    def run(self) -> StepResult:
        w = words(TEXT, self.context.language)
        configured = [(key, cls, w[key]) for key, cls in PARTS if getattr(self.params, key) is not None]
        done: list[tuple[str, str, StepResult]] = []
        for position, (key, cls, title) in enumerate(configured):
            self.context.logger.info("startup_post_process part %d/%d: %s", position + 1, len(configured), key)
            try:
                result = cls(getattr(self.params, key), self.context).run()
            except Exception as exc:
                found = exc.result if isinstance(exc, StepFailed) and isinstance(exc.result, StepResult) else None
                message = str(exc) if isinstance(exc, StepFailed) else f"{type(exc).__name__}: {exc}"
                done.append((key, title, found or StepResult(StepStatus.FAILED, message)))
                not_run = [(k, t) for k, _, t in configured[position + 1:]]
                raise StepFailed(f"{key}: {message}", combine(done, not_run, self.context.language)) from exc
            done.append((key, title, result))
        return combine(done, [], self.context.language)

    @classmethod
    def static_checks(cls, params: StartupPostProcessParams, roots: dict[str, Path]) -> list[str]:
        problems = []
        for key, step_class in PARTS:
            part = getattr(params, key)
            if part is not None:
                problems += [f"{key}: {p}" for p in static_problems(step_class, part, roots)]
        return problems


def combine(parts: list[tuple[str, str, StepResult]], not_run: list[tuple[str, str]],
            language: str | None = None) -> StepResult:
    """One result from the parts' results: worst status, a summary line each, a markdown section each.

    A section is the part's own markdown; the part's summary stands in only when a part left no markdown
    (it failed before reporting). Both are in the report's ``language``, as is the joined summary.
    """
    w = words(TEXT, language)
    statuses = [r.status for _, _, r in parts]
    status = (StepStatus.FAILED if StepStatus.FAILED in statuses
              else StepStatus.WARNING if StepStatus.WARNING in statuses else StepStatus.SUCCESS)
    sections = [f"#### {title} — {r.status.value}\n\n{r.markdown or r.summary}".rstrip() for _, title, r in parts]
    sections += [f"#### {title} — {w['not_run']}" for _, title in not_run]
    details: dict[str, Any] = {key: {"status": r.status.value, "summary": r.summary, **r.details}
                               for key, _, r in parts}
    details["not_run"] = [key for key, _ in not_run]
    return StepResult(status=status,
                      summary=w["sep"].join(w["part"].format(key=key, title=title, summary=r.summary)
                                            for key, title, r in parts),
                      details=details, markdown="\n\n".join(sections))
