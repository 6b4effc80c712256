"""The cutpoint report: built as data and markdown (pure), then published as Prefect artifacts.

Operators read it in the Prefect UI (markdown + table artifacts on the flow run, under a stable
key per site and cutpoint); CICD reads its JSON through ``ft-upgrade report`` or ``run --json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tasks.core.cutpoints import CUTPOINT_TITLES, Cutpoint
from tasks.core.language import language_code
from tasks.core.masking import mask_sql
from tasks.core.statuses import STEP_FINISHED, BreakpointStatus, ExecutionStatus, StepStatus
from tasks.execution.report_text import DEFAULT_LANGUAGE, report_text
from tasks.store.breakpoints import Breakpoint
from tasks.store.records import Execution, StepRun

DONE_STATUSES = STEP_FINISHED


@dataclass
class RunReport:
    """Everything a report shows; ``return_code`` is what the CLI exits with."""

    execution: Execution
    steps: list[StepRun]
    status: str
    resume_hint: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    sql_counts: dict[str, int] = field(default_factory=lambda: {"total": 0, "success": 0, "failed": 0})
    language: str = DEFAULT_LANGUAGE  # of the markdown and the resume hints: the site's (zh unless it says en)
    breakpoints: list[Breakpoint] = field(default_factory=list)  # every stop of the execution, with its decision

    @property
    def counts(self) -> dict[str, int]:
        statuses = [s.status for s in self.steps]
        return {
            "total": len(statuses),
            "success": statuses.count(StepStatus.SUCCESS),
            "warning": statuses.count(StepStatus.WARNING),
            "failed": statuses.count(StepStatus.FAILED),
            "skipped": statuses.count(StepStatus.SKIPPED),
            "pending": sum(1 for s in statuses if s not in (*STEP_FINISHED, StepStatus.FAILED)),
        }

    @property
    def return_code(self) -> int:
        return 0 if self.status == ExecutionStatus.SUCCESS else 1

    @property
    def duration_ms(self) -> int:
        start, end = self.execution.start_time, self.execution.end_time
        if start is not None and end is not None:
            return int((end - start).total_seconds() * 1000)
        return 0

    @property
    def failures(self) -> list[StepRun]:
        return [s for s in self.steps if s.status in (StepStatus.FAILED, StepStatus.WARNING) and s.error_message]

    def to_json(self) -> dict[str, Any]:
        e = self.execution
        return {
            "execution_id": e.execution_id,
            "status": self.status,
            "cutpoint": e.cutpoint,
            "site_id": e.site_id,
            "source_version": e.source_version,
            "target_version": e.target_version,
            "flow_run_id": e.flow_run_id,
            "resume_count": e.resume_count,
            "duration_ms": self.duration_ms,
            "steps": self.counts,
            "sql": self.sql_counts,
            "requested_by": e.requested_by,
            "rerun_of": e.rerun_of,
            "waivers": e.waivers,
            "step_results": [
                {"step_id": s.step_id, "key": s.step_key, "description": s.description, "status": s.status,
                 "duration_ms": s.duration, "summary": s.summary, "error": s.error_message, "details": s.details}
                for s in self.steps
            ],
            "resume": self.resume_hint,
            "breakpoints": [breakpoint_json(bp) for bp in self.breakpoints],
            **self.extra,
        }


_ICONS = {StepStatus.SUCCESS: "✅", StepStatus.WARNING: "⚠️", StepStatus.FAILED: "❌", StepStatus.SKIPPED: "⏭️",
          StepStatus.RUNNING: "⏳", StepStatus.PENDING: "…", ExecutionStatus.PAUSED: "⏸️"}


def cell(text: object) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")[:300]


def _seconds(ms: object) -> str:
    return f"{int(ms) / 1000:.1f}s" if isinstance(ms, (int, float)) else "-"


def _title(cutpoint: Cutpoint, language: str) -> str:
    chinese, english = CUTPOINT_TITLES[cutpoint].split(" ", 1)
    return f"[FT upgrade report] {english}" if language_code(language) == "en" else f"[FT升级报告] {chinese}"


def render_markdown(report: RunReport) -> str:
    """The markdown report in the report's language: header, steps table, failures, what to do next, steps."""
    t = report_text(report.language)
    e = report.execution
    cutpoint = Cutpoint(e.cutpoint)
    c, sql = report.counts, report.sql_counts
    notice = report.extra.get("notice")
    lines = [
        f"# {_title(cutpoint, report.language)}",
        "",
        *([f"> **{notice}**", ""] if notice else []),
        f"**{t['status']}: {_ICONS.get(report.status, '')} {report.status}"
        f"{' (' + t['waiting'] + ')' if report.status == ExecutionStatus.PAUSED else ''}** — {t['site']} "
        f"`{e.site_id}`, {e.source_version} → {e.target_version}",
        "",
        f"| {t['field']} | {t['value']} |",
        "|---|---|",
        f"| {t['execution_id']} | `{e.execution_id}` |",
        f"| {t['cutpoint']} | `{cutpoint.value}` |",
        f"| {t['flow_run']} | `{e.flow_run_id or '-'}` |",
        f"| {t['started']} | {e.start_time or '-'} |",
        f"| {t['ended']} | {e.end_time or '-'} |",
        f"| {t['duration']} | {_seconds(report.duration_ms)} |",
        f"| {t['resumes']} | {e.resume_count} |",
        f"| {t['steps_row']} | {t['steps_counts'].format(**c)} |",
        f"| {t['sql_row']} | {t['sql_counts'].format(**sql)} |",
        f"| {t['requested_by']} | {cell(e.requested_by or '-')} |",
    ]
    if e.rerun_of:
        lines.append(f"| {t['rerun_of']} | {t['rerun_value'].format(of=e.rerun_of)} |")
    lines += ["", f"## {t['steps']}", "", t["step_header"], "|---|---|---|---|---|---|"]
    for i, s in enumerate(report.steps, 1):
        described = f" — {cell(s.description)}" if s.description else ""
        lines.append(f"| {i} | `{s.step_id}` {cell(s.step_name)}{described} | {s.version} | "
                     f"{_ICONS.get(s.status, '')} {s.status} | {_seconds(s.duration)} | "
                     f"{cell(s.summary or s.error_message)} |")
    lines += _waivers_and_rerun(report, t)
    if report.breakpoints:  # after a failure and a resume: what failed, what was decided and by whom
        lines += ["", f"## {t['decisions']}", ""]
        lines += [line for bp in report.breakpoints for line in decision_lines(bp, t)]
    if report.failures:
        lines += ["", f"## {t['failures']}", ""]
        for s in report.failures:
            lines.append(f"- **{s.step_id}** ({s.status}): {cell(s.error_message)}")
    notification = report.extra.get("notification")
    if notification:
        state = t["delivered"] if notification["delivered"] else t["not_delivered"].format(
            error=notification.get("error"))
        lines += ["", t["notification"].format(webhook=notification["webhook"], state=state,
                                               recipients=", ".join(notification["recipients"]) or "-")]
    lines += ["", f"## {t['next']}", ""]
    if report.status == ExecutionStatus.SUCCESS and cutpoint == Cutpoint.PRE_UPGRADE_PROCESS:
        lines.append(t["ready_to_stop"])
    elif report.status == ExecutionStatus.SUCCESS:
        lines.append(t["complete"])
    else:
        lines += [f"- {hint}" for hint in report.resume_hint]
    for s in report.steps:
        if s.markdown:
            lines += ["", f"## {s.step_id}", "", s.markdown]
    return "\n".join(lines) + "\n"


