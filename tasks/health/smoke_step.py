"""SmokeTestStep: configured HTTP requests and SQL assertions that exercise core business flows.

Every check runs and is reported (name, result, detail, time); any failure fails the step. SQL
checks run inside a transaction that is always rolled back, so ``setup`` statements (an INSERT
that drives a flow, say) leave nothing behind. Response bodies in the report are truncated and
masked.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from tasks.core.errors import StepFailed
from tasks.core.language import words
from tasks.core.masking import mask_text
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepParams, StepResult
from tasks.health.smoke import SmokeOutcome, check_operators, elapsed_ms, json_failures, row_failures
from tasks.health.step import HttpCheck
from tasks.sql.select_query import check_select, literal_sql
from tasks.steps.base import UpgradeStep

if TYPE_CHECKING:  # the runtime is imported by run(): `validate` and `plan` need only the parameters
    import httpx

_DML = re.compile(r"^\s*(insert|update|delete|replace|select|set)\b", re.I)

#: The smoke-test table's words; each check's ``detail`` in the JSON stays English.
TEXT = {
    "zh": {
        "header": "| 类型 | 检查 | 结果 | 详情 | 毫秒 |", "pass": "✅ 通过", "fail": "❌ 失败",
        "no_service": "局点配置中没有服务 {service!r}", "status": "HTTP {status}，期望 {expected}",
        "not_json": "响应不是 JSON：{body}", "http_ok": "{method} → HTTP {status}",
        "json_ok": "，{n} 个 JSON 字段符合预期",
        "sql_ok": "{rows} 行，首个值 {value}", "no_rows": "无数据", "sep": "；",
        "summary": "冒烟测试通过 {passed}/{total}", "summary_failed": "：失败 {names}",
    },
    "en": {
        "header": "| kind | check | result | detail | ms |", "pass": "✅ pass", "fail": "❌ fail",
        "no_service": "service {service!r} is not in the site profile", "status": "HTTP {status}, expected {expected}",
        "not_json": "response is not JSON: {body}", "http_ok": "{method} → HTTP {status}",
        "json_ok": ", {n} JSON field(s) as expected", "sql_ok": "{rows} row(s), first value {value}",
        "no_rows": "no rows", "sep": "; ",
        "summary": "{passed}/{total} smoke tests passed", "summary_failed": ": failed {names}",
    },
}


class HttpSmoke(HttpCheck):
    """One request: an absolute ``url``, or ``service`` (site profile) plus ``path`` (as a health check)."""

    name: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"  # type: ignore[assignment]
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = Field(default=None, description="Sent as JSON when given.")
    expect_json: dict[str, Any] = Field(default_factory=dict, description="JSON path → value or {'$op': x}.")
    timeout: float = Field(default=10.0, gt=0, le=300)

    @model_validator(mode="after")
    def _expectations(self) -> HttpSmoke:
        for expected in self.expect_json.values():
            check_operators(expected)
        return self


class SqlSmoke(StepParams):
    """One assertion: ``query``'s row count and/or first value, after optional DML ``setup`` (rolled back)."""

    name: str
    database: str
    setup: list[str] = Field(default_factory=list, description="DML run first, in the same rolled-back transaction.")
    query: str
    expect: Any = Field(default=None, description="First column of the first row: a value or {'$op': x}.")
    expect_rows: int | None = Field(default=None, ge=0)

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        return check_select(value)

    @field_validator("setup")
    @classmethod
    def _setup(cls, value: list[str]) -> list[str]:
        bad = [s for s in value if not _DML.match(s) or ";" in s.strip().rstrip(";")]
        if bad:
            raise ValueError(f"setup statements must be single INSERT/UPDATE/DELETE/REPLACE/SELECT/SET "
                             f"statements (DDL would commit): {bad}")
        return [s.strip().rstrip(";") for s in value]

    @model_validator(mode="after")
    def _something(self) -> SqlSmoke:
        if "expect" not in self.model_fields_set and self.expect_rows is None:
            raise ValueError("give 'expect' and/or 'expect_rows'")
        check_operators(self.expect)
        return self


class SmokeParams(StepParams):
    http: list[HttpSmoke] = Field(default_factory=list)
    sql: list[SqlSmoke] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> SmokeParams:
        if not self.http and not self.sql:
            raise ValueError("a smoke test needs at least one 'http' or 'sql' check")
        return self


