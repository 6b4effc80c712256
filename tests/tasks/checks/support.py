"""Helpers for the check tests: run rule dicts on real resources and get outcomes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tasks.checks.outcome import CheckOutcome
from tasks.checks.rules import parse_rules
from tasks.checks.runner import run_rules
from tasks.checks.targets import CheckEnv, SshSettings
from tasks.core.versions import Version
from tests.helpers import step_context


def run_checks(tmp_path: Path, rules: Sequence[Mapping[str, Any]], *, databases: Mapping[str, str] = (),
               environment: Mapping[str, Any] | None = None, ssh: SshSettings | None = None,
               source: str = "3.17.0", target: str = "3.17.5", stop_on_sql_error: bool = True) -> list[CheckOutcome]:
    parsed = parse_rules(list(rules))
    with step_context(tmp_path, databases=databases, environment=environment) as ctx:
        env = CheckEnv(resources=ctx.resources, environment=ctx.environment, ssh=ssh or SshSettings(), wait=0.05)
        try:
            return run_rules(parsed, env, source=Version.parse(source), target=Version.parse(target),
                             stop_on_sql_error=stop_on_sql_error)
        finally:
            env.close()


def run_check(tmp_path: Path, rule: Mapping[str, Any], **kwargs: Any) -> CheckOutcome:
    return run_checks(tmp_path, [rule], **kwargs)[0]


def with_level(rule: Mapping[str, Any], level: str) -> dict[str, Any]:
    """The same rule made to pass (a high threshold), warn or fail on the same data."""
    if level == "pass":
        return {**rule, "threshold": 1_000_000, "severity": "fail"}
    return {**rule, "severity": level}