def _waivers_and_rerun(report: RunReport, t: Mapping[str, str]) -> list[str]:
    lines: list[str] = []
    waivers = report.execution.waivers
    if waivers:
        lines += ["", f"## {t['waived']}", ""]
        lines += [t["waived_line"].format(precondition=w["precondition"], by=cell(w["by"]), reason=cell(w["reason"]),
                                          missing=cell(w["missing"])) for w in waivers]
    rerun = report.extra.get("rerun")
    if rerun:
        lines += ["", f"## {t['rerun']}", "",
                  t["rerun_text"].format(of=rerun["of"], by=cell(rerun["by"]), reason=cell(rerun["reason"])), ""]
        lines += [f"- {cell(line)}" for line in rerun["scripts_applied_at_site"]] or [f"- {t['none']}"]
    return lines


def decision_lines(bp: Breakpoint, t: Mapping[str, str], *, cutpoint: str | None = None) -> list[str]:
    """One breakpoint: where it stopped, the statement and error, the operator's decision and who made it."""
    where = f"`{bp.where}`" + (f" ({bp.database})" if bp.database else "")
    execution = f"`{bp.execution_id}` ({cutpoint}), " if cutpoint else ""
    lines = [f"- **{when(bp.breakpoint_time)}** {execution}step `{bp.step_id}` — {t['at']} {where}"]
    if bp.sql_content:
        lines.append(f"  - {t['statement']}: `{cell(mask_sql(bp.sql_content))}`")
    error = " ".join(x for x in (bp.error_code, bp.failure_reason) if x)
    if error:
        lines.append(f"  - {t['error']}: {cell(error)}")
    decision = bp.decision
    if decision is not None:
        lines.append(f"  - {t['decision']}: **{decision.inflight or 'resume'}** — {t['decided_by']}: "
                     f"{cell(decision.by)} ({when(decision.time)}); {t['notes']}: {cell(decision.notes or '-')}")
    elif bp.status == BreakpointStatus.ACTIVE:
        lines.append(f"  - {t['decision']}: {t['no_decision']}")
    outcome = (t["bp_active"] if bp.status == BreakpointStatus.ACTIVE else t["bp_expired"]
               if bp.status == BreakpointStatus.EXPIRED else
               t["bp_resolved"].format(by=cell(bp.resolved_by or "-"), when=when(bp.resolved_time),
                                    notes=cell(bp.resolve_notes or "-")))
    lines.append(f"  - {t['outcome']}: {outcome}")
    return lines


