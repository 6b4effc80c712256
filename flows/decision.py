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

The form's JSON schema (which the server checks before it resumes the run) refuses what the run would
refuse: a choice the breakpoint does not offer, a "skip" whose reason has no letters. It accepts a
choice's key (``retry``…) and its label in either language. Whatever the run still refuses (a run
suspended by an older version of this form, a decision the breakpoint no longer allows) is answered
with a new suspension whose form says why, and the refused answer is deleted: no Retry replays it.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from prefect import get_run_logger
from prefect.input import RunInput
from prefect.runtime import deployment, flow_run
from pydantic import ConfigDict, Field, ValidationError, create_model, model_validator
from pydantic_core import PydanticCustomError

from tasks.core.clock import utcnow
from tasks.core.errors import InputError, UpgradeFailed
from tasks.core.language import language_code, words
from tasks.core.runtime import flow_run_page
from tasks.core.settings import Settings
from tasks.core.statuses import ExecutionStatus
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
#: A skip's reason: at least three characters that are not spaces, one of them a letter (any script). The
#: server checks it (JSON schema ``pattern``: Python's ``re.search``) and so does the run.
REASON_PATTERN = r"^(?=[\s\S]*[^\W\d_])(?:\s*\S){3}"

# The Prefect UI appends " (Optional)" to the label of a field the schema does not require: the reason's
# label is written to end where that word completes it ("required for skip; for other choices (Optional)").
_FIELDS = {
    "zh": {"decision": ("决定", "如何处理这条语句（也可给出键：{keys}）"), "by": ("决定人", "您的姓名（将被记录）"),
           "reason": ("原因——选择 skip 时必填；其他选择", "您检查或处理了什么（记录在断点、执行记录和报告中）"),
           "shown": "选项", "other": "键或英文选项"},
    "en": {"decision": ("Decision", "What happens to this statement (or give its key: {keys})"),
           "by": ("Who decides", "Your name (recorded)"),
           "reason": ("Reason — required for skip; for other choices",
                      "What you checked or did (recorded on the breakpoint, the ledger and the report)"),
           "shown": "Choices", "other": "Key or Chinese label"},
}


def choice_key(decision: str) -> str:
    """``retry``/``applied``/``skip``/``stop`` of a choice shown in either language, or of the key itself."""
    return re.split(r"[:：]", decision, maxsplit=1)[0].strip().split(" ")[0]


def inflight_of(decision: str) -> Literal["retry", "applied", "skip"] | None:
    """The choice → ``--inflight`` of ``ft-upgrade resume`` (None: stop)."""
    key = choice_key(decision)
    return None if key == "stop" else cast(Literal["retry", "applied", "skip"], key)


def _offered(schema: dict[str, Any]) -> list[str]:
    """Every value the form's decision accepts (its one enum, or the enums of its alternatives)."""
    decision = schema.get("properties", {}).get("decision", {})
    return [v for branch in decision.get("anyOf", [decision]) for v in branch.get("enum", [])]


def _skip_needs_reason(schema: dict[str, Any], model: type[Any]) -> None:
    """The server refuses a "skip" whose reason is missing or has no letters (the form's JSON schema, checked
    on resume); the model checks it again when the run reads the submission."""
    skips = [c for c in _offered(schema) if choice_key(c) == "skip"]
    if skips:
        schema["if"] = {"properties": {"decision": {"enum": skips}}, "required": ["decision"]}
        schema["then"] = {"required": ["reason"], "properties": {
            "reason": {"type": "string", "minLength": 3, "pattern": REASON_PATTERN}}}


