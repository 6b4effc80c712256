"""Prefect's part of every cutpoint flow; the run itself is :func:`tasks.execution.cutpoint_run.run_cutpoint`.

This module hands it what only Prefect can do (cf. Alembic's ``command.upgrade``, which only wires):
run a step as a task run (its retries, timeout and cached result), publish the artifacts on the flow run,
ask an operator's decision on the flow run's page, and name the run (flow run id, deployment).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from prefect import Flow, flow, get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.context import FlowRunContext
from prefect.runtime import deployment, flow_run
from pydantic import SecretStr

from flows.decision import apply_submission, ask_operator, asks
from flows.launch import TaskLauncher
from tasks.core import background
from tasks.core.cutpoints import Cutpoint
from tasks.core.parameters import SiteId, VersionText, Waivable
from tasks.core.runtime import flow_run_page
from tasks.core.settings import Settings, get_settings
from tasks.execution import cutpoint_run
from tasks.execution.admission import Request
from tasks.execution.reporting import RunReport, artifact_key, steps_table
from tasks.execution.service import ExecutionService
from tasks.execution.site_info import OVERVIEW_KEY, latest_overview_rows, merge_overview
from tasks.site.resources import SiteOverrides
from tasks.store.breakpoints import Breakpoint


class FlowRunArtifacts:
    """The publisher: the run's report, its progress, a refusal and the sites overview as artifacts."""

    def __init__(self, cutpoint: Cutpoint, site_id: str) -> None:
        self.cutpoint, self.site_id = cutpoint, site_id
        self._progress: Any = None
        self._shown = 0.0  # when the bar was last sent: at most once a second, off the path

    def progress(self, percent: float) -> None:
        now = time.monotonic()
        if now - self._shown < 1.0 and percent < 100.0:
            return
        self._shown = now
        background.submit(lambda: self._show(percent), f"progress of {self.cutpoint.value}")

    def _show(self, percent: float) -> None:
        if self._progress is None:
            self._progress = create_progress_artifact(progress=percent,
                                                      description=f"{self.cutpoint.value} at {self.site_id}")
        else:
            update_progress_artifact(self._progress, progress=percent)

    def report(self, report: RunReport, markdown: str) -> None:
        e = report.execution
        key = artifact_key(e.site_id, e.cutpoint)
        create_markdown_artifact(markdown=markdown, key=key,
                                 description=f"{e.cutpoint} {e.source_version} → {e.target_version} "
                                             f"at {e.site_id}: {report.status}")
        create_table_artifact(table=steps_table(report.steps), key=key + "-steps",
                              description=f"steps of {e.execution_id}")

    def refusal(self, markdown: str) -> None:
        create_markdown_artifact(markdown=markdown, key=artifact_key(self.site_id, self.cutpoint.value),
                                 description=f"{self.cutpoint.value} at {self.site_id}: REFUSED")

    def overview(self, rows: list[dict[str, str]]) -> None:
        create_table_artifact(table=merge_overview(rows, latest_overview_rows()), key=OVERVIEW_KEY,
                              description="FT sites: version and each cutpoint's state of the current upgrade")

    def upgrade(self, key: str, markdown: str, description: str) -> None:
        create_markdown_artifact(markdown=markdown, key=key, description=description)


def tag_site(site_id: str) -> None:
    """Tag this flow run ``site:<id>`` (if it is not yet): the site's alert automations match runs by that tag,
    so a run of the shared deployments of ``prefect.yaml`` (the site a parameter) alerts like one of the site's
    own. Never fails the run: a tag that cannot be set is logged."""
    tag = f"site:{site_id}"
    if not flow_run.id or tag in (flow_run.tags or []):
        return
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            current = client.read_flow_run(flow_run.id).tags or []
            client.update_flow_run(flow_run.id, tags=[*current, tag])
        context = FlowRunContext.get()
        if context is not None and context.flow_run is not None:  # the events this process sends (heartbeats)
            context.flow_run.tags = [*(context.flow_run.tags or []), tag]
    except Exception as exc:  # noqa: BLE001 - an alert tag never changes a run's outcome
        get_run_logger().warning("could not tag the flow run %s: %s", tag, exc)


class FlowRunDecisions:
    """The decider: the decision form on the flow run's page (deployment runs only; :mod:`flows.decision`)."""

    def __init__(self, settings: Settings, site_id: str) -> None:
        self.settings, self.site_id = settings, site_id

    def resumed(self, service: ExecutionService, execution_id: str) -> None:
        apply_submission(service, execution_id, site_id=self.site_id, settings=self.settings)

    def page(self, bp: Breakpoint | None) -> str | None:
        return flow_run_page(flow_run.id) if asks(bp, self.settings) else None

    def ask(self, bp: Breakpoint | None, language: str) -> None:
        if bp is not None:
            ask_operator(bp, self.site_id, self.settings, language)


