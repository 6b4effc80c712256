"""The check report: the seed's ``[FT前置业务检查报告]`` in markdown, and its JSON. Pure.

The JSON follows MySQL Shell's upgrade checker: counts per level, then ``checksPerformed[]`` with
id, title, status and ``detectedProblems``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tasks.checks.outcome import CheckOutcome, CheckStatus

REPORT_TITLE = "[FT前置业务检查报告]"


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


def summary_line(outcomes: Sequence[CheckOutcome]) -> str:
    c = counts(outcomes)
    line = (f"{c['total']} checks: {c['fail']} failed, {c['warn']} warnings, {c['pass']} passed, "
            f"{c['skipped']} skipped")
    failed = [o.id for o in outcomes if o.status == CheckStatus.FAIL]
    return line + (f" (failed: {', '.join(failed)})" if failed else "")


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
        "summary": summary_line(outcomes),
        "checksPerformed": [o.to_json() for o in outcomes],
    }


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def render_markdown(outcomes: Sequence[CheckOutcome], *, source: str, target: str, site: str) -> str:
    """The seed's report: numbered 检查项 with 结果 and 建议, then a compact table of every check."""
    c = counts(outcomes)
    lines = [
        f"**{REPORT_TITLE}**",
        "",
        f"局点 `{site}`，{source} → {target}：失败 {c['fail']} 项，警告 {c['warn']} 项，通过 {c['pass']} 项，"
        f"跳过 {c['skipped']} 项 — 结论：**{overall_status(outcomes).label}**",
        "",
    ]
    for i, o in enumerate(outcomes, 1):
        lines += [f"{i}. 检查项: {_one_line(o.title)}",
                  f"    - 结果: {_one_line(o.result_line)}",
                  f"    - 建议: {_one_line(o.suggestion)}"]
    lines += ["", "| # | id | type | target | status | count | threshold | ms |", "|---|---|---|---|---|---|---|---|"]
    for i, o in enumerate(outcomes, 1):
        count = "-" if o.count is None else o.count
        cells = [str(i), f"`{o.id}`", o.type, o.target or "-", o.status.value, str(count),
                 str(o.threshold if o.threshold is not None else "-"), str(o.duration_ms)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
