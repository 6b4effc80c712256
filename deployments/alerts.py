"""Alerts through Prefect itself: automations on a site's flow runs, sending through notification blocks.

An alert from inside the flow cannot report a run whose process died, a run that never started, or a
run stuck for hours. Prefect's automations watch the flow-run events on the server instead:

* **ended badly** — a run of the site's deployments enters Failed (a refused start included: busy
  site, missing precondition, a ``--from`` that differs), Crashed or Cancelled;
* **late** — a run was not picked up in time (no worker polling the site's pool);
* **waiting for a decision** — a run enters Suspended (or Paused): a statement failed or is in doubt and
  the flow-run page asks the operator (see :mod:`flows.decision`);
* **running long** — a run still running ``running_hours`` after it started;
* **no heartbeat** — the flow-run process sends a heartbeat event every ``heartbeat_seconds``
  (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` in the deployments' job variables); three missed and the
  run is set Crashed (its worker or host is gone), which the first alert then reports.

A suspended run's process has exited: it sends no heartbeat and is not running, so entering Suspended
or Paused also closes the "no heartbeat" and "running long" windows (else the server would set a run
that waits for a person Crashed); the resumed run opens them again.

Messages are Chinese unless the site says ``"language": "en"``; they are Jinja templates the server
fills in (flow run, state, message, UI link). Pure: :func:`site_automations` builds the automations,
:func:`apply_automations` saves them (replacing those of the same name).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from blocks.notifications import AlertSettings

TERMINAL = ("prefect.flow-run.Completed", "prefect.flow-run.Failed", "prefect.flow-run.Crashed",
            "prefect.flow-run.Cancelled")
#: A run waiting for a person: no heartbeat, not running.
WAITING = ("prefect.flow-run.Suspended", "prefect.flow-run.Paused")
PREFIX = "ft-upgrade alert"


MESSAGES = {
    "zh": {
        "ended": ("【FT 升级告警】站点 {site}：{{{{ flow_run.name }}}} {{{{ flow_run.state.name }}}}",
                  "站点 **{site}** 的升级运行 **{{{{ flow_run.name }}}}** "
                  "状态为 **{{{{ flow_run.state.name }}}}**。\n\n"
                  "- 部署：{{{{ deployment.name }}}}\n- 原因：{{{{ flow_run.state.message }}}}\n"
                  "{{% if flow_run|ui_url %}}- 查看：{{{{ flow_run|ui_url }}}}{{% endif %}}\n\n"
                  "处理：修复原因后，在 Prefect UI 对该运行点击 Retry，或以相同参数再次触发该部署"
                  "（已完成的语句不会重复执行）。被拒绝的启动（站点忙、前置条件未满足）未执行任何内容。"),
        "late": ("【FT 升级告警】站点 {site}：{{{{ flow_run.name }}}} 未按时启动",
                 "站点 **{site}** 的升级运行 **{{{{ flow_run.name }}}}** 已延迟（Late）：没有 worker 领取它。\n\n"
                 "- 检查该站点的 worker：`prefect worker start --pool {pool}`\n"
                 "{{% if flow_run|ui_url %}}- 查看：{{{{ flow_run|ui_url }}}}{{% endif %}}"),
        "running": ("【FT 升级告警】站点 {site}：{{{{ flow_run.name }}}} 运行超过 {hours} 小时",
                    "站点 **{site}** 的升级运行 **{{{{ flow_run.name }}}}** 已运行超过 {hours} 小时仍未结束。\n\n"
                    "{{% if flow_run|ui_url %}}- 查看日志与进度：{{{{ flow_run|ui_url }}}}{{% endif %}}"),
        "waiting": ("【FT 升级待决定】站点 {site}：{{{{ flow_run.name }}}} 等待操作员决定",
                    "站点 **{site}** 的升级运行 **{{{{ flow_run.name }}}}** 在一条 SQL 语句处停下（失败或结果不确定），"
                    "正在等待操作员决定。\n\n"
                    "- 决定：在 Prefect UI 打开该运行"
                    "{{% if flow_run|ui_url %}}（{{{{ flow_run|ui_url }}}}）{{% endif %}}"
                    " → Resume，表单中写明失败位置、SQL 与错误；选择 retry（已修复，重新执行）/ applied（已生效）/ "
                    "skip（已手工执行，需原因）/ stop（结束为 Failed），并填写决定人。\n"
                    "- 无人决定则到期后运行结束为 Failed，断点保留。"),
        "crashed": "{seconds} 秒没有心跳：运行它的 worker 或主机已不在。修复后点击 Retry 继续。",
    },
    "en": {
        "ended": ("[FT upgrade alert] site {site}: {{{{ flow_run.name }}}} {{{{ flow_run.state.name }}}}",
                  "Upgrade run **{{{{ flow_run.name }}}}** of site **{site}** is **{{{{ flow_run.state.name }}}}**.\n\n"
                  "- Deployment: {{{{ deployment.name }}}}\n- Why: {{{{ flow_run.state.message }}}}\n"
                  "{{% if flow_run|ui_url %}}- Open: {{{{ flow_run|ui_url }}}}{{% endif %}}\n\n"
                  "Next: fix the cause, then Retry the run in the Prefect UI or trigger the deployment again with "
                  "the same parameters (statements already done are not run again). A refused start (busy "
                  "site, missing precondition) executed nothing."),
        "late": ("[FT upgrade alert] site {site}: {{{{ flow_run.name }}}} did not start",
                 "Upgrade run **{{{{ flow_run.name }}}}** of site **{site}** is Late: no worker picked it up.\n\n"
                 "- Check the site's worker: `prefect worker start --pool {pool}`\n"
                 "{{% if flow_run|ui_url %}}- Open: {{{{ flow_run|ui_url }}}}{{% endif %}}"),
        "running": ("[FT upgrade alert] site {site}: {{{{ flow_run.name }}}} running for over {hours} h",
                    "Upgrade run **{{{{ flow_run.name }}}}** of site **{site}** has been running for over "
                    "{hours} h.\n\n"
                    "{{% if flow_run|ui_url %}}- Logs and progress: {{{{ flow_run|ui_url }}}}{{% endif %}}"),
        "waiting": ("[FT upgrade decision] site {site}: {{{{ flow_run.name }}}} waits for an operator",
                    "Upgrade run **{{{{ flow_run.name }}}}** of site **{site}** stopped at a SQL statement (failed "
                    "or in doubt) and waits for an operator's decision.\n\n"
                    "- Decide: open the run in the Prefect UI{{% if flow_run|ui_url %}} ({{{{ flow_run|ui_url }}}})"
                    "{{% endif %}} → Resume; the form shows where it stopped, the SQL and the error; choose retry "
                    "(fixed, run it again) / applied (it took effect) / skip (applied by hand, reason required) / "
                    "stop (end Failed) and who decides.\n"
                    "- If nobody decides in time the run ends Failed and keeps its breakpoint."),
        "crashed": "No heartbeat for {seconds} s: the worker or host running it is gone. Fix it, then Retry.",
    },
}


def site_automations(site_id: str, pool: str, settings: AlertSettings, block_ids: Sequence[Any]) -> list[Any]:
    """The automations of one site (Prefect ``AutomationCore`` objects, not yet saved)."""
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState, SendNotification
    from prefect.events.schemas.automations import AutomationCore as Automation
    from prefect.events.schemas.automations import EventTrigger, Posture

    text = MESSAGES[settings.language]
    hours = f"{settings.running_hours:g}"
    match = {"prefect.resource.id": "prefect.flow-run.*"}
    related = {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.site:{site_id}"}

    def notify(kind: str) -> list[Any]:
        subject, body = text[kind]
        return [SendNotification(block_document_id=block, subject=subject.format(site=site_id, hours=hours),
                                 body=body.format(site=site_id, pool=pool, hours=hours)) for block in block_ids]

    silence = settings.heartbeat_seconds * settings.missed_heartbeats
    return [
        Automation(name=f"{PREFIX} {site_id}: ended badly", description="Failed, Crashed or Cancelled runs",
                   trigger=EventTrigger(expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed",
                                                "prefect.flow-run.Cancelled"}, match=match, match_related=related,
                                        posture=Posture.Reactive, threshold=1, within=timedelta(0)),
                   actions=notify("ended")),
        Automation(name=f"{PREFIX} {site_id}: late", description="Runs no worker picked up",
                   trigger=EventTrigger(expect={"prefect.flow-run.Late"}, match=match, match_related=related,
                                        posture=Posture.Reactive, threshold=1, within=timedelta(0)),
                   actions=notify("late")),
        Automation(name=f"{PREFIX} {site_id}: waiting for a decision",
                   description="Runs suspended at a statement, waiting for an operator's decision in the UI",
                   trigger=EventTrigger(expect=set(WAITING), match=match, match_related=related,
                                        posture=Posture.Reactive, threshold=1, within=timedelta(0)),
                   actions=notify("waiting")),
        Automation(name=f"{PREFIX} {site_id}: running long", description=f"Runs still running after {hours} h",
                   trigger=EventTrigger(after={"prefect.flow-run.Running"}, expect={*TERMINAL, *WAITING}, match=match,
                                        match_related=related, for_each={"prefect.resource.id"},
                                        posture=Posture.Proactive, threshold=1,
                                        within=timedelta(hours=settings.running_hours)),
                   actions=notify("running")),
        Automation(name=f"{PREFIX} {site_id}: no heartbeat", description="A run whose process is gone is Crashed",
                   trigger=EventTrigger(after={"prefect.flow-run.heartbeat"},
                                        expect={"prefect.flow-run.heartbeat", *TERMINAL, *WAITING}, match=match,
                                        match_related=related, for_each={"prefect.resource.id"},
                                        posture=Posture.Proactive, threshold=1, within=timedelta(seconds=silence)),
                   actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                               message=text["crashed"].format(seconds=silence))]),
    ]


def apply_automations(client: Any, site_id: str, automations: Sequence[Any]) -> list[str]:
    """Save the site's automations, replacing earlier ones of this tool for the site; returns their names."""
    ours = f"{PREFIX} {site_id}:"
    for existing in client.read_automations():
        if existing.name.startswith(ours):
            client.delete_automation(existing.id)
    for automation in automations:
        client.create_automation(automation)
    return [a.name for a in automations]
