"""ServiceHealthCheckStep: HTTP endpoints and database pings, used by cutpoints 2 and 4.

Each endpoint is checked with a timeout and an expected status; each logical database with
``SELECT 1``. Every check is reported; any failure fails the step (after Prefect's retries).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
from pydantic import Field, model_validator
from sqlalchemy import text

from tasks.errors import StepFailed
from tasks.steps.base import StepParams, StepResult, StepStatus, UpgradeStep
from tasks.steps.registry import register_step


class HttpCheck(StepParams):
    """One HTTP endpoint: an absolute ``url``, or ``service`` (from the site profile) plus ``path``."""

    name: str | None = None
    url: str | None = None
    service: str | None = None
    path: str = "/"
    method: str = Field(default="GET", pattern=r"^(GET|HEAD|POST)$")
    timeout: float = Field(default=5.0, gt=0, le=300)
    expected_status: list[int] = Field(default_factory=lambda: [200])

    @model_validator(mode="after")
    def _target(self) -> HttpCheck:
        if bool(self.url) == bool(self.service):
            raise ValueError("give exactly one of 'url' or 'service'")
        return self


class HealthParams(StepParams):
    endpoints: list[HttpCheck] = Field(default_factory=list)
    databases: list[str] = Field(default_factory=list, description="Logical databases to ping.")

    @model_validator(mode="after")
    def _something(self) -> HealthParams:
        if not self.endpoints and not self.databases:
            raise ValueError("a health check needs at least one endpoint or database")
        return self


@dataclass
class CheckOutcome:
    target: str
    healthy: bool
    detail: str
    millis: int


@register_step("HealthCheckStep")
class ServiceHealthCheckStep(UpgradeStep):
    """Checks that services answer and databases accept queries."""

    Params = HealthParams
    description = "Service health check: HTTP endpoints and database ping"
    params: HealthParams

    def run(self) -> StepResult:
        outcomes = [self._check_http(e) for e in self.params.endpoints]
        outcomes += [self._check_database(name) for name in self.params.databases]
        bad = [o for o in outcomes if not o.healthy]
        rows = "\n".join(
            f"| {o.target} | {'✅ healthy' if o.healthy else '❌ unhealthy'} | {o.detail} | {o.millis} |"
            for o in outcomes)
        markdown = "| target | result | detail | ms |\n|---|---|---|---|\n" + rows
        result = StepResult(
            status=StepStatus.FAILED if bad else StepStatus.SUCCESS,
            summary=f"{len(outcomes) - len(bad)}/{len(outcomes)} healthy"
            + (": unhealthy " + ", ".join(o.target for o in bad) if bad else ""),
            details={"checks": [o.__dict__ for o in outcomes]},
            markdown=markdown,
        )
        if bad:
            raise StepFailed(result.summary, result)
        return result

    def _check_http(self, check: HttpCheck) -> CheckOutcome:
        url = check.url
        if check.service:
            base = self.context.resources.service_url(check.service)
            if base is None:
                return CheckOutcome(check.name or check.service, False,
                                    f"service {check.service!r} is not in the site profile", 0)
            url = base.rstrip("/") + "/" + check.path.lstrip("/")
        assert url is not None
        target = check.name or url
        start = time.perf_counter()
        try:
            response = httpx.request(check.method, url, timeout=check.timeout, follow_redirects=False)
        except httpx.HTTPError as exc:
            return CheckOutcome(target, False, f"{type(exc).__name__}: {exc}", _ms(start))
        ok = response.status_code in check.expected_status
        detail = f"HTTP {response.status_code}" + ("" if ok else f", expected {check.expected_status}")
        return CheckOutcome(target, ok, detail, _ms(start))

    def _check_database(self, name: str) -> CheckOutcome:
        start = time.perf_counter()
        try:
            with self.context.resources.engine(name).connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # reported per database, never raised past the report
            return CheckOutcome(f"database {name}", False, str(exc).splitlines()[0][:300], _ms(start))
        return CheckOutcome(f"database {name}", True, "SELECT 1 ok", _ms(start))


def _ms(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)
