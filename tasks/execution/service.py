"""The execution service: the one owner of a site's metadata store and of every execution in it.

Flows and the CLI are thin shells over it. It opens the right store for a site (its own
``<site>-metadata`` block, the shared one, ``FT_UPGRADE_DB_METADATA`` or the embedded SQLite file),
admits or refuses a trigger (:mod:`tasks.execution.admission`), starts and finishes executions and
steps, keeps breakpoints with the operator's typed decision, moves the site's state and writes reports.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from blocks.database import block_names, can_load_blocks, load_database_url, url_from_environment
from tasks.core.clock import utcnow
from tasks.core.cutpoints import Cutpoint
from tasks.core.errors import InputError, Refused
from tasks.core.runtime import flow_run_page
from tasks.core.settings import Settings, get_settings
from tasks.core.statuses import BreakpointKind, ExecutionStatus, SiteEvent
from tasks.execution.admission import (
    PRECONDITIONS,
    SERVICE_PRECONDITIONS,
    Admission,
    Request,
    ScriptDrift,
    ServiceSeen,
    SiteView,
    admit,
)
from tasks.execution.report_text import DEFAULT_LANGUAGE
from tasks.execution.reporting import RunReport, resume_instructions
from tasks.execution.run_databases import refusal as databases_refusal
from tasks.execution.run_databases import unreachable_for_resume
from tasks.store.breakpoints import (
    Breakpoint,
    OperatorDecision,
    active_breakpoint,
    breakpoints_of,
    expire_breakpoint,
    open_breakpoint,
    record_decision,
    resolve_as_decided,
)
from tasks.store.metadata_store import MetadataStore
from tasks.store.records import Execution, StepRun, StoredReport
from tasks.store.site_lock import HeldLock, site_lock
from tasks.store.site_state import AppliedScript, SiteState, SiteStates

#: Which of the site's versions a completed cutpoint moves to the target.
VERSION_MOVES: dict[Cutpoint, tuple[str, ...]] = {
    Cutpoint.STARTUP_PRE_PROCESS: ("schema_version",),
    Cutpoint.POST_UPGRADE: ("schema_version", "current_version"),
}


@dataclass(frozen=True)
class StartTerms:
    """Where a run reads its files from and what it was told, recorded on the execution."""

    environment: Mapping[str, Any]
    total_steps: int
    plan_fingerprint: str
    flow_run_id: str | None
    configs_dir: str
    sql_root: str
    db_overrides: tuple[str, ...] = ()


def store_url(site_id: str | None, metadata_url: str | None = None) -> str:
    """The metadata store of a site: the caller's URL, ``FT_UPGRADE_DB_METADATA``, ``<site>-metadata`` block,
    the shared block, else the embedded SQLite file."""
    if metadata_url:
        return metadata_url
    url = load_database_url("metadata", site_id)
    return url.render_as_string(hide_password=False) if url else get_settings().default_metadata_url


class ExecutionService:
    """Executions, steps, breakpoints, site state and reports of one metadata store.

    Example:
        ```python
        with ExecutionService.open("CN") as service:
            print(service.info("CN"))
        ```
    """

    def __init__(self, store: MetadataStore) -> None:
        self.store = store
        self.sites = SiteStates(store.engine)
        #: Language of the reports this service builds: the site profile's (``zh`` unless it says ``en``).
        self.language: str = DEFAULT_LANGUAGE

    @classmethod
    def open(cls, site_id: str | None, *, metadata_url: str | None = None) -> ExecutionService:
        return cls(MetadataStore.open(store_url(site_id, metadata_url)))

    @classmethod
    def locate(cls, execution_id: str, site_id: str | None = None, *,
               metadata_url: str | None = None) -> ExecutionService:
        """The store that holds ``execution_id``: the site's if given, else the default, else any site's block."""
        service = cls.open(site_id, metadata_url=metadata_url)
        if site_id or metadata_url or service.store.get_execution(execution_id) is not None:
            return service
        tried = [service.store.describe()]
        service.close()
        if not url_from_environment("metadata"):
            for site in _sites_with_metadata_blocks():
                candidate = cls.open(site)
                if candidate.store.get_execution(execution_id) is not None:
                    return candidate
                tried.append(f"{site.lower()}-metadata")
                candidate.close()
        raise InputError(f"no execution {execution_id!r} in {', '.join(tried)}; give the site (--site S) or the "
                         "metadata database (--db metadata=URL) the run used")

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> ExecutionService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def hold(self, site_id: str, holder: str, *, settings: Settings | None = None,
             on_lost: Callable[[str], None] | None = None) -> Iterator[HeldLock]:
        """The site's lock for the block (:class:`SiteBusy` if another run keeps it); the store's writes are
        fenced by it meanwhile. ``holder`` is what a refused run is told (e.g. the cutpoint and flow run)."""
        settings = settings or get_settings()
        with site_lock(self.store.engine, site_id, holder=holder, wait_seconds=settings.site_lock_wait_seconds,
                       check_seconds=settings.site_lock_check_seconds, on_lost=on_lost) as held, \
                self.store.fenced_by(held):
            yield held

    # admission ----------------------------------------------------------------------------------

    def admit(self, request: Request, *, sql_root: Path, settings: Settings, services: Mapping[str, str] | None = None,
              flow_run_id: str | None = None, outside_window: str = "") -> Admission:
        """Decide a trigger from the site's state; a refusal is recorded in the history and raised.
        ``outside_window``: heavy steps planned outside the site's off-peak window (see SiteView);
        ``services``: the site's FT services, probed when the cutpoint's preconditions are about them."""
        store, r = self.store, request
        named = store.get_execution(r.execution_id) if r.execution_id else None
        latest = store.latest_execution(site_id=r.site_id, cutpoint=r.cutpoint.value,
                                        source_version=r.source_version, target_version=r.target_version)
        candidate = named or latest
        retried = store.execution_for_flow_run(flow_run_id) if flow_run_id else None  # a UI Retry: same flow run
        closed = next((e for e in (named, store.get_execution(retried) if retried else None)
                       if e is not None and e.status == ExecutionStatus.ROLLED_BACK), None)
        bp = self.active_breakpoint(candidate.execution_id) if candidate else None
        view = SiteView(site=self.sites.get(r.site_id),
                        cutpoints=self.sites.cutpoints(r.site_id, r.source_version, r.target_version),
                        latest=latest, named=named, breakpoint_expiry=bp.expiry_time if bp else None,
                        services=_probed(services or {}, settings.service_probe_seconds)
                        if set(SERVICE_PRECONDITIONS) & set(PRECONDITIONS[r.cutpoint]) else None,
                        drift=tuple(self.script_drift(r.site_id, sql_root)), outside_window=outside_window,
                        closed_by_rollback=closed)
        decision = admit(r, view, now=utcnow(), check_max_age=timedelta(hours=settings.check_max_age_hours))
        if decision.action == "refuse":
            if decision.expire and decision.execution_id:
                expire_breakpoint(store.engine, decision.execution_id)
                expired = f"breakpoint expired on {view.breakpoint_expiry:%Y-%m-%d %H:%M} UTC" \
                    if view.breakpoint_expiry else "breakpoint expired"
                store.update_execution(decision.execution_id, status=ExecutionStatus.EXPIRED, end_time=utcnow(),
                                       error_message=expired)
            self.sites.record(r.site_id, SiteEvent.TRIGGER_REFUSED, cutpoint=r.cutpoint.value, source=r.source_version,
                              target=r.target_version, execution_id=decision.execution_id, flow_run_id=flow_run_id,
                              actor=r.by, detail={"reasons": list(decision.reasons)})
            raise Refused(f"{r.cutpoint.value} refused at site {r.site_id} ({r.source_version} → "
                          f"{r.target_version}); nothing was executed:\n" +
                          "\n".join(f"- {reason}" for reason in decision.reasons),
                          site_id=r.site_id, cutpoint=r.cutpoint.value)
        if decision.action == "noop":
            self.sites.record(r.site_id, SiteEvent.TRIGGER_NOOP, cutpoint=r.cutpoint.value, source=r.source_version,
                              target=r.target_version, execution_id=decision.execution_id, flow_run_id=flow_run_id,
                              actor=r.by)
        return decision

    def require_databases(self, request: Request, execution_id: str, given: Mapping[str, str], *,
                          flow_run_id: str | None = None) -> None:
        """A resume finds every database its execution had from ``--db`` or the environment of the process that
        ran it (:mod:`tasks.execution.run_databases`), or it is refused (recorded in the history) before
        anything starts."""
        e = self.execution(execution_id)
        missing = unreachable_for_resume(e.db_overrides, given=given,
                                         found=lambda name: load_database_url(name, e.site_id) is not None)
        if not missing:
            return
        r, reason = request, databases_refusal(execution_id, e.site_id, missing)
        self.sites.record(r.site_id, SiteEvent.TRIGGER_REFUSED, cutpoint=r.cutpoint.value, source=r.source_version,
                          target=r.target_version, execution_id=execution_id, flow_run_id=flow_run_id, actor=r.by,
                          detail={"reasons": [reason]})
        raise Refused(f"{r.cutpoint.value} refused at site {r.site_id} ({r.source_version} → {r.target_version}); "
                      f"nothing was executed:\n- {reason}", site_id=r.site_id, cutpoint=r.cutpoint.value)

    def script_drift(self, site_id: str, sql_root: Path) -> list[ScriptDrift]:
        """Scripts applied at the site whose file under ``sql_root`` has changed since (missing files aside)."""
        drift = []
        for applied in self.sites.applied_scripts(site_id):
            current = _file_sha256(sql_root, applied.path)
            if current is not None and current != applied.sha256:
                drift.append(ScriptDrift(path=applied.path, applied_sha256=applied.sha256, current_sha256=current,
                                         execution_id=applied.execution_id, applied_time=applied.applied_time))
        return drift

    def applied_scripts(self, site_id: str) -> list[AppliedScript]:
        return self.sites.applied_scripts(site_id)

    # executions ---------------------------------------------------------------------------------

    def start(self, request: Request, admission: Admission, terms: StartTerms) -> str:
        """Create (or reopen) the execution the admission allows, and mark the cutpoint RUNNING at the site."""
        store, r = self.store, request
        waivers = [w.to_json() for w in admission.waivers]
        if admission.action == "resume":
            assert admission.execution_id is not None
            execution_id = admission.execution_id
            store.reopen_execution(execution_id, flow_run_id=terms.flow_run_id, total_steps=terms.total_steps)
            if waivers:
                store.update_execution(execution_id, waivers=json.dumps(waivers, ensure_ascii=False))
        else:
            execution_id = store.create_execution(
                source_version=r.source_version, target_version=r.target_version, site_id=r.site_id,
                cutpoint=r.cutpoint.value, environment=terms.environment, total_steps=terms.total_steps,
                flow_run_id=terms.flow_run_id, plan_fingerprint=terms.plan_fingerprint,
                requested_by=r.by, rerun_of=admission.rerun_of,
                waivers=json.dumps(waivers, ensure_ascii=False) if waivers else None,
                configs_dir=terms.configs_dir, sql_root=terms.sql_root,
                db_overrides=",".join(terms.db_overrides) or None)
        detail: dict[str, Any] = {"action": admission.action}
        if admission.rerun_of:
            detail.update(rerun_of=admission.rerun_of, reason=r.reason)
        if waivers:
            detail["waivers"] = waivers
        self.sites.cutpoint_started(r.site_id, source=r.source_version, target=r.target_version,
                                    cutpoint=r.cutpoint.value, execution_id=execution_id,
                                    flow_run_id=terms.flow_run_id, actor=r.by, detail=detail)
        if admission.accepted_drift:
            self.sites.accept_script_changes(
                r.site_id, [(x.path, x.current_sha256) for x in admission.accepted_drift], actor=r.by,
                reason=r.reason, execution_id=execution_id)
        return execution_id

    def record_step(self, execution_id: str, step: StepRun | None) -> None:
        """What a step leaves at the site beyond its execution: the scripts it applied, with their SHA-256."""
        scripts = step.details.get("scripts_applied") if step else None
        if not step or not scripts:
            return
        e = self.store.require_execution(execution_id)
        self.sites.record_scripts(e.site_id, scripts, execution_id=execution_id, cutpoint=e.cutpoint,
                                  step_key=step.step_key, version=step.version)

    def finish(self, execution_id: str, status: str, error: str | None) -> None:
        """End the execution (this attempt of it: PAUSED waits for an operator's decision); the cutpoint's state
        at the site follows, and a completion may move the version."""
        store = self.store
        e = store.require_execution(execution_id)
        if status == ExecutionStatus.SUCCESS:
            resolve_as_decided(store.engine, execution_id, why="the execution completed")
        store.finish_execution(execution_id, status, error)
        cutpoint = Cutpoint(e.cutpoint)
        completed = status == ExecutionStatus.SUCCESS
        moves = {column: e.target_version for column in VERSION_MOVES.get(cutpoint, ())} if completed else {}
        self.sites.cutpoint_finished(e.site_id, source=e.source_version, target=e.target_version,
                                     cutpoint=cutpoint.value, execution_id=execution_id, flow_run_id=e.flow_run_id,
                                     completed=completed, moves=moves, paused=status == ExecutionStatus.PAUSED,
                                     detail={"status": status, **({"error": error} if error else {})})

    # breakpoints --------------------------------------------------------------------------------

    def active_breakpoint(self, execution_id: str) -> Breakpoint | None:
        return active_breakpoint(self.store.engine, execution_id)

    def stop_at_step(self, execution_id: str, step_id: str, step_key: str, message: str,
                     instructions: str) -> None:
        """A step failed where no statement's breakpoint says more: the execution stops at the step."""
        if self.active_breakpoint(execution_id) is None:
            open_breakpoint(self.store.engine, execution_id=execution_id, step_id=step_id,
                            kind=BreakpointKind.STEP_LEVEL, message=message, instructions=instructions,
                            context={"step_key": step_key}, fence=self.store.lock)

    def operator_stopped(self, execution_id: str, bp: Breakpoint, *, by: str, reason: str,
                         flow_run_id: str | None, message: str) -> None:
        """An operator chose to stop at a breakpoint (in the Prefect UI): no longer waiting, the execution is
        FAILED with its breakpoint kept, and the site's history says who stopped it."""
        e = self.store.require_execution(execution_id)
        self.sites.record(e.site_id, SiteEvent.OPERATOR_STOPPED, cutpoint=e.cutpoint, source=e.source_version,
                          target=e.target_version, execution_id=execution_id, flow_run_id=flow_run_id,
                          actor=by, detail={"breakpoint": bp.id, "reason": reason})
        self.finish(execution_id, ExecutionStatus.FAILED, message)

    def prepare_resume(self, execution_id: str, decision: OperatorDecision) -> Execution:
        """Check that an execution can be resumed and record the operator's decision on its breakpoint."""
        execution = self.execution(execution_id)
        if execution.status == ExecutionStatus.ABANDONED:
            raise InputError(f"execution {execution_id} was abandoned; run the cutpoint again for a new execution")
        if execution.cutpoint == "rollback":
            raise InputError(f"execution {execution_id} is a rollback: the next rollback finishes it: "
                             f"`ft-upgrade rollback --site {execution.site_id}`")
        if execution.status == ExecutionStatus.ROLLED_BACK:
            raise Refused(f"execution {execution_id} cannot be resumed: {execution.error_message or 'rolled back'}; "
                          "a new attempt starts from pre_business_check", site_id=execution.site_id,
                          cutpoint=execution.cutpoint)
        if execution.status == ExecutionStatus.SUCCESS:
            return execution
        bp = self.active_breakpoint(execution_id)
        if bp is None:
            if decision.inflight:
                raise InputError(f"execution {execution_id} has no active breakpoint to apply --inflight to")
            return execution
        if decision.inflight:
            _check_inflight(bp, decision)
        record_decision(self.store.engine, execution_id, decision)
        return execution

    def abandon(self, execution_id: str, *, by: str, reason: str) -> None:
        """Give an execution up: its breakpoint is resolved and the next trigger starts a new execution."""
        e = self.store.require_execution(execution_id)
        if e.status == ExecutionStatus.SUCCESS:
            raise InputError(f"execution {execution_id} succeeded; nothing to abandon")
        self.store.abandon_execution(execution_id, by=by, reason=reason)
        self.sites.cutpoint_finished(e.site_id, source=e.source_version, target=e.target_version,
                                     cutpoint=e.cutpoint, execution_id=execution_id, flow_run_id=None,
                                     completed=False, moves={},
                                     detail={"status": ExecutionStatus.ABANDONED, "by": by, "reason": reason})

    def baseline(self, site_id: str, version: str, *, by: str, notes: str) -> SiteState | None:
        """Record the version of a site installed before this tool (or repair the record); the state before."""
        return self.sites.set_baseline(site_id, version, actor=by, notes=notes)

    def site(self, site_id: str) -> SiteState | None:
        """Where the site stands (None: no record yet)."""
        return self.sites.get(site_id)

    # reports ------------------------------------------------------------------------------------

    def build_report(self, execution_id: str, *, deployment_name: str | None = None,
                     language: str | None = None) -> RunReport:
        """The execution's report; ``language`` (zh/en) is the site's, Chinese when unset. One waiting for a
        decision (PAUSED) tells where to decide: its flow run's page."""
        execution = self.execution(execution_id)
        page = None
        if execution.status == ExecutionStatus.PAUSED:
            page = flow_run_page(execution.flow_run_id) if execution.flow_run_id else "Prefect UI"
        hint = resume_instructions(execution_id=execution_id, cutpoint=execution.cutpoint,
                                   deployment_name=deployment_name, source=execution.source_version,
                                   target=execution.target_version, site=execution.site_id,
                                   language=language or self.language, decision_page=page)
        return RunReport(execution=execution, steps=self.store.step_runs(execution_id), status=execution.status,
                         resume_hint=hint, sql_counts=self.store.sql_counts(execution_id),
                         language=language or self.language,
                         breakpoints=breakpoints_of(self.store.engine, [execution_id]))

    def save_report(self, report: RunReport, markdown: str, *, report_type: str = "SUMMARY",
                    retention_days: int = 90) -> None:
        """The ``upgrade_report`` row (GENERATED): counts of steps and SQL statements, JSON and markdown; reports
        older than ``retention_days`` (the run's ``FT_UPGRADE_REPORT_RETENTION_DAYS``, 90) become ARCHIVED meanwhile."""
        e, c, sql = report.execution, report.counts, report.sql_counts
        self.store.save_report(
            execution=e, total_duration_ms=report.duration_ms, report_type=report_type,
            counts={"total": c["total"], "success": c["success"] + c["warning"], "failed": c["failed"],
                    "skipped": c["skipped"], "sql_total": sql["total"], "sql_success": sql["success"],
                    "sql_failed": sql["failed"]},
            content={**report.to_json(), "markdown": markdown},
            summary=f"{e.cutpoint} {report.status}: {c['success']} success, {c['warning']} warning, "
                    f"{c['failed']} failed, {c['skipped']} skipped",
            recommendations="\n".join(report.resume_hint) if report.status != ExecutionStatus.SUCCESS else "")
        self.store.archive_reports(utcnow() - timedelta(days=retention_days))

    def latest_report(self, execution_id: str) -> StoredReport | None:
        return self.store.latest_report(execution_id)

    # reading ------------------------------------------------------------------------------------

    def execution(self, execution_id: str) -> Execution:
        """The execution, or an input error naming the store."""
        found = self.store.get_execution(execution_id)
        if found is None:
            raise InputError(f"no execution {execution_id!r} in {self.store.describe()}")
        return found

    def executions(self, *, site_id: str | None = None, cutpoint: str | None = None,
                   limit: int = 20) -> list[Execution]:
        return self.store.list_executions(site_id=site_id, cutpoint=cutpoint, limit=limit)


def resume_environment(execution: Execution, given: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The environment a resume runs with: the recorded one, with values given again on top; and the keys
    still masked (secret-looking values are recorded as ``***``: they must be given again)."""
    environment = {**execution.environment, **given}
    return environment, sorted(k for k, v in environment.items() if v == "***")


def _check_inflight(bp: Breakpoint, decision: OperatorDecision) -> None:
    """A decision fits the breakpoint: a SQL statement; ``applied`` only where it may have taken effect."""
    where = f"breakpoint {bp.id}"
    if not bp.at_statement:
        raise InputError(f"{where} is at step {bp.step_id}, not at a SQL statement: --inflight does not apply; "
                         "fix the cause and resume without it")
    if decision.inflight == "applied" and not bp.in_doubt:
        raise InputError(f"{where}: {bp.where} failed on the server "
                         f"({bp.error_code or 'error'}): it did not take effect; fix the cause and resume, or "
                         "`--inflight skip --notes WHY` if you applied it by hand")


def _file_sha256(sql_root: Path, relative: str) -> str | None:
    """The applied script's SHA-256 now: its bytes and those of the files it includes (``SOURCE``)."""
    from tasks.sql.script import script_sha256

    return script_sha256(sql_root, relative)


def _probed(services: Mapping[str, str], timeout: float) -> tuple[ServiceSeen, ...]:
    """The site's FT services, each running, stopped or unknown (tasks.site.service_probe)."""
    from tasks.site.service_probe import probe_services

    return tuple(ServiceSeen(p.name, p.url, p.state, p.why, p.healthy)
                 for p in probe_services(services, timeout=timeout))


def _sites_with_metadata_blocks() -> Iterator[str]:
    """Sites that have a ``<site>-metadata`` block on the Prefect server (for finding an execution)."""
    if not can_load_blocks():
        return
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        documents = client.read_block_documents_by_type("sqlalchemy-connector", limit=200, include_secrets=False)
    shared = set(block_names("metadata"))
    for doc in documents:
        name = doc.name or ""
        if name.endswith("-metadata") and name not in shared:
            yield name.removesuffix("-metadata").upper()


def describe_applied(scripts: Sequence[AppliedScript]) -> list[str]:
    """One line per script applied at a site (for a rerun's listing)."""
    return [f"{s.path} (SHA-256 {s.sha256[:12]}…, {s.cutpoint} by {s.execution_id} at "
            f"{s.applied_time:%Y-%m-%d %H:%M:%S} UTC)" for s in scripts]
