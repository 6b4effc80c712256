"""The body every cutpoint flow shares: plan → admission → execution record → step tasks → report.

It composes and records; the rules are in the execution service and the work in the step classes.
A trigger with the same request (Prefect UI retry, ``prefect deployment run`` again, ``ft-upgrade
resume``) continues the unfinished execution: steps the ledger shows as done are not run again. A
cutpoint that already completed for (site, source, target) executes nothing and says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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
from prefect.utilities.annotations import quote
from pydantic import SecretStr

from blocks.database import url_from_environment
from blocks.notifications import send_to_blocks
from blocks.site_profile import load_site_profile
from flows.decision import apply_submission, ask_operator, asks
from tasks.core.cutpoints import Cutpoint
from tasks.core.environment import check_environment, is_secret_key, secret_reference
from tasks.core.errors import InputError, Refused, SiteBusy, StepFailed, UpgradeFailed
from tasks.core.language import language_of
from tasks.core.masking import mask_text
from tasks.core.parameters import SiteId, VersionText, Waivable
from tasks.core.settings import Settings, get_settings
from tasks.core.statuses import STEP_BLOCKING, STEP_DONE, ExecutionStatus, StepStatus
from tasks.core.steps import StepResult
from tasks.execution.admission import Admission, Request
from tasks.execution.report_text import report_text
from tasks.execution.reporting import RunReport, artifact_key, render_markdown, render_refusal, steps_table
from tasks.execution.service import ExecutionService, StartTerms, describe_applied
from tasks.execution.site_info import OVERVIEW_KEY, latest_overview_rows, merge_overview, overview_rows
from tasks.notify.message import render_message
from tasks.notify.webhook import notify
from tasks.planning.plan import PlannedStep, UpgradePlan, plan_for
from tasks.site.resources import SiteOverrides, SiteResources, open_site_resources
from tasks.steps.context import StepContext
from tasks.steps.registry import resolve_step_class
from tasks.store.breakpoints import active_breakpoint, open_breakpoint
from tasks.store.metadata_store import MetadataStore
from tasks.store.site_lock import site_lock


def masked_environment(environment: Mapping[str, Any] | None) -> dict[str, Any]:
    """The environment as recorded: Secret block references kept (a resume reads them again), any other
    value of a secret-looking key replaced (an execution recorded before references were required)."""
    return {k: ("***" if is_secret_key(k) and secret_reference(v) is None else v)
            for k, v in (environment or {}).items()}


def _step_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Prefect's cache sits on top of the ledger: same execution + same step + same params."""
    step: PlannedStep = parameters["step"]
    return f"ft-step-{parameters['execution_id']}-{step.key}-{step.config_fingerprint}"


@task(persist_result=True, cache_key_fn=_step_cache_key, log_prints=False)
def run_step(step: PlannedStep, execution_id: str, order: int, run: dict[str, Any], resources: SiteResources,
             store: MetadataStore) -> dict[str, Any]:
    """Run one step, unless the ledger says it already finished in this execution."""
    row = store.step_row(execution_id, step.key)
    if row and row["status"] in STEP_DONE:
        return {"status": row["status"], "summary": report_text(language_of(resources.profile))["step_reused"],
                "reused": True}
    if store.lock is not None:
        store.lock.ensure_held()  # lost between steps: this step does not start
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
        target_version=run["target_version"], site_id=run["site_id"],
        environment=resources.step_environment(run["environment"]), resources=resources, logger=logger)
    logger.info("step %s (%s) started", step.step_id, step.class_name)
    try:
        result = cls(cls.Params.model_validate(step.params), context).run()
    except Exception as exc:
        found = exc.result if isinstance(exc, StepFailed) and isinstance(exc.result, StepResult) else None
        raw = str(exc) if isinstance(exc, UpgradeFailed) else f"{type(exc).__name__}: {exc}"
        message = mask_text(raw, resources.secrets)
        store.finish_step(execution_id=execution_id, step_key=step.key, status=StepStatus.FAILED,
                          result=found.to_json() if found else None, error_message=message)
        logger.error("step %s failed: %s", step.step_id, message)
        raise
    status = result.status if result.status != StepStatus.FAILED else StepStatus.WARNING
    store.finish_step(execution_id=execution_id, step_key=step.key, status=status.value,
                      result=result.to_json(), error_message=None)
    logger.info("step %s %s: %s", step.step_id, status.value, result.summary)
    return result.to_json()


