"""The decision form of a breakpoint, without a server: its choices, its checks, its text, its timeout; the CICD
script's exit 4 and the alert on a suspended run (tests/deployments/test_decide_in_ui.py runs them for real)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from prefect._internal.pydantic.v2_schema import create_v2_schema
from prefect.utilities.schema_tools import ValidationError, validate

from flows.decision import CHOICES, Submission, asks, describe, form_for, inflight_of, wait_seconds
from tasks.core.clock import utcnow
from tasks.core.settings import Settings
from tasks.store.breakpoints import Breakpoint, OperatorDecision
from tests.deployments.test_cicd_logic import load


def breakpoint_row(*, in_doubt: bool, kind: str = "SQL_LEVEL", days_left: float = 7) -> Breakpoint:
    return Breakpoint.from_row({
        "id": "BP_20260101_000000_abcdef", "step_id": "sql_001", "breakpoint_type": kind,
        "sql_file_name": "s.sql", "sql_line_number": 12, "sql_sequence": 3,
        "sql_content": "CREATE USER u IDENTIFIED BY '***'", "error_code": None if in_doubt else "1146",
        "failure_reason": "Table 'ft.prerequisite' doesn't exist",
        "context_data": json.dumps({"database": "ft_db", "in_doubt": in_doubt}),
        "expiry_time": utcnow() + timedelta(days=days_left)})


def server_accepts(form: type, run_input: dict[str, Any]) -> bool:
    """What the Prefect server does with a submission (api/flow_runs.py resume_flow_run): the JSON schema."""
    try:
        validate(run_input, create_v2_schema(form.__name__, model_base=form), raise_on_error=True)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("language", ["zh", "en"])
def test_mark_applied_is_offered_only_for_a_statement_in_doubt(language: str) -> None:
    c = CHOICES[language]
    failed = form_for(breakpoint_row(in_doubt=False), language)
    doubtful = form_for(breakpoint_row(in_doubt=True), language)
    assert not server_accepts(failed, {"decision": c["applied"], "by": "ops"})
    assert server_accepts(doubtful, {"decision": c["applied"], "by": "ops"})
    for form in (failed, doubtful):
        assert all(server_accepts(form, {"decision": c[k], "by": "ops"}) for k in ("retry", "stop"))


@pytest.mark.parametrize("language", ["zh", "en"])
def test_skip_needs_a_reason_and_every_decision_needs_who_both_at_the_server_and_in_the_run(language: str) -> None:
    c = CHOICES[language]
    form = form_for(breakpoint_row(in_doubt=False), language)
    for refused in ({"decision": c["skip"], "by": "ops"}, {"decision": c["skip"], "by": "ops", "reason": None},
                    {"decision": c["retry"]}, {"decision": c["retry"], "by": "  "}):
        assert not server_accepts(form, refused), refused
        with pytest.raises(ValueError):
            form.model_validate(refused)
    assert server_accepts(form, {"decision": c["skip"], "by": "ops", "reason": "inserted row 2 by hand"})


def test_a_submission_in_either_language_reads_back_as_the_same_decision() -> None:
    reader = form_for(breakpoint_row(in_doubt=True), language=None)
    for language in ("zh", "en"):
        for key, expected in (("retry", "retry"), ("applied", "applied"), ("skip", "skip"), ("stop", None)):
            form = reader.model_validate({"decision": CHOICES[language][key], "by": "ops", "reason": "checked it"})
            assert inflight_of(form.decision) == expected


def test_the_form_shows_where_the_statement_masked_the_error_and_what_to_check() -> None:
    text = describe(breakpoint_row(in_doubt=False), "EXEC_1", "CN", "en")
    assert "Statement failed at `s.sql:12` (statement #3, database `ft_db`)" in text
    assert "IDENTIFIED BY '***'" in text and "error 1146: Table 'ft.prerequisite' doesn't exist" in text
    assert "Fix the cause" in text and "ft-upgrade resume EXEC_1 --inflight" in text
    assert "Check the database first" in describe(breakpoint_row(in_doubt=True), "EXEC_1", "CN", "en")
    chinese = describe(breakpoint_row(in_doubt=False), "EXEC_1", "CN")
    assert "### 语句执行失败 `s.sql:12`（第 3 条语句，数据库 `ft_db`）" in chinese
    assert "错误 1146：Table 'ft.prerequisite' doesn't exist" in chinese
    assert "ft-upgrade resume EXEC_1 --inflight" in chinese
    assert "请先检查数据库" in describe(breakpoint_row(in_doubt=True), "EXEC_1", "CN")


def test_the_wait_defaults_to_the_breakpoints_expiry_and_never_outlives_it() -> None:
    bp = breakpoint_row(in_doubt=False, days_left=7)
    assert abs(wait_seconds(bp, Settings()) - 7 * 86400) < 5
    assert wait_seconds(bp, Settings(decision_timeout_seconds=3600)) == 3600
    assert abs(wait_seconds(bp, Settings(decision_timeout_seconds=30 * 86400)) - 7 * 86400) < 5


def test_a_submission_becomes_the_decision_the_cli_records() -> None:
    skip = Submission(breakpoint_id="BP_1", inflight="skip", by="ops", reason="inserted row 2 by hand")
    assert skip.decision() == OperatorDecision(by="ops", notes="inserted row 2 by hand", inflight="skip")
    assert Submission("BP_1", "retry", "ops", "").decision().notes == "retry (decided in the Prefect UI)"


def test_cli_runs_and_step_breakpoints_never_suspend() -> None:
    assert not asks(breakpoint_row(in_doubt=False), Settings()), "no deployment: nobody to ask"
    assert not asks(breakpoint_row(in_doubt=False, kind="STEP_LEVEL"), Settings())


def test_cicd_stops_polling_at_a_suspended_run_and_says_where_to_decide() -> None:
    cicd = load("cicd")
    suspended = SimpleNamespace(state=SimpleNamespace(name="Suspended", is_paused=lambda: True,
                                                      is_final=lambda: False))
    client = SimpleNamespace(read_flow_run=lambda _id: suspended)
    assert cicd.wait_for_final(client, "run-1", timeout=0.1, poll=0.01, echo=lambda _: None) is suspended
    request = cicd.validate_request("startup_pre_process", "3.17.0", "3.17.5", "CN")
    lines = cicd.waiting_lines(request, "run-1", "http://prefect/runs/flow-run/run-1",
                               "| execution id | `EXEC_1` |\n")
    assert lines[0].startswith("WAITING: startup_pre_process at site CN")
    assert any("http://prefect/runs/flow-run/run-1" in line for line in lines)
    assert any("ft-upgrade resume EXEC_1 --inflight" in line for line in lines)
    assert cicd.EXIT_WAITING == 4


def test_a_suspended_run_alerts_and_is_neither_crashed_for_silence_nor_reported_running_long() -> None:
    from blocks.notifications import AlertSettings

    alerts = load("alerts")
    automations = {a.name.split(": ", 1)[1]: a for a in alerts.site_automations(
        "CN", "ft-upgrade-cn", AlertSettings(notify=["cn-dingtalk"]), [uuid.uuid4()])}
    waiting = automations["waiting for a decision"]
    assert waiting.trigger.expect == {"prefect.flow-run.Suspended", "prefect.flow-run.Paused"}
    assert "Resume" in waiting.actions[0].body and "flow_run|ui_url" in waiting.actions[0].body
    for name in ("no heartbeat", "running long"):
        assert {"prefect.flow-run.Suspended", "prefect.flow-run.Paused"} <= automations[name].trigger.expect, name


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_runs_own_message_says_it_waits_for_a_decision_and_where(language: str) -> None:
    from tasks.notify.message import render_message

    report = {"status": "FAILED", "site_id": "CN", "cutpoint": "startup_pre_process", "source_version": "3.17.0",
              "target_version": "3.17.5", "execution_id": "EXEC_1",
              "step_results": [{"status": "FAILED", "step_id": "sql_001", "error": "s.sql:2: failed",
                                "details": {"failure": {"file": "s.sql", "line": 2, "database": "ft_db"}}}]}
    url = "http://127.0.0.1:4200/runs/flow-run/5c16"
    subject, body = render_message(report, language, waiting_url=url)
    assert ("等待操作员决定" if language == "zh" else "waiting for a decision") in subject
    assert url in body and "Resume" in body and "Retry" not in body and "`s.sql:2`" in body
    failed_subject, failed_body = render_message(report, language)
    assert ("失败" if language == "zh" else "failed") in failed_subject and "Retry" in failed_body


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_key_and_either_languages_label_are_accepted_only_for_choices_offered(language: str) -> None:
    failed = form_for(breakpoint_row(in_doubt=False), language)
    for decision in ("retry", "stop", "skip", CHOICES["zh"]["retry"], CHOICES["en"]["stop"]):
        answer = {"decision": decision, "by": "ops", "reason": "fixed it"}
        assert server_accepts(failed, answer), decision
        assert failed.model_validate(answer).decision == decision
    for decision in ("applied", CHOICES["zh"]["applied"], "retry：", "RETRY", "retry it"):
        assert not server_accepts(failed, {"decision": decision, "by": "ops"}), decision
    assert server_accepts(form_for(breakpoint_row(in_doubt=True), language), {"decision": "applied", "by": "ops"})
    schema = create_v2_schema("Decision", model_base=failed)
    assert schema["properties"]["decision"]["anyOf"][0]["enum"] == [CHOICES[language][k] for k in
                                                                     ("retry", "skip", "stop")], "the list shown"


@pytest.mark.parametrize("reason", ["   ", "\t\n ", "1.2", "123", "--", "ok", " a "])
def test_a_skip_whose_reason_has_no_letters_is_refused_by_the_server_and_by_the_run(reason: str) -> None:
    form = form_for(breakpoint_row(in_doubt=False), "zh")
    assert not server_accepts(form, {"decision": "skip", "by": "ops", "reason": reason})
    with pytest.raises(ValueError):
        form.model_validate({"decision": "skip", "by": "ops", "reason": reason})


@pytest.mark.parametrize("reason", ["已处理", "did it", " fixed row 2 ", "手工插入第2行"])
def test_a_skip_with_a_reason_in_any_language_is_accepted(reason: str) -> None:
    form = form_for(breakpoint_row(in_doubt=False), "en")
    assert server_accepts(form, {"decision": "skip", "by": "ops", "reason": reason})
    assert form.model_validate({"decision": "skip", "by": "ops", "reason": reason}).reason == reason


def test_the_reason_label_says_when_it_is_required() -> None:
    for language, expected in (("zh", "原因——选择 skip 时必填；其他选择 (Optional)"),
                               ("en", "Reason — required for skip; for other choices (Optional)")):
        schema = create_v2_schema("Decision", model_base=form_for(breakpoint_row(in_doubt=False), language))
        assert "reason" not in schema["required"]
        assert f"{schema['properties']['reason']['title']} (Optional)" == expected, "what the Prefect UI shows"


def test_what_the_run_refuses_is_said_in_the_sites_language() -> None:
    from pydantic import ValidationError

    from flows.decision import refusal_of

    bp = breakpoint_row(in_doubt=False)
    for language, skip, choice in (("zh", "选择 skip 时必须填写原因", "不是本断点可选的决定"),
                                   ("en", "skip needs a reason", "is not a decision this breakpoint offers")):
        reader = form_for(bp, language)
        with pytest.raises(ValidationError) as blank:
            reader.model_validate({"decision": "skip", "by": "ops", "reason": "   "})
        assert skip in refusal_of(blank.value, bp, language, "ops").why
        with pytest.raises(ValidationError) as unoffered:
            reader.model_validate({"decision": "applied", "by": "ops"})
        refused = refusal_of(unoffered.value, bp, language, "ops")
        assert choice in refused.why and "retry / skip / stop" in refused.why and refused.by == "ops"


def test_a_form_asked_again_says_why_and_keeps_the_first_error_and_long_sql_fits_the_dialog() -> None:
    from flows.decision import SQL_WIDTH, Refusal, pause_key

    row = {"id": "BP_2", "step_id": "sql_001", "breakpoint_type": "SQL_LEVEL", "sql_file_name": "s.sql",
           "sql_line_number": 2, "sql_sequence": 2, "error_code": None,
           "sql_content": "CALL fill_side(" + ", ".join(f"'value number {i}'" for i in range(20)) + ")",
           "failure_reason": "InDoubt: this statement failed and its effects are not visible to the tool",
           "context_data": json.dumps({"database": "ft_db", "in_doubt": True, "original_error": {
               "breakpoint": "BP_1", "time": "2026-12-01 10:00:00 UTC", "error_code": "1406",
               "message": "Data too long for column 'tag' at row 1"}}),
           "expiry_time": utcnow() + timedelta(days=7)}
    bp = Breakpoint.from_row(row)
    text = describe(bp, "EXEC_1", "CN", "zh", Refusal(by="ops", why="选择 skip 时必须填写原因"))
    assert text.startswith("> ⚠️ **上一次提交未被接受**（ops）：选择 skip 时必须填写原因")
    assert "**首次错误**（2026-12-01 10:00:00 UTC，断点 `BP_1`）：错误 1406：Data too long for column 'tag'" in text
    sql = text.split("```sql\n")[1].split("\n```")[0]
    assert max(len(line) for line in sql.splitlines()) <= SQL_WIDTH + 2 and "'value number 19')" in sql
    assert Breakpoint.from_row({**row, "error_code": "1406", "failure_reason": "Data too long for column 'tag' "
                                "at row 1"}).original_error is None, "the same error is not shown twice"
    assert [pause_key(bp, n) for n in (1, 2)] == ["decision-bp-2", "decision-bp-2-2"]