def run_cutpoint(cutpoint: Cutpoint, source_version: str, target_version: str, site_id: str,
                 environment: Mapping[str, Any] | None, *, rerun: bool = False, waive: Sequence[str] = (),
                 reason: str = "", requested_by: str = "", accept_changed_scripts: bool = False,
                 execution_id: str | None = None, configs_dir: str | None = None, sql_root: str | None = None,
                 databases: Mapping[str, SecretStr] | None = None) -> dict[str, Any]:
    """The flow body of every cutpoint: the request, settings and connections from its parameters, and
    Prefect's hooks. ``configs_dir``, ``sql_root`` and ``databases`` are what a caller gives instead of the
    settings and blocks (the CLI's options), explicitly."""
    tag_site(site_id)  # first: whatever fails next, the site's alerts see this run
    settings = get_settings(configs=configs_dir, sql_root=sql_root)
    overrides = SiteOverrides(databases={k: v.get_secret_value() for k, v in (databases or {}).items()})
    request = Request(cutpoint=cutpoint, source_version=source_version, target_version=target_version,
                      site_id=site_id, rerun=rerun, waive=tuple(waive), reason=reason,
                      by=requested_by or _default_actor(), accept_changed_scripts=accept_changed_scripts,
                      execution_id=execution_id)
    run_id = str(flow_run.id) if flow_run.id else None
    hooks = cutpoint_run.RunHooks(launch=TaskLauncher(), publish=FlowRunArtifacts(cutpoint, site_id),
                                  decide=FlowRunDecisions(settings, site_id), logger=get_run_logger(),
                                  flow_run_id=run_id, deployment_name=deployment.name if run_id else None)
    try:
        return cutpoint_run.run_cutpoint(request, environment, settings=settings, overrides=overrides, hooks=hooks)
    finally:
        background.drain()  # the artifacts sent off the path land before the flow run ends


def _default_actor() -> str:
    """Who triggered a run when nobody said: the deployment (CICD) or the local user."""
    if deployment.name:
        return f"deployment {deployment.name}"
    import getpass

    return getpass.getuser()


def cutpoint_flow(cutpoint: Cutpoint) -> Flow[..., dict[str, Any]]:
    """The Prefect flow of one cutpoint: the same body, its own name, parameters and docstring."""

    def run(source_version: VersionText, target_version: VersionText, site_id: SiteId,
            environment: dict[str, Any] | None = None, rerun: bool = False, waive: list[Waivable] | None = None,
            reason: str = "", requested_by: str = "",
            accept_changed_scripts: bool = False, execution_id: str | None = None, configs_dir: str | None = None,
            sql_root: str | None = None, databases: dict[str, SecretStr] | None = None) -> dict[str, Any]:
        return run_cutpoint(cutpoint, source_version, target_version, site_id, environment, rerun=rerun,
                            waive=waive or (), reason=reason, requested_by=requested_by,
                            accept_changed_scripts=accept_changed_scripts, execution_id=execution_id,
                            configs_dir=configs_dir, sql_root=sql_root, databases=databases)

    run.__name__ = run.__qualname__ = cutpoint.value
    run.__doc__ = f"""Run the {cutpoint.value} steps of every config from source to target for one site.

    Args:
        source_version: Version the site runs now, e.g. 3.17.0.
        target_version: Version to upgrade to, e.g. 3.17.5-P1.
        site_id: The site (局点) id, e.g. CN or US.
        environment: CICD's environment values; a secret one only as ``secret:<Secret block name>``.
        rerun: Run again although this cutpoint already completed for (site, source, target); needs a reason.
        waive: Preconditions to waive (e.g. services_stopped, pre_upgrade_process); needs a reason.
        reason: Why (recorded with a rerun, a waiver or accepted script changes).
        requested_by: Who asks (recorded); default: the deployment.
        accept_changed_scripts: Run although scripts applied at this site changed on disk; needs a reason.
        execution_id: Continue exactly this execution (``ft-upgrade resume`` passes it).
        configs_dir: Folder of version configs instead of the worker's setting.
        sql_root: Root of the SQL scripts instead of the worker's setting.
        databases: Logical database URLs instead of the site's blocks (secret: shown masked).
    """
    return flow(run, name=cutpoint.value, log_prints=True,
                flow_run_name=f"{cutpoint.value} {{site_id}} {{source_version}}→{{target_version}}")
