"""What CICD calls per cutpoint: trigger the deployment, poll its state, print the report, exit with a code.

    .venv/bin/python deployments/cicd.py --cutpoint startup_pre_process --from 3.17.0 --to 3.17.5-P1 \\
        --site CN [--env K=V]... [--deployment-suffix=-cn] [--timeout 7200] \\
        [--rerun] [--waive PRECONDITION]... [--reason TEXT] [--by NAME]

Exit codes: 0 the cutpoint completed (or had already completed: nothing executed); 1 it failed (the
execution id and how to resume are printed); 2 bad input (version, cutpoint, site, unknown deployment)
or the run was refused (a precondition missing, a --from that differs from the site's version):
nothing was executed; 3 infrastructure
(Prefect API unreachable after retries, or no final state within ``--timeout``: is the site's worker up?);
4 the run is waiting for an operator's decision: a statement failed or is in doubt and the flow run is
suspended with a decision form in the Prefect UI (the flow-run URL, the failure and the CLI equivalent
are printed; the run goes on once someone decides, and ends Failed if nobody does in time).

REST mapping (all on ``PREFECT_API_URL``): execute → ``POST /deployments/{id}/create_flow_run``;
status → ``GET /flow_runs/{id}`` (its state); resume → ``POST /flow_runs/{id}/set_state`` AwaitingRetry
(the UI's Retry) or the same call again; report → ``POST /artifacts/filter`` (key ``ft-<site>-<cutpoint>``).
Waiting polls the flow-run state, so a closed event stream cannot end the wait early.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

PROJECT = Path(__file__).resolve().parents[1]
if str(PROJECT) not in sys.path:  # runnable as `python deployments/cicd.py`
    sys.path.insert(0, str(PROJECT))

import httpx  # noqa: E402
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential  # noqa: E402

from tasks.core.cutpoints import Cutpoint  # noqa: E402
from tasks.core.errors import VersionError  # noqa: E402
from tasks.core.parameters import SITE_ID_PATTERN  # noqa: E402
from tasks.core.versions import Version  # noqa: E402
from tasks.execution.reporting import artifact_key  # noqa: E402

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INFRA, EXIT_WAITING = 0, 1, 2, 3, 4
REFUSED_MARK = "⛔"  # in the markdown report of a refused trigger, either language (tasks.execution.reporting)
_SITE = re.compile(SITE_ID_PATTERN)
_EXECUTION_ID = re.compile(r"\| (?:execution id|执行ID) \| `([^`]+)` \|")
T = TypeVar("T")


class BadInput(Exception):
    """The request itself is wrong: exit 2, nothing started."""


class Unreachable(Exception):
    """The Prefect API did not answer after the retries: exit 3."""


@dataclass(frozen=True)
class Request:
    """A validated CICD request."""

    cutpoint: Cutpoint
    source_version: str
    target_version: str
    site_id: str
    environment: dict[str, str] = field(default_factory=dict)
    deployment_suffix: str = ""
    terms: dict[str, Any] = field(default_factory=dict)  # rerun, waive, reason, requested_by

    @property
    def deployment_name(self) -> str:
        return f"{self.cutpoint.value}/{self.cutpoint.value.replace('_', '-')}{self.deployment_suffix}"

    @property
    def parameters(self) -> dict[str, Any]:
        return {"source_version": self.source_version, "target_version": self.target_version,
                "site_id": self.site_id, "environment": self.environment, **self.terms}

    @property
    def report_key(self) -> str:
        return artifact_key(self.site_id, self.cutpoint.value)


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--env {pair!r}: expected KEY=VALUE")
        env[key.strip()] = value
    return env


def validate_request(cutpoint: str, source: str, target: str, site: str, env: Sequence[str] = (),
                     deployment_suffix: str = "", *, rerun: bool = False, waive: Sequence[str] = (),
                     reason: str = "", by: str = "") -> Request:
    """Check everything locally (pure); raises :class:`BadInput` naming the problem."""
    try:
        point = Cutpoint(cutpoint)
    except ValueError:
        raise BadInput(f"unknown cutpoint {cutpoint!r}; one of {', '.join(c.value for c in Cutpoint)}") from None
    try:
        src, dst = Version.parse(source), Version.parse(target)
    except VersionError as exc:
        raise BadInput(str(exc)) from None
    if dst <= src:
        raise BadInput(f"target version {dst} is not newer than source version {src}")
    if not _SITE.match(site):
        raise BadInput(f"site id {site!r}: letters, digits, _ and - only")
    if deployment_suffix and not re.fullmatch(r"[A-Za-z0-9_-]+", deployment_suffix):
        raise BadInput(f"deployment suffix {deployment_suffix!r}: letters, digits, _ and - only")
    if (rerun or waive) and not reason.strip():
        raise BadInput("--rerun and --waive need --reason TEXT (it is recorded with who asked)")
    terms: dict[str, Any] = {"rerun": True} if rerun else {}
    if waive:
        terms["waive"] = list(waive)
    if reason:
        terms["reason"] = reason
    if by:
        terms["requested_by"] = by
    return Request(cutpoint=point, source_version=str(src), target_version=str(dst), site_id=site,
                   environment=parse_env(env), deployment_suffix=deployment_suffix, terms=terms)


def _transient(exc: BaseException) -> bool:
    """Worth retrying: no connection, a timeout, or a 5xx/429 from the server."""
    if isinstance(exc, httpx.TransportError):
        return True
    response = getattr(exc, "response", None)
    return isinstance(response, httpx.Response) and (response.status_code >= 500 or response.status_code == 429)


def with_retries(call: Callable[[], T], *, attempts: int = 5, wait: float = 1.0) -> T:
    """Run one API call, retrying transient failures; :class:`Unreachable` when they persist."""
    try:
        for attempt in Retrying(stop=stop_after_attempt(attempts), reraise=True,
                                wait=wait_exponential(multiplier=wait, max=30), retry=retry_if_exception(_transient)):
            with attempt:
                return call()
    except Exception as exc:
        if _transient(exc):
            raise Unreachable(f"Prefect API unreachable after {attempts} attempts: {type(exc).__name__}: {exc}") \
                from None
        raise
    raise AssertionError("unreachable")  # pragma: no cover - Retrying either returns or raises


def trigger(client: Any, request: Request, *, attempts: int = 5, wait: float = 1.0) -> Any:
    """Create the flow run of the deployment (idempotent across retries); returns the FlowRun."""
    from prefect.exceptions import ObjectNotFound

    try:
        deployment = with_retries(lambda: client.read_deployment_by_name(request.deployment_name),
                                  attempts=attempts, wait=wait)
    except ObjectNotFound:
        raise BadInput(f"deployment {request.deployment_name!r} not found: deploy it (deployments/deploy_sites.py "
                       f"or prefect.yaml) or fix --deployment-suffix") from None
    key = f"cicd-{uuid.uuid4()}"  # a retried POST whose answer was lost does not start a second run
    return with_retries(lambda: client.create_flow_run_from_deployment(
        deployment.id, parameters=request.parameters, idempotency_key=key,
        tags=["cicd", f"site:{request.site_id}"]), attempts=attempts, wait=wait)


def wait_for_final(client: Any, flow_run_id: Any, *, timeout: float, poll: float = 5.0, attempts: int = 5,
                   wait: float = 1.0, echo: Callable[[str], None] = print) -> Any | None:
    """Poll the flow run until its state is final (AwaitingRetry is not) or it waits for an operator
    (Suspended or Paused: nobody can say when that ends); None on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        run = with_retries(lambda: client.read_flow_run(flow_run_id), attempts=attempts, wait=wait)
        state = run.state
        if state is not None and state.name != last:
            echo(f"flow run {flow_run_id}: {state.name}")
            last = state.name
        if state is not None and (state.is_paused() or (state.is_final() and state.name != "AwaitingRetry")):
            return run
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll)