class DecisionForm(RunInput):
    """The operator's answer to a breakpoint; subclasses carry the choices that fit it (:func:`form_for`)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_skip_needs_reason)

    decision: str
    by: str
    reason: str

    @model_validator(mode="after")
    def _reason_for_skip(self) -> DecisionForm:
        if choice_key(self.decision) == "skip" and not re.search(REASON_PATTERN, self.reason):
            raise PydanticCustomError("skip_needs_reason",
                                      "skip needs a reason: what you applied by hand (it is recorded)")
        return self


def form_for(bp: Breakpoint, language: str | None = "zh") -> type[DecisionForm]:
    """The form of one breakpoint in the site's language (``None``: Chinese): "mark applied" only where the
    statement may have taken effect. The list shown holds the site language's labels; the same choices are
    accepted as their keys and in the other language (an API call, an English-speaking operator)."""
    keys = IN_DOUBT_KEYS if bp.in_doubt else FAILED_KEYS
    shown_language = language_code(language)
    fields = _FIELDS[shown_language]
    shown = tuple(CHOICES[shown_language][k] for k in keys)
    other = keys + tuple(CHOICES[lang][k] for lang in CHOICES if lang != shown_language for k in keys)
    decision = Literal[shown] | Literal[other]  # type: ignore[valid-type]
    model = create_model(
        "Decision", __base__=DecisionForm,
        decision=(decision, Field(title=fields["decision"][0],
                                  description=fields["decision"][1].format(keys=" / ".join(keys)),
                                  json_schema_extra=_titled(fields["shown"], fields["other"]))),
        by=(str, Field(min_length=1, max_length=128, pattern=r"\S", title=fields["by"][0],
                       description=fields["by"][1])),
        reason=(str, Field(default="", title=fields["reason"][0], description=fields["reason"][1])))
    return cast(type[DecisionForm], model)


def _titled(*titles: str) -> Any:
    """Name the decision's two lists (the UI shows the names as a toggle: the site's labels first)."""
    def extra(schema: dict[str, Any]) -> None:
        for branch, title in zip(schema.get("anyOf", []), titles, strict=False):
            branch["title"] = title
    return extra


def asks(bp: Breakpoint | None, settings: Settings) -> bool:
    """Whether this breakpoint suspends the run: a statement's, in a deployment run, the form not turned off."""
    return (bp is not None and settings.decide_in_ui and bool(deployment.id) and bool(flow_run.id)
            and bp.at_statement and not bp.lock_lost)


def pause_key(bp: Breakpoint, attempt: int = 1) -> str:
    """One suspension per question: the submission is found under this key when the run comes back (Prefect
    allows lowercase letters, digits and dashes in input keys; a key fires once, so a question asked again
    about the same breakpoint gets the next attempt's key)."""
    base = "decision-" + re.sub(r"[^a-z0-9]+", "-", bp.id.lower())
    return base if attempt == 1 else f"{base}-{attempt}"


def _attempt_of(bp: Breakpoint, key: str) -> int | None:
    base = pause_key(bp)
    if key == base:
        return 1
    tail = key.removeprefix(base + "-")
    return int(tail) if key.startswith(base + "-") and tail.isdigit() else None