def run_cutpoint(cutpoint: Cutpoint, source_version: str, target_version: str, site_id: str,
                 environment: Mapping[str, Any] | None, *, rerun: bool = False, waive: Sequence[str] = (),
                 reason: str = "", requested_by: str = "", accept_changed_scripts: bool = False,
                 execution_id: str | None = None, configs_dir: str | None = None, sql_root: str | None = None,
                 databases: Mapping[str, SecretStr] | None = None) -> dict[str, Any]:
    """The flow body of every cutpoint. Raises :class:`UpgradeFailed` (flow Failed) after reporting.

    A trigger is admitted first (:mod:`tasks.execution.admission`): a cutpoint that already completed
    for (site, source, target) returns its report and executes nothing; a refused one raises
    :class:`Refused` (exit 2) and executes nothing. ``configs_dir``, ``sql_root`` and ``databases`` are
    what a caller gives instead of the settings and blocks (the CLI's options), explicitly.
    """
    check_environment(environment)
    settings = get_settings(configs=configs_dir, sql_root=sql_root)
    overrides = SiteOverrides(databases={k: v.get_secret_value() for k, v in (databases or {}).items()})
    try:
        plan = plan_for(cutpoint, source_version, target_version, site_id, settings)
    except InputError as exc:  # configs that cannot make this plan: nothing ran (exit 2, CICD reads the artifact)
        create_markdown_artifact(markdown=render_refusal(cutpoint, site_id, source_version, target_version, str(exc)),
                                 key=artifact_key(site_id, cutpoint.value),
                                 description=f"{cutpoint.value} at {site_id}: REFUSED")
        raise
    steps = plan.for_cutpoint(cutpoint)
    run_id = str(flow_run.id) if flow_run.id else None
    request = Request(cutpoint=cutpoint, source_version=plan.source_version, target_version=plan.target_version,
                      site_id=plan.site_id, rerun=rerun, waive=tuple(waive), reason=reason,
                      by=requested_by or _default_actor(), accept_changed_scripts=accept_changed_scripts,
                      execution_id=execution_id)
    service = ExecutionService.open(plan.site_id, metadata_url=overrides.databases.get("metadata"))
    holder = f"{cutpoint.value} {plan.source_version}→{plan.target_version} (flow run {run_id})"
    try:
        with site_lock(service.store.engine, plan.site_id, holder=holder,
                       wait_seconds=settings.site_lock_wait_seconds, check_seconds=settings.site_lock_check_seconds,
                       on_lost=get_run_logger().error) as held, service.store.fenced_by(held):
            profile = load_site_profile(plan.site_id)
            service.language = language_of(profile)  # one language per report
            try:
                admission = service.admit(request, sql_root=settings.sql_root, flow_run_id=run_id,
                                          services=profile.services if profile else None)
            except Refused as exc:
                _publish_refusal(service, request, str(exc))
                raise
            if admission.action == "noop":
                return _publish_noop(service, request, admission, run_id)
            if admission.action == "resume" and admission.execution_id:
                apply_submission(service, admission.execution_id)  # resumed from the Prefect UI's decision form
            with open_site_resources(plan.site_id, settings=settings, overrides=overrides, profile=profile,
                                     store=service.store) as resources:
                return _run_locked(service, request, admission, plan, steps, run_id, environment, settings,
                                   resources)
    except SiteBusy as exc:  # refused like a missing precondition: nothing ran (exit 2, CICD reads the artifact)
        _publish_refusal(service, request, str(exc))
        raise
    finally:
        service.close()


def _writes_events(step: PlannedStep, settings: Settings) -> bool:
    step_class = resolve_step_class(step.class_name, settings.allowed_step_modules).step_class
    return bool(step_class is not None and step_class.writes_events)


