"""The body every cutpoint flow shares: plan → execution record → step tasks → report.

It composes and records; the work is in the step classes. A rerun with the same request (Prefect
UI retry, ``prefect deployment run`` again, ``ft-upgrade resume``) continues the unfinished
execution: steps the ledger shows as done are not run again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from prefect import Flow, flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.context import TaskRunContext
from prefect.runtime import deployment, flow_run

from blocks.database import can_load_blocks, load_database_url
from blocks.site_profile import SiteProfile
from flows.config_loader import load_configs
from flows.cutpoints import Cutpoint
from flows.plan import PlannedStep, UpgradePlan, build_plan
from tasks.errors import InputError, StepFailed, UpgradeFailed
from tasks.masking import mask_text
from tasks.notify import notify
from tasks.reporting import RunReport, artifact_key, render_markdown, resume_instructions, steps_table
from tasks.resources import Resources
from tasks.settings import Settings, get_settings
from tasks.steps.base import StepResult, StepStatus
from tasks.steps.context import StepContext
from tasks.steps.registry import resolve_step_class
from tasks.store.breakpoints import (
    BREAKPOINT_TTL,
    active_breakpoint,
    expire_breakpoint,
    open_breakpoint,
    resolve_breakpoint,
)
from tasks.store.metadata_store import MetadataStore, utcnow
from tasks.store.site_lock import site_lock

MAX_RESUMES = 10
_SECRET_KEY = re.compile(r"pass|secret|token|credential|key", re.I)


def masked_environment(environment: Mapping[str, Any] | None) -> dict[str, Any]:
    """The environment as recorded: values of secret-looking keys replaced."""
    return {k: ("***" if _SECRET_KEY.search(k) else v) for k, v in (environment or {}).items()}


def open_store(site_id: str | None) -> MetadataStore:
    url = load_database_url("metadata", site_id)
    return MetadataStore.open(url.render_as_string(hide_password=False) if url else
                              get_settings().default_metadata_url)


def load_site_profile(site_id: str) -> SiteProfile | None:
    if not can_load_blocks():
        return None
    try:
        return SiteProfile.load(SiteProfile.block_name(site_id), validate=False)
    except (ValueError, KeyError):
        return None


def plan_for(cutpoint: Cutpoint, source: str, target: str, site: str, settings: Settings) -> UpgradePlan:
    configs = load_configs(settings.configs)
    plan = build_plan(configs, source, target, site, cutpoint, allowed_step_modules=settings.allowed_step_modules)
    plan.require_resolved()
    return plan


def _step_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Prefect's cache sits on top of the ledger: same execution + same step + same params."""
    step: PlannedStep = parameters["step"]
    return f"ft-step-{parameters['execution_id']}-{step.key}-{step.config_fingerprint}"


@task(persist_result=True, cache_key_fn=_step_cache_key, log_prints=False)
def run_step(step: PlannedStep, execution_id: str, order: int, run: dict[str, Any], resources: Resources,
             store: MetadataStore) -> dict[str, Any]:
    """Run one step, unless the ledger says it already finished in this execution."""
    row = store.step_row(execution_id, step.key)
    if row and row["status"] in ("SUCCESS", "SKIPPED"):
        return {"status": row["status"], "summary": "already done in this execution", "reused": True}
    logger = get_run_logger()
    store.start_step(execution_id=execution_id, step_key=step.key, step_id=step.step_id, step_name=step.name,
                     cutpoint=step.cutpoint.value, class_name=step.class_name, order=order,
                     metadata={"version": step.version, "implementation": step.implementation,
                               "config_file": step.config_file, "params": step.params})
    resolution = resolve_step_class(step.class_name, get_settings().allowed_step_modules)
    assert resolution.step_class is not None, "plan.require_resolved() guarantees this"
    cls = resolution.step_class
    context = StepContext(
        execution_id=execution_id, cutpoint=step.cutpoint.value, step_id=step.step_id, step_key=step.key,
        step_name=step.name, version=step.version, source_version=run["source_version"],
        target_version=run["target_version"], site_id=run["site_id"], environment=run["environment"],
        resources=resources, logger=logger)
    logger.info("step %s (%s) started", step.step_id, step.class_name)
    try:
        result = cls(cls.Params.model_validate(step.params), context).run()
    except Exception as exc:
        found = exc.result if isinstance(exc, StepFailed) and isinstance(exc.result, StepResult) else None
        raw = str(exc) if isinstance(exc, UpgradeFailed) else f"{type(exc).__name__}: {exc}"
        message = mask_text(raw, resources.secrets)
        store.finish_step(execution_id=execution_id, step_key=step.key, status="FAILED",
                          result=found.to_json() if found else None, error_message=message)
        logger.error("step %s failed: %s", step.step_id, message)
        raise
    status = result.status if result.status != StepStatus.FAILED else StepStatus.WARNING
    store.finish_step(execution_id=execution_id, step_key=step.key, status=status.value,
                      result=result.to_json(), error_message=None)
    logger.info("step %s %s: %s", step.step_id, status.value, result.summary)
    return result.to_json()


