"""Rollback as a flow run: the configs' rollback_steps of one execution, with the site's lock and a report.

An operator's decision, never automatic: the ``rollback/rollback-<site>`` deployment (parameter: the
execution id) from the Prefect UI, or ``ft-upgrade rollback EXECUTION_ID``, which runs this same flow
and asks for confirmation on a terminal. The report is the artifact ``ft-<site>-rollback``.
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
from tasks.execution.rollback import run_rollback
from tasks.execution.upgrade_report import after_rollback
from tasks.site.resources import SiteOverrides

ExecutionId = Annotated[str, Field(pattern=r"^EXEC_[0-9]{8}_[0-9]{6}_[0-9a-f]{8}$",
                                   examples=["EXEC_20261202_031500_1a2b3c4d"],
                                   description="The upgrade execution to roll back (its report names it).")]


@flow(name="rollback", log_prints=True, flow_run_name="rollback {site_id} {execution_id}")
def rollback(execution_id: ExecutionId, site_id: SiteId, reason: str = "", requested_by: str = "",
             configs_dir: str | None = None, databases: dict[str, SecretStr] | None = None) -> dict[str, Any]:
    """Run the configs' rollback_steps for one execution of the site (e.g. restore its backup).

    Args:
        execution_id: The upgrade execution to roll back.
        site_id: The site it ran at (the per-site deployment sets it).
        reason: Why (recorded in the report).
        requested_by: Who asks (recorded); default: the deployment.
        configs_dir: Folder of version configs instead of the worker's setting.
        databases: Logical database URLs instead of the site's blocks (secret: shown masked).
    """
    logger = get_run_logger()
    who = requested_by or "deployment"
    logger.warning("rollback of %s at site %s asked by %s: %s", execution_id, site_id, who, reason or "(no reason)")
    overrides = SiteOverrides(databases={k: v.get_secret_value() for k, v in (databases or {}).items()})
    key = artifact_key(site_id, "rollback")
    tag_site(site_id)
    try:
        results = run_rollback(execution_id, settings=get_settings(configs=configs_dir), overrides=overrides,
                               site_id=site_id, holder=f"rollback of {execution_id} (flow run {flow_run.id})",
                               logger=logger)
    except UpgradeError as exc:
        message = mask_text(str(exc), set(overrides.databases.values()))
        create_markdown_artifact(markdown=_report(execution_id, site_id, who, reason, [], message), key=key,
                                 description=f"rollback of {execution_id}: failed")
        _publish_upgrade(execution_id, site_id, overrides, who, reason, [], message)
        raise
    create_markdown_artifact(markdown=_report(execution_id, site_id, who, reason, results, None), key=key,
                             description=f"rollback of {execution_id}: done")
    _publish_upgrade(execution_id, site_id, overrides, who, reason, results, None)
    return {"execution_id": execution_id, "site_id": site_id, "steps": results}


def _publish_upgrade(execution_id: str, site_id: str, overrides: SiteOverrides, who: str, reason: str,
                     results: list[dict[str, Any]], error: str | None) -> None:
    """The rollback in the whole upgrade's report (its history and its artifact); never changes the outcome."""
    try:
        key, markdown, description = after_rollback(
            execution_id, site_id, metadata_url=overrides.databases.get("metadata"), by=who, reason=reason,
            steps=results, error=error, flow_run_id=str(flow_run.id) if flow_run.id else None)
        create_markdown_artifact(markdown=markdown, key=key, description=description)
    except Exception as exc:  # noqa: BLE001 - a report must never change a rollback's outcome
        get_run_logger().warning("upgrade report artifact not updated: %s", exc)


def _report(execution_id: str, site_id: str, who: str, reason: str, results: list[dict[str, Any]],
            error: str | None) -> str:
    lines = [f"# 回滚 Rollback {site_id}: `{execution_id}` — {'失败 FAILED' if error else '完成 DONE'}", "",
             f"- asked by: {who}", f"- reason: {reason or '-'}", "", "| step | status | summary |", "|---|---|---|"]
    lines += [f"| {r['step_id']} | {r['status']} | {r['summary']} |" for r in results]
    if error:
        lines += ["", f"**Error**: {error}", "",
                  "Fix the cause and start the rollback again: tables already restored are not loaded twice."]
    return "\n".join(lines)
