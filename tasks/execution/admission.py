"""Whether a cutpoint trigger may run, and as what: pure rules, no I/O.

Every trigger (``ft-upgrade run``, ``prefect deployment run``, a UI retry, ``ft-upgrade resume``) is
decided here from what the metadata store and the probes say, gathered beforehand in a
:class:`SiteView`. The answer is an :class:`Admission`:

* ``noop``: the cutpoint already completed for (site, source, target); nothing is executed;
* ``resume``: continue the unfinished execution of the same request;
* ``new``: start a new execution (a first run, or a deliberate ``rerun`` of a completed one);
* ``refuse``: the reasons, each naming what is missing and how to satisfy it; nothing is executed.

Order of the rules: the request's own terms; already completed; the execution to continue (expired,
abandoned or resumed too often is refused); the upgrade the site is in and the version it is on;
the cutpoint's preconditions (前置条件), each waivable with a reason; scripts changed on disk after
a site applied them (Flyway's validate).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from tasks.core.cutpoints import Cutpoint
from tasks.core.off_peak import OFF_PEAK
from tasks.core.statuses import RESUMABLE, CutpointState, ExecutionStatus, UpgradeStatus
from tasks.store.records import Execution
from tasks.store.site_state import CutpointRecord, SiteState

MAX_RESUMES = 10
RESUMABLE_STATES = RESUMABLE
SERVICES_STOPPED = "services_stopped"
SERVICES_STARTED = "services_started"
#: Preconditions about the site's FT services: the service probes them before deciding.
SERVICE_PRECONDITIONS = (SERVICES_STOPPED, SERVICES_STARTED)

#: The requirements' 前置条件 of each cutpoint, by the name an operator waives them with. ``off_peak``: heavy
#: steps of a serving site (index optimization, data backups) in its off-peak window (tasks.core.off_peak).
PRECONDITIONS: dict[Cutpoint, tuple[str, ...]] = {
    Cutpoint.PRE_BUSINESS_CHECK: (),
    Cutpoint.PRE_UPGRADE_PROCESS: (Cutpoint.PRE_BUSINESS_CHECK.value, OFF_PEAK),
    Cutpoint.STARTUP_PRE_PROCESS: (Cutpoint.PRE_UPGRADE_PROCESS.value, SERVICES_STOPPED),
    Cutpoint.STARTUP_POST_PROCESS: (Cutpoint.STARTUP_PRE_PROCESS.value, SERVICES_STARTED, OFF_PEAK),
    Cutpoint.POST_UPGRADE: (Cutpoint.STARTUP_POST_PROCESS.value, OFF_PEAK),
}


@dataclass(frozen=True)
class Request:
    """One trigger of one cutpoint, with the operator's terms (versions already normalised)."""

    cutpoint: Cutpoint
    source_version: str
    target_version: str
    site_id: str
    rerun: bool = False
    waive: tuple[str, ...] = ()
    reason: str = ""
    by: str = ""
    accept_changed_scripts: bool = False
    execution_id: str | None = None

    def command(self, cutpoint: Cutpoint | None = None) -> str:
        """The CLI call that runs (another) cutpoint of the same upgrade."""
        return (f"ft-upgrade run {(cutpoint or self.cutpoint).value} --from {self.source_version} "
                f"--to {self.target_version} --site {self.site_id}")


@dataclass(frozen=True)
class ScriptDrift:
    """A script applied at the site whose file has changed since."""

    path: str
    applied_sha256: str
    current_sha256: str
    execution_id: str
    applied_time: datetime

    def describe(self) -> str:
        return (f"{self.path}: applied by {self.execution_id} at {self.applied_time:%Y-%m-%d %H:%M:%S} UTC with "
                f"SHA-256 {self.applied_sha256}, now {self.current_sha256}")


@dataclass(frozen=True)
class ServiceSeen:
    """One FT service of the site as a probe saw it: ``running``, ``stopped`` (refused) or ``unknown``, and why."""

    name: str
    url: str
    state: Literal["running", "stopped", "unknown"]
    why: str
    healthy: bool = False  # running and its health URL answers 2xx

    def describe(self) -> str:
        return f"{self.name} ({self.url}: {self.why})"