def run_cutpoint(cutpoint: Cutpoint, source_version: str, target_version: str, site_id: str,
                 environment: Mapping[str, Any] | None) -> dict[str, Any]:
    """The flow body of every cutpoint. Raises :class:`UpgradeFailed` (flow Failed) after reporting."""
    settings = get_settings()
    plan = plan_for(cutpoint, source_version, target_version, site_id, settings)
    steps = plan.for_cutpoint(cutpoint)
    store = open_store(site_id)
    run_id = str(flow_run.id) if flow_run.id else None
    holder = f"{cutpoint.value} {plan.source_version}→{plan.target_version} (flow run {run_id})"
    try:
        with site_lock(store.engine, site_id, holder=holder, wait_seconds=settings.site_lock_wait_seconds):
            return _run_locked(cutpoint, plan, steps, store, run_id, environment, settings)
    finally:
        store.close()


def _run_locked(cutpoint: Cutpoint, plan: UpgradePlan, steps: list[PlannedStep], store: MetadataStore,
                run_id: str | None, environment: Mapping[str, Any] | None, settings: Settings) -> dict[str, Any]:
    """The run itself, while this process holds the site's lock."""
    logger = get_run_logger()
    site_id = plan.site_id
    env = masked_environment(environment)
    execution_id = _start_execution(store, plan, cutpoint, env, len(steps), run_id)
    logger.info("execution %s: %s %s → %s at site %s, %d steps (metadata: %s)", execution_id, cutpoint.value,
                plan.source_version, plan.target_version, site_id, len(steps), store.describe())
    resources = Resources(site_id=site_id, sql_root=settings.sql_root, configs_dir=settings.configs,
                          home=settings.home, profile=load_site_profile(site_id))
    resources.store = store
    run = {"source_version": plan.source_version, "target_version": plan.target_version, "site_id": site_id,
           "environment": dict(environment or {})}
    progress = create_progress_artifact(progress=0.0, description=f"{cutpoint.value} at {site_id}")
    weights = [max(s.estimated_duration or 1, 1) for s in steps]
    failed: PlannedStep | None = None
    statuses: dict[str, str] = {}
    try:
        for order, step in enumerate(steps):
            blocker = next((d for d in step.depends_on if statuses.get(d) in ("FAILED", "WARNING", "SKIPPED")),
                           None)
            if blocker:
                store.record_skipped_step(execution_id=execution_id, step_key=step.key, step_id=step.step_id,
                                          step_name=step.name, cutpoint=cutpoint.value,
                                          class_name=step.class_name, order=order,
                                          reason=f"skipped: dependency {blocker} did not succeed")
                statuses[step.key] = "SKIPPED"
                continue
            configured = run_step.with_options(
                name=step.step_id, task_run_name=f"{step.step_id} ({step.version})",
                retries=step.retry_count, retry_delay_seconds=step.retry_delay_seconds,
                timeout_seconds=step.timeout)
            state = configured(step, execution_id, order, run, resources, store, return_state=True)
            if state.is_completed():
                statuses[step.key] = store.step_row(execution_id, step.key)["status"]
            else:
                row = store.step_row(execution_id, step.key)
                if row is None or row["status"] != "FAILED":  # e.g. a Prefect timeout before the step recorded
                    message = state.message or "step did not complete"
                    if row is None:
                        store.start_step(execution_id=execution_id, step_key=step.key, step_id=step.step_id,
                                         step_name=step.name, cutpoint=cutpoint.value,
                                         class_name=step.class_name, order=order, metadata={})
                    store.finish_step(execution_id=execution_id, step_key=step.key, status="FAILED",
                                      result=None, error_message=message)
                if not step.required:
                    row = store.step_row(execution_id, step.key)
                    store.finish_step(execution_id=execution_id, step_key=step.key, status="WARNING",
                                      result=None, error_message=row["error_message"] if row else None)
                    statuses[step.key] = "WARNING"
                    logger.warning("optional step %s failed; recorded as a warning, going on", step.step_id)
                else:
                    statuses[step.key] = "FAILED"
                    failed = step
                    break
            update_progress_artifact(progress, progress=100.0 * sum(weights[: order + 1]) / sum(weights))
    finally:
        resources.close()
    status = "FAILED" if failed else "SUCCESS"
    error = None
    bp = active_breakpoint(store.engine, execution_id)
    if failed:
        row = store.step_row(execution_id, failed.key) or {}
        error = f"step {failed.step_id} failed: {row.get('error_message') or 'unknown error'}"
        if bp is None:
            open_breakpoint(store.engine, execution_id=execution_id, step_id=failed.step_id, kind="STEP_LEVEL",
                            message=error, instructions="\n".join(build_report(store, execution_id).resume_hint),
                            context={"step_key": failed.key})
    elif bp is not None:
        decision = (json.loads(bp["context_data"] or "{}").get("decision") or {})
        resolve_breakpoint(store.engine, execution_id, by=decision.get("by", "ft-upgrade"),
                           notes=decision.get("notes", "resumed and completed"))
    store.finish_execution(execution_id, status, error)
    notified = notify(plan.notifications, build_report(store, execution_id).to_json(), logger=logger)
    report = publish_report(store, execution_id, extra={"notification": notified} if notified else None)
    if failed:
        raise UpgradeFailed(f"{cutpoint.value} failed at site {site_id}: {error}. "
                            f"Fix the cause, then retry this flow run or run `ft-upgrade resume {execution_id}`.",
                            execution_id=execution_id, step_id=failed.step_id)
    return report.to_json()