def read_report(client: Any, flow_run_id: Any, key: str, *, attempts: int = 5, wait: float = 1.0) -> str | None:
    """The markdown report artifact of this flow run (None if the run ended before writing one)."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId

    artifacts = with_retries(lambda: client.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))), attempts=attempts, wait=wait)
    markdown = [a for a in artifacts if a.type == "markdown"]
    return str(markdown[-1].data) if markdown else None


def execution_id_of(report: str | None) -> str | None:
    match = _EXECUTION_ID.search(report or "")
    return match.group(1) if match else None


def failure_lines(request: Request, flow_run_id: Any, state_message: str | None, report: str | None) -> list[str]:
    """What CICD's log shows after a failure: where, why, and the three ways to resume (pure)."""
    execution = execution_id_of(report)
    lines = [f"FAILED: {request.cutpoint.value} at site {request.site_id} "
             f"({request.source_version} → {request.target_version}), flow run {flow_run_id}"]
    if state_message:
        lines.append(f"reason: {state_message}")
    lines.append(f"execution id: {execution or '- (the run stopped before starting an execution)'}")
    lines += ["how to resume, after fixing the cause (steps that succeeded are not run again):",
              f"  - Prefect UI: open flow run {flow_run_id} and press Retry",
              "  - CICD: call this script again with the same arguments"]
    if execution:
        lines.append(f"  - CLI: ft-upgrade resume {execution}")
    return lines


