"""One cutpoint at one site, start to finish: plan → the site's lock → admission → the execution → the step
loop → breakpoint, finish, notifications, report (cf. Alembic's ``command.upgrade`` in its environment).

No orchestrator here: what only Prefect can do comes in as :class:`RunHooks` (``flows/runner.py`` hands in
Prefect's: run this step as a task, publish this artifact, ask this decision). A trigger with the same
request (Prefect UI retry, ``prefect deployment run`` again, ``ft-upgrade resume``) continues the
unfinished execution: steps already done are not run again. A cutpoint that already completed for
(site, source, target) executes nothing and says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol

from blocks.site_profile import SiteProfile, load_site_profile
from tasks.core.clock import utcnow
from tasks.core.environment import check_environment, is_secret_key, secret_reference
from tasks.core.errors import InputError, Refused, SiteBusy, UpgradeFailed
from tasks.core.language import language_of
from tasks.core.off_peak import outside_window
from tasks.core.settings import Settings
from tasks.core.statuses import ExecutionStatus
from tasks.execution.admission import Admission, Request
from tasks.execution.loop import ExecutionSteps, Launcher, Logger, LoopOutcome, RunScope, StepLoop
from tasks.execution.reporting import RunReport, render_markdown, render_refusal
from tasks.execution.run_databases import outside_blocks
from tasks.execution.service import ExecutionService, StartTerms, describe_applied
from tasks.execution.site_info import overview_rows, site_deployment
from tasks.execution.upgrade_report import gather, render_upgrade, upgrade_artifact_key
from tasks.notify.outcome import RunNotice
from tasks.planning.plan import PlannedStep, UpgradePlan, plan_for
from tasks.site.resources import SiteOverrides, SiteResources, open_site_resources
from tasks.steps.registry import resolve_step_class
from tasks.store.breakpoints import Breakpoint


class Publisher(Protocol):
    """Where a run's artifacts go (Prefect: on the flow run)."""

    def progress(self, percent: float) -> None: ...

    def report(self, report: RunReport, markdown: str) -> None: ...

    def refusal(self, markdown: str) -> None: ...

    def overview(self, rows: list[dict[str, str]]) -> None: ...

    def upgrade(self, key: str, markdown: str, description: str) -> None:
        """The whole upgrade's report (one per site and upgrade, republished by every run)."""


class Decider(Protocol):
    """How a run asks an operator to decide at a breakpoint (Prefect: the flow run's decision form)."""

    def resumed(self, service: ExecutionService, execution_id: str) -> None:
        """The answer this run was resumed with, recorded (raises :class:`UpgradeFailed` on "stop")."""

    def page(self, bp: Breakpoint | None) -> str | None:
        """Where this run is about to ask about ``bp`` (None: it does not ask)."""

    def ask(self, bp: Breakpoint | None, language: str) -> None:
        """Ask about ``bp`` (a deployment run suspends here); return when there is no one to ask."""


@dataclasses.dataclass(frozen=True)
class RunHooks:
    """What the orchestrator does for a run: the step launcher, the artifacts, the decisions, who and where."""

    launch: Launcher
    publish: Publisher
    decide: Decider
    logger: Logger
    flow_run_id: str | None = None
    deployment_name: str | None = None  # the per-site deployment a resume hint names


def masked_environment(environment: Mapping[str, Any] | None) -> dict[str, Any]:
    """The environment as recorded: Secret block references kept (a resume reads them again), any other
    value of a secret-looking key replaced (an execution recorded before references were required)."""
    return {k: ("***" if is_secret_key(k) and secret_reference(v) is None else v)
            for k, v in (environment or {}).items()}


def run_cutpoint(request: Request, environment: Mapping[str, Any] | None, *, settings: Settings,
                 overrides: SiteOverrides, hooks: RunHooks) -> dict[str, Any]:
    """A cutpoint's run; its report's JSON. Raises :class:`UpgradeFailed` after reporting a failure.

    A trigger is admitted first (:mod:`tasks.execution.admission`): a cutpoint that already completed for
    (site, source, target) returns its report and executes nothing; a refused one (or a busy site) raises
    :class:`Refused` (:class:`SiteBusy`) with its reasons published, and executes nothing. Every failure is
    told (:class:`RunNotice`), also one that came before the plan existed (a broken config, an unknown site).
    """
    notice = RunNotice(site_id=request.site_id, cutpoint=request.cutpoint.value,
                       source_version=request.source_version, target_version=request.target_version,
                       logger=hooks.logger, fallback_blocks=settings.fallback_notify_blocks)
    try:
        return _run_cutpoint(request, environment, settings=settings, overrides=overrides, hooks=hooks,
                             notice=notice)
    except Exception as exc:
        if not notice.told:
            notice.tell_failure(exc)
        raise