def _start_execution(store: MetadataStore, plan: UpgradePlan, cutpoint: Cutpoint, env: dict[str, Any],
                     total: int, run_id: str | None) -> str:
    """Continue the unfinished execution of the same request, or start a new one."""
    previous = store.find_resumable(site_id=plan.site_id, cutpoint=cutpoint.value,
                                    source_version=plan.source_version, target_version=plan.target_version)
    if previous is None:
        return store.create_execution(source_version=plan.source_version, target_version=plan.target_version,
                                      site_id=plan.site_id, cutpoint=cutpoint.value, environment=env,
                                      total_steps=total, flow_run_id=run_id, plan_fingerprint=plan.fingerprint())
    execution_id = previous["execution_id"]
    if previous["resume_count"] >= MAX_RESUMES:
        raise InputError(f"execution {execution_id} has been resumed {MAX_RESUMES} times, the maximum; "
                         f"investigate, then `ft-upgrade abandon {execution_id}` and run again for a new execution")
    bp = active_breakpoint(store.engine, execution_id)
    if bp is not None and bp["expiry_time"] < utcnow():
        expire_breakpoint(store.engine, execution_id)
        store.update_execution(execution_id, status="FAILED", error_message=f"breakpoint {bp['id']} expired")
        expired = bp["expiry_time"].strftime("%Y-%m-%d %H:%M")
        raise InputError(f"breakpoint {bp['id']} of execution {execution_id} expired on {expired} UTC (breakpoints "
                         f"are kept {BREAKPOINT_TTL.days} days); check the databases, then "
                         f"`ft-upgrade abandon {execution_id}` and run again for a new execution")
    store.reopen_execution(execution_id, flow_run_id=run_id, total_steps=total)
    return execution_id


def build_report(store: MetadataStore, execution_id: str) -> RunReport:
    execution = store.require_execution(execution_id)
    hint = resume_instructions(execution_id=execution_id, cutpoint=execution["step_type"],
                               deployment_name=deployment.name if flow_run.id else None,
                               source=execution["source_version"], target=execution["target_version"],
                               site=execution["site_id"])
    return RunReport(execution=execution, steps=store.step_rows(execution_id), status=execution["status"],
                     resume_hint=hint)


def publish_report(store: MetadataStore, execution_id: str, extra: dict[str, Any] | None = None) -> RunReport:
    """Write the report as markdown + table artifacts and an ``upgrade_report`` row."""
    report = build_report(store, execution_id)
    report.extra.update(extra or {})
    e = report.execution
    markdown = render_markdown(report)
    key = artifact_key(e["site_id"], e["step_type"])
    create_markdown_artifact(markdown=markdown, key=key,
                             description=f"{e['step_type']} {e['source_version']} → {e['target_version']} "
                                         f"at {e['site_id']}: {report.status}")
    create_table_artifact(table=steps_table(report.steps), key=key + "-steps",
                          description=f"steps of {e['execution_id']}")
    c = report.counts
    store.save_report(execution=e, status=report.status, total_duration_ms=report.duration_ms,
                      counts={"total": c["total"], "success": c["success"] + c["warning"], "failed": c["failed"],
                              "skipped": c["skipped"]},
                      content={**report.to_json(), "markdown": markdown},
                      summary=f"{e['step_type']} {report.status}: {c['success']} success, {c['warning']} warning, "
                              f"{c['failed']} failed, {c['skipped']} skipped",
                      recommendations="\n".join(report.resume_hint) if report.status != "SUCCESS" else "")
    return report


def cutpoint_flow(cutpoint: Cutpoint) -> Flow[..., dict[str, Any]]:
    """The Prefect flow of one cutpoint: the same body, its own name, parameters and docstring."""

    def run(source_version: str, target_version: str, site_id: str,
            environment: dict[str, Any] | None = None) -> dict[str, Any]:
        return run_cutpoint(cutpoint, source_version, target_version, site_id, environment)

    run.__name__ = run.__qualname__ = cutpoint.value
    run.__doc__ = f"""Run the {cutpoint.value} steps of every config from source to target for one site.

    Args:
        source_version: Version the site runs now, e.g. 3.17.0.
        target_version: Version to upgrade to, e.g. 3.17.5-P1.
        site_id: The site (局点) id, e.g. CN or US.
        environment: CICD's environment values (secret-looking keys are masked when recorded).
    """
    return flow(run, name=cutpoint.value, log_prints=True,
                flow_run_name=f"{cutpoint.value} {{site_id}} {{source_version}}→{{target_version}}")