@dataclass(frozen=True)
class SiteView:
    """What the store and the probes say about the site, gathered before deciding."""

    site: SiteState | None
    cutpoints: Mapping[str, CutpointRecord]
    latest: Execution | None = None
    named: Execution | None = None
    breakpoint_expiry: datetime | None = None
    services: tuple[ServiceSeen, ...] | None = None  # the site's FT services as probed; None: not probed
    drift: tuple[ScriptDrift, ...] = ()
    outside_window: str = ""  # heavy steps planned outside the site's off-peak window: what and when it opens
    #: The execution this trigger would continue (named, or the flow run being retried) was closed by a rollback.
    closed_by_rollback: Execution | None = None


@dataclass(frozen=True)
class Waiver:
    """A precondition that was missing and that the operator waived, with why."""

    precondition: str
    missing: str
    reason: str
    by: str

    def to_json(self) -> dict[str, str]:
        return {"precondition": self.precondition, "missing": self.missing, "reason": self.reason, "by": self.by}


@dataclass(frozen=True)
class Admission:
    """The decision for one trigger."""

    action: Literal["noop", "resume", "new", "refuse"]
    execution_id: str | None = None
    completed_time: datetime | None = None
    rerun_of: str | None = None
    waivers: tuple[Waiver, ...] = ()
    accepted_drift: tuple[ScriptDrift, ...] = ()
    reasons: tuple[str, ...] = ()
    expire: bool = False

    @property
    def message(self) -> str:
        return "\n".join(self.reasons)


@dataclass
class _Decider:
    request: Request
    view: SiteView
    now: datetime
    check_max_age: timedelta
    reasons: list[str] = field(default_factory=list)

    def refuse(self, **extra: Any) -> Admission:
        return Admission(action="refuse", reasons=tuple(self.reasons), **extra)