def _run_cutpoint(request: Request, environment: Mapping[str, Any] | None, *, settings: Settings,
                  overrides: SiteOverrides, hooks: RunHooks, notice: RunNotice) -> dict[str, Any]:
    profile = load_site_profile(request.site_id)  # None without a Prefect API or for an unknown site
    notice.use_profile(profile, language_of(profile))  # told even when the config is broken
    check_environment(environment)
    try:
        plan = plan_for(request.cutpoint, request.source_version, request.target_version, request.site_id, settings)
    except InputError as exc:  # configs that cannot make this plan: nothing ran (exit 2, CICD reads the artifact)
        hooks.publish.refusal(render_refusal(request.cutpoint, request.site_id, request.source_version,
                                             request.target_version, str(exc)))
        raise
    request = dataclasses.replace(request, source_version=plan.source_version, target_version=plan.target_version,
                                  site_id=plan.site_id)
    if hooks.deployment_name is None:  # e.g. the CLI: the commands it prints name the site's own deployment
        hooks = dataclasses.replace(hooks, deployment_name=site_deployment(request.cutpoint.value, plan.site_id))
    notice.source_version, notice.target_version, notice.notifications = (plan.source_version, plan.target_version,
                                                                          plan.notifications)
    service = ExecutionService.open(plan.site_id, metadata_url=overrides.databases.get("metadata"))
    holder = f"{request.cutpoint.value} {plan.source_version}→{plan.target_version} (flow run {hooks.flow_run_id})"
    try:
        with service.hold(plan.site_id, holder, settings=settings, on_lost=hooks.logger.error):
            service.language = language_of(profile)  # one language per report
            steps = plan.for_cutpoint(request.cutpoint)
            try:
                admission = service.admit(request, sql_root=settings.sql_root, flow_run_id=hooks.flow_run_id,
                                          settings=settings, services=site_services(profile, settings),
                                          outside_window=off_peak_missing(profile, steps, settings, hooks.logger,
                                                                          plan.site_id))
                if admission.action == "resume" and admission.execution_id:
                    service.require_databases(request, admission.execution_id, overrides.databases,
                                              flow_run_id=hooks.flow_run_id)
            except Refused as exc:
                _publish_refusal(service, request, str(exc), hooks)
                raise
            if admission.action == "noop":
                return _publish_noop(service, request, admission, hooks, settings)
            if admission.action == "resume" and admission.execution_id:
                hooks.decide.resumed(service, admission.execution_id)  # e.g. from the Prefect UI's decision form
            with open_site_resources(plan.site_id, settings=settings, overrides=overrides, profile=profile,
                                     store=service.store) as resources:
                notice.secrets = resources.secrets
                run = CutpointRun(service, request, plan, settings, resources, hooks, notice)
                return run.run(admission, environment)
    except SiteBusy as exc:  # refused like a missing precondition: nothing ran (exit 2, CICD reads the artifact)
        _publish_refusal(service, request, str(exc), hooks)
        raise
    finally:
        service.close()


def site_services(profile: SiteProfile | None, settings: Settings) -> dict[str, str]:
    """The site's FT services: its profile's, overridden by name by FT_UPGRADE_SERVICES."""
    return {**(dict(profile.services) if profile is not None else {}), **settings.services}


def off_peak_missing(profile: SiteProfile | None, steps: list[PlannedStep], settings: Settings, logger: Logger,
                     site_id: str) -> str:
    """What the ``off_peak`` precondition misses ('' when it holds): heavy steps outside the site's window."""
    heavy = [f"{s.step_id} ({s.class_name.rpartition('.')[2]})" for s in steps
             if (cls := resolve_step_class(s.class_name, settings.allowed_step_modules).step_class) is not None
             and cls.needs_off_peak(s.params)]
    try:
        window = profile.off_peak_windows() if profile is not None else None
    except ValueError as exc:  # a profile saved by hand: a window that cannot be read decides nothing
        raise InputError(f"site profile {SiteProfile.block_name(site_id)}: {exc}") from None
    if heavy and window is None:
        logger.info("site %s declares no off-peak window: heavy steps %s are not held to one", site_id,
                    ", ".join(heavy))
    return outside_window(window, heavy, utcnow(), site_id)


