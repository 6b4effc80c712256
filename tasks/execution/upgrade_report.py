"""One report for a whole upgrade of a site (source → target): the five cutpoints, their executions, resumes,
decisions and waivers, and the upgrade's history (refusals, operator stops, rollbacks).

The cutpoint reports each tell one execution; this one tells the upgrade, so an operator who takes it over
days later reads in one place what failed where (the statement, its error), what was decided and by whom,
what was waived and what was resumed. Every cutpoint run and every rollback republishes it as the artifact
``ft-<site>-upgrade-<source>-<target>`` (:func:`upgrade_artifact_key`). Built from the metadata store
(:func:`gather`), rendered as markdown without I/O (:func:`render_upgrade`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from blocks.site_profile import load_site_profile
from tasks.core.cutpoints import Cutpoint
from tasks.core.language import language_of, words
from tasks.core.statuses import CutpointState, SiteEvent
from tasks.execution.report_text import report_text
from tasks.execution.reporting import cell, decision_lines, when
from tasks.store.breakpoints import Breakpoint, breakpoints_of
from tasks.store.records import Execution
from tasks.store.site_state import CutpointRecord, SiteState

if TYPE_CHECKING:
    from tasks.execution.service import ExecutionService

TEXT = {
    "zh": {
        "title": "[FT升级总报告] 局点 {site}：{source} → {target}", "site_version": "局点当前版本",
        "upgrade": "本次升级", "none": "（无）", "cutpoints": "五个切点",
        "cutpoint_header": "| # | 切点 | 状态 | 执行 | 续执行次数 | 开始（UTC） | 结束（UTC） |",
        "executions": "执行记录",
        "execution_header": "| 执行ID | 切点 | 状态 | 触发人 | 续执行次数 | 开始（UTC） | 结束（UTC） | 错误 |",
        "resumes": "续执行", "resume_line": "- {when} `{execution}`（{cutpoint}）由 {actor} 续执行，流程运行 `{run}`",
        "waivers": "豁免",
        "waiver_line": "- `{execution}`（{cutpoint}）：**{precondition}** 由 {by} 豁免：{reason}（缺少：{missing}）",
        "rollbacks": "回滚", "history": "历史",
        "history_header": "| 时间（UTC） | 事件 | 切点 | 执行 | 操作人 | 说明 |",
        "states": {"NOT_STARTED": "未开始", "RUNNING": "执行中", "COMPLETED": "✅ 已完成", "FAILED": "❌ 失败",
                   "PAUSED": "⏸️ 等待操作员决定"},
    },
    "en": {
        "title": "[FT upgrade report] site {site}: {source} → {target}", "site_version": "site's version",
        "upgrade": "this upgrade", "none": "(none)", "cutpoints": "The five cutpoints",
        "cutpoint_header": "| # | cutpoint | state | executions | resumes | started (UTC) | ended (UTC) |",
        "executions": "Executions",
        "execution_header": "| execution | cutpoint | status | requested by | resumes | started (UTC) | ended (UTC) "
                            "| error |",
        "resumes": "Resumes", "resume_line": "- {when} `{execution}` ({cutpoint}) resumed by {actor}, flow run `{run}`",
        "waivers": "Waivers", "waiver_line": "- `{execution}` ({cutpoint}): **{precondition}** waived by {by}: "
                                             "{reason} (missing: {missing})",
        "rollbacks": "Rollbacks", "history": "History",
        "history_header": "| time (UTC) | event | cutpoint | execution | actor | detail |",
        "states": {"NOT_STARTED": "not started", "RUNNING": "running", "COMPLETED": "✅ completed",
                   "FAILED": "❌ failed", "PAUSED": "⏸️ waiting for a decision"},
    },
}


@dataclass
class UpgradeRecord:
    """What the store holds about one upgrade of one site."""

    site_id: str
    source_version: str
    target_version: str
    site: SiteState | None = None
    cutpoints: dict[str, CutpointRecord] = field(default_factory=dict)
    executions: list[Execution] = field(default_factory=list)  # oldest first
    breakpoints: list[Breakpoint] = field(default_factory=list)  # oldest first
    history: list[dict[str, Any]] = field(default_factory=list)  # oldest first


def upgrade_artifact_key(site_id: str, source_version: str, target_version: str) -> str:
    """``ft-cn-upgrade-3-17-0-3-17-5-p1`` (Prefect keys: lower-case letters, digits, dashes)."""
    raw = f"ft-{site_id}-upgrade-{source_version}-{target_version}".lower()
    return "".join(ch if ch.isalnum() else "-" for ch in raw)


def gather(service: ExecutionService, site_id: str, source_version: str, target_version: str) -> UpgradeRecord:
    """The upgrade as the site's metadata store knows it."""
    executions = service.store.upgrade_executions(site_id, source_version, target_version)
    return UpgradeRecord(
        site_id=site_id, source_version=source_version, target_version=target_version,
        site=service.sites.get(site_id),
        cutpoints=service.sites.cutpoints(site_id, source_version, target_version), executions=executions,
        breakpoints=breakpoints_of(service.store.engine, [e.execution_id for e in executions]),
        history=service.sites.upgrade_history(site_id, source_version, target_version))


