"""The SQL part of the startup_pre_process report: totals, slowest statements, the failure, how to resume."""

from __future__ import annotations

from typing import Any

from tasks.core.language import words as pick
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


TEXT = {
    "zh": {
        "totals": "**SQL**：{files} 个文件共 {total} 条语句 — 已执行 {success}，跳过 {skipped}（此前已完成），"
                  "失败 {failed}，未执行 {not_run}；数据库内耗时 {seconds:.2f} 秒，影响 {rows} 行。",
        "failed_at": "**失败位置 `{file}:{line}`**（第 {sequence} 条语句，数据库 `{database}`，断点 `{bp}`）",
        "error": "错误信息 {code}：{message}",
        # how to go on depends on the run (failed: Retry…; waiting for a decision: the form): the report's 下一步
        "resume": ["如何继续（已成功的语句不会重复执行）：见报告的「下一步」；",
                   "- 命令行：`ft-upgrade resume {execution_id}`。"],
        "decisions": "操作员决定：", "slowest": "耗时最长的语句：", "slowest_header": "| 文件:行号 | 毫秒 | SQL |",
        "checks": "数据完整性验证：",
        "summary": "已执行 {success} 条语句，{skipped} 条此前已完成", "failed": "SQL 执行失败：{error}",
    },
    "en": {
        "totals": "**SQL**: {total} statements in {files} files — {success} executed, {skipped} skipped (already "
                  "done), {failed} failed, {not_run} not run; {seconds:.2f}s in the database, {rows} rows affected.",
        "failed_at": "**Failed at `{file}:{line}`** (statement #{sequence} on `{database}`, breakpoint `{bp}`)",
        "error": "Error {code}: {message}",
        "resume": ["How to go on (statements that succeeded are never run again): see “What to do next” in the "
                   "report;", "- CLI: `ft-upgrade resume {execution_id}`."],
        "decisions": "Operator decisions:", "slowest": "Slowest statements:",
        "slowest_header": "| file:line | ms | SQL |", "checks": "Integrity checks:",
        "summary": "{success} statements executed, {skipped} already done", "failed": "{error}",
    },
}


def words(language: str | None) -> dict[str, Any]:
    """The SQL report's words in ``language`` (Chinese unless ``en``)."""
    return pick(TEXT, language)


def render(details: dict[str, Any], execution_id: str, language: str | None = None) -> str:
    """The SQL section of the report, in the site's language (one language per report)."""
    t = words(language)
    lines = [t["totals"].format(total=details["total_statements"], files=len(details["files"]),
                                success=details["success"], skipped=details["skipped"], failed=details["failed"],
                                not_run=details["not_run"], seconds=details["duration_ms"] / 1000,
                                rows=details["affected_rows"])]
    failure = details.get("failure")
    if failure:
        lines += [
            "",
            t["failed_at"].format(file=failure["file"], line=failure["line"], sequence=failure["sequence"],
                                  database=failure["database"], bp=failure["breakpoint_id"]),
            "",
            "```sql",
            failure["sql"],
            "```",
            "",
            t["error"].format(code=failure["error_code"] or "", message=failure["message"]),
            "",
            *(line.format(execution_id=execution_id) for line in t["resume"]),
        ]
    if details.get("decisions"):
        lines += ["", t["decisions"], ""]
        lines += [f"- `{d['file']}:{d['line']}` {d['status']}: {_cell(d['note'], 300)} — `{_cell(d['sql'])}`"
                  for d in details["decisions"]]
    if details["slowest"]:
        lines += ["", t["slowest"], "", t["slowest_header"], "|---|---|---|"]
        lines += [f"| {s['file']}:{s['line']} | {s['ms']} | `{_cell(s['sql'])}` |" for s in details["slowest"]]
    return "\n".join(lines)