def _asked(bp: Breakpoint) -> list[tuple[int, str]]:
    """The questions about ``bp`` this flow run already asked (fired pause keys), newest first."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        fired = client.read_flow_run(flow_run.id).empirical_policy.pause_keys or set()
    found = [(n, key) for key in fired if (n := _attempt_of(bp, key)) is not None]
    return sorted(found, reverse=True)


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
        "first": "**首次错误**（{time}，断点 `{bp}`）：{code}{reason}",
        "check": "**请检查：** {check}",
        "stop": "*stop* 使运行以失败结束并保留断点（至 {expiry}）：之后可在 UI 中 Retry、再次运行同一部署或 "
                "`ft-upgrade resume {execution}` 继续。命令行的同等操作：`ft-upgrade resume {execution} "
                "--inflight retry`（或 applied、skip）` --by 姓名 --notes 原因`",
        "refused": "> ⚠️ **上一次提交未被接受**（{by}）：{why}。断点不变，请重新选择并提交。",
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
        "first": "**First error** ({time}, breakpoint `{bp}`): {code}{reason}",
        "check": "**What to check:** {check}",
        "stop": "*stop here* ends the run Failed with the breakpoint kept (until {expiry}): Retry in the UI, the same "
                "deployment run or `ft-upgrade resume {execution}` continue it later. Same choices on the command "
                "line: `ft-upgrade resume {execution} --inflight retry` (or applied, skip) `--by NAME --notes WHY`.",
        "refused": "> ⚠️ **The last answer was not accepted** ({by}): {why}. The breakpoint is unchanged: choose "
                   "again and submit.",
    },
}
SQL_WIDTH = 76  # the form's dialog shows about this many characters of code without scrolling


def describe(bp: Breakpoint, execution_id: str, site_id: str, language: str = "zh",
             refused: Refusal | None = None) -> str:
    """The form's markdown in the site's language: why the last answer was refused (if it was), where it
    stopped, the statement (masked, wrapped to the dialog), the error (and the first one here), what to check."""
    t = words(_DESCRIBE, language)
    code = t["code"].format(code=bp.error_code) if bp.error_code else ""
    kind = "doubt" if bp.in_doubt else "failed"
    parts = [t["refused"].format(by=refused.by or "-", why=refused.why)] if refused else []
    parts += [
        t[f"{kind}_head"].format(where=bp.where, seq=bp.sql_sequence, database=bp.database or "?"),
        t["where"].format(site=site_id, step=bp.step_id, execution=execution_id, bp=bp.id),
        f"```sql\n{_wrapped((bp.sql_content or '').strip()[:2000])}\n```",
        t["error"].format(code=code, reason=bp.failure_reason or t["unknown"]),
    ]
    first = bp.original_error
    if first:
        first_code = t["code"].format(code=first["error_code"]) if first.get("error_code") else ""
        parts.append(t["first"].format(time=first.get("time") or "?", bp=first.get("breakpoint") or "?",
                                       code=first_code, reason=first.get("message") or t["unknown"]))
    parts += [t["check"].format(check=t[f"{kind}_check"]),
              t["stop"].format(expiry=f"{bp.expiry_time:%Y-%m-%d %H:%M} UTC", execution=execution_id)]
    return "\n\n".join(parts)


def _wrapped(sql: str) -> str:
    """Long lines folded at spaces (a long word is cut) so the dialog needs no horizontal scrolling; display
    only, the statement run is the file's."""
    return "\n".join(textwrap.fill(line, SQL_WIDTH, break_on_hyphens=False, replace_whitespace=False,
                                   drop_whitespace=True, subsequent_indent="  ") if len(line) > SQL_WIDTH else line
                     for line in sql.splitlines())


def ask_operator(bp: Breakpoint | None, site_id: str, settings: Settings, language: str = "zh",
                 refused: Refusal | None = None) -> None:
    """In a deployment run: suspend with the decision form, in the site's language (the process exits here);
    ``refused``: the question is asked again, saying why the last answer was not taken. Otherwise return."""
    from prefect.flow_runs import suspend_flow_run

    if bp is None or not asks(bp, settings):
        return
    timeout = wait_seconds(bp, settings)
    page = flow_run_page(flow_run.id)
    get_run_logger().warning(
        "%s: waiting up to %s for an operator's decision in the Prefect UI: open %s, press Resume, fill in the form",
        bp.where, _duration(timeout), page)
    form = form_for(bp, language).with_initial_data(
        description=describe(bp, bp.execution_id, site_id, language, refused))
    try:
        asked = _asked(bp)
        key = pause_key(bp, asked[0][0] + 1 if asked else 1)
        suspend_flow_run(wait_for_input=form, timeout=timeout, key=key)
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


@dataclass(frozen=True)
class Refusal:
    """A submission the run does not take: who sent it and why not, in the site's language where the words
    are this project's own."""

    by: str
    why: str


_REFUSALS = {
    "zh": {"choice": "“{value}” 不是本断点可选的决定（可选：{choices}）",
           "reason": "选择 skip 时必须填写原因：您手工做了什么（至少 3 个字符，须含文字）",
           "by": "必须填写决定人", "field": "表单没有字段 {field}", "sep": "；"},
    "en": {"choice": "{value!r} is not a decision this breakpoint offers (choose one of: {choices})",
           "reason": "skip needs a reason: what you applied by hand (at least 3 characters, with letters)",
           "by": "say who decides", "field": "the form has no field {field}", "sep": "; "},
}


def refusal_of(exc: ValidationError, bp: Breakpoint, language: str, by: str = "") -> Refusal:
    """Why the run refuses a submission, one line per problem, in the site's language."""
    t = words(_REFUSALS, language)
    keys = IN_DOUBT_KEYS if bp.in_doubt else FAILED_KEYS
    reasons: list[str] = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        if error["type"] == "skip_needs_reason":
            reason = t["reason"]
        elif error["type"] == "extra_forbidden":
            reason = t["field"].format(field=field)
        elif field == "decision":
            reason = t["choice"].format(value=error.get("input"), choices=" / ".join(keys))
        elif field == "by":
            reason = t["by"]
        else:
            reason = f"{field or 'form'}: {error['msg']}"
        if reason not in reasons:
            reasons.append(reason)
    return Refusal(by=by, why=t["sep"].join(reasons))