def waiting_lines(request: Request, flow_run_id: Any, url: str | None, report: str | None) -> list[str]:
    """What CICD's log shows for a run suspended at a breakpoint: where to decide, and the alternatives (pure)."""
    execution = execution_id_of(report)
    lines = [f"WAITING: {request.cutpoint.value} at site {request.site_id} ({request.source_version} → "
             f"{request.target_version}), flow run {flow_run_id}, waits for an operator's decision (the report "
             "above says where it stopped and why)",
             f"decide in the Prefect UI: {url or f'flow run {flow_run_id}'} → Resume → the form "
             "(retry / applied / skip / stop, who and why); the run then continues at the statement"]
    if execution:
        lines.append(f"or on the command line: ft-upgrade resume {execution} --inflight retry|applied|skip "
                     "--by NAME --notes WHY")
    lines.append("this job ends here (exit 4); the run ends Failed if nobody decides in time")
    return lines


def execute(request: Request, *, timeout: float, poll: float = 5.0, attempts: int = 5, wait: float = 1.0,
            echo: Callable[[str], None] = print) -> int:
    """The whole contract against ``PREFECT_API_URL``: returns the exit code."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        echo("PREFECT_API_URL is not set: CICD must talk to the shared Prefect server")
        return EXIT_INFRA
    try:
        with get_client(sync_client=True) as client:
            run = trigger(client, request, attempts=attempts, wait=wait)
            echo(f"triggered {request.deployment_name} for site {request.site_id}: flow run {run.id} ({run.name})")
            final = wait_for_final(client, run.id, timeout=timeout, poll=poll, attempts=attempts, wait=wait, echo=echo)
            if final is None:
                echo(f"flow run {run.id} did not finish within {timeout:.0f}s (is the worker of its pool running?); "
                     "it was not cancelled")
                return EXIT_INFRA
            report = read_report(client, run.id, request.report_key, attempts=attempts, wait=wait)
    except BadInput as exc:
        echo(f"bad input: {exc}")
        return EXIT_BAD_INPUT
    except Unreachable as exc:
        echo(f"infrastructure error: {exc}")
        return EXIT_INFRA
    except httpx.TransportError as exc:  # e.g. while the client opens its connection
        echo(f"infrastructure error: Prefect API unreachable: {type(exc).__name__}: {exc}")
        return EXIT_INFRA
    if report:
        echo(report)
    state = final.state
    if state.is_paused():
        from prefect.utilities.urls import url_for

        for line in waiting_lines(request, run.id, url_for("flow-run", obj_id=run.id), report):
            echo(line)
        return EXIT_WAITING
    if state.is_completed():
        echo(f"{request.cutpoint.value} at site {request.site_id}: Completed")
        return EXIT_OK
    if report and REFUSED_MARK in report:
        echo(f"REFUSED: {request.cutpoint.value} at site {request.site_id} ({request.source_version} → "
             f"{request.target_version}), flow run {run.id}: nothing was executed; the report above says why")
        return EXIT_BAD_INPUT
    for line in failure_lines(request, run.id, f"{state.name}: {state.message}", report):
        echo(line)
    return EXIT_FAILED


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cutpoint", required=True, help=", ".join(c.value for c in Cutpoint))
    parser.add_argument("--from", dest="source", required=True, help="source version, e.g. 3.17.0")
    parser.add_argument("--to", dest="target", required=True, help="target version, e.g. 3.17.5-P1")
    parser.add_argument("--site", required=True, help="site id, e.g. CN")
    parser.add_argument("--env", action="append", default=[], metavar="K=V", help="environment value (repeat)")
    parser.add_argument("--deployment-suffix", default="", help="per-site deployments, e.g. =-cn")
    parser.add_argument("--timeout", type=float, default=7200, help="seconds to wait for a final state")
    parser.add_argument("--poll", type=float, default=5, help="seconds between state polls")
    parser.add_argument("--api-attempts", type=int, default=5, help="tries per API call before exit 3")
    parser.add_argument("--api-wait", type=float, default=1.0, help="backoff multiplier between tries (s)")
    parser.add_argument("--rerun", action="store_true", help="run a completed cutpoint again on purpose")
    parser.add_argument("--waive", action="append", default=[], metavar="PRECONDITION",
                        help="waive a precondition (repeat), e.g. services_stopped")
    parser.add_argument("--reason", default="", help="why (recorded with --rerun / --waive)")
    parser.add_argument("--by", default="", help="who asks (recorded)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # argparse: missing/unknown arguments are bad input too
        return EXIT_OK if exc.code == 0 else EXIT_BAD_INPUT
    try:
        request = validate_request(args.cutpoint, args.source, args.target, args.site, args.env,
                                   args.deployment_suffix, rerun=args.rerun, waive=args.waive, reason=args.reason,
                                   by=args.by)
    except BadInput as exc:
        print(f"bad input: {exc}", flush=True)
        return EXIT_BAD_INPUT
    return execute(request, timeout=args.timeout, poll=args.poll, attempts=args.api_attempts, wait=args.api_wait,
                   echo=lambda line: print(line, flush=True))


if __name__ == "__main__":
    sys.exit(main())