class CutpointRun:
    """The run while this process holds the site's lock: the execution, its loop, its end."""

    def __init__(self, service: ExecutionService, request: Request, plan: UpgradePlan, settings: Settings,
                 resources: SiteResources, hooks: RunHooks, notice: RunNotice) -> None:
        self.service, self.request, self.plan = service, request, plan
        self.settings, self.resources, self.hooks, self.notice = settings, resources, hooks, notice
        self.steps: list[PlannedStep] = plan.for_cutpoint(request.cutpoint)

    def run(self, admission: Admission, environment: Mapping[str, Any] | None) -> dict[str, Any]:
        execution_id, extra = self._start(admission, environment)
        scope = RunScope(execution_id=execution_id, cutpoint=self.request.cutpoint.value,
                         source_version=self.plan.source_version, target_version=self.plan.target_version,
                         site_id=self.plan.site_id, environment=dict(environment or {}))
        loop = StepLoop(scope, ExecutionSteps(self.service, execution_id), self.resources,
                        allowed_step_modules=self.settings.allowed_step_modules, logger=self.hooks.logger)
        self.hooks.publish.progress(0.0)
        outcome = loop.run(self.steps, self.hooks.launch, self.hooks.publish.progress)
        return self._finish(execution_id, outcome, extra)

    def _start(self, admission: Admission, environment: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
        """The execution this run continues or creates, and what its report says beyond the steps."""
        service, request, plan, resources, logger = self.service, self.request, self.plan, self.resources, \
            self.hooks.logger
        overridden = tuple(o.record() for o in outside_blocks(resources.overrides.databases))
        resources.resolve_environment(environment)  # a missing Secret block: nothing started
        if any(_writes_events(step, self.settings) for step in self.steps):
            resources.event_writer()  # the event log boots beside the run's start, not beside the statements
        execution_id = self.notice.execution_id = service.start(request, admission, StartTerms(
            environment=masked_environment(environment), total_steps=len(self.steps),
            plan_fingerprint=plan.fingerprint(), flow_run_id=self.hooks.flow_run_id,
            configs_dir=str(self.settings.configs), sql_root=str(self.settings.sql_root), db_overrides=overridden))
        logger.info("execution %s: %s %s → %s at site %s, %d steps (metadata: %s)", execution_id,
                    request.cutpoint.value, plan.source_version, plan.target_version, plan.site_id, len(self.steps),
                    service.store.describe())
        extra: dict[str, Any] = {}
        if admission.rerun_of:
            applied = describe_applied(service.applied_scripts(plan.site_id))
            extra["rerun"] = {"of": admission.rerun_of, "by": request.by, "reason": request.reason,
                              "scripts_applied_at_site": applied}
            logger.warning("deliberate re-run of %s (completed by %s), asked by %s: %s; scripts already applied at "
                           "site %s:\n%s", request.cutpoint.value, admission.rerun_of, request.by, request.reason,
                           plan.site_id, "\n".join(applied) or "(none)")
        for waiver in admission.waivers:
            logger.warning("precondition %s waived by %s (%s): %s", waiver.precondition, waiver.by, waiver.reason,
                           waiver.missing)
        return execution_id, extra

    def _finish(self, execution_id: str, outcome: LoopOutcome, extra: dict[str, Any]) -> dict[str, Any]:
        """Breakpoint, the execution's end, notifications, the report; a failure asks, then raises.

        A failure the run is about to ask about ends this attempt PAUSED (waiting for a decision): its report,
        messages and the site's state say so, with the page to decide at, before the run suspends.
        """
        service, hooks, failed = self.service, self.hooks, outcome.failed
        error, page = None, None
        if failed:
            error = f"step {failed.step_id} failed: {outcome.failure or 'unknown error'}"
            hint = service.build_report(execution_id, deployment_name=hooks.deployment_name).resume_hint
            service.stop_at_step(execution_id, failed.step_id, failed.key, error, "\n".join(hint))
            page = hooks.decide.page(service.active_breakpoint(execution_id))
        status = ExecutionStatus.SUCCESS if not failed else ExecutionStatus.PAUSED if page else ExecutionStatus.FAILED
        service.finish(execution_id, status, error)
        extra.update(self._notify(execution_id, page))
        report = publish_report(service, execution_id, hooks, self.settings, extra=extra)
        publish_overview(service, hooks)
        publish_upgrade(service, self.plan.site_id, self.plan.source_version, self.plan.target_version, hooks)
        if failed:
            hooks.decide.ask(service.active_breakpoint(execution_id), service.language)  # deployment runs: a form
            if page:  # the run could not suspend after all: nobody will answer, it ends Failed
                service.finish(execution_id, ExecutionStatus.FAILED, error)
                publish_report(service, execution_id, hooks, self.settings, extra=extra)
            cutpoint, site_id = self.request.cutpoint.value, self.plan.site_id
            raise UpgradeFailed(f"{cutpoint} failed at site {site_id}: {error}. "
                                f"Fix the cause, then retry this flow run or run `ft-upgrade resume {execution_id}`.",
                                execution_id=execution_id, step_id=failed.step_id)
        return report.to_json()

    def _notify(self, execution_id: str, waiting: str | None) -> dict[str, Any]:
        """The run's message on every channel (:class:`RunNotice`; ``waiting``: the page where the run waits for
        a decision); what happened, for the report."""
        final = self.service.build_report(execution_id, deployment_name=self.hooks.deployment_name).to_json()
        return self.notice.tell(final, waiting_url=waiting)


def _writes_events(step: PlannedStep, settings: Settings) -> bool:
    step_class = resolve_step_class(step.class_name, settings.allowed_step_modules).step_class
    return bool(step_class is not None and step_class.writes_events)


def publish_report(service: ExecutionService, execution_id: str, hooks: RunHooks, settings: Settings,
                   extra: dict[str, Any] | None = None, *, report_type: str = "SUMMARY") -> RunReport:
    """The report as artifacts (the publisher's) and an ``upgrade_report`` row."""
    report = service.build_report(execution_id, deployment_name=hooks.deployment_name)
    report.extra.update(extra or {})
    markdown = render_markdown(report)
    hooks.publish.report(report, markdown)
    service.save_report(report, markdown, report_type=report_type,
                        retention_days=settings.report_retention_days)
    return report


def _publish_noop(service: ExecutionService, request: Request, admission: Admission,
                  hooks: RunHooks, settings: Settings) -> dict[str, Any]:
    """A completed cutpoint triggered again: its report, marked 'nothing executed'; no database is touched."""
    assert admission.execution_id is not None
    when = f"{admission.completed_time:%Y-%m-%d %H:%M:%S} UTC" if admission.completed_time else "an earlier run"
    notice = (f"already completed by {admission.execution_id} at {when}; nothing executed "
              f"(to run it again on purpose: --rerun / rerun=true with a reason)")
    hooks.logger.info("%s at site %s: %s", request.cutpoint.value, request.site_id, notice)
    report = publish_report(service, admission.execution_id, hooks, settings,
                            extra={"noop": True, "notice": notice, "trigger_flow_run_id": hooks.flow_run_id},
                            report_type="TRIGGER_NOOP")
    publish_overview(service, hooks)
    publish_upgrade(service, request.site_id, request.source_version, request.target_version, hooks)
    return report.to_json()


def _publish_refusal(service: ExecutionService, request: Request, message: str, hooks: RunHooks) -> None:
    """A refused trigger leaves its reasons where operators look: the run's artifact (no execution exists)."""
    hooks.publish.refusal(render_refusal(request.cutpoint, request.site_id, request.source_version,
                                         request.target_version, message, service.language))
    publish_overview(service, hooks)
    publish_upgrade(service, request.site_id, request.source_version, request.target_version, hooks)


def publish_upgrade(service: ExecutionService, site_id: str, source_version: str, target_version: str,
                    hooks: RunHooks) -> None:
    """The whole upgrade's report (:mod:`tasks.execution.upgrade_report`); never changes an outcome."""
    try:
        record = gather(service, site_id, source_version, target_version)
        hooks.publish.upgrade(upgrade_artifact_key(site_id, source_version, target_version),
                              render_upgrade(record, service.language),
                              f"upgrade {source_version} → {target_version} at {site_id}")
    except Exception as exc:  # noqa: BLE001 - a report must never change a run's outcome
        hooks.logger.warning("upgrade report artifact not updated: %s", exc)


def publish_overview(service: ExecutionService, hooks: RunHooks) -> None:
    """The sites overview (site × cutpoint state) operators open in the Prefect UI; never changes an outcome."""
    try:
        hooks.publish.overview(overview_rows(service))
    except Exception as exc:  # noqa: BLE001 - an overview must never change a run's outcome
        hooks.logger.warning("site overview artifact not updated: %s", exc)