def admit(request: Request, view: SiteView, *, now: datetime, check_max_age: timedelta) -> Admission:
    """Decide one trigger; see the module docstring for the order of the rules."""
    d = _Decider(request, view, now, check_max_age)
    r, cutpoint = request, request.cutpoint
    allowed = PRECONDITIONS[cutpoint]
    if (r.rerun or r.waive or r.accept_changed_scripts) and not r.reason.strip():
        d.reasons.append("a reason is required with rerun, waive or accept-changed-scripts (--reason TEXT): "
                         "it is recorded with who asked")
    for name in r.waive:
        if name not in allowed:
            d.reasons.append(f"cannot waive {name!r}: the preconditions of {cutpoint.value} are "
                             f"{', '.join(allowed) or 'none'}")
    if d.reasons:
        return d.refuse()

    site = view.site
    if site is not None and site.upgrade_status == UpgradeStatus.ROLLING_BACK:
        d.reasons.append(f"a rollback of {site.upgrade_source} → {site.upgrade_target} is unfinished at site "
                         f"{r.site_id}: no cutpoint may start until it finishes; finish it with "
                         f"`ft-upgrade rollback --site {r.site_id}` (or the rollback deployment)")
        return d.refuse()
    if view.closed_by_rollback is not None:
        closed = view.closed_by_rollback
        d.reasons.append(f"execution {closed.execution_id} cannot be resumed, retried or redeployed: "
                         f"{closed.error_message or 'closed by a rollback'}; a new attempt starts from "
                         f"pre_business_check: `{r.command(Cutpoint.PRE_BUSINESS_CHECK)}`")
        return d.refuse(execution_id=closed.execution_id)

    state = view.cutpoints.get(cutpoint.value)
    completed = state is not None and state.state == CutpointState.COMPLETED
    candidate: Execution | None
    if r.execution_id:
        candidate = view.named
        if candidate is None:
            d.reasons.append(f"no execution {r.execution_id!r} in this site's metadata store")
            return d.refuse()
        asked = (r.site_id, cutpoint.value, r.source_version, r.target_version)
        found = (candidate.site_id, candidate.cutpoint, candidate.source_version, candidate.target_version)
        if found != asked:
            d.reasons.append(f"execution {r.execution_id} is {found[1]} {found[2]} → {found[3]} at site {found[0]}, "
                             f"not {asked[1]} {asked[2]} → {asked[3]} at site {asked[0]}")
            return d.refuse()
        if candidate.status == ExecutionStatus.SUCCESS:
            return Admission(action="noop", execution_id=candidate.execution_id, completed_time=candidate.end_time)
    else:
        if completed and not r.rerun:
            assert state is not None
            return Admission(action="noop", execution_id=state.execution_id, completed_time=state.finished_time)
        latest = view.latest
        resumable = latest is not None and latest.status in (*RESUMABLE_STATES, ExecutionStatus.EXPIRED)
        candidate = latest if resumable and not (completed and r.rerun) else None

    expire = False
    if candidate is not None:
        execution_id = candidate.execution_id
        if candidate.status == ExecutionStatus.ABANDONED:
            d.reasons.append(f"execution {execution_id} was abandoned; run the cutpoint again for a new execution")
        elif candidate.status == ExecutionStatus.EXPIRED or (view.breakpoint_expiry is not None
                                                             and view.breakpoint_expiry < now):
            expire = candidate.status != ExecutionStatus.EXPIRED
            when = (f"on {view.breakpoint_expiry:%Y-%m-%d %H:%M} UTC" if expire and view.breakpoint_expiry
                    else f"({candidate.error_message or 'earlier'})")
            d.reasons.append(f"the breakpoint of execution {execution_id} expired {when} (breakpoints are kept "
                             f"7 days); check the databases, then `ft-upgrade abandon {execution_id}` and run "
                             "again for a new execution")
        elif candidate.resume_count >= MAX_RESUMES:
            d.reasons.append(f"execution {execution_id} has been resumed {MAX_RESUMES} times, the maximum; "
                             f"investigate, then `ft-upgrade abandon {execution_id}` and run again for a new execution")
        if d.reasons:
            return d.refuse(execution_id=execution_id, expire=expire)

    _check_upgrade(d)
    waivers = _check_preconditions(d, candidate)
    if view.drift and not r.accept_changed_scripts:
        d.reasons.append("scripts applied at this site have changed on disk (restore them, or accept the change "
                         "with --accept-changed-scripts --reason TEXT):\n" +
                         "\n".join(f"  {x.describe()}" for x in view.drift))
    latest = view.latest
    if d.reasons and latest is not None and latest.status == ExecutionStatus.ROLLED_BACK:
        closed_note = latest.error_message or "closed by a rollback"
        d.reasons.append(f"execution {latest.execution_id} of this cutpoint was {closed_note}: a new attempt starts "
                         "from pre_business_check")
    if d.reasons:
        return d.refuse(execution_id=candidate.execution_id if candidate else None)
    return Admission(action="resume" if candidate is not None else "new",
                     execution_id=candidate.execution_id if candidate is not None else None,
                     rerun_of=state.execution_id if (completed and r.rerun and state) else None,
                     waivers=tuple(waivers), accepted_drift=view.drift if r.accept_changed_scripts else ())


def _check_upgrade(d: _Decider) -> None:
    """One upgrade at a time per site, and a new one starts from the version the site is on."""
    r, site = d.request, d.view.site
    if site is None:
        return
    this = (r.source_version, r.target_version)
    ongoing = (site.upgrade_source, site.upgrade_target)
    if site.upgrade_in_progress and ongoing != this:
        d.reasons.append(f"site {r.site_id} is in the upgrade {ongoing[0]} → {ongoing[1]} (started "
                         f"{_when(site.upgrade_started_time)}), not {this[0]} → {this[1]}: finish that upgrade, or "
                         f"record where the site stands with `ft-upgrade baseline --site {r.site_id} --version V`")
        return
    belongs = ongoing == this and site.upgrade_status in (UpgradeStatus.IN_PROGRESS, UpgradeStatus.COMPLETED)
    if not belongs and site.current_version and site.current_version != r.source_version:
        d.reasons.append(f"site {r.site_id} is on version {site.current_version} "
                         f"(recorded by {(site.version_origin or 'upgrade').lower()}), but the trigger says "
                         f"--from {r.source_version}: check the pipeline's source version, or correct the record "
                         f"with `ft-upgrade baseline --site {r.site_id} --version V`")


