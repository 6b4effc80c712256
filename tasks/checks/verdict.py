"""From a measurement to a status, with the rule's threshold and severity. Pure.

``count ≤ threshold`` passes; above it the rule's severity applies (``warn``: logged, the upgrade
may go on; ``fail``: blocks it). A check that could not measure (unreachable, SQL error) fails
whatever its severity: never a silent pass.
"""

from __future__ import annotations

import string
from typing import Any

from tasks.checks.outcome import CheckOutcome, CheckStatus, Measurement
from tasks.core.versions import Version

NO_SUGGESTION = "无"


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "-"


def render_suggestion(template: str, values: dict[str, Any]) -> str:
    """Fill ``{placeholders}``; a value the check did not produce shows as ``-``."""
    return string.Formatter().vformat(template, (), _Blank(values))


def skip_reason(rule: Any, source: Version, target: Version) -> str | None:
    """Why the rule does not apply to this upgrade, or None when it does."""
    applies = rule.version_range()
    if applies is None or applies.contains(source) or applies.contains(target):
        return None
    return f"源版本{source}和目标版本{target}均不在适用范围{applies}内"


def judge(rule: Any, m: Measurement, *, duration_ms: int = 0) -> CheckOutcome:
    breached = m.count > rule.threshold if m.status is None else m.status != CheckStatus.PASS
    status = CheckStatus.PASS
    if breached:
        status = CheckStatus.WARN if rule.severity == "warn" or m.status == CheckStatus.WARN else CheckStatus.FAIL
    values = {**m.facts, "id": rule.id, "title": rule.title, "target": rule.target or "-", "count": m.count,
              "threshold": rule.threshold, "sql": m.sql or "-",
              "objects": ", ".join(p.db_object for p in m.problems) or "-"}
    return CheckOutcome(
        id=rule.id, title=rule.title, type=rule.type, target=rule.target, status=status,
        result=m.breach_text if breached else m.pass_text,
        suggestion=render_suggestion(rule.suggestion_template(), values) if breached else NO_SUGGESTION,
        severity=rule.severity, count=m.count, threshold=rule.threshold, sql=m.sql, problems=m.problems,
        facts=m.facts, duration_ms=duration_ms)


def skipped(rule: Any, reason: str) -> CheckOutcome:
    return CheckOutcome(id=rule.id, title=rule.title, type=rule.type, target=rule.target,
                        status=CheckStatus.SKIPPED, result=reason, suggestion=NO_SUGGESTION, severity=rule.severity,
                        threshold=rule.threshold)


def errored(rule: Any, message: str, *, sql: str | None = None, duration_ms: int = 0) -> CheckOutcome:
    """A check that could not measure: ``fail`` with the error, whatever the rule's severity."""
    return CheckOutcome(id=rule.id, title=rule.title, type=rule.type, target=rule.target, status=CheckStatus.FAIL,
                        result=f"检查出错：{message}", suggestion=f"排除错误后重新执行前置业务检查（规则{rule.id}）",
                        severity=rule.severity, threshold=rule.threshold, sql=sql, error=message,
                        duration_ms=duration_ms)
