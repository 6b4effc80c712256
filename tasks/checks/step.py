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

from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, ValidationInfo, model_validator

from tasks.checks.rule_files import load_rule_file
from tasks.checks.rules import Rule, check_unique_ids
from tasks.core.errors import StepFailed
from tasks.core.language import words
from tasks.core.masking import mask_text, mask_url
from tasks.core.progress import Progress
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepParams, StepResult
from tasks.core.versions import Version
from tasks.steps.base import UpgradeStep

_STEP_STATUS = {"pass": StepStatus.SUCCESS, "warn": StepStatus.WARNING, "fail": StepStatus.FAILED}


class SshParams(StepParams):
    """How to reach hosts that architecture rules name (``host``); the key is a file on the worker."""

    user: str | None = Field(default=None, description="Login user (a rule's user@host wins).")
    port: int = Field(default=22, ge=1, le=65535)
    key_file: str | None = Field(default=None, description="Private key file on the worker; default: agent/~/.ssh.")
    known_hosts: str | None = Field(default=None, description="Extra known_hosts file; unknown host keys are refused.")
    timeout: float = Field(default=10.0, gt=0, le=120)


class RuleSource(StepParams):
    file: str
    sha256: str
    rules: int


class BusinessCheckParams(StepParams):
    """Parameters of :class:`PreBusinessCheckStep`."""

    rules: list[Rule] = Field(default_factory=list, description="Rules declared in the step itself.")
    rule_files: list[str] = Field(default_factory=list,
                                  description="Rule files relative to the configs folder; read at plan time.")
    rule_sources: list[RuleSource] = Field(default_factory=list,
                                           description="Set at plan time: the rule files read and their sha256.")
    ssh: SshParams = Field(default_factory=SshParams)
    stop_on_sql_error: bool = Field(default=True, description="An SQL error in a rule ends the checking.")

    @model_validator(mode="before")
    @classmethod
    def _read_rule_files(cls, data: Any, info: ValidationInfo) -> Any:
        """Inline the rule files, so the plan carries the rules themselves and nothing re-reads configs.

        They are relative to the configs folder the plan was built from (the validation context).
        """
        if not isinstance(data, dict) or not data.get("rule_files"):
            return data
        files = data["rule_files"]
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise ValueError("rule_files must be a list of paths relative to the configs folder")
        rules = list(data.get("rules") or [])
        sources = list(data.get("rule_sources") or [])
        given = (info.context or {}).get("configs_dir")
        if not given:  # the run's configs folder, never the environment's: the plan validates with it
            raise ValueError("rule_files are read from the configs folder: validate with "
                             "context={'configs_dir': ...} (the plan does)")
        configs = Path(given)
        for name in files:
            loaded, sha256 = load_rule_file(configs, name)
            rules += loaded
            sources.append({"file": name, "sha256": sha256, "rules": len(loaded)})
        return {**data, "rules": rules, "rule_files": [], "rule_sources": sources}

    @model_validator(mode="after")
    def _some_rules(self) -> BusinessCheckParams:
        if not self.rules:
            raise ValueError("a pre-business check needs at least one rule ('rules' or 'rule_files')")
        check_unique_ids(self.rules)
        return self


def _masked(value: Any, secrets: set[str]) -> Any:
    if isinstance(value, str):
        return mask_text(mask_url(value), secrets)
    if isinstance(value, dict):
        return {k: _masked(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, secrets) for v in value]
    return value


class PreBusinessCheckStep(UpgradeStep):
    """Middleware versions, deployment architecture and data quality, each against its rule."""

    Params = BusinessCheckParams
    description = "前置业务检查: middleware versions, deployment architecture, data-quality rules with thresholds"
    params: BusinessCheckParams
    #: The report's title by language; None: the seed's [FT前置业务检查报告].
    titles: ClassVar[dict[str, str] | None] = None

    def run(self) -> StepResult:
        # the runtime here, not at the top: `validate` and `plan` need only the parameters (and the
        # runner brings Redis, SQLAlchemy and SSH clients along)
        from tasks.checks.report import overall_status, render_markdown, report_json, summary_line
        from tasks.checks.runner import run_rules
        from tasks.checks.targets import CheckEnv, SshSettings

        ctx, p = self.context, self.params
        env = CheckEnv(resources=ctx.resources, environment=ctx.environment,
                       ssh=SshSettings(**p.ssh.model_dump()), wait=ctx.resources.retry_wait)
        progress = Progress(len(p.rules), f"pre-business checks at {ctx.site_id}")
        try:
            outcomes = run_rules(p.rules, env, source=Version.parse(ctx.source_version),
                                 target=Version.parse(ctx.target_version), stop_on_sql_error=p.stop_on_sql_error,
                                 logger=ctx.logger, on_done=lambda _: progress.advance())
        finally:
            env.close()
        progress.finish()
        where = {"source": ctx.source_version, "target": ctx.target_version, "site": ctx.site_id}
        secrets = ctx.resources.secrets
        details = _masked({**report_json(outcomes, **where),
                           "ruleSources": [s.model_dump() for s in p.rule_sources]}, secrets)
        status = overall_status(outcomes)
        result = StepResult(status=_STEP_STATUS[status.value],
                            summary=_masked(summary_line(outcomes, ctx.language), secrets), details=details,
                            markdown=_masked(render_markdown(outcomes, **where, language=ctx.language,
                                                             title=words(self.titles, ctx.language)
                                                             if self.titles else None), secrets))
        if result.status == StepStatus.FAILED:
            raise StepFailed(result.summary, result)
        return result