def _default_actor() -> str:
    """Who triggered a run when nobody said: the deployment (CICD) or the local user."""
    if deployment.name:
        return f"deployment {deployment.name}"
    import getpass

    return getpass.getuser()


def _run_locked(service: ExecutionService, request: Request, admission: Admission, plan: UpgradePlan,
                steps: list[PlannedStep], run_id: str | None, environment: Mapping[str, Any] | None,
                settings: Settings, resources: SiteResources) -> dict[str, Any]:
    """The run itself, while this process holds the site's lock."""
    logger = get_run_logger()
    cutpoint, site_id, store = request.cutpoint, plan.site_id, service.store
    overridden = tuple(sorted(n for n in ("ft_db", "middle_db", "metadata")
                              if n in resources.overrides.databases or url_from_environment(n)))
    resources.resolve_environment(environment)  # a missing Secret block: nothing started
    if any(_writes_events(step, settings) for step in steps):
        resources.event_writer()  # the event log boots beside the run's start, not beside the statements
    execution_id = service.start(request, admission, StartTerms(
        environment=masked_environment(environment), total_steps=len(steps), plan_fingerprint=plan.fingerprint(),
        flow_run_id=run_id, configs_dir=str(settings.configs), sql_root=str(settings.sql_root),
        db_overrides=overridden))
    logger.info("execution %s: %s %s → %s at site %s, %d steps (metadata: %s)", execution_id, cutpoint.value,
                plan.source_version, plan.target_version, site_id, len(steps), store.describe())
    extra: dict[str, Any] = {}
    if admission.rerun_of:
        applied = describe_applied(service.applied_scripts(site_id))
        extra["rerun"] = {"of": admission.rerun_of, "by": request.by, "reason": request.reason,
                          "scripts_applied_at_site": applied}
        logger.warning("deliberate re-run of %s (completed by %s), asked by %s: %s; scripts already applied at "
                       "site %s:\n%s", cutpoint.value, admission.rerun_of, request.by, request.reason, site_id,
                       "\n".join(applied) or "(none)")
    for waiver in admission.waivers:
        logger.warning("precondition %s waived by %s (%s): %s", waiver.precondition, waiver.by, waiver.reason,
                       waiver.missing)
    run = {"source_version": plan.source_version, "target_version": plan.target_version, "site_id": site_id,
           "environment": dict(environment or {})}
    progress = create_progress_artifact(progress=0.0, description=f"{cutpoint.value} at {site_id}")
    weights = [max(s.estimated_duration or 1, 1) for s in steps]
    failed: PlannedStep | None = None
    statuses: dict[str, str] = {}
    for order, step in enumerate(steps):
        blocker = next((d for d in step.depends_on if statuses.get(d) in STEP_BLOCKING),
                       None)
        if blocker:
            store.record_skipped_step(execution_id=execution_id, step_key=step.key, step_id=step.step_id,
                                      step_name=step.name, cutpoint=cutpoint.value,
                                      class_name=step.class_name, order=order,
                                      reason=report_text(service.language)["step_blocked"].format(blocker=blocker))
            statuses[step.key] = StepStatus.SKIPPED
            continue
        configured = run_step.with_options(
            name=step.step_id, task_run_name=f"{step.step_id} ({step.version})",
            retries=step.retry_count, retry_delay_seconds=step.retry_delay_seconds,
            timeout_seconds=step.timeout)
        # the resources and the store are quoted: Prefect would otherwise walk them as parameters
        state = configured(step, execution_id, order, run, quote(resources), quote(store), return_state=True)
        row = store.step_row(execution_id, step.key)
        service.record_step(execution_id, step.key, json.loads(row["result"]) if row and row["result"] else None)
        if state.is_completed():
            statuses[step.key] = store.step_row(execution_id, step.key)["status"]
        else:
            if row is None or row["status"] != StepStatus.FAILED:  # e.g. a Prefect timeout before the step recorded
                message = state.message or "step did not complete"
                if row is None:
                    store.start_step(execution_id=execution_id, step_key=step.key, step_id=step.step_id,
                                     step_name=step.name, cutpoint=cutpoint.value,
                                     class_name=step.class_name, order=order, metadata={})
                store.finish_step(execution_id=execution_id, step_key=step.key, status=StepStatus.FAILED,
                                  result=None, error_message=message)
            if not step.required:
                row = store.step_row(execution_id, step.key)
                store.finish_step(execution_id=execution_id, step_key=step.key, status=StepStatus.WARNING,
                                  result=None, error_message=row["error_message"] if row else None)
                statuses[step.key] = StepStatus.WARNING
                logger.warning("optional step %s failed; recorded as a warning, going on", step.step_id)
            else:
                statuses[step.key] = StepStatus.FAILED
                failed = step
                break
        update_progress_artifact(progress, progress=100.0 * sum(weights[: order + 1]) / sum(weights))
    status = ExecutionStatus.FAILED if failed else ExecutionStatus.SUCCESS
    error = None
    if failed:
        row = store.step_row(execution_id, failed.key) or {}
        error = f"step {failed.step_id} failed: {row.get('error_message') or 'unknown error'}"
        if active_breakpoint(store.engine, execution_id) is None:
            open_breakpoint(store.engine, execution_id=execution_id, step_id=failed.step_id, kind="STEP_LEVEL",
                            message=error, instructions="\n".join(_build_report(service, execution_id).resume_hint),
                            context={"step_key": failed.key}, fence=store.lock)
    service.finish(execution_id, status, error)
    final = _build_report(service, execution_id).to_json()
    notified = notify(plan.notifications, final, logger=logger)
    if notified:
        extra["notification"] = notified
    profile = resources.profile
    if profile is not None and getattr(profile, "notify_blocks", None):
        waiting = _waiting_url(store, execution_id, settings) if failed else None
        subject, body = render_message(final, service.language, waiting_url=waiting)
        extra["notification_blocks"] = send_to_blocks(list(profile.notify_blocks), subject,
                                                      mask_text(body, resources.secrets))
        for failed_block in (o for o in extra["notification_blocks"] if not o["delivered"]):
            logger.warning("notification through block %s failed: %s", failed_block["block"], failed_block["error"])
    report = publish_report(service, execution_id, extra=extra)
    _publish_site_overview(service)
    if failed:
        ask_operator(store.engine, execution_id, site_id, settings, service.language)  # deployment runs: a form
        raise UpgradeFailed(f"{cutpoint.value} failed at site {site_id}: {error}. "
                            f"Fix the cause, then retry this flow run or run `ft-upgrade resume {execution_id}`.",
                            execution_id=execution_id, step_id=failed.step_id)
    return report.to_json()