def upgrade_artifact(execution_id: str, site_id: str, *, metadata_url: str | None) -> tuple[str, str, str]:
    """The report of the upgrade an execution belongs to, to republish (key, markdown, description)."""
    from tasks.execution.service import ExecutionService

    with ExecutionService.locate(execution_id, site_id, metadata_url=metadata_url) as service:
        e = service.execution(execution_id)
        language = language_of(load_site_profile(e.site_id))
        markdown = render_upgrade(gather(service, e.site_id, e.source_version, e.target_version), language)
    return (upgrade_artifact_key(e.site_id, e.source_version, e.target_version), markdown,
            f"upgrade {e.source_version} → {e.target_version} at {e.site_id}")


def render_upgrade(record: UpgradeRecord, language: str | None = None) -> str:
    """The upgrade's report in markdown, in ``language`` (Chinese unless ``en``)."""
    t = {**report_text(language), **words(TEXT, language)}
    r = record
    lines = [f"# {t['title'].format(site=r.site_id, source=r.source_version, target=r.target_version)}", ""]
    if r.site is not None:
        ours = (r.site.upgrade_source, r.site.upgrade_target) == (r.source_version, r.target_version)
        lines += [f"- {t['site_version']}: {r.site.current_version or '-'}",
                  f"- {t['upgrade']}: {r.site.upgrade_status if ours and r.site.upgrade_status else '-'}", ""]
    lines += [f"## {t['cutpoints']}", "", t["cutpoint_header"], "|---|---|---|---|---|---|---|"]
    for i, cutpoint in enumerate(Cutpoint, 1):
        mine = [e for e in r.executions if e.cutpoint == cutpoint.value]
        state = r.cutpoints.get(cutpoint.value)
        shown = t["states"].get(state.state if state else CutpointState.NOT_STARTED, state.state if state else "")
        ids = ", ".join(f"`{e.execution_id}` {e.status}" for e in mine) or "-"
        started = min((e.start_time for e in mine if e.start_time), default=None)
        ended = max((e.end_time for e in mine if e.end_time), default=None)
        lines.append(f"| {i} | `{cutpoint.value}` | {shown} | {ids} | {sum(e.resume_count for e in mine)} | "
                     f"{when(started)} | {when(ended)} |")
    lines += ["", f"## {t['executions']}", ""]
    if r.executions:
        lines += [t["execution_header"], "|---|---|---|---|---|---|---|---|"]
        lines += [f"| `{e.execution_id}` | {e.cutpoint} | {e.status} | {cell(e.requested_by or '-')} | "
                  f"{e.resume_count} | {when(e.start_time)} | {when(e.end_time)} | {cell(e.error_message or '')} |"
                  for e in r.executions]
    else:
        lines.append(t["none"])
    lines += ["", f"## {t['decisions']}", ""]
    lines += [line for bp in r.breakpoints for line in decision_lines(bp, t, cutpoint=_cutpoint_of(r, bp))] or \
        [t["none"]]
    lines += ["", f"## {t['resumes']}", ""]
    resumes = [h for h in r.history
               if h["event"] == SiteEvent.CUTPOINT_STARTED and h["detail"].get("action") == "resume"]
    lines += [t["resume_line"].format(when=when(h["created_time"]), execution=h["execution_id"],
                                      cutpoint=h["cutpoint"], actor=cell(h["actor"] or "-"),
                                      run=h["flow_run_id"] or "-") for h in resumes] or [t["none"]]
    lines += ["", f"## {t['waivers']}", ""]
    lines += [t["waiver_line"].format(execution=e.execution_id, cutpoint=e.cutpoint, precondition=w["precondition"],
                                      by=cell(w["by"]), reason=cell(w["reason"]), missing=cell(w["missing"]))
              for e in r.executions for w in e.waivers] or [t["none"]]
    rollbacks = [h for h in r.history if "ROLL" in h["event"]]
    if rollbacks:
        lines += ["", f"## {t['rollbacks']}", ""]
        lines += [f"- {when(h['created_time'])} **{h['event']}** `{h['execution_id'] or '-'}` "
                  f"{cell(h['actor'] or '-')}: {cell(_detail(h['detail']))}" for h in rollbacks]
    lines += ["", f"## {t['history']}", "", t["history_header"], "|---|---|---|---|---|---|"]
    lines += [f"| {when(h['created_time'])} | {h['event']} | {h['cutpoint'] or '-'} | {h['execution_id'] or '-'} | "
              f"{cell(h['actor'] or '-')} | {cell(_detail(h['detail']))} |" for h in r.history]
    return "\n".join(lines) + "\n"


def _cutpoint_of(record: UpgradeRecord, bp: Breakpoint) -> str:
    return next((e.cutpoint for e in record.executions if e.execution_id == bp.execution_id), "-")


def _detail(detail: dict[str, Any]) -> str:
    """A history event's detail in a line (waivers have their own section)."""
    return ", ".join(f"{k}: {v}" for k, v in detail.items() if k != "waivers")