def read_answer(bp: Breakpoint | None, language: str) -> tuple[str, Submission | Refusal] | None:
    """The operator's answer to this breakpoint, when this run was resumed from its form (else None): the
    pause key it came under, and the decision, or why the run does not take it.

    Only a key that fired in this flow run counts; an answer is removed once it is recorded or refused
    (:func:`_forget`): the UI's Retry keeps the pause keys, and must never replay an old answer.
    """
    if bp is None or not deployment.id or not flow_run.id:
        return None
    from prefect.input.actions import read_flow_run_input

    for _attempt, key in _asked(bp):
        raw = read_flow_run_input(_response_key(key), flow_run_id=flow_run.id)
        if not raw:
            continue
        by = str(raw.get("by") or "").strip() if isinstance(raw, dict) else ""
        try:
            form = form_for(bp, language).model_validate(raw)
        except ValidationError as exc:
            return key, refusal_of(exc, bp, language, by)
        return key, Submission(breakpoint_id=bp.id, inflight=inflight_of(form.decision), by=form.by.strip(),
                               reason=form.reason.strip())
    return None


def apply_submission(service: ExecutionService, execution_id: str, *, site_id: str, settings: Settings) -> None:
    """On a run resumed from the form: record the decision as the CLI does, end Failed on "stop", or ask again
    (a new suspension) when the run does not take the answer."""
    bp = service.active_breakpoint(execution_id)
    found = read_answer(bp, service.language)
    if found is None or bp is None:
        return
    key, answer = found
    if isinstance(answer, Submission) and answer.inflight is not None:
        try:
            service.prepare_resume(execution_id, answer.decision())  # on the breakpoint: survives a crash from here
        except InputError as exc:
            answer = Refusal(by=answer.by, why=str(exc))
    if isinstance(answer, Refusal):
        _forget(key)  # never read again: neither this run's next question nor a Retry replays it
        get_run_logger().warning("%s: the answer of %s is not taken (%s); asking again", bp.where, answer.by or "?",
                                 answer.why)
        ask_operator(bp, site_id, settings, service.language, refused=answer)  # suspends
        message = (f"{bp.where}: the decision submitted was refused ({answer.why}) and the run could not ask again; "
                   f"breakpoint {bp.id} is kept: Retry this flow run, run the deployment again or "
                   f"`ft-upgrade resume {execution_id}`")
        service.finish(execution_id, ExecutionStatus.FAILED, message)
        raise UpgradeFailed(message, execution_id=execution_id, step_id=bp.step_id)
    if answer.inflight is None:
        message = (f"{bp.where}: stopped here by {answer.by} in the Prefect UI ({answer.reason or 'no reason'}); "
                   f"breakpoint {bp.id} is kept: fix the cause, then Retry this flow run, run the deployment again "
                   f"or `ft-upgrade resume {execution_id}`")
        service.operator_stopped(execution_id, bp, by=answer.by, reason=answer.reason, flow_run_id=str(flow_run.id),
                                 message=message)
        _forget(key)
        raise UpgradeFailed(message, execution_id=execution_id, step_id=bp.step_id)
    _forget(key)
    get_run_logger().warning("%s: decision from the Prefect UI: %s by %s: %s", bp.where, answer.inflight, answer.by,
                             answer.reason or "-")


def _response_key(key: str) -> str:
    from prefect.input import keyset_from_base_key

    return keyset_from_base_key(f"{SUSPENDED}-{key}")["response"]


def _forget(key: str) -> None:
    """The answer is recorded (breakpoint or site history) or refused: a later attempt of this run must not
    see it."""
    from prefect.input.actions import delete_flow_run_input

    delete_flow_run_input(_response_key(key), flow_run_id=flow_run.id)


def _duration(seconds: int) -> str:
    return f"{seconds / 86400:.1f} days" if seconds >= 86400 else f"{seconds} s"