class SmokeTestStep(UpgradeStep):
    """Runs the configured smoke tests and reports each."""

    Params = SmokeParams
    description = "Smoke tests: HTTP requests with expected status and JSON fields, SQL assertions"
    params: SmokeParams

    def run(self) -> StepResult:
        import httpx

        with httpx.Client(follow_redirects=False) as client:
            outcomes = [self._http(client, check) for check in self.params.http]
        outcomes += [self._sql(check) for check in self.params.sql]
        failed = [o for o in outcomes if not o.ok]
        w = words(TEXT, self.context.language)
        rows = "\n".join(f"| {o.kind} | {o.name} | {w['pass' if o.ok else 'fail']} | {o.shown or o.detail} | "
                         f"{o.millis} |" for o in outcomes)
        result = StepResult(
            status=StepStatus.FAILED if failed else StepStatus.SUCCESS,
            summary=w["summary"].format(passed=len(outcomes) - len(failed), total=len(outcomes))
            + (w["summary_failed"].format(names=", ".join(o.name for o in failed)) if failed else ""),
            details={"checks": [o.to_json() for o in outcomes], "passed": len(outcomes) - len(failed),
                     "failed": len(failed)},
            markdown=w["header"] + "\n|---|---|---|---|---|\n" + rows)
        if failed:
            raise StepFailed(result.summary, result)
        return result

    def _http(self, client: httpx.Client, check: HttpSmoke) -> SmokeOutcome:
        import httpx

        url = check.url
        if check.service:
            base = self.context.resources.service_url(check.service)
            if base is None:
                detail, shown = self._said(["no_service"], service=check.service)
                return SmokeOutcome(check.name, "http", False, detail, 0, shown)
            url = base.rstrip("/") + "/" + check.path.lstrip("/")
        assert url is not None
        start = time.perf_counter()
        try:
            response = client.request(check.method, url, headers=check.headers, timeout=check.timeout,
                                      json=check.body if check.body is not None else None)
        except httpx.HTTPError as exc:
            return SmokeOutcome(check.name, "http", False, f"{type(exc).__name__}: {exc}", elapsed_ms(start))
        millis = elapsed_ms(start)
        language = self.context.language
        failures: list[tuple[str, str]] = []  # (English, the report's language)
        if response.status_code not in check.expected_status:
            failures.append(self._said(["status"], status=response.status_code, expected=check.expected_status))
        if check.expect_json:
            try:
                document = response.json()
                failures += zip(json_failures(document, check.expect_json),
                                json_failures(document, check.expect_json, language), strict=True)
            except (json.JSONDecodeError, UnicodeDecodeError):
                failures.append(self._said(["not_json"], body=self._snippet(response.text)))
        if failures:
            detail, shown = "; ".join(e for e, _ in failures), words(TEXT, language)["sep"].join(s for _, s in failures)
            return SmokeOutcome(check.name, "http", False, self._mask(detail), millis, self._mask(shown))
        done = ["http_ok"] + (["json_ok"] if check.expect_json else [])
        detail, shown = self._said(done, method=check.method, status=response.status_code, n=len(check.expect_json))
        return SmokeOutcome(check.name, "http", True, self._mask(detail), millis, self._mask(shown))

    def _sql(self, check: SqlSmoke) -> SmokeOutcome:
        start = time.perf_counter()
        try:
            with self.context.resources.engine(check.database).connect() as conn:
                transaction = conn.begin()
                try:
                    for statement in check.setup:
                        conn.execute(literal_sql(statement))
                    rows = [tuple(r) for r in conn.execute(literal_sql(check.query)).fetchmany(1000)]
                finally:
                    transaction.rollback()
        except Exception as exc:  # reported per check
            reason = str(getattr(exc, "orig", exc)).splitlines()[0][:300]
            return SmokeOutcome(check.name, "sql", False, self._mask(reason), elapsed_ms(start))
        expectations = (rows, check.expect, "expect" in check.model_fields_set, check.expect_rows)
        failures = row_failures(*expectations)
        if failures:
            local = row_failures(*expectations, language=self.context.language)
            detail, shown = "; ".join(failures), words(TEXT, self.context.language)["sep"].join(local)
        else:
            detail, shown = (w["sql_ok"].format(rows=len(rows), value=repr(rows[0][0]) if rows and rows[0]
                                                else w["no_rows"])
                             for w in (TEXT["en"], words(TEXT, self.context.language)))
        return SmokeOutcome(check.name, "sql", not failures, self._mask(detail[:300]), elapsed_ms(start),
                            self._mask(shown[:300]))

    def _said(self, keys: list[str], **values: object) -> tuple[str, str]:
        """The ``TEXT`` entries ``keys``, joined and filled, in English (the JSON) and in the report's language."""
        def say(w: dict[str, str]) -> str:
            return "".join(w[k] for k in keys).format(**values)

        return say(TEXT["en"]), say(words(TEXT, self.context.language))

    def _snippet(self, body: str) -> str:
        return self._mask(body[:200] + ("…" if len(body) > 200 else ""))

    def _mask(self, value: str) -> str:
        return mask_text(value, self.context.resources.secrets).replace("|", "\\|").replace("\n", " ")
