"""What a check found (``Measurement``) and what it means (``CheckOutcome``); plain data, no I/O."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class CheckStatus(StrEnum):
    """The result of one check. Only ``fail`` blocks the upgrade (like MySQL Shell's upgrade checker)."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"

    @property
    def label(self) -> str:
        """The seed report's word for it."""
        return _LABELS[self]


_LABELS = {CheckStatus.PASS: "通过", CheckStatus.WARN: "警告", CheckStatus.FAIL: "失败", CheckStatus.SKIPPED: "跳过"}


@dataclass(frozen=True)
class Problem:
    """One offending object (a table, a server, a topic), as MySQL Shell's ``detectedProblems``."""

    db_object: str
    description: str

    def to_json(self, level: str) -> dict[str, str]:
        return {"level": level, "dbObject": self.db_object, "description": self.description}


@dataclass(frozen=True)
class Measurement:
    """A probe's finding before any threshold is applied.

    Attributes:
        count: Number of violations (rows, tables, servers, topic problems).
        breach_text: The 结果 text when ``count`` is over the threshold, e.g. ``发现15条冲突记录，阈值0``.
        pass_text: The 结果 text otherwise.
        problems: The offending objects, for the JSON report and the suggestion's ``{objects}``.
        sql: A ready-to-run SQL that shows the offending rows, when there is one.
        facts: Values measured (versions, bytes free, …) for the JSON report and suggestion placeholders.
        status: For a check with more than one level of breach (a resource short, or only tight): the
            probe's own grade, instead of ``count`` against the threshold (the rule's severity still caps it).
    """

    count: int | float
    breach_text: str
    pass_text: str
    problems: tuple[Problem, ...] = ()
    sql: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    status: CheckStatus | None = None


@dataclass(frozen=True)
class CheckOutcome:
    """One entry of ``checksPerformed``: a rule's status, the seed's 结果 / 建议, and its evidence."""

    id: str
    title: str
    type: str
    target: str | None
    status: CheckStatus
    result: str
    suggestion: str
    severity: str
    count: int | float | None = None
    threshold: int | float | None = None
    sql: str | None = None
    problems: tuple[Problem, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    duration_ms: int = 0

    @property
    def result_line(self) -> str:
        """``失败（发现15条冲突记录，阈值0）``, as in the seed's report."""
        return f"{self.status.label}（{self.result}）" if self.result else self.status.label

    def to_json(self) -> dict[str, Any]:
        level = "Error" if self.status == CheckStatus.FAIL else "Warning" if self.status == CheckStatus.WARN \
            else "Notice"
        data = asdict(self)
        data.pop("problems")
        data.pop("duration_ms")
        return {**data, "status": self.status.value, "resultLine": self.result_line, "durationMs": self.duration_ms,
                "detectedProblems": [p.to_json(level) for p in self.problems]}
