"""One language per report: Chinese by default (the requirements' formats), English when the site says so."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from deployments.cicd import REFUSED_MARK, execution_id_of
from tasks.core.cutpoints import Cutpoint
from tasks.execution.reporting import RunReport, render_markdown, render_refusal, resume_instructions
from tasks.store.records import Execution, StepRun

EXECUTION = {"execution_id": "EXEC_20261202_010203_abcd1234", "step_type": "startup_pre_process",
             "site_id": "CN", "source_version": "3.17.0", "target_version": "3.17.5", "flow_run_id": None,
             "start_time": datetime(2026, 12, 2, 1, 2, 3), "end_time": datetime(2026, 12, 2, 1, 3, 3),
             "resume_count": 1, "requested_by": "ann", "rerun_of": "EXEC_20261201_000000_ffff0000",
             "waivers": [{"precondition": "services_stopped", "by": "bob", "reason": "maintenance window",
                          "missing": "ft-web still answers"}]}
STEPS = [{"step_id": "sql_001", "step_key": "317500:sql_001", "step_name": "SQL", "status": "FAILED",
          "duration": 1200, "error_message": "s.sql:2: statement #2 failed", "result": None}]


def report(language: str) -> RunReport:
    hints = resume_instructions(execution_id=EXECUTION["execution_id"], cutpoint="startup_pre_process",
                                source="3.17.0", target="3.17.5", site="CN", language=language)
    return RunReport(execution=Execution.from_row({**EXECUTION, "status": "FAILED"}),
                     steps=[StepRun.from_row(s) for s in STEPS], status="FAILED", resume_hint=hints,
                     extra={"rerun": {"of": EXECUTION["rerun_of"], "by": "ann", "reason": "vendor fix",
                                      "scripts_applied_at_site": ["s.sql 3/3"]}},
                     sql_counts={"total": 3, "success": 1, "failed": 1}, language=language)


def _prose(markdown: str) -> str:
    """The report's own words: without code spans, identifiers, statuses and the operator's free text."""
    text = re.sub(r"`[^`]*`", "", markdown)
    for kept in ("FT", "UTC", "SQL", "CICD", "Prefect UI", "Retry", "FAILED", "ann", "bob", "vendor fix",
                 "maintenance window", "ft-web still answers", "services_stopped", "sql_001", "s.sql", "statement",
                 "failed", "sql", "CN", "ms"):
        text = text.replace(kept, "")
    return text


def test_the_report_is_chinese_by_default_in_the_requirements_labels_with_no_english_prose() -> None:
    markdown = render_markdown(report("zh"))
    for label in ("# [FT升级报告] 启动前处理", "**执行状态: ❌ FAILED**",
                  "| 执行ID | `EXEC_20261202_010203_abcd1234` |", "| 续执行次数 | 1 |", "共 3 条：成功 1，失败 1",
                  "## 豁免的前置条件", "## 有意重新执行", "## 失败项", "## 下一步",
                  "命令行：`ft-upgrade resume EXEC_20261202_010203_abcd1234`"):
        assert label in markdown, label
    assert not re.search(r"[A-Za-z]{3,}", _prose(markdown)), _prose(markdown)
    assert execution_id_of(markdown) == EXECUTION["execution_id"], "CICD still finds the execution id"


def test_a_site_may_choose_english_and_gets_no_chinese() -> None:
    markdown = render_markdown(report("en"))
    for label in ("# [FT upgrade report] startup-pre process", "| execution id |", "## Waived preconditions",
                  "## What to do next", "CLI: `ft-upgrade resume EXEC_20261202_010203_abcd1234`"):
        assert label in markdown, label
    assert not re.search(r"[\u4e00-\u9fff]", markdown)
    assert execution_id_of(markdown) == EXECUTION["execution_id"]


@pytest.mark.parametrize("language", ["zh", "en"])
def test_a_refusal_is_recognised_by_cicd_in_either_language(language: str) -> None:
    markdown = render_refusal(Cutpoint.PRE_UPGRADE_PROCESS, "CN", "3.17.0", "3.17.5", "pre_business_check has not "
                              "passed", language)
    assert REFUSED_MARK in markdown and ("已拒绝" in markdown) == (language == "zh")


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_sql_section_follows_the_report_language(language: str) -> None:
    from tasks.sql.report import render

    details = {"files": ["a.sql"], "total_statements": 3, "success": 1, "skipped": 0, "failed": 1, "not_run": 1,
               "duration_ms": 1500, "affected_rows": 2,
               "slowest": [{"file": "a.sql", "line": 1, "ms": 1200, "sql": "UPDATE t SET a = 1"}],
               "decisions": [{"file": "a.sql", "line": 2, "status": "SKIPPED", "note": "skipped by ann: by hand",
                              "sql": "INSERT INTO t VALUES (2)"}],
               "failure": {"file": "a.sql", "line": 3, "sequence": 3, "database": "ft_db", "sql": "DROP TABLE x",
                           "error_code": "1051", "message": "Unknown table 'x'", "breakpoint_id": "BP_1"}}
    markdown = render(details, "EXEC_1", language)
    chinese = ("1 个文件共 3 条语句", "**失败位置 `a.sql:3`**", "错误信息 1051：Unknown table 'x'", "操作员决定：",
               "耗时最长的语句：", "命令行：`ft-upgrade resume EXEC_1`")
    english = ("3 statements in 1 files", "**Failed at `a.sql:3`**", "Error 1051: Unknown table 'x'",
               "Operator decisions:", "Slowest statements:", "CLI: `ft-upgrade resume EXEC_1`")
    for label in chinese if language == "zh" else english:
        assert label in markdown, label
    if language == "en":
        assert not re.search(r"[\u4e00-\u9fff]", markdown)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_a_report_waiting_for_a_decision_says_so_with_the_page_and_no_retry(language: str) -> None:
    from tasks.notify.webhook import build_payload

    page = "http://prefect/runs/flow-run/5c16"
    hints = resume_instructions(execution_id=EXECUTION["execution_id"], cutpoint="startup_pre_process",
                                source="3.17.0", target="3.17.5", site="CN", language=language, decision_page=page)
    paused = RunReport(execution=Execution.from_row({**EXECUTION, "status": "PAUSED"}),
                       steps=[StepRun.from_row(s) for s in STEPS], status="PAUSED", resume_hint=hints,
                       language=language)
    markdown = render_markdown(paused)
    waiting = "⏸️ PAUSED (等待操作员决定)" if language == "zh" else "⏸️ PAUSED (waiting for a decision)"
    assert waiting in markdown and f"{page}" in markdown and "**Resume**" in markdown
    assert "**Retry**" not in markdown and "❌ FAILED**" not in markdown
    assert f"ft-upgrade resume {EXECUTION['execution_id']} --inflight retry" in markdown
    assert build_payload(paused.to_json(), [])["event"] == "ft-upgrade.waiting"