def _waiting_url(store: MetadataStore, execution_id: str, settings: Settings) -> str | None:
    """The flow run's page when this run is about to ask for a decision there (its message then says so)."""
    if not asks(active_breakpoint(store.engine, execution_id), settings):
        return None
    from prefect.utilities.urls import url_for

    return url_for("flow-run", obj_id=flow_run.id) or f"flow run {flow_run.id}"


def _build_report(service: ExecutionService, execution_id: str) -> RunReport:
    return service.build_report(execution_id, deployment_name=deployment.name if flow_run.id else None)


def publish_report(service: ExecutionService, execution_id: str, extra: dict[str, Any] | None = None,
                   *, report_type: str = "SUMMARY") -> RunReport:
    """Write the report as markdown + table artifacts and an ``upgrade_report`` row."""
    report = _build_report(service, execution_id)
    report.extra.update(extra or {})
    e = report.execution
    markdown = render_markdown(report)
    key = artifact_key(e["site_id"], e["step_type"])
    create_markdown_artifact(markdown=markdown, key=key,
                             description=f"{e['step_type']} {e['source_version']} → {e['target_version']} "
                                         f"at {e['site_id']}: {report.status}")
    create_table_artifact(table=steps_table(report.steps), key=key + "-steps",
                          description=f"steps of {e['execution_id']}")
    service.save_report(report, markdown, report_type=report_type)
    return report


