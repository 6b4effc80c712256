"""Smoke tests: expectations on HTTP responses and SQL results, as small pure functions plus two runners.

An expectation is a plain value (equal) or one operator object: ``{"$exists": true}``,
``{"$gte": 1}``, ``{"$lte": 9}``, ``{"$contains": "ok"}``, ``{"$regex": "^v3\\\\."}``, ``{"$in": [..]}``.
JSON fields are addressed by a dotted path with list indexes: ``data.items[0].id`` (or ``data.items.0.id``).
"""

from __future__ import annotations

import numbers
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tasks.core.language import words

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<missing>"})()
OPERATORS = ("$exists", "$gte", "$lte", "$gt", "$lt", "$contains", "$regex", "$in", "$ne")
_PATH_PART = re.compile(r"[^.\[\]]+|\[(\d+)\]")

#: A failed expectation, in English (the step's JSON) or the report's language.
TEXT = {
    "zh": {"field": "{path}：期望 {expected}，实际 {actual}", "rows": "期望 {expected} 行，实际 {actual} 行",
           "value": "期望 {expected}，实际 {actual}"},
    "en": {"field": "{path}: expected {expected}, got {actual}", "rows": "expected {expected} row(s), got {actual}",
           "value": "expected {expected}, got {actual}"},
}


@dataclass
class SmokeOutcome:
    """One check's result, as reported."""

    name: str
    kind: str
    ok: bool
    detail: str
    millis: int
    shown: str = field(default="", repr=False)  # the detail in the report's language (JSON keeps English)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "shown"}


def json_path(document: Any, path: str) -> Any:
    """The value at ``path`` in a parsed JSON document, or :data:`MISSING`."""
    current = document
    body = path[2:] if path.startswith("$.") else path
    for match in _PATH_PART.finditer(body):
        part = match.group(1) if match.group(1) is not None else match.group(0)
        if isinstance(current, list) and part.lstrip("-").isdigit():
            index = int(part)
            if not -len(current) <= index < len(current):
                return MISSING
            current = current[index]
        elif isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return MISSING
    return current


def is_operator(expected: Any) -> bool:
    return isinstance(expected, Mapping) and len(expected) == 1 and next(iter(expected)) in OPERATORS


def check_operators(expected: Any) -> None:
    """Plan-time check: ``$``-keys must be known operators. Raises ValueError."""
    if isinstance(expected, Mapping) and any(str(k).startswith("$") for k in expected) and not is_operator(expected):
        raise ValueError(f"unknown expectation {dict(expected)}: use one of {', '.join(OPERATORS)}")
    if isinstance(expected, Mapping) and "$regex" in expected:
        re.compile(str(expected["$regex"]))


def matches(expected: Any, actual: Any) -> bool:
    """Does ``actual`` satisfy ``expected`` (a value or an operator object)?"""
    if not is_operator(expected):
        if actual is MISSING:
            return False
        if isinstance(expected, bool) or isinstance(actual, bool):
            return expected is actual
        if isinstance(expected, int | float) and isinstance(actual, numbers.Number | str):
            try:
                return float(actual) == float(expected)
            except ValueError:
                return False
        return expected == actual
    op, operand = next(iter(expected.items()))
    if op == "$exists":
        return (actual is not MISSING) == bool(operand)
    if actual is MISSING:
        return False
    if op == "$ne":
        return not matches(operand, actual)
    if op == "$in":
        return any(matches(item, actual) for item in operand)
    if op == "$contains":
        return operand in actual if isinstance(actual, str | list | dict) else False
    if op == "$regex":
        return re.search(str(operand), str(actual)) is not None
    try:
        number = float(actual)
    except (TypeError, ValueError):
        return False
    return {"$gte": number >= operand, "$lte": number <= operand, "$gt": number > operand,
            "$lt": number < operand}[op]


def json_failures(document: Any, expectations: Mapping[str, Any], language: str = "en") -> list[str]:
    """Every JSON-field expectation the document does not meet, as readable lines (in ``language``)."""
    w = words(TEXT, language)
    failures = []
    for path, expected in expectations.items():
        actual = json_path(document, path)
        if not matches(expected, actual):
            failures.append(w["field"].format(path=path, expected=_show(expected), actual=_show(actual)))
    return failures


def row_failures(rows: Sequence[Sequence[Any]], expect: Any, has_expect: bool, expect_rows: int | None,
                 language: str = "en") -> list[str]:
    """Expectations on a SQL result: the row count, and the first column of the first row (in ``language``)."""
    w = words(TEXT, language)
    failures = []
    if expect_rows is not None and len(rows) != expect_rows:
        failures.append(w["rows"].format(expected=expect_rows, actual=len(rows)))
    if has_expect:
        actual = rows[0][0] if rows and len(rows[0]) else MISSING
        if not matches(expect, actual):
            failures.append(w["value"].format(expected=_show(expect), actual=_show(actual)))
    return failures


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def elapsed_ms(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)