def _check_preconditions(d: _Decider, candidate: Execution | None) -> list[Waiver]:
    """Each missing precondition is refused, unless waived now or by the execution being continued."""
    r = d.request
    recorded = {w["precondition"]: w for w in (candidate.waivers if candidate else [])}
    waivers = []
    for name in PRECONDITIONS[r.cutpoint]:
        missing = _missing(d, name, resuming=candidate is not None)
        if not missing:
            continue
        if name in r.waive:
            waivers.append(Waiver(precondition=name, missing=missing, reason=r.reason, by=r.by))
        elif name in recorded:
            w = recorded[name]
            waivers.append(Waiver(precondition=name, missing=missing, reason=w["reason"], by=w["by"]))
        else:
            d.reasons.append(f"precondition {name}: {missing}; or waive it: --waive {name} --reason TEXT")
    return waivers


def _missing(d: _Decider, name: str, *, resuming: bool) -> str:
    """What is missing of one precondition and how to satisfy it ('' when it holds)."""
    r, view = d.request, d.view
    if name == OFF_PEAK:
        return view.outside_window
    if name == SERVICES_STOPPED:
        return _not_stopped(r.site_id, view.services or ())
    if name == SERVICES_STARTED:
        return _not_started(r.site_id, view.services or ())
    previous = Cutpoint(name)
    state = view.cutpoints.get(name)
    if state is None or state.state != CutpointState.COMPLETED:
        how = state.state.lower() if state else "not started"
        by = f" by {state.execution_id}" if state and state.execution_id else ""
        return (f"{name} has not completed for site {r.site_id} {r.source_version} → {r.target_version} "
                f"({how}{by}): run it first: `{r.command(previous)}`")
    if previous == Cutpoint.PRE_BUSINESS_CHECK and not resuming and state.finished_time is not None:
        age = d.now - state.finished_time
        if age > d.check_max_age:
            return (f"{name} passed at {_when(state.finished_time)} ({age.total_seconds() / 3600:.1f} h ago, older "
                    f"than the {d.check_max_age.total_seconds() / 3600:g} h allowed): run it again: "
                    f"`{r.command(previous)} --rerun --reason TEXT`")
    return ""


def _not_stopped(site_id: str, services: tuple[ServiceSeen, ...]) -> str:
    """Fail closed: only a refused connection proves a service stopped; no service listed proves nothing."""
    if not services:
        return (f"site {site_id} lists no FT services, so nothing proves them stopped: list them in the site "
                "profile (the site file's \"services\": name → URL, then `ft-upgrade blocks apply`; without a "
                "Prefect API: FT_UPGRADE_SERVICES)")
    said = []
    running = [s.describe() for s in services if s.state == "running"]
    unknown = [s.describe() for s in services if s.state == "unknown"]
    if running:
        said.append(f"the FT services are still running at site {site_id} ({', '.join(running)}): stop them first")
    if unknown:
        said.append(f"cannot tell whether {', '.join(unknown)} stopped at site {site_id} (only a refused "
                    "connection proves a service stopped): make the probe reach it")
    return "; ".join(said)


def _not_started(site_id: str, services: tuple[ServiceSeen, ...]) -> str:
    """Fail closed: every listed service answers its health URL with 2xx; a probe that cannot tell refuses."""
    if not services:
        return (f"site {site_id} lists no FT services, so nothing proves them started and healthy: list them in "
                "the site profile (the site file's \"services\": name → URL, then `ft-upgrade blocks apply`; "
                "without a Prefect API: FT_UPGRADE_SERVICES)")
    said = []
    stopped = [s.describe() for s in services if s.state == "stopped"]
    sick = [s.describe() for s in services if s.state == "running" and not s.healthy]
    unknown = [s.describe() for s in services if s.state == "unknown"]
    if stopped:
        said.append(f"the FT services are not started at site {site_id} ({', '.join(stopped)}): start them first")
    if sick:
        said.append(f"the FT services answer but are not healthy at site {site_id} ({', '.join(sick)})")
    if unknown:
        said.append(f"cannot tell whether {', '.join(unknown)} started and healthy at site {site_id}: make the "
                    "probe reach it")
    return "; ".join(said)


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "at an unknown time"
