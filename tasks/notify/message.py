"""The run's own message to the site's notification blocks: what failed (step, file:line) and how to go on.

Prefect's automations report a run's state from outside (tasks they cannot see inside the run); this is
the richer message the run sends itself when it ends, through the same blocks. Chinese unless the site
says English. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasks.core.language import words
from tasks.core.statuses import ExecutionStatus, StepStatus

#: The status of a run's message when its trigger was refused (nothing executed; no execution status).
REFUSED = "REFUSED"

TEXT = {
    "zh": {"ok": "成功", "failed": "失败", "refused": "已拒绝（未执行任何操作）",
           "again": "修复上述原因后，以相同参数再次触发该切点。",
           "title": "【FT 升级】站点 {site} {cutpoint} {source}→{target}：{status}",
           "execution": "执行", "step": "失败步骤", "error": "错误", "at": "位置", "next": "下一步",
           "done": "全部步骤已完成（{steps}）。",
           "resume": ["修复原因后继续（已成功的语句不会重复执行）：", "Prefect UI：打开失败的运行，点击 **Retry**；",
                      "CICD：以相同参数再次触发该部署；", "命令行：`ft-upgrade resume {execution}`。"],
           "waiting": "等待操作员决定", "decide": "在 Prefect UI 中打开该流程运行，点击 **Resume**，在表单中选择 "
                                        "retry / applied / skip / stop 并填写决定人：{url}"},
    "en": {"ok": "succeeded", "failed": "failed", "refused": "refused (nothing was executed)",
           "again": "fix the cause above, then trigger the cutpoint again with the same parameters.",
           "title": "[FT upgrade] site {site} {cutpoint} {source}→{target}: {status}",
           "execution": "Execution", "step": "Failed step", "error": "Error", "at": "At", "next": "Next",
           "done": "Every step finished ({steps}).",
           "resume": ["Fix the cause, then continue (statements that succeeded are not run again):",
                      "Prefect UI: open the failed run and press **Retry**;",
                      "CICD: trigger the deployment again with the same parameters;",
                      "CLI: `ft-upgrade resume {execution}`."],
           "waiting": "waiting for a decision", "decide": "open the flow run in the Prefect UI, press **Resume** "
                                                        "and choose retry / applied / skip / stop, saying who "
                                                        "decides: {url}"},
}


def render_message(report: Mapping[str, Any], language: str = "zh", *,
                   waiting_url: str | None = None) -> tuple[str, str]:
    """(subject, markdown body) for the run's report; ``waiting_url``: the run is about to wait for an
    operator's decision on its page (the decision form) rather than end. A report without an execution (the
    run failed before it had one: a broken config, an unknown site) or with status ``REFUSED`` carries its
    ``error`` and says to trigger again."""
    text = words(TEXT, language)
    ok = report["status"] == ExecutionStatus.SUCCESS
    refused = report["status"] == REFUSED
    status = text["ok"] if ok else text["refused"] if refused else text["waiting"] if waiting_url else text["failed"]
    subject = text["title"].format(site=report["site_id"], cutpoint=report["cutpoint"],
                                   source=report["source_version"], target=report["target_version"], status=status)
    lines = [f"**{subject}**", ""]
    if report.get("execution_id"):
        lines.append(f"- {text['execution']}: `{report['execution_id']}`")
    if ok:
        steps = report.get("steps") or {}
        lines.append("- " + text["done"].format(steps=", ".join(f"{k} {v}" for k, v in steps.items() if v)))
        return subject, "\n".join(lines)
    failed = next((s for s in report.get("step_results", []) if s.get("status") == StepStatus.FAILED), None)
    if failed:
        lines.append(f"- {text['step']}: `{failed['step_id']}`")
        where = (failed.get("details") or {}).get("failure") or {}
        if where.get("file"):
            lines.append(f"- {text['at']}: `{where['file']}:{where.get('line', '?')}` ({where.get('database', '')})")
        if failed.get("error"):
            lines.append(f"- {text['error']}: {str(failed['error'])[:500]}")
    elif report.get("error"):
        lines.append(f"- {text['error']}: {str(report['error'])[:1500]}")
    if refused or not report.get("execution_id"):  # nothing to resume: the trigger itself did not get through
        lines += ["", f"**{text['next']}**: {text['again']}"]
        return subject, "\n".join(lines)
    if waiting_url:
        lines += ["", f"**{text['next']}**: {text['decide'].format(url=waiting_url)}"]
        return subject, "\n".join(lines)
    first, *ways = text["resume"]
    lines += ["", f"**{text['next']}**: {first}", *(f"1. {w.format(execution=report['execution_id'])}" for w in ways)]
    return subject, "\n".join(lines)