def breakpoint_json(bp: Breakpoint) -> dict[str, Any]:
    """A breakpoint as the report's JSON gives it: where, what failed, the decision and who made it."""
    decision = bp.decision
    return {"id": bp.id, "step_id": bp.step_id, "status": bp.status, "time": when(bp.breakpoint_time),
            "where": bp.where, "database": bp.database, "statement": mask_sql(bp.sql_content or "") or None,
            "error_code": bp.error_code, "error": bp.failure_reason,
            "decision": None if decision is None else {"inflight": decision.inflight, "by": decision.by,
                                                       "notes": decision.notes, "time": when(decision.time)},
            "resolved_by": bp.resolved_by, "resolved_time": when(bp.resolved_time) if bp.resolved_time else None,
            "resolve_notes": bp.resolve_notes}


def when(moment: datetime | None) -> str:
    """A UTC time as the reports write it."""
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else "-"


def render_refusal(cutpoint: Cutpoint, site_id: str, source: str, target: str, message: str,
                   language: str | None = None) -> str:
    """The report of a refused trigger: nothing ran, and why (each reason says how to satisfy it)."""
    t = report_text(language)
    return "\n".join([
        f"# {_title(cutpoint, language)}", "",
        t["refused"].format(site=site_id, source=source, target=target), "",
        "```", message, "```", ""])


def resume_instructions(*, execution_id: str, cutpoint: str, source: str, target: str, site: str,
                        deployment_name: str | None = None, language: str | None = None,
                        decision_page: str | None = None) -> list[str]:
    """The exact ways to continue a failed cutpoint after fixing the cause (per-site deployment if known); for
    one waiting for an operator's decision (``decision_page``: the flow run's page), where and how to decide."""
    t = report_text(language)
    if decision_page:
        return [t["decide"].format(page=decision_page), t["decide_cli"].format(execution_id=execution_id),
                t["decide_late"]]
    if cutpoint == "rollback":  # a rollback is finished by the next rollback of the site, not by resume
        return [t["fix"], f"ft-upgrade rollback --site {site} (or Retry / run the site's rollback deployment)"]
    deployment = f"{cutpoint}/{deployment_name or cutpoint.replace('_', '-')}"
    return [t["fix"], t["ui"],
            t["cicd"].format(deployment=deployment, source=source, target=target, site=site),
            t["cli"].format(execution_id=execution_id)]


def steps_table(steps: Sequence[StepRun]) -> list[dict[str, Any]]:
    """Rows for the table artifact."""
    return [{"step": s.step_id, "description": s.description, "version": s.version, "status": s.status,
             "duration_ms": s.duration, "retries": s.retry_count, "summary": s.summary,
             "error": s.error_message or ""} for s in steps]


def artifact_key(site_id: str, cutpoint: str) -> str:
    """Stable artifact key per site and cutpoint (Prefect keys: lower-case, digits, dashes)."""
    raw = f"ft-{site_id}-{cutpoint}".lower()
    return "".join(ch if ch.isalnum() else "-" for ch in raw)
