"""ServiceHealthCheckStep: HTTP endpoints, TCP ports and database pings, used by cutpoints 2 and 4.

Each endpoint is checked with a timeout and an expected status (and its version read from an info
endpoint, for the report); each port with a TCP connect; each logical database with ``SELECT 1``.
An unhealthy target with a ``restart`` command is restarted and checked again. Every check is
reported; any target still unhealthy fails the step.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import Field, model_validator

from tasks.core.errors import StepFailed
from tasks.core.language import words
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepParams, StepResult
from tasks.health.restart import RestartCommand, restart_and_recheck
from tasks.steps.base import UpgradeStep


class HttpCheck(StepParams):
    """One HTTP endpoint: an absolute ``url``, or ``service`` (from the site profile) plus ``path``."""

    name: str | None = None
    url: str | None = None
    service: str | None = None
    path: str = "/"
    method: str = Field(default="GET", pattern=r"^(GET|HEAD|POST)$")
    timeout: float = Field(default=5.0, gt=0, le=300)
    expected_status: list[int] = Field(default_factory=lambda: [200])
    version_path: str | None = Field(default=None, description="Info endpoint (same base) whose JSON has the version.")
    version_field: str = Field(default="version", description="Dotted path of the version in that JSON.")
    restart: RestartCommand | None = Field(default=None, description="On failure: run this, then check again.")

    @model_validator(mode="after")
    def _target(self) -> HttpCheck:
        if bool(self.url) == bool(self.service):
            raise ValueError("give exactly one of 'url' or 'service'")
        return self


class PortCheck(StepParams):
    """A process listening on a TCP port (for services without an HTTP health endpoint)."""

    name: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(gt=0, lt=65536)
    timeout: float = Field(default=3.0, gt=0, le=60)
    restart: RestartCommand | None = None


class HealthParams(StepParams):
    endpoints: list[HttpCheck] = Field(default_factory=list)
    ports: list[PortCheck] = Field(default_factory=list)
    databases: list[str] = Field(default_factory=list, description="Logical databases to ping.")
    database_restarts: dict[str, RestartCommand] = Field(default_factory=dict)
    site_services: bool = Field(default=False, description="Also every service of the site profile: a GET of its "
                                "URL answers 200 (a profile listing none fails: nothing to decide on).")

    @model_validator(mode="after")
    def _something(self) -> HealthParams:
        if not self.endpoints and not self.databases and not self.ports and not self.site_services:
            raise ValueError("a health check needs at least one endpoint, port, database or site_services")
        unknown = set(self.database_restarts) - set(self.databases)
        if unknown:
            raise ValueError(f"database_restarts names databases not checked: {', '.join(sorted(unknown))}")
        return self


#: The 健康检查报告's words; ``detail`` in the step's JSON stays English, the report shows ``shown``.
TEXT = {
    "zh": {
        "header": "| 检查对象 | 结果 | 版本 | 详情 | 毫秒 |", "healthy": "✅ 正常", "unhealthy": "❌ 异常",
        "database": "数据库 {name}", "select_ok": "SELECT 1 成功", "port_open": "端口可连接",
        "port_closed": "端口无法连接：{reason}", "unexpected": "HTTP {status}，期望 {expected}",
        "no_service": "局点配置中没有服务 {service!r}",
        "no_services": "局点 {site} 的配置（site profile）未列出任何服务，无法判断：请在 services 中登记",
        "summary": "{healthy}/{total} 正常", "summary_bad": "：异常 {targets}",
    },
    "en": {
        "header": "| target | result | version | detail | ms |", "healthy": "✅ healthy", "unhealthy": "❌ unhealthy",
        "database": "database {name}", "select_ok": "SELECT 1 ok", "port_open": "port open",
        "port_closed": "port closed: {reason}", "unexpected": "HTTP {status}, expected {expected}",
        "no_service": "service {service!r} is not in the site profile",
        "no_services": "the profile of site {site} lists no services: cannot decide; list them under services",
        "summary": "{healthy}/{total} healthy", "summary_bad": ": unhealthy {targets}",
    },
}


@dataclass
class CheckOutcome:
    target: str
    healthy: bool
    detail: str
    millis: int
    version: str | None = field(default=None)
    shown: str = field(default="", repr=False)  # the detail in the report's language (JSON keeps English)

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "shown"}


class ServiceHealthCheckStep(UpgradeStep):
    """Checks that services answer and databases accept queries."""

    Params = HealthParams
    description = "Service health check: HTTP endpoints and database ping"
    params: HealthParams

    def run(self) -> StepResult:
        checks: list[tuple[RestartCommand | None, Callable[[], CheckOutcome]]] = []
        checks += [(e.restart, lambda e=e: self._check_http(e)) for e in self._endpoints()]
        checks += [(p.restart, lambda p=p: self._check_port(p)) for p in self.params.ports]
        checks += [(self.params.database_restarts.get(n), lambda n=n: self._check_database(n))
                   for n in self.params.databases]
        outcomes = [self._recover(check(), restart, check) for restart, check in checks]
        if (unlisted := self._site_lists_services()) is not None:
            outcomes.insert(0, unlisted)
        bad = [o for o in outcomes if not o.healthy]
        w = words(TEXT, self.context.language)
        rows = "\n".join(
            f"| {self._target(o.target)} | {w['healthy' if o.healthy else 'unhealthy']} | {o.version or '-'} | "
            f"{o.shown or o.detail} | {o.millis} |" for o in outcomes)
        markdown = w["header"] + "\n|---|---|---|---|---|\n" + rows
        result = StepResult(
            status=StepStatus.FAILED if bad else StepStatus.SUCCESS,
            summary=w["summary"].format(healthy=len(outcomes) - len(bad), total=len(outcomes))
            + (w["summary_bad"].format(targets=", ".join(self._target(o.target) for o in bad)) if bad else ""),
            details={"checks": [o.to_json() for o in outcomes]},
            markdown=markdown,
        )
        if bad:
            raise StepFailed(result.summary, result)
        return result

    def _endpoints(self) -> list[HttpCheck]:
        """The configured endpoints, and with ``site_services`` each service the site profile lists."""
        endpoints = list(self.params.endpoints)
        if self.params.site_services:
            profile = self.context.resources.profile
            services = dict(profile.services) if profile is not None else {}
            endpoints += [HttpCheck(name=name, url=url) for name, url in sorted(services.items())]
        return endpoints

    def _site_lists_services(self) -> CheckOutcome | None:
        """With ``site_services``, a failed check when the profile lists none: nothing to decide on."""
        profile = self.context.resources.profile
        if not self.params.site_services or (profile is not None and profile.services):
            return None
        detail, shown = self._said("no_services", site=self.context.site_id)
        return CheckOutcome("site services", False, detail, 0, shown=shown)

    def _recover(self, outcome: CheckOutcome, restart: RestartCommand | None,
                 check: Callable[[], CheckOutcome]) -> CheckOutcome:
        """An unhealthy target with a restart command: restart it and check again."""
        if outcome.healthy or restart is None:
            return outcome
        recovery = restart_and_recheck(outcome.target, outcome, check, lambda o: o.healthy, restart,
                                       logger=self.context.logger, secrets=self.context.resources.secrets)
        last = recovery.last
        shown = last.shown or last.detail
        last.detail += f" ({recovery.describe()})"
        last.shown = shown + (f" ({recovery.describe('en')})" if self.context.language == "en"
                              else f"（{recovery.describe('zh')}）")
        return last

    def _said(self, key: str, **values: object) -> tuple[str, str]:
        """``TEXT[key]`` in English (the JSON's detail) and in the report's language."""
        return TEXT["en"][key].format(**values), words(TEXT, self.context.language)[key].format(**values)

    def _target(self, target: str) -> str:
        """A database target (``database ft_db``) named in the report's language."""
        prefix = TEXT["en"]["database"].format(name="")
        if target.startswith(prefix):
            return words(TEXT, self.context.language)["database"].format(name=target[len(prefix):])
        return target

    def _base_url(self, check: HttpCheck) -> str | None:
        if check.url:
            return check.url
        base = self.context.resources.service_url(check.service or "")
        return None if base is None else base.rstrip("/") + "/" + check.path.lstrip("/")

    def _check_http(self, check: HttpCheck) -> CheckOutcome:
        url = self._base_url(check)
        if url is None:
            detail, shown = self._said("no_service", service=check.service)
            return CheckOutcome(check.name or check.service or "?", False, detail, 0, shown=shown)
        import httpx  # here, not at the top: `validate` and `plan` import the step for its parameters only

        target = check.name or url
        start = time.perf_counter()
        try:
            response = httpx.request(check.method, url, timeout=check.timeout, follow_redirects=False)
        except httpx.HTTPError as exc:
            return CheckOutcome(target, False, f"{type(exc).__name__}: {exc}", _ms(start))
        ok = response.status_code in check.expected_status
        detail = shown = f"HTTP {response.status_code}"
        if not ok:
            detail, shown = self._said("unexpected", status=response.status_code, expected=check.expected_status)
        return CheckOutcome(target, ok, detail, _ms(start), self._version(check, url) if ok else None, shown)

    def _version(self, check: HttpCheck, url: str) -> str | None:
        """The service's version from its info endpoint (recorded, never a reason to fail)."""
        import httpx

        if not check.version_path:
            return None
        info_url = httpx.URL(url).join(check.version_path)
        try:
            value: object = httpx.get(info_url, timeout=check.timeout).json()
            for part in check.version_field.split("."):
                value = value.get(part) if isinstance(value, dict) else None
        except (httpx.HTTPError, ValueError):
            return None
        return None if value is None else str(value)

    def _check_port(self, check: PortCheck) -> CheckOutcome:
        target = check.name or f"{check.host}:{check.port}"
        start = time.perf_counter()
        try:
            with socket.create_connection((check.host, check.port), timeout=check.timeout):
                pass
        except OSError as exc:
            detail, shown = self._said("port_closed", reason=exc.strerror or exc)
            return CheckOutcome(target, False, detail, _ms(start), shown=shown)
        detail, shown = self._said("port_open")
        return CheckOutcome(target, True, detail, _ms(start), shown=shown)

    def _check_database(self, name: str) -> CheckOutcome:
        from sqlalchemy import text

        start = time.perf_counter()
        try:
            with self.context.resources.engine(name).connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # reported per database, never raised past the report
            return CheckOutcome(TEXT["en"]["database"].format(name=name), False, str(exc).splitlines()[0][:300],
                                _ms(start))
        detail, shown = self._said("select_ok")
        return CheckOutcome(TEXT["en"]["database"].format(name=name), True, detail, _ms(start), shown=shown)


def _ms(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)
