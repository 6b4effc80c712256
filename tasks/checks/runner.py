"""Run a rule list: applicability by version, probe, threshold, and the stop after an SQL error."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from tasks.checks import architecture, data_quality, middleware, requirements
from tasks.checks.outcome import CheckOutcome, CheckStatus, Measurement
from tasks.checks.targets import CheckEnv
from tasks.checks.verdict import errored, judge, skip_reason, skipped
from tasks.core.errors import CheckError, InputError, RuleSqlError
from tasks.core.versions import Version

Probe = Callable[[Any, CheckEnv], Measurement]

PROBES: dict[str, Probe] = {
    "middleware_version": middleware.measure_version,
    "zookeeper_data_disk": architecture.measure_zookeeper_disk,
    "disk_free": architecture.measure_disk_free,
    "kafka_topics": architecture.measure_kafka,
    "duplicate_keys": data_quality.measure_duplicate_keys,
    "missing_primary_key": data_quality.measure_missing_primary_key,
    "illegal_characters": data_quality.measure_illegal_characters,
    "column_fit": data_quality.measure_column_fit,
    "custom_sql": data_quality.measure_custom_sql,
    "required_components": requirements.measure_components,
    "required_resource": requirements.measure_resource,
    "source_version": requirements.measure_source_version,
}


def run_rule(rule: Any, env: CheckEnv) -> tuple[CheckOutcome, bool]:
    """One rule → its outcome, and whether checking must stop (an SQL error)."""
    start = time.perf_counter()
    try:
        measurement = PROBES[rule.type](rule, env)
    except RuleSqlError as exc:
        return errored(rule, str(exc), sql=exc.sql, duration_ms=_ms(start)), True
    except (CheckError, InputError) as exc:  # unreachable, not configured, cannot measure
        return errored(rule, str(exc), duration_ms=_ms(start)), False
    return judge(rule, measurement, duration_ms=_ms(start)), False


def run_rules(rules: Sequence[Any], env: CheckEnv, *, source: Version, target: Version,
              stop_on_sql_error: bool = True, logger: logging.Logger | logging.LoggerAdapter | None = None,
              on_done: Callable[[CheckOutcome], None] | None = None) -> list[CheckOutcome]:
    """Every rule in order; after an SQL error the remaining rules are reported as not run."""
    log = logger or logging.getLogger("ft_upgrade.checks")
    outcomes: list[CheckOutcome] = []
    stopped_by: str | None = None
    for rule in rules:
        if stopped_by is not None:
            outcome = skipped(rule, f"未执行：规则{stopped_by}的SQL出错，检查已终止")
        elif (reason := skip_reason(rule, source, target)) is not None:
            outcome = skipped(rule, reason)
        else:
            outcome, stop = run_rule(rule, env)
            if stop and stop_on_sql_error:
                stopped_by = rule.id
        _log(log, outcome)
        outcomes.append(outcome)
        if on_done:
            on_done(outcome)
    return outcomes


def _log(log: logging.Logger | logging.LoggerAdapter, o: CheckOutcome) -> None:
    line = f"check {o.id} [{o.title}]: {o.result_line}"
    if o.status == CheckStatus.FAIL:
        log.error("%s; 建议: %s", line, o.suggestion)
    elif o.status == CheckStatus.WARN:
        log.warning("%s (over threshold, allowed); 建议: %s", line, o.suggestion)
    else:
        log.info("%s", line)


def _ms(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)
