"""Admission of a cutpoint trigger: pure rules on literal site states (no store, no Prefect)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tasks.core.cutpoints import Cutpoint
from tasks.core.statuses import CutpointState
from tasks.execution.admission import Request, ScriptDrift, ServiceSeen, SiteView, admit
from tasks.store.records import Execution
from tasks.store.site_state import CutpointRecord, SiteState

NOW = datetime(2026, 12, 1, 12, 0, 0)
DAY = timedelta(hours=24)
STOPPED = (ServiceSeen("ft-manager", "http://10.0.0.1:8080", "stopped", "connection refused"),)


def req(cutpoint: Cutpoint, **terms: Any) -> Request:
    return Request(cutpoint=cutpoint, source_version="3.17.0", target_version="3.17.5", site_id="CN", by="ops",
                   **terms)


def done(cutpoint: Cutpoint, execution: str = "EXEC_1", hours_ago: float = 1) -> tuple[str, CutpointRecord]:
    return cutpoint.value, CutpointRecord(cutpoint.value, CutpointState.COMPLETED, execution,
                                          NOW - timedelta(hours=hours_ago - 0.1), NOW - timedelta(hours=hours_ago))


def upgrading(**extra: Any) -> SiteState:
    return SiteState(site_id="CN", current_version="3.17.0", upgrade_source="3.17.0", upgrade_target="3.17.5",
                     upgrade_status="IN_PROGRESS", upgrade_started_time=NOW - DAY, **extra)


def execution(status: str, **extra: Any) -> Execution:
    return Execution.from_row({"execution_id": "EXEC_2", "site_id": "CN", "step_type": "startup_pre_process",
                               "source_version": "3.17.0", "target_version": "3.17.5", "status": status,
                               "resume_count": 1, "waivers": [], **extra})


def decide(request: Request, view: SiteView):  # type: ignore[no-untyped-def]
    return admit(request, view, now=NOW, check_max_age=DAY)


def test_a_completed_cutpoint_is_a_noop_naming_the_execution_that_completed_it() -> None:
    view = SiteView(site=upgrading(), cutpoints=dict([done(Cutpoint.PRE_BUSINESS_CHECK, "EXEC_A")]))
    result = decide(req(Cutpoint.PRE_BUSINESS_CHECK), view)
    assert (result.action, result.execution_id) == ("noop", "EXEC_A")
    assert result.completed_time == NOW - timedelta(hours=1)


def test_rerun_of_a_completed_cutpoint_starts_a_new_execution_that_names_the_first() -> None:
    view = SiteView(site=upgrading(), cutpoints=dict([done(Cutpoint.PRE_BUSINESS_CHECK, "EXEC_A")]),
                    latest=execution("SUCCESS", step_type="pre_business_check", execution_id="EXEC_A"))
    result = decide(req(Cutpoint.PRE_BUSINESS_CHECK, rerun=True, reason="data fixed"), view)
    assert (result.action, result.execution_id, result.rerun_of) == ("new", None, "EXEC_A")


def test_rerun_waive_and_accept_need_a_reason() -> None:
    for terms in ({"rerun": True}, {"waive": ("pre_business_check",)}, {"accept_changed_scripts": True}):
        result = decide(req(Cutpoint.PRE_UPGRADE_PROCESS, **terms), SiteView(site=None, cutpoints={}))
        assert result.action == "refuse" and "a reason is required" in result.message, terms


def test_only_the_cutpoints_own_preconditions_can_be_waived() -> None:
    result = decide(req(Cutpoint.POST_UPGRADE, waive=("services_stopped",), reason="x"),
                    SiteView(site=None, cutpoints={}))
    assert result.action == "refuse"
    assert "cannot waive 'services_stopped': the preconditions of post_upgrade are startup_post_process" \
        in result.message


def test_each_cutpoint_needs_the_one_before_it() -> None:
    previous = {Cutpoint.PRE_UPGRADE_PROCESS: "pre_business_check", Cutpoint.STARTUP_PRE_PROCESS: "pre_upgrade_process",
                Cutpoint.STARTUP_POST_PROCESS: "startup_pre_process", Cutpoint.POST_UPGRADE: "startup_post_process"}
    for cutpoint, needed in previous.items():
        result = decide(req(cutpoint), SiteView(site=None, cutpoints={}))
        assert result.action == "refuse", cutpoint
        assert (f"precondition {needed}: {needed} has not completed for site CN 3.17.0 → 3.17.5 (not started): run "
                f"it first: `ft-upgrade run {needed} --from 3.17.0 --to 3.17.5 --site CN`; or waive it: --waive "
                f"{needed} --reason TEXT") in result.message
    assert decide(req(Cutpoint.PRE_BUSINESS_CHECK), SiteView(site=None, cutpoints={})).action == "new"


def test_a_failed_previous_cutpoint_names_its_state_and_execution() -> None:
    failed = CutpointRecord("startup_pre_process", CutpointState.FAILED, "EXEC_F", NOW, NOW)
    result = decide(req(Cutpoint.STARTUP_POST_PROCESS), SiteView(site=upgrading(),
                                                                   cutpoints={"startup_pre_process": failed}))
    assert "(failed by EXEC_F)" in result.message


def test_a_stale_business_check_is_refused_unless_waived_and_the_waiver_says_what_was_missing() -> None:
    view = SiteView(site=upgrading(), cutpoints=dict([done(Cutpoint.PRE_BUSINESS_CHECK, hours_ago=30)]))
    refused = decide(req(Cutpoint.PRE_UPGRADE_PROCESS), view)
    assert refused.action == "refuse"
    assert "pre_business_check passed at 2026-11-30 06:00:00 UTC (30.0 h ago, older than the 24 h allowed)" \
        in refused.message
    waived = decide(req(Cutpoint.PRE_UPGRADE_PROCESS, waive=("pre_business_check",), reason="checked by hand"), view)
    assert waived.action == "new"
    (w,) = waived.waivers
    assert (w.precondition, w.reason, w.by) == ("pre_business_check", "checked by hand", "ops")
    assert "30.0 h ago" in w.missing
    fresh = SiteView(site=upgrading(), cutpoints=dict([done(Cutpoint.PRE_BUSINESS_CHECK, hours_ago=2)]))
    assert decide(req(Cutpoint.PRE_UPGRADE_PROCESS), fresh).action == "new"


def test_services_stopped_holds_only_when_every_listed_service_is_proven_stopped() -> None:
    def seen(*services: ServiceSeen) -> str:
        view = SiteView(site=upgrading(), cutpoints=dict([done(Cutpoint.PRE_UPGRADE_PROCESS)]), services=services)
        return decide(req(Cutpoint.STARTUP_PRE_PROCESS), view).message

    url = "http://10.0.0.1:8080"
    assert seen(*STOPPED) == ""
    assert "precondition services_stopped: the FT services are still running at site CN (ft-manager " \
           f"({url}: HTTP 200)): stop them first" in seen(ServiceSeen("ft-manager", url, "running", "HTTP 200"))
    unknown = seen(*STOPPED, ServiceSeen("ft-report", url, "unknown", "the connection timed out after 2 s"))
    assert f"cannot tell whether ft-report ({url}: the connection timed out after 2 s) stopped at site CN" in unknown
    assert "; or waive it: --waive services_stopped --reason TEXT" in unknown
    assert "site CN lists no FT services, so nothing proves them stopped: list them in the site profile" in seen()


def test_a_resume_keeps_the_waivers_its_execution_started_with() -> None:
    recorded = [{"precondition": "pre_upgrade_process", "missing": "x", "reason": "fresh install", "by": "ann"}]
    view = SiteView(site=upgrading(), cutpoints={}, latest=execution("FAILED", waivers=recorded), services=STOPPED)
    result = decide(req(Cutpoint.STARTUP_PRE_PROCESS), view)
    assert (result.action, result.execution_id) == ("resume", "EXEC_2")
    assert [(w.precondition, w.by, w.reason) for w in result.waivers] == [("pre_upgrade_process", "ann",
                                                                           "fresh install")]


def test_a_from_that_differs_from_the_sites_version_is_refused_naming_both() -> None:
    site = SiteState(site_id="CN", current_version="3.16.5", version_origin="BASELINE")
    result = decide(req(Cutpoint.PRE_BUSINESS_CHECK), SiteView(site=site, cutpoints={}))
    assert result.action == "refuse"
    assert "site CN is on version 3.16.5 (recorded by baseline), but the trigger says --from 3.17.0" in result.message
    same = SiteState(site_id="CN", current_version="3.17.0", version_origin="BASELINE")
    assert decide(req(Cutpoint.PRE_BUSINESS_CHECK), SiteView(site=same, cutpoints={})).action == "new"


def test_another_upgrade_in_progress_is_refused() -> None:
    site = SiteState(site_id="CN", current_version="3.17.0", upgrade_source="3.17.0", upgrade_target="3.17.5-P1",
                     upgrade_status="IN_PROGRESS", upgrade_started_time=NOW)
    result = decide(req(Cutpoint.PRE_BUSINESS_CHECK), SiteView(site=site, cutpoints={}))
    assert result.action == "refuse"
    assert "site CN is in the upgrade 3.17.0 → 3.17.5-P1" in result.message and "ft-upgrade baseline" in result.message


def test_a_rerun_of_the_completed_upgrade_is_not_refused_for_the_moved_version() -> None:
    site = SiteState(site_id="CN", current_version="3.17.5", upgrade_source="3.17.0", upgrade_target="3.17.5",
                     upgrade_status="COMPLETED")
    view = SiteView(site=site, cutpoints=dict([done(Cutpoint.STARTUP_POST_PROCESS), done(Cutpoint.POST_UPGRADE)]))
    assert decide(req(Cutpoint.POST_UPGRADE), view).action == "noop"
    assert decide(req(Cutpoint.POST_UPGRADE, rerun=True, reason="again"), view).action == "new"


def test_an_expired_breakpoint_refuses_and_asks_to_expire_then_stays_refused() -> None:
    view = SiteView(site=upgrading(), cutpoints=dict([done(Cutpoint.PRE_UPGRADE_PROCESS)]),
                    latest=execution("FAILED"), breakpoint_expiry=NOW - timedelta(minutes=1))
    first = decide(req(Cutpoint.STARTUP_PRE_PROCESS), view)
    assert first.action == "refuse" and first.expire and "expired on 2026-12-01 11:59 UTC" in first.message
    later = SiteView(site=upgrading(), cutpoints=dict([done(Cutpoint.PRE_UPGRADE_PROCESS)]),
                     latest=execution("EXPIRED", error_message="breakpoint expired on 2026-12-01 11:59 UTC"))
    second = decide(req(Cutpoint.STARTUP_PRE_PROCESS), later)
    assert second.action == "refuse" and not second.expire and "ft-upgrade abandon EXEC_2" in second.message


def test_changed_applied_scripts_are_refused_unless_accepted() -> None:
    drift = ScriptDrift(path="base/a.sql", applied_sha256="a" * 64, current_sha256="b" * 64, execution_id="EXEC_0",
                        applied_time=NOW - DAY)
    view = SiteView(site=None, cutpoints={}, drift=(drift,))
    refused = decide(req(Cutpoint.PRE_BUSINESS_CHECK), view)
    assert refused.action == "refuse"
    assert f"base/a.sql: applied by EXEC_0 at 2026-11-30 12:00:00 UTC with SHA-256 {'a' * 64}, now {'b' * 64}" \
        in refused.message
    accepted = decide(req(Cutpoint.PRE_BUSINESS_CHECK, accept_changed_scripts=True, reason="comment fixed"), view)
    assert accepted.action == "new" and accepted.accepted_drift == (drift,)


def test_an_explicit_execution_must_match_the_request() -> None:
    view = SiteView(site=upgrading(), cutpoints=dict([done(Cutpoint.PRE_UPGRADE_PROCESS)]),
                    named=execution("FAILED", site_id="US"))
    result = decide(req(Cutpoint.STARTUP_PRE_PROCESS, execution_id="EXEC_2"), view)
    assert result.action == "refuse" and "at site US, not startup_pre_process" in result.message
    ok = SiteView(site=upgrading(), cutpoints=dict([done(Cutpoint.PRE_UPGRADE_PROCESS)]), named=execution("FAILED"),
                  services=STOPPED)
    assert decide(req(Cutpoint.STARTUP_PRE_PROCESS, execution_id="EXEC_2"), ok).action == "resume"
    finished = SiteView(site=upgrading(), cutpoints={}, named=execution("SUCCESS"))
    assert decide(req(Cutpoint.STARTUP_PRE_PROCESS, execution_id="EXEC_2"), finished).action == "noop"


def test_an_execution_waiting_for_a_decision_is_continued_and_its_cutpoint_is_not_complete() -> None:
    paused = SiteView(site=upgrading(), cutpoints={}, latest=execution("PAUSED"))
    resumed = decide(req(Cutpoint.PRE_BUSINESS_CHECK), paused)
    assert (resumed.action, resumed.execution_id) == ("resume", "EXEC_2")
    waiting = CutpointRecord("pre_business_check", CutpointState.PAUSED, "EXEC_2", NOW, NOW)
    result = decide(req(Cutpoint.PRE_UPGRADE_PROCESS), SiteView(site=upgrading(),
                                                                cutpoints={"pre_business_check": waiting}))
    assert result.action == "refuse" and "has not completed" in result.message and "(paused by EXEC_2)" in \
        result.message


def test_services_started_holds_only_when_every_listed_service_answers_its_health_url() -> None:
    def seen(*services: ServiceSeen) -> str:
        view = SiteView(site=upgrading(), cutpoints=dict([done(Cutpoint.STARTUP_PRE_PROCESS)]), services=services)
        return decide(req(Cutpoint.STARTUP_POST_PROCESS), view).message

    url = "http://10.0.0.1:8080/health"
    assert seen(ServiceSeen("ft-manager", url, "running", "HTTP 200", healthy=True)) == ""
    assert f"the FT services are not started at site CN (ft-manager ({url}: connection refused)): start them " \
           "first; or waive it: --waive services_started --reason TEXT" in seen(ServiceSeen(
               "ft-manager", url, "stopped", "connection refused"))
    assert f"answer but are not healthy at site CN (ft-manager ({url}: HTTP 500))" in seen(
        ServiceSeen("ft-manager", url, "running", "HTTP 500"))
    assert f"cannot tell whether ft-manager ({url}: the connection timed out after 2 s) started and healthy" in seen(
        ServiceSeen("ft-manager", url, "unknown", "the connection timed out after 2 s"))
    assert "site CN lists no FT services, so nothing proves them started and healthy" in seen()