def _publish_noop(service: ExecutionService, request: Request, admission: Admission,
                  run_id: str | None) -> dict[str, Any]:
    """A completed cutpoint triggered again: its report, marked 'nothing executed'; no database is touched."""
    assert admission.execution_id is not None
    when = f"{admission.completed_time:%Y-%m-%d %H:%M:%S} UTC" if admission.completed_time else "an earlier run"
    notice = (f"already completed by {admission.execution_id} at {when}; nothing executed "
              f"(to run it again on purpose: --rerun / rerun=true with a reason)")
    get_run_logger().info("%s at site %s: %s", request.cutpoint.value, request.site_id, notice)
    report = publish_report(service, admission.execution_id,
                            extra={"noop": True, "notice": notice, "trigger_flow_run_id": run_id},
                            report_type="TRIGGER_NOOP")
    _publish_site_overview(service)
    return report.to_json()


def _publish_refusal(service: ExecutionService, request: Request, message: str) -> None:
    """A refused trigger leaves its reasons where operators look: the run's artifact (no execution exists)."""
    create_markdown_artifact(
        markdown=render_refusal(request.cutpoint, request.site_id, request.source_version, request.target_version,
                                message, service.language),
        key=artifact_key(request.site_id, request.cutpoint.value),
        description=f"{request.cutpoint.value} at {request.site_id}: REFUSED")
    _publish_site_overview(service)


def _publish_site_overview(service: ExecutionService) -> None:
    """The table artifact across sites (site × cutpoint state) that operators open in the Prefect UI."""
    try:
        rows = overview_rows(service)
        create_table_artifact(table=merge_overview(rows, latest_overview_rows()), key=OVERVIEW_KEY,
                              description="FT sites: version and each cutpoint's state of the current upgrade")
    except Exception as exc:  # noqa: BLE001 - an overview must never change a run's outcome
        get_run_logger().warning("site overview artifact not updated: %s", exc)


def cutpoint_flow(cutpoint: Cutpoint) -> Flow[..., dict[str, Any]]:
    """The Prefect flow of one cutpoint: the same body, its own name, parameters and docstring."""

    def run(source_version: VersionText, target_version: VersionText, site_id: SiteId,
            environment: dict[str, Any] | None = None, rerun: bool = False, waive: list[Waivable] | None = None,
            reason: str = "", requested_by: str = "",
            accept_changed_scripts: bool = False, execution_id: str | None = None, configs_dir: str | None = None,
            sql_root: str | None = None, databases: dict[str, SecretStr] | None = None) -> dict[str, Any]:
        return run_cutpoint(cutpoint, source_version, target_version, site_id, environment, rerun=rerun,
                            waive=waive or (), reason=reason, requested_by=requested_by,
                            accept_changed_scripts=accept_changed_scripts, execution_id=execution_id,
                            configs_dir=configs_dir, sql_root=sql_root, databases=databases)

    run.__name__ = run.__qualname__ = cutpoint.value
    run.__doc__ = f"""Run the {cutpoint.value} steps of every config from source to target for one site.

    Args:
        source_version: Version the site runs now, e.g. 3.17.0.
        target_version: Version to upgrade to, e.g. 3.17.5-P1.
        site_id: The site (局点) id, e.g. CN or US.
        environment: CICD's environment values; a secret one only as ``secret:<Secret block name>``.
        rerun: Run again although this cutpoint already completed for (site, source, target); needs a reason.
        waive: Preconditions to waive (e.g. services_stopped, pre_upgrade_process); needs a reason.
        reason: Why (recorded with a rerun, a waiver or accepted script changes).
        requested_by: Who asks (recorded); default: the deployment.
        accept_changed_scripts: Run although scripts applied at this site changed on disk; needs a reason.
        execution_id: Continue exactly this execution (``ft-upgrade resume`` passes it).
        configs_dir: Folder of version configs instead of the worker's setting.
        sql_root: Root of the SQL scripts instead of the worker's setting.
        databases: Logical database URLs instead of the site's blocks (secret: shown masked).
    """
    return flow(run, name=cutpoint.value, log_prints=True,
                flow_run_name=f"{cutpoint.value} {{site_id}} {{source_version}}→{{target_version}}")
