"""What a site's record says, for people: ``ft-upgrade info`` and the sites overview artifact.

Built from the execution service's reads; rendering is pure. The overview is a table artifact with
one row per site (version, upgrade, each cutpoint's state). A run writes the rows of the sites in its
own metadata store over the latest version of the artifact, so sites with stores of their own still
share one table in the Prefect UI.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tasks.core.cutpoints import Cutpoint, site_deployment_name
from tasks.core.statuses import CutpointState
from tasks.store.breakpoints import Breakpoint
from tasks.store.site_state import CutpointRecord

if TYPE_CHECKING:
    from tasks.execution.service import ExecutionService

OVERVIEW_KEY = "ft-sites-overview"


def site_deployment(cutpoint: str, site_id: str) -> str | None:
    """The site's own deployment of ``cutpoint`` when the Prefect server has one (None: none, or no server to ask):
    the commands printed for the site's operators name it instead of the shared one."""
    from blocks.database import can_load_blocks

    if not can_load_blocks():
        return None
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    name = site_deployment_name(cutpoint, site_id)
    try:
        with get_client(sync_client=True) as client:
            client.read_deployment_by_name(f"{cutpoint}/{name}")
    except ObjectNotFound:
        return None
    return name


def breakpoint_lines(bp: Breakpoint, resume: Sequence[str]) -> list[str]:
    """An active breakpoint in the requirements' format (断点信息格式)."""
    lines = [f"断点ID: {bp.id}", f"执行ID: {bp.execution_id}", f"失败位置: {bp.where}"]
    if bp.sql_content:
        lines.append(f"失败SQL: {bp.sql_content}")
    code = f"[{bp.error_code}] " if bp.error_code else ""
    lines.append(f"失败原因: {code}{bp.failure_reason or ''}")
    first = bp.original_error
    if first:
        first_code = f"[{first.get('error_code')}] " if first.get("error_code") else ""
        lines.append(f"首次错误: {first_code}{first.get('message') or ''} "
                     f"({first.get('time')}, {first.get('breakpoint')})")
    lines += [f"断点时间: {bp.breakpoint_time:%Y-%m-%d %H:%M:%S} UTC "
              f"(expires {bp.expiry_time:%Y-%m-%d %H:%M:%S} UTC)",
              "恢复方式:", *[f"  - {line}" for line in resume]]
    return lines


def site_info(service: ExecutionService, site_id: str, *, pending_configs: Sequence[str]) -> dict[str, Any]:
    """Everything ``ft-upgrade info`` shows (records as they are: the CLI prints them or their JSON)."""
    state = service.sites.get(site_id)
    upgrade = None
    if state and state.upgrade_source and state.upgrade_target:
        cutpoints = service.sites.cutpoints(site_id, state.upgrade_source, state.upgrade_target)
        upgrade = {
            "source_version": state.upgrade_source, "target_version": state.upgrade_target,
            "status": state.upgrade_status, "started": state.upgrade_started_time,
            "finished": state.upgrade_finished_time,
            "cutpoints": [_cutpoint_row(c, cutpoints.get(c.value)) for c in Cutpoint]}
    breakpoints = []
    for bp in service.store.active_breakpoints(site_id):
        execution = service.execution(bp.execution_id)
        report = service.build_report(bp.execution_id,
                                      deployment_name=site_deployment(execution.cutpoint, execution.site_id))
        breakpoints.append({"breakpoint": bp, "lines": breakpoint_lines(bp, report.resume_hint)})
    return {
        "site_id": site_id,
        "known": state is not None,
        "current_version": state.current_version if state else None,
        "schema_version": state.schema_version if state else None,
        "version_origin": state.version_origin if state else None,
        "upgrade": upgrade,
        "active_breakpoints": breakpoints,
        "pending_configs": list(pending_configs),
        "applied_scripts": len(service.sites.applied_scripts(site_id)),
        "last_executions": service.executions(site_id=site_id, limit=10),
        "history": service.sites.history(site_id, limit=10),
    }


def _cutpoint_row(cutpoint: Cutpoint, record: CutpointRecord | None) -> dict[str, Any]:
    if record is None:
        return {"cutpoint": cutpoint.value, "state": CutpointState.NOT_STARTED, "execution_id": None, "finished": None}
    return {"cutpoint": cutpoint.value, "state": record.state, "execution_id": record.execution_id,
            "finished": record.finished_time}


def overview_rows(service: ExecutionService) -> list[dict[str, str]]:
    """One row per site of this store: versions and the current upgrade's cutpoint states."""
    rows = []
    for state in service.sites.all_sites():
        row = {"site": state.site_id, "version": state.current_version or "?", "schema": state.schema_version or "?",
               "upgrade": "-"}
        cutpoints = {}
        if state.upgrade_source and state.upgrade_target:
            row["upgrade"] = f"{state.upgrade_source} → {state.upgrade_target} ({(state.upgrade_status or '').lower()})"
            cutpoints = service.sites.cutpoints(state.site_id, state.upgrade_source, state.upgrade_target)
        for c in Cutpoint:
            row[c.value] = cutpoints[c.value].state if c.value in cutpoints else "-"
        rows.append(row)
    return rows


def merge_overview(mine: Sequence[Mapping[str, str]], previous: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """This store's rows over the previous artifact's (other stores' sites kept), sorted by site."""
    merged = {str(r.get("site")): dict(r) for r in previous if r.get("site")}
    merged.update({r["site"]: dict(r) for r in mine})
    return [merged[k] for k in sorted(merged)]


def latest_overview_rows() -> list[dict[str, str]]:
    """The rows of the latest overview artifact on the Prefect server (empty when there is none)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_latest_artifacts(artifact_filter=ArtifactCollectionFilter(
            key=ArtifactCollectionFilterKey(any_=[OVERVIEW_KEY])), limit=1)
    if not found or not found[0].data:
        return []
    data = found[0].data
    rows = json.loads(data) if isinstance(data, str) else data
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
