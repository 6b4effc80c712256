"""PreUpgradeProcessStep: the seed's single 前置升级处理 step — backup, config preprocessing, service status.

The seed's baseline config names one ``com.ft.upgrade.steps.PreUpgradeProcessStep`` for the whole of
cutpoint 2 (requirements chapter 1 §2). This composite runs the parts its config gives, in the seed's
order — ``backup`` (非阻塞备份), ``config_files`` (配置文件预处理), ``services`` (服务状态检查) — each with
the fields of its own step class, and stops at the first that fails. Written without fields, it follows
its convention (:mod:`tasks.steps.conventions`): ft_db and middle_db and the site's config_dir backed up,
the ``*.tpl`` templates there rendered, the site's services and databases checked. Its report ends with
the seed's 停服前准备报告: ready to stop, or not.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import model_validator

from tasks.backup.step import BackupParams, BackupStep
from tasks.config_files.step import ConfigPreprocessParams, ConfigPreprocessStep
from tasks.core.errors import StepFailed
from tasks.core.language import words
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepParams, StepResult
from tasks.health.step import HealthParams, ServiceHealthCheckStep
from tasks.steps.base import UpgradeStep, static_problems
from tasks.steps.post_process import combine

#: (config field, step class), in the seed's order.
PARTS: tuple[tuple[str, type[UpgradeStep]], ...] = (
    ("backup", BackupStep),
    ("config_files", ConfigPreprocessStep),
    ("services", ServiceHealthCheckStep),
)

TEXT = {
    "zh": {"backup": "非阻塞备份", "config_files": "配置文件预处理", "services": "服务状态检查",
           "ready": "**停服前准备报告**：备份、配置预处理与服务状态检查均已完成，可以停服升级。",
           "not_ready": "**停服前准备报告**：{part}未通过，不可停服；处理后重新执行本切点。"},
    "en": {"backup": "Backup", "config_files": "Config preprocessing", "services": "Service status",
           "ready": "**Ready to stop**: backup, config preprocessing and service status are done; the services "
                    "may be stopped for the upgrade.",
           "not_ready": "**Not ready to stop**: {part} did not pass; fix it and run this cutpoint again."},
}


class PreUpgradeProcessParams(StepParams):
    """Each part takes exactly the fields of its own step; leave a part out to skip it."""

    backup: BackupParams | None = None
    config_files: ConfigPreprocessParams | None = None
    services: HealthParams | None = None

    @model_validator(mode="after")
    def _something(self) -> PreUpgradeProcessParams:
        if all(getattr(self, key) is None for key, _ in PARTS):
            raise ValueError(f"configure at least one of: {', '.join(key for key, _ in PARTS)} "
                             "(or none of the step's fields, for its convention)")
        return self


class PreUpgradeProcessStep(UpgradeStep):
    """Runs the configured pre-upgrade parts in order; the first failure stops the rest."""

    Params = PreUpgradeProcessParams
    description = "Pre-upgrade process: non-blocking backup, config-file preprocessing, service status"
    params: PreUpgradeProcessParams

    def run(self) -> StepResult:
        language = self.context.language
        w = words(TEXT, language)
        configured = [(key, cls, w[key]) for key, cls in PARTS if getattr(self.params, key) is not None]
        done: list[tuple[str, str, StepResult]] = []
        for position, (key, cls, title) in enumerate(configured):
            self.context.logger.info("pre_upgrade_process part %d/%d: %s", position + 1, len(configured), key)
            try:
                done.append((key, title, cls(getattr(self.params, key), self.context).run()))
            except Exception as exc:
                found = exc.result if isinstance(exc, StepFailed) and isinstance(exc.result, StepResult) else None
                message = str(exc) if isinstance(exc, StepFailed) else f"{type(exc).__name__}: {exc}"
                done.append((key, title, found or StepResult(StepStatus.FAILED, message)))
                result = combine(done, [(k, t) for k, _, t in configured[position + 1:]], language)
                result.markdown = w["not_ready"].format(part=title) + "\n\n" + result.markdown
                raise StepFailed(f"{key}: {message}", result) from exc
        result = combine(done, [], language)
        result.markdown = w["ready"] + "\n\n" + result.markdown
        return result

    @classmethod
    def static_checks(cls, params: PreUpgradeProcessParams, roots: dict[str, Path]) -> list[str]:
        return [f"{key}: {p}" for key, step_class in PARTS if (part := getattr(params, key)) is not None
                for p in static_problems(step_class, part, roots)]
