"""The pre-business check step's runtime: the rules run against the site, the seed's report, the verdict.

Imported by the step's ``run`` (tasks/checks/step.py): the runner brings Redis, SQLAlchemy and SSH clients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tasks.checks.report import overall_status, render_markdown, report_json, summary_line
from tasks.checks.runner import run_rules
from tasks.checks.targets import CheckEnv, SshSettings
from tasks.core.errors import StepFailed
from tasks.core.language import words
from tasks.core.masking import mask_text, mask_url
from tasks.core.progress import Progress
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepResult
from tasks.core.versions import Version

if TYPE_CHECKING:
    from tasks.checks.params import BusinessCheckParams
    from tasks.steps.context import StepContext

_STEP_STATUS = {"pass": StepStatus.SUCCESS, "warn": StepStatus.WARNING, "fail": StepStatus.FAILED}


def run_checks(params: BusinessCheckParams, context: StepContext, titles: dict[str, str] | None) -> StepResult:
    """Every rule, then the report (``titles``: its title by language; None: the seed's); a failed check fails."""
    ctx, p = context, params
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
                                                         title=words(titles, ctx.language)
                                                         if titles else None), secrets))
    if result.status == StepStatus.FAILED:
        raise StepFailed(result.summary, result)
    return result


def _masked(value: Any, secrets: set[str]) -> Any:
    if isinstance(value, str):
        return mask_text(mask_url(value), secrets)
    if isinstance(value, dict):
        return {k: _masked(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, secrets) for v in value]
    return value
