"""PreUpgradeProcessStep: the seed's single 前置升级处理 step — backup, config preprocessing, service status.

The seed's baseline config names one ``com.ft.upgrade.steps.PreUpgradeProcessStep`` for the whole of
cutpoint 2 (requirements chapter 1 §2). This composite runs the parts its config gives, in the seed's
order — ``backup`` (非阻塞备份), ``config_files`` (配置文件预处理), ``services`` (服务状态检查) — each with
the fields of its own step class, and stops at the first that fails (:mod:`tasks.composite.parts`). Written
without fields, it follows its convention (:mod:`tasks.planning.conventions`): ft_db and middle_db and the site's
config_dir backed up, the ``*.tpl`` templates there rendered, the site's services and databases checked. Its
report starts with the seed's 停服前准备报告: ready to stop, or not.
"""

from __future__ import annotations

from tasks.backup.step import BackupParams, BackupStep
from tasks.composite.parts import CompositeParams, CompositeStep
from tasks.config_files.step import ConfigPreprocessParams, ConfigPreprocessStep
from tasks.core.language import words
from tasks.health.step import HealthParams, ServiceHealthCheckStep

#: The verdict above the parts' sections, per language.
TEXT = {
    "zh": {"ready": "**停服前准备报告**：备份、配置预处理与服务状态检查均已完成，可以停服升级。",
           "not_ready": "**停服前准备报告**：{part}未通过，不可停服；处理后重新执行本切点。"},
    "en": {"ready": "**Ready to stop**: backup, config preprocessing and service status are done; the services "
                    "may be stopped for the upgrade.",
           "not_ready": "**Not ready to stop**: {part} did not pass; fix it and run this cutpoint again."},
}


class PreUpgradeProcessParams(CompositeParams):
    """Each part takes exactly the fields of its own step; leave a part out to skip it."""

    NO_PART = "configure at least one of: {fields} (or none of the step's fields, for its convention)"

    backup: BackupParams | None = None
    config_files: ConfigPreprocessParams | None = None
    services: HealthParams | None = None


class PreUpgradeProcessStep(CompositeStep):
    """Runs the configured pre-upgrade parts in order; the first failure stops the rest."""

    Params = PreUpgradeProcessParams
    description = "Pre-upgrade process: non-blocking backup, config-file preprocessing, service status"
    params: PreUpgradeProcessParams
    #: (config field, step class), in the seed's order.
    PARTS = (
        ("backup", BackupStep),
        ("config_files", ConfigPreprocessStep),
        ("services", ServiceHealthCheckStep),
    )
    TITLES = {
        "zh": {"backup": "非阻塞备份", "config_files": "配置文件预处理", "services": "服务状态检查"},
        "en": {"backup": "Backup", "config_files": "Config preprocessing", "services": "Service status"},
    }

    def headline(self, failed_title: str | None) -> str | None:
        w = words(TEXT, self.context.language)
        return w["ready"] if failed_title is None else w["not_ready"].format(part=failed_title)
