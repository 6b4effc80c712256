"""The report renders the seed's format and counts per level, from literal outcomes (pure)."""

from __future__ import annotations

import re

from tasks.checks.outcome import CheckOutcome, CheckStatus, Measurement, Problem
from tasks.checks.report import overall_status, render_markdown, report_json
from tasks.checks.rules import parse_rules
from tasks.checks.verdict import errored, judge, render_suggestion, skipped


def outcome(id_: str, status: CheckStatus, **kw: object) -> CheckOutcome:
    return CheckOutcome(id=id_, title=kw.pop("title", id_), type="custom_sql", target="ft_db", status=status,
                        result=kw.pop("result", "r"), suggestion=kw.pop("suggestion", "无"), severity="fail",
                        **kw)  # type: ignore[arg-type]


def test_the_markdown_is_the_seed_report_with_numbered_items() -> None:
    md = render_markdown([
        outcome("mw", CheckStatus.FAIL, title="中间件版本检查", result="MySQL版本5.6.35不满足最低要求5.7.0",
                suggestion="升级MySQL至5.7.0或更高版本"),
        outcome("no_pk", CheckStatus.WARN, title="无主键表检测", result="发现3张无主键表",
                suggestion="为表 user_logs, temp_data, audit_records 添加主键"),
    ], source="3.17.0", target="3.17.5", site="CN")
    assert md.splitlines()[:10] == [
        "**[FT前置业务检查报告]**",
        "",
        "局点 `CN`，3.17.0 → 3.17.5：失败 1 项，警告 1 项，通过 0 项，跳过 0 项 — 结论：**失败**",
        "",
        "1. 检查项: 中间件版本检查",
        "    - 结果: 失败（MySQL版本5.6.35不满足最低要求5.7.0）",
        "    - 建议: 升级MySQL至5.7.0或更高版本",
        "2. 检查项: 无主键表检测",
        "    - 结果: 警告（发现3张无主键表）",
        "    - 建议: 为表 user_logs, temp_data, audit_records 添加主键",
    ]
    assert "| 序号 | 规则 | 类型 | 检查对象 | 状态 | 数量 | 阈值 | 毫秒 |" in md
    assert "| 1 | `mw` | custom_sql | ft_db | fail |" in md


def test_a_site_with_language_en_gets_the_same_report_with_english_labels() -> None:
    md = render_markdown([
        outcome("mw", CheckStatus.FAIL, title="MySQL version", result="5.6.35 is below 5.7.0",
                suggestion="Upgrade MySQL to 5.7.0 or later"),
        outcome("later", CheckStatus.SKIPPED, title="Later check", result="", suggestion="-"),
    ], source="3.17.0", target="3.17.5", site="CN", language="en")
    assert md.splitlines()[:10] == [
        "**[FT pre-business check report]**",
        "",
        "Site `CN`, 3.17.0 → 3.17.5: 1 failed, 0 warnings, 0 passed, 1 skipped — verdict: **FAILED**",
        "",
        "1. Check: MySQL version",
        "    - Result: FAILED (5.6.35 is below 5.7.0)",
        "    - Suggestion: Upgrade MySQL to 5.7.0 or later",
        "2. Check: Later check",
        "    - Result: SKIPPED",
        "    - Suggestion: -",
    ]
    assert "| # | id | type | target | status | count | threshold | ms |" in md
    assert not re.search(r"[\u4e00-\u9fff]", md), md


def test_json_counts_each_level_and_lists_detected_problems() -> None:
    items = [outcome("a", CheckStatus.FAIL, problems=(Problem("orders", "15 rows"),)),
             outcome("b", CheckStatus.WARN), outcome("c", CheckStatus.PASS), outcome("d", CheckStatus.SKIPPED)]
    data = report_json(items, source="3.17.0", target="3.17.5", site="CN")
    assert data["counts"] == {"pass": 1, "warn": 1, "fail": 1, "skipped": 1, "total": 4}
    assert (data["errorCount"], data["warningCount"], data["status"]) == (1, 1, "fail")
    assert data["checksPerformed"][0]["detectedProblems"] == [
        {"level": "Error", "dbObject": "orders", "description": "15 rows"}]
    assert [c["id"] for c in data["checksPerformed"]] == ["a", "b", "c", "d"]
    assert data["summary"] == "4 checks: 1 failed, 1 warnings, 1 passed, 1 skipped (failed: a)"


def test_warnings_alone_do_not_fail_and_skips_are_neutral() -> None:
    assert overall_status([outcome("a", CheckStatus.WARN), outcome("b", CheckStatus.SKIPPED)]) == CheckStatus.WARN
    assert overall_status([outcome("a", CheckStatus.PASS), outcome("b", CheckStatus.SKIPPED)]) == CheckStatus.PASS


def test_threshold_severity_and_errors_decide_the_status() -> None:
    (rule,) = parse_rules([{"id": "r", "title": "t", "type": "custom_sql", "target": "db", "sql": "SELECT 1",
                            "threshold": 2, "severity": "warn"}])
    m = Measurement(count=2, breach_text="b", pass_text="p")
    assert judge(rule, m).status == CheckStatus.PASS, "count equal to the threshold passes"
    assert judge(rule, Measurement(count=3, breach_text="b", pass_text="p")).status == CheckStatus.WARN
    assert errored(rule, "boom").status == CheckStatus.FAIL, "an error fails even a warn-only rule"
    assert skipped(rule, "why").result_line == "跳过（why）"


def test_suggestion_placeholders_missing_from_a_measurement_show_a_dash() -> None:
    assert render_suggestion("执行 `{sql}`，表 {tables}", {"sql": "SELECT 1"}) == "执行 `SELECT 1`，表 -"
