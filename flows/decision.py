"""Deciding in the Prefect UI: a statement's breakpoint asks the operator instead of ending the run.

In a deployment run, a SQL statement that fails (or is found in doubt after a crash) records its
breakpoint as always; the run then *suspends* with a form on its flow-run page (Prefect's
``suspend_flow_run(wait_for_input=...)``): the failure, the choices that fit the case and who decides.
Suspending, not pausing: the process exits, so the worker and the site's lock are free while a person
thinks. Submitting the form reschedules the run; it starts again from the top, is admitted as the
resume of the same execution, finds the submission under the breakpoint's own pause key and turns it
into exactly the :class:`OperatorDecision` that ``ft-upgrade resume --inflight`` records. "stop" ends
the run Failed with the breakpoint, as does a wait longer than the configured time (the server fails
a suspended run whose timeout passed); UI Retry, running the deployment again and ``ft-upgrade
resume`` then work as before. CLI runs have no one to ask and never suspend.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from prefect import get_run_logger
from prefect.input import RunInput
from prefect.runtime import deployment, flow_run
from pydantic import ConfigDict, Field, create_model, model_validator

from tasks.core.clock import utcnow
from tasks.core.errors import InputError, UpgradeFailed
from tasks.core.language import language_code, words
from tasks.core.settings import Settings
from tasks.store.breakpoints import Breakpoint, OperatorDecision

if TYPE_CHECKING:
    from tasks.execution.service import ExecutionService

#: The choices shown, per language; each starts with its key (``retry``, ``applied``, ``skip``, ``stop``),
#: which is what the run reads back, whatever the language the form was shown in.
CHOICES: dict[str, dict[str, str]] = {
    "zh": {"retry": "retry：已修复，重新执行", "applied": "applied：已生效，标记为已执行",
           "skip": "skip：已手工处理（须填写原因）", "stop": "stop：到此为止，运行以失败结束并保留断点"},
    "en": {"retry": "retry: fixed, run it again", "applied": "applied: it took effect, mark it applied",
           "skip": "skip: I applied it by hand (reason required)",
           "stop": "stop here: end the run Failed, keep the breakpoint"},
}
RETRY, APPLIED, SKIP, STOP = (CHOICES["en"][k] for k in ("retry", "applied", "skip", "stop"))
FAILED_KEYS: tuple[str, ...] = ("retry", "skip", "stop")
IN_DOUBT_KEYS: tuple[str, ...] = ("retry", "applied", "skip", "stop")
SUSPENDED = "suspended"  # the state name Prefect prefixes the input keys with

_FIELDS = {
    "zh": {"decision": ("决定", "如何处理这条语句"), "by": ("决定人", "您的姓名（将被记录）"),
           "reason": ("原因", "您检查或处理了什么（选择 skip 时必填；记录在断点、执行记录和报告中）")},
    "en": {"decision": ("Decision", "What happens to this statement"), "by": ("Who decides", "Your name (recorded)"),
           "reason": ("Reason", "What you checked or did (required for skip; recorded on the breakpoint, the ledger "
                                "and the report)")},
}


def choice_key(decision: str) -> str:
    """``retry``/``applied``/``skip``/``stop`` of a choice shown in either language."""
    return re.split(r"[:：]", decision, maxsplit=1)[0].strip().split(" ")[0]


def inflight_of(decision: str) -> Literal["retry", "applied", "skip"] | None:
    """The choice → ``--inflight`` of ``ft-upgrade resume`` (None: stop)."""
    key = choice_key(decision)
    return None if key == "stop" else cast(Literal["retry", "applied", "skip"], key)


def _skip_needs_reason(schema: dict[str, Any], model: type[Any]) -> None:
    """The server refuses a "skip" without a reason (the form's JSON schema, checked on resume); the model
    checks it again when the run reads the submission."""
    skips = [c for c in schema.get("properties", {}).get("decision", {}).get("enum", []) if choice_key(c) == "skip"]
    if skips:
        schema["if"] = {"properties": {"decision": {"enum": skips}}, "required": ["decision"]}
        schema["then"] = {"required": ["reason"], "properties": {"reason": {"type": "string", "minLength": 3}}}


class DecisionForm(RunInput):
    """The operator's answer to a breakpoint; subclasses carry the choices that fit it (:func:`form_for`)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_skip_needs_reason)

    decision: str
    by: str
    reason: str

    @model_validator(mode="after")
    def _reason_for_skip(self) -> DecisionForm:
        if choice_key(self.decision) == "skip" and len(self.reason.strip()) < 3:
            raise ValueError("skip needs a reason: what you applied by hand (it is recorded)")
        return self


def form_for(bp: Breakpoint, language: str | None = "zh") -> type[DecisionForm]:
    """The form of one breakpoint in the site's language: "mark applied" only where the statement may have
    taken effect. ``language=None``: every language's choices (to read back a submission)."""
    keys = IN_DOUBT_KEYS if bp.in_doubt else FAILED_KEYS
    languages = [language_code(language)] if language is not None else list(CHOICES)
    choices = tuple(CHOICES[lang][k] for lang in languages for k in keys)
    fields = _FIELDS[languages[0]]
    decision = Literal[choices]  # type: ignore[valid-type]
    model = create_model(
        "Decision", __base__=DecisionForm,
        decision=(decision, Field(title=fields["decision"][0], description=fields["decision"][1])),
        by=(str, Field(min_length=1, max_length=128, pattern=r"\S", title=fields["by"][0],
                       description=fields["by"][1])),
        reason=(str, Field(default="", title=fields["reason"][0], description=fields["reason"][1])))
    return cast(type[DecisionForm], model)


def asks(bp: Breakpoint | None, settings: Settings) -> bool:
    """Whether this breakpoint suspends the run: a statement's, in a deployment run, the form not turned off."""
    return (bp is not None and settings.decide_in_ui and bool(deployment.id) and bool(flow_run.id)
            and bp.at_statement and not bp.lock_lost)


def pause_key(bp: Breakpoint) -> str:
    """One suspension per breakpoint: its submission is found under this key when the run comes back (Prefect
    allows lowercase letters, digits and dashes in input keys)."""
    return "decision-" + re.sub(r"[^a-z0-9]+", "-", bp.id.lower())


def wait_seconds(bp: Breakpoint, settings: Settings) -> int:
    """How long the form waits: the configured time, never beyond the breakpoint's expiry."""
    left = max((bp.expiry_time - utcnow()).total_seconds(), 1.0)
    configured = settings.decision_timeout_seconds
    return int(min(configured, left) if configured else left)


_DESCRIBE = {
    "zh": {
        "doubt_head": "### 存疑语句 `{where}`（第 {seq} 条语句，数据库 `{database}`）",
        "doubt_check": "它可能已经全部或部分生效。**请先检查数据库**，然后选择 *applied*（已生效：不再执行）、*retry*"
                       "（未生效：重新执行）或 *skip*（您已手工完成：请说明做了什么）。",
        "failed_head": "### 语句执行失败 `{where}`（第 {seq} 条语句，数据库 `{database}`）",
        "failed_check": "服务器拒绝了它：它没有生效。**请修复错误所指的原因**，然后选择 *retry*；"
                        "如果您已手工完成它的效果，请选择 *skip* 并说明做了什么。",
        "where": "局点 **{site}**，步骤 `{step}`，执行ID `{execution}`，断点ID `{bp}`。",
        "error": "**错误信息：** {code}{reason}", "code": "错误 {code}：", "unknown": "未知",
        "check": "**请检查：** {check}",
        "stop": "*stop* 使运行以失败结束并保留断点（至 {expiry}）：之后可在 UI 中 Retry、再次运行同一部署或 "
                "`ft-upgrade resume {execution}` 继续。命令行的同等操作：`ft-upgrade resume {execution} "
                "--inflight retry|applied|skip --by 姓名 --notes 原因`",
    },
    "en": {
        "doubt_head": "### Statement in doubt at `{where}` (statement #{seq}, database `{database}`)",
        "doubt_check": "It may have taken effect, in whole or in part. **Check the database first**, then choose "
                       "*applied* (it took effect: it is not sent again), *retry* (it did not: it is sent again) or "
                       "*skip* (you completed it by hand: say what you did).",
        "failed_head": "### Statement failed at `{where}` (statement #{seq}, database `{database}`)",
        "failed_check": "The server refused it: it did not take effect. **Fix the cause** named by the error, then "
                        "choose *retry*; if you applied its effect by hand instead, choose *skip* and say what you "
                        "did.",
        "where": "Site **{site}**, step `{step}`, execution `{execution}`, breakpoint `{bp}`.",
        "error": "**Error:** {code}{reason}", "code": "error {code}: ", "unknown": "unknown",
        "check": "**What to check:** {check}",
        "stop": "*stop here* ends the run Failed with the breakpoint kept (until {expiry}): Retry in the UI, the same "
                "deployment run or `ft-upgrade resume {execution}` continue it later. Same choices on the command "
                "line: `ft-upgrade resume {execution} --inflight retry|applied|skip --by NAME --notes WHY`.",
    },
}


def describe(bp: Breakpoint, execution_id: str, site_id: str, language: str = "zh") -> str:
    """The form's markdown in the site's language: where it stopped, the statement (masked), the error, what
    to check."""
    t = words(_DESCRIBE, language)
    code = t["code"].format(code=bp.error_code) if bp.error_code else ""
    kind = "doubt" if bp.in_doubt else "failed"
    return "\n\n".join([
        t[f"{kind}_head"].format(where=bp.where, seq=bp.sql_sequence, database=bp.database or "?"),
        t["where"].format(site=site_id, step=bp.step_id, execution=execution_id, bp=bp.id),
        f"```sql\n{(bp.sql_content or '').strip()[:2000]}\n```",
        t["error"].format(code=code, reason=bp.failure_reason or t["unknown"]),
        t["check"].format(check=t[f"{kind}_check"]),
        t["stop"].format(expiry=f"{bp.expiry_time:%Y-%m-%d %H:%M} UTC", execution=execution_id),
    ])


def ask_operator(bp: Breakpoint | None, site_id: str, settings: Settings, language: str = "zh") -> None:
    """In a deployment run: suspend with the decision form, in the site's language (the process exits here);
    otherwise return."""
    from prefect.flow_runs import suspend_flow_run

    if bp is None or not asks(bp, settings):
        return
    timeout = wait_seconds(bp, settings)
    get_run_logger().warning(
        "%s: waiting up to %s for an operator's decision in the Prefect UI (%s): open the flow run, Resume, "
        "fill in the form", bp.where, _duration(timeout), flow_run.ui_url)
    form = form_for(bp, language).with_initial_data(description=describe(bp, bp.execution_id, site_id, language))
    try:
        suspend_flow_run(wait_for_input=form, timeout=timeout, key=pause_key(bp))
    except Exception as exc:  # noqa: BLE001 - no form: the run ends Failed with its breakpoint, as without one
        get_run_logger().error("could not ask in the Prefect UI (%s: %s); the run ends Failed with breakpoint %s",
                               type(exc).__name__, exc, bp.id)


@dataclass(frozen=True)
class Submission:
    """What the operator submitted on the form of one breakpoint."""

    breakpoint_id: str
    inflight: Literal["retry", "applied", "skip"] | None  # None: stop
    by: str
    reason: str

    def decision(self) -> OperatorDecision:
        """The same decision ``ft-upgrade resume --inflight … --by … --notes …`` records."""
        notes = self.reason or f"{self.inflight} (decided in the Prefect UI)"
        return OperatorDecision(by=self.by, notes=notes, inflight=self.inflight)


def submitted(bp: Breakpoint | None) -> Submission | None:
    """The operator's submission for this breakpoint, when this run was resumed from its form (else None).

    Only a key that fired in this flow run counts; a submission is removed once it is recorded
    (:func:`_forget`): the UI's Retry keeps the pause keys, and must never replay an old answer.
    """
    if bp is None or not deployment.id or not flow_run.id:
        return None
    from prefect.client.orchestration import get_client
    from prefect.input.actions import read_flow_run_input

    key = pause_key(bp)
    with get_client(sync_client=True) as client:
        fired = client.read_flow_run(flow_run.id).empirical_policy.pause_keys or set()
    if key not in fired:
        return None
    raw = read_flow_run_input(_response_key(bp), flow_run_id=flow_run.id)
    if not raw:
        return None
    try:
        form = form_for(bp, language=None).model_validate(raw)
    except ValueError as exc:
        raise InputError(f"breakpoint {bp.id}: the decision submitted is not valid: {exc}") from None
    return Submission(breakpoint_id=bp.id, inflight=inflight_of(form.decision), by=form.by.strip(),
                      reason=form.reason.strip())


def apply_submission(service: ExecutionService, execution_id: str) -> None:
    """On a run resumed from the form: record the decision as the CLI does, or end Failed on "stop"."""
    bp = service.active_breakpoint(execution_id)
    answer = submitted(bp)
    if answer is None or bp is None:
        return
    if answer.inflight is None:
        service.operator_stopped(execution_id, bp, by=answer.by, reason=answer.reason, flow_run_id=str(flow_run.id))
        _forget(bp)
        raise UpgradeFailed(f"{bp.where}: stopped here by {answer.by} in the Prefect UI "
                            f"({answer.reason or 'no reason'}); breakpoint {bp.id} is kept: fix the cause, then Retry "
                            f"this flow run, run the deployment again or `ft-upgrade resume {execution_id}`",
                            execution_id=execution_id, step_id=bp.step_id)
    service.prepare_resume(execution_id, answer.decision())  # on the breakpoint: it survives a crash from here on
    _forget(bp)
    get_run_logger().warning("%s: decision from the Prefect UI: %s by %s: %s", bp.where, answer.inflight, answer.by,
                             answer.reason or "-")


def _response_key(bp: Breakpoint) -> str:
    from prefect.input import keyset_from_base_key

    return keyset_from_base_key(f"{SUSPENDED}-{pause_key(bp)}")["response"]


def _forget(bp: Breakpoint) -> None:
    """The submission is recorded (breakpoint or site history): a later attempt of this run must not see it."""
    from prefect.input.actions import delete_flow_run_input

    delete_flow_run_input(_response_key(bp), flow_run_id=flow_run.id)


def _duration(seconds: int) -> str:
    return f"{seconds / 86400:.1f} days" if seconds >= 86400 else f"{seconds} s"
