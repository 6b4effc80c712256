"""The SQL part of the startup_pre_process report: totals, slowest statements, the failure, how to resume."""

from __future__ import annotations

from typing import Any

from tasks.core.statuses import StatementStatus
from tasks.sql.executor import SqlRunSummary


def _cell(text: object, limit: int = 160) -> str:
    s = str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")
    return s if len(s) <= limit else s[:limit] + "…"


OPERATOR_NOTES = ("skipped by ", "marked applied by ", "run again by ")


def summary_details(summary: SqlRunSummary, files: list[str]) -> dict[str, Any]:
    executed = [r for r in summary.records if r.status == StatementStatus.SUCCESS]
    slowest = sorted(executed, key=lambda r: r.duration_ms, reverse=True)[:10]
    failure = summary.failure
    return {
        "files": files,
        "total_statements": summary.total,
        "success": summary.count(StatementStatus.SUCCESS),
        "skipped": summary.count(StatementStatus.SKIPPED),
        "failed": summary.count(StatementStatus.FAILED),
        "not_run": summary.total - len(summary.records),
        "duration_ms": sum(r.duration_ms for r in summary.records),
        "affected_rows": sum(r.affected_rows or 0 for r in summary.records),
        "slowest": [{"file": r.file, "line": r.line, "ms": r.duration_ms, "sql": r.sql[:300]} for r in slowest],
        "decisions": [{"file": r.file, "line": r.line, "status": r.status, "note": r.note, "sql": r.sql[:300]}
                      for r in summary.records if r.note.startswith(OPERATOR_NOTES)],
        "failure": None if failure is None else {
            "file": failure.file, "line": failure.line, "sequence": failure.sequence, "database": failure.database,
            "sql": failure.sql[:2000], "error_code": failure.error_code, "message": failure.message,
            "breakpoint_id": failure.breakpoint_id},
    }


def render(details: dict[str, Any], execution_id: str) -> str:
    lines = [
        f"**SQL**: {details['total_statements']} statements in {len(details['files'])} files — "
        f"{details['success']} executed, {details['skipped']} skipped (already done), {details['failed']} failed, "
        f"{details['not_run']} not run; {details['duration_ms'] / 1000:.2f}s in the database, "
        f"{details['affected_rows']} rows affected.",
    ]
    failure = details.get("failure")
    if failure:
        lines += [
            "",
            f"**Failed at `{failure['file']}:{failure['line']}`** (statement #{failure['sequence']} on "
            f"`{failure['database']}`, breakpoint `{failure['breakpoint_id']}`)",
            "",
            "```sql",
            failure["sql"],
            "```",
            "",
            f"Error {failure['error_code'] or ''}: {failure['message']}",
            "",
            "Resume after fixing the cause (statements that succeeded are never run again):",
            "- Prefect UI: **Retry** the failed flow run;",
            "- CICD: the same `prefect deployment run` again;",
            f"- CLI: `ft-upgrade resume {execution_id}`.",
        ]
    if details.get("decisions"):
        lines += ["", "Operator decisions:", ""]
        lines += [f"- `{d['file']}:{d['line']}` {d['status']}: {_cell(d['note'], 300)} — `{_cell(d['sql'])}`"
                  for d in details["decisions"]]
    if details["slowest"]:
        lines += ["", "Slowest statements:", "", "| file:line | ms | SQL |", "|---|---|---|"]
        lines += [f"| {s['file']}:{s['line']} | {s['ms']} | `{_cell(s['sql'])}` |" for s in details["slowest"]]
    return "\n".join(lines)
