"""Rollback as a flow run: one site's upgrade taken back (:mod:`tasks.execution.rollback`), with a report.

An operator's decision, never automatic: the ``rollback/rollback-<site>`` deployment (``site_id`` alone rolls
back the upgrade in progress; a UI Retry of a failed rollback finishes it) or ``ft-upgrade rollback --site S``,
which runs this same flow and asks for confirmation on a terminal. The report is the artifact
``ft-<site>-rollback``.
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run
from pydantic import Field, SecretStr

from flows.runner import tag_site
from tasks.core.errors import UpgradeError
from tasks.core.masking import mask_text
from tasks.core.parameters import SiteId
from tasks.core.settings import get_settings
from tasks.execution.reporting import artifact_key
from tasks.execution.rollback import RollbackOutcome, RollbackRequest, run_rollback
from tasks.execution.upgrade_report import upgrade_artifact
from tasks.site.resources import SiteOverrides

ExecutionId = Annotated[str, Field(pattern=r"^(EXEC_[0-9]{8}_[0-9]{6}_[0-9a-f]{8})?$",
                                   examples=["EXEC_20261202_031500_1a2b3c4d"],
                                   description="Optional: any execution of the upgrade to roll back.")]


@flow(name="rollback", log_prints=True, flow_run_name="rollback {site_id}")
def rollback(site_id: SiteId, upgrade: str = "", execution_id: ExecutionId = "", force: bool = False,
             reason: str = "", requested_by: str = "", configs_dir: str | None = None,
             databases: dict[str, SecretStr] | None = None) -> dict[str, Any]:
    """Roll back the site's upgrade: the one in progress (or unfinished rollback), else the one named.

    Args:
        site_id: The site (the per-site deployment sets it); alone it rolls back the upgrade in progress.
        upgrade: A completed upgrade to roll back, as SOURCE->TARGET (or SOURCE→TARGET).
        execution_id: Any execution of the upgrade to roll back, instead of ``upgrade``.
        force: Roll back past configs that say rollback_supported: false (needs a reason, recorded).
        reason: Why (recorded in the site's history and the report).
        requested_by: Who asks (recorded); default: the deployment.
        configs_dir: Folder of version configs instead of the worker's setting.
        databases: Logical database URLs instead of the site's blocks (secret: shown masked).
    """
    logger = get_run_logger()
    who = requested_by or "deployment"
    logger.warning("rollback at site %s asked by %s: %s", site_id, who, reason or "(no reason)")
    overrides = SiteOverrides(databases={k: v.get_secret_value() for k, v in (databases or {}).items()})
    key = artifact_key(site_id, "rollback")
    tag_site(site_id)
    request = RollbackRequest(site_id=site_id, upgrade=upgrade, execution_id=execution_id, force=force,
                              reason=reason, by=who, flow_run_id=str(flow_run.id) if flow_run.id else None)
    try:
        outcome = run_rollback(request, settings=get_settings(configs=configs_dir), overrides=overrides,
                               logger=logger)
    except UpgradeError as exc:
        message = mask_text(str(exc), set(overrides.databases.values()))
        create_markdown_artifact(markdown=_report(site_id, who, reason, None, message), key=key,
                                 description=f"rollback at {site_id}: failed")
        raise
    create_markdown_artifact(markdown=_report(site_id, who, reason, outcome, None), key=key,
                             description=f"rollback of {outcome.source_version} → {outcome.target_version}: done")
    _publish_upgrade(outcome.execution_id, site_id, overrides)
    return outcome.to_json()


def _publish_upgrade(execution_id: str, site_id: str, overrides: SiteOverrides) -> None:
    """The rollback in the whole upgrade's report (its artifact); never changes the outcome."""
    try:
        key, markdown, description = upgrade_artifact(execution_id, site_id,
                                                      metadata_url=overrides.databases.get("metadata"))
        create_markdown_artifact(markdown=markdown, key=key, description=description)
    except Exception as exc:  # noqa: BLE001 - a report must never change a rollback's outcome
        get_run_logger().warning("upgrade report artifact not updated: %s", exc)


def _report(site_id: str, who: str, reason: str, outcome: RollbackOutcome | None, error: str | None) -> str:
    title = f"{outcome.source_version} → {outcome.target_version} `{outcome.execution_id}`" if outcome else ""
    lines = [f"# 回滚 Rollback {site_id}: {title} — {'失败 FAILED' if error else '完成 DONE'}", "",
             f"- asked by: {who}", f"- reason: {reason or '-'}"]
    if outcome:
        retired = outcome.retired
        lines += [f"- backup: `{outcome.backup_id}` (pre_upgrade_process `{outcome.backup_execution_id}`)",
                  f"- site version now: {outcome.source_version} (upgrade ROLLED_BACK)",
                  f"- executions closed: {', '.join(retired.get('executions_closed', [])) or '-'}",
                  f"- cutpoint states retired: {', '.join(retired.get('cutpoints_retired', {})) or '-'}; "
                  f"applied scripts retired: {len(retired.get('scripts_retired', []))}"]
        if outcome.forced:
            lines += [f"- **forced** past rollback_supported: false: {'; '.join(outcome.forced)}"]
        lines += ["", "| version | step | status | summary |", "|---|---|---|---|"]
        lines += [f"| {r['version']} | {r['step_id']} | {r['status']} | {r['summary']} |" for r in outcome.steps]
        lines += [part for r in outcome.steps if r.get("markdown")
                  for part in ("", f"### {r['step_id']} ({r['version']})", "", r["markdown"])]
    if error:
        lines += ["", f"**Error**: {error}", "",
                  f"Fix the cause and start the rollback again (`ft-upgrade rollback --site {site_id}` or this "
                  "deployment): steps done are not run again, tables already restored are not loaded twice."]
    return "\n".join(lines)
