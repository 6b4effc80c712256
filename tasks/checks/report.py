"""The check report: the seed's ``[FT前置业务检查报告]`` in markdown (or its English variant), and its JSON. Pure.

The JSON follows MySQL Shell's upgrade checker: counts per level, then ``checksPerformed[]`` with
id, title, status and ``detectedProblems``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tasks.checks.outcome import CheckOutcome, CheckStatus
from tasks.core.language import words

REPORT_TITLE = "[FT前置业务检查报告]"

#: The report's frame in the site's language. The checks' titles, 结果 and 建议 are the rules' and the
#: probes' own text and are shown as they are.
TEXT = {
    "zh": {
        "title": REPORT_TITLE,
        "counts": "局点 `{site}`，{source} → {target}：失败 {fail} 项，警告 {warn} 项，通过 {passed} 项，"
                  "跳过 {skipped} 项 — 结论：**{verdict}**",
        "item": "{i}. 检查项: {title}", "result": "    - 结果: {result}", "suggestion": "    - 建议: {suggestion}",
        "header": "| 序号 | 规则 | 类型 | 检查对象 | 状态 | 数量 | 阈值 | 毫秒 |",
        "statuses": {s: s.label for s in CheckStatus}, "result_line": "{status}（{result}）",
        "summary": "共 {total} 项检查：失败 {fail}，警告 {warn}，通过 {passed}，跳过 {skipped}",
        "summary_failed": "（失败项：{ids}）",
    },
    "en": {
        "title": "[FT pre-business check report]",
        "counts": "Site `{site}`, {source} → {target}: {fail} failed, {warn} warnings, {passed} passed, "
                  "{skipped} skipped — verdict: **{verdict}**",
        "item": "{i}. Check: {title}", "result": "    - Result: {result}",
        "suggestion": "    - Suggestion: {suggestion}",
        "header": "| # | id | type | target | status | count | threshold | ms |",
        "statuses": {CheckStatus.PASS: "PASS", CheckStatus.WARN: "WARNING", CheckStatus.FAIL: "FAILED",
                     CheckStatus.SKIPPED: "SKIPPED"}, "result_line": "{status} ({result})",
        "summary": "{total} checks: {fail} failed, {warn} warnings, {passed} passed, {skipped} skipped",
        "summary_failed": " (failed: {ids})",
    },
}


def overall_status(outcomes: Sequence[CheckOutcome]) -> CheckStatus:
    statuses = {o.status for o in outcomes}
    if CheckStatus.FAIL in statuses:
        return CheckStatus.FAIL
    return CheckStatus.WARN if CheckStatus.WARN in statuses else CheckStatus.PASS


def counts(outcomes: Sequence[CheckOutcome]) -> dict[str, int]:
    out = {s.value: 0 for s in CheckStatus}
    for o in outcomes:
        out[o.status.value] += 1
    return {**out, "total": len(outcomes)}


def summary_line(outcomes: Sequence[CheckOutcome], language: str | None = None) -> str:
    """One line of counts (and the failed rules' ids) in ``language``: Chinese unless ``en``."""
    w, c = words(TEXT, language), counts(outcomes)
    line = w["summary"].format(total=c["total"], fail=c["fail"], warn=c["warn"], passed=c["pass"],
                               skipped=c["skipped"])
    failed = [o.id for o in outcomes if o.status == CheckStatus.FAIL]
    return line + (w["summary_failed"].format(ids=", ".join(failed)) if failed else "")


def report_json(outcomes: Sequence[CheckOutcome], *, source: str, target: str, site: str) -> dict[str, Any]:
    c = counts(outcomes)
    return {
        "report": REPORT_TITLE,
        "sourceVersion": source,
        "targetVersion": target,
        "siteId": site,
        "status": overall_status(outcomes).value,
        "counts": c,
        "errorCount": c["fail"],
        "warningCount": c["warn"],
        "passCount": c["pass"],
        "skippedCount": c["skipped"],
        "summary": summary_line(outcomes, "en"),  # machine-readable: English
        "checksPerformed": [o.to_json() for o in outcomes],
    }


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _result_line(o: CheckOutcome, w: dict[str, Any]) -> str:
    """``失败（发现15条冲突记录，阈值0）`` (the seed's, as ``CheckOutcome.result_line``) or ``FAILED (…)``."""
    status = w["statuses"][o.status]
    return w["result_line"].format(status=status, result=o.result) if o.result else status


def render_markdown(outcomes: Sequence[CheckOutcome], *, source: str, target: str, site: str,
                    language: str | None = None, title: str | None = None) -> str:
    """The seed's report: numbered 检查项 with 结果 and 建议, then a compact table of every check.

    In Chinese unless ``language`` is ``en`` (the same report with English labels); ``title`` replaces
    the seed's ``[FT前置业务检查报告]`` for another set of checks.
    """
    w = words(TEXT, language)
    c = counts(outcomes)
    lines = [
        f"**{title or w['title']}**",
        "",
        w["counts"].format(site=site, source=source, target=target, fail=c["fail"], warn=c["warn"],
                           passed=c["pass"], skipped=c["skipped"], verdict=w["statuses"][overall_status(outcomes)]),
        "",
    ]
    for i, o in enumerate(outcomes, 1):
        lines += [w["item"].format(i=i, title=_one_line(o.title)),
                  w["result"].format(result=_one_line(_result_line(o, w))),
                  w["suggestion"].format(suggestion=_one_line(o.suggestion))]
    lines += ["", w["header"], "|---|---|---|---|---|---|---|---|"]
    for i, o in enumerate(outcomes, 1):
        count = "-" if o.count is None else o.count
        cells = [str(i), f"`{o.id}`", o.type, o.target or "-", o.status.value, str(count),
                 str(o.threshold if o.threshold is not None else "-"), str(o.duration_ms)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
