"""PreBusinessCheckStep (cutpoint 1, 前置业务检查): run the declared check rules and report.

Rules come inline (``rules``) and/or from rule files under the configs folder (``rule_files``),
which are read when the plan is built: a malformed rule stops the run before anything runs, and the
rules that run are exactly those in the plan. The step's result carries the seed's markdown report
and, in ``details``, the JSON (counts per level, ``checksPerformed[]``) that lands in ``upgrade_report``.
Any failed check fails the step (and the flow); warnings are logged and shown, the upgrade goes on.

Example step in a version config:
    ```json
    {"id": "pre_business_check_001", "name": "前置业务检查",
     "class_name": "com.ft.upgrade.steps.PreBusinessCheckStep",
     "rule_files": ["rules/ft_317500_checks.json"],
     "rules": [{"id": "orders_pk", "title": "主键冲突检测", "type": "duplicate_keys",
                "target": "ft_db", "table": "orders", "columns": ["id"]}]}
    ```
"""

from __future__ import annotations

from typing import ClassVar

from tasks.checks.params import BusinessCheckParams, RuleSource, SshParams
from tasks.core.steps import StepResult
from tasks.steps.base import UpgradeStep

__all__ = ["BusinessCheckParams", "PreBusinessCheckStep", "RuleSource", "SshParams"]


class PreBusinessCheckStep(UpgradeStep):
    """Middleware versions, deployment architecture and data quality, each against its rule."""

    Params = BusinessCheckParams
    description = "前置业务检查: middleware versions, deployment architecture, data-quality rules with thresholds"
    params: BusinessCheckParams
    #: The report's title by language; None: the seed's [FT前置业务检查报告].
    titles: ClassVar[dict[str, str] | None] = None

    def run(self) -> StepResult:
        from tasks.checks.running import run_checks  # the runtime: `validate` and `plan` need the parameters

        return run_checks(self.params, self.context, self.titles)
