"""The words of the cutpoint report, in Chinese (the default, as in the requirements) and English.

One language per document: the site profile's ``language`` picks the set; labels follow the
requirements' formats (执行ID, 执行状态, 断点…). Pure data.
"""

from __future__ import annotations

from typing import Literal

from tasks.core.language import words

Language = Literal["zh", "en"]
DEFAULT_LANGUAGE: Language = "zh"

REPORT_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "status": "执行状态", "site": "局点", "field": "项目", "value": "内容",
        "execution_id": "执行ID", "cutpoint": "切点", "flow_run": "流程运行", "started": "开始时间（UTC）",
        "ended": "结束时间（UTC）", "duration": "耗时", "resumes": "续执行次数", "steps_row": "步骤",
        "steps_counts": "共 {total} 个：成功 {success}，警告 {warning}，失败 {failed}，跳过 {skipped}",
        "sql_row": "SQL 语句", "sql_counts": "共 {total} 条：成功 {success}，失败 {failed}",
        "requested_by": "触发人", "rerun_of": "重新执行", "rerun_value": "`{of}`（有意重跑）",
        "steps": "步骤", "step_header": "| 序号 | 步骤 | 版本 | 状态 | 耗时 | 结果 |",
        "waived": "豁免的前置条件", "waived_line": "- **{precondition}** 由 {by} 豁免：{reason}（缺少：{missing}）",
        "rerun": "有意重新执行",
        "rerun_text": "重新执行 `{of}`，由 {by} 发起：{reason}。执行前本局点已应用的脚本：",
        "none": "（无）", "failures": "失败项",
        "notification": "通知 {webhook}：{state}；接收人：{recipients}", "delivered": "已送达",
        "not_delivered": "未送达（{error}）",
        "next": "下一步",
        "ready_to_stop": "**准备停服**：备份、已修改的配置文件以及各服务及其版本见下文。CICD 可停止服务并调用 "
                         "startup_pre_process。",
        "complete": "无需操作：本切点已完成，CICD 可调用下一个切点。",
        "refused": "**执行状态：⛔ 已拒绝** — 局点 `{site}`，{source} → {target}：未执行任何操作。",
        "fix": "修复上面显示的原因；已成功的步骤不会重复执行。",
        "ui": "Prefect UI：打开失败的流程运行，点击 **Retry**。",
        "cicd": "CICD：`prefect deployment run '{deployment}' -p source_version={source} "
                "-p target_version={target} -p site_id={site} --watch`（参数相同）。",
        "cli": "命令行：`ft-upgrade resume {execution_id}`。",
        "waiting": "等待操作员决定",
        "decide": "在 Prefect UI 打开 {page}，点击 **Resume**，在表单中选择 retry / applied / skip / stop 并填写决定人"
                  "（skip 须填写原因）；运行随即从该语句继续。",
        "decide_cli": "命令行的同等操作：`ft-upgrade resume {execution_id} --inflight retry`（或 applied、skip）"
                      "` --by 姓名 --notes 原因`。",
        "decide_late": "无人在期限内决定时运行以 Failed 结束、断点保留：之后修复原因，在 UI 中 Retry 或再次运行部署。",
        "step_reused": "本次执行中已完成", "step_blocked": "已跳过：依赖的步骤 {blocker} 未成功",
        "decisions": "断点与操作员决定", "at": "失败位置", "statement": "失败语句", "error": "错误",
        "decision": "决定", "decided_by": "决定人", "notes": "说明", "no_decision": "尚无决定", "outcome": "结果",
        "bp_active": "等待处理（ACTIVE）", "bp_expired": "已过期", "bp_resolved": "已解决：{by}，{when}：{notes}",
    },
    "en": {
        "status": "Status", "site": "site", "field": "field", "value": "value",
        "execution_id": "execution id", "cutpoint": "cutpoint", "flow_run": "flow run", "started": "started (UTC)",
        "ended": "ended (UTC)", "duration": "duration", "resumes": "resumes", "steps_row": "steps",
        "steps_counts": "{total} total, {success} success, {warning} warning, {failed} failed, {skipped} skipped",
        "sql_row": "SQL statements", "sql_counts": "{total} total, {success} success, {failed} failed",
        "requested_by": "requested by", "rerun_of": "re-run of", "rerun_value": "`{of}` (deliberate)",
        "steps": "Steps", "step_header": "| # | step | version | status | duration | summary |",
        "waived": "Waived preconditions",
        "waived_line": "- **{precondition}** waived by {by}: {reason} (missing: {missing})",
        "rerun": "Deliberate re-run",
        "rerun_text": "Re-run of `{of}` asked by {by}: {reason}. Scripts already applied at this site before it ran:",
        "none": "(none)", "failures": "Failures",
        "notification": "Notification to {webhook}: {state}; recipients: {recipients}", "delivered": "delivered",
        "not_delivered": "NOT delivered ({error})",
        "next": "What to do next",
        "ready_to_stop": "**Ready to stop**: backups, changed configuration files and the services with their "
                         "versions are listed below. CICD may stop the services and call startup_pre_process.",
        "complete": "Nothing: this cutpoint is complete. CICD may call the next one.",
        "refused": "**Status: ⛔ REFUSED** — site `{site}`, {source} → {target}: nothing was executed.",
        "fix": "Fix the cause shown above; steps that succeeded are not run again.",
        "ui": "Prefect UI: open the failed flow run and press **Retry**.",
        "cicd": "CICD: `prefect deployment run '{deployment}' -p source_version={source} "
                "-p target_version={target} -p site_id={site} --watch` (same parameters).",
        "cli": "CLI: `ft-upgrade resume {execution_id}`.",
        "waiting": "waiting for a decision",
        "decide": "Open {page} in the Prefect UI, press **Resume** and choose retry / applied / skip / stop in the "
                  "form, saying who decides (skip needs a reason); the run then goes on at the statement.",
        "decide_cli": "Same on the command line: `ft-upgrade resume {execution_id} --inflight retry` (or applied, "
                      "skip) `--by NAME --notes WHY`.",
        "decide_late": "If nobody decides in time the run ends Failed with its breakpoint kept: fix the cause, then "
                       "Retry it in the UI or run the deployment again.",
        "step_reused": "already done in this execution",
        "step_blocked": "skipped: dependency {blocker} did not succeed",
        "decisions": "Breakpoints and operators' decisions", "at": "stopped at", "statement": "statement",
        "error": "error", "decision": "decision", "decided_by": "decided by", "notes": "notes",
        "no_decision": "no decision yet", "outcome": "outcome", "bp_active": "waiting (ACTIVE)",
        "bp_expired": "expired", "bp_resolved": "resolved by {by} at {when}: {notes}",
    },
}


def report_text(language: str | None) -> dict[str, str]:
    """The words for ``language`` (Chinese when unset or unknown)."""
    return words(REPORT_TEXT, language)
