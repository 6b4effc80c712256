"""Where each site stands across executions: its version, the upgrade in progress, cutpoint states,
scripts applied (with their SHA-256) and an append-only history.

An execution is one attempt at one cutpoint; a site lives through many. These tables are what lets a
re-triggered cutpoint answer "already completed" instead of sending its statements again, and what
keeps cutpoints in order. Like Flyway's schema history, but per site and cutpoint. Writes happen
under the site's lock (:mod:`tasks.store.site_lock`), so read-then-write needs no upsert dialect.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update

from tasks.core.clock import utcnow
from tasks.core.statuses import BreakpointStatus, CutpointState, ExecutionStatus, SiteEvent, UpgradeStatus
from tasks.store import schema

_site = schema.site_state
_cut = schema.site_cutpoint
_history = schema.site_history
_script = schema.site_script
_exec = schema.upgrade_execution
_bp = schema.upgrade_breakpoint
#: The ``step_type`` of a rollback's own execution (not a cutpoint: a way back through the upgrade).
ROLLBACK = "rollback"


@dataclass(frozen=True)
class SiteState:
    """One site: the version it is on and the upgrade it is in (if any)."""

    site_id: str
    current_version: str | None = None
    schema_version: str | None = None
    version_origin: str | None = None
    upgrade_source: str | None = None
    upgrade_target: str | None = None
    upgrade_status: str | None = None
    upgrade_started_time: datetime | None = None
    upgrade_finished_time: datetime | None = None

    @property
    def upgrade_in_progress(self) -> bool:
        return self.upgrade_status == UpgradeStatus.IN_PROGRESS


@dataclass(frozen=True)
class CutpointRecord:
    """One cutpoint of one upgrade (site, source, target) at a site."""

    cutpoint: str
    state: CutpointState
    execution_id: str | None
    started_time: datetime | None
    finished_time: datetime | None


@dataclass(frozen=True)
class AppliedScript:
    """A script every statement of which succeeded at the site, with the SHA-256 it had then."""

    path: str
    sha256: str
    execution_id: str
    cutpoint: str
    step_key: str
    version: str
    applied_time: datetime


def _fields(cls: type, row: Mapping[str, Any]) -> dict[str, Any]:
    names = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return {k: v for k, v in row.items() if k in names}


class SiteStates:
    """Reads and writes the site tables of one metadata store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # reading ------------------------------------------------------------------------------------

    def get(self, site_id: str) -> SiteState | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(_site).where(_site.c.site_id == site_id)).mappings().first()
        return SiteState(**_fields(SiteState, row)) if row else None

    def all_sites(self) -> list[SiteState]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(_site).order_by(_site.c.site_id)).mappings().all()
        return [SiteState(**_fields(SiteState, r)) for r in rows]

    def cutpoints(self, site_id: str, source: str, target: str) -> dict[str, CutpointRecord]:
        """Each cutpoint's state in the upgrade ``source → target`` at the site (absent: not started)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(_cut).where(
                _cut.c.site_id == site_id, _cut.c.source_version == source,
                _cut.c.target_version == target)).mappings().all()
        return {r["cutpoint"]: CutpointRecord(**_fields(CutpointRecord, r)) for r in rows}

    def applied_scripts(self, site_id: str) -> list[AppliedScript]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(_script.c.script_path.label("path"), _script).where(
                _script.c.site_id == site_id).order_by(_script.c.applied_time, _script.c.script_path)).mappings().all()
        return [AppliedScript(**_fields(AppliedScript, r)) for r in rows]

    def history(self, site_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The newest history events of a site, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(_history).where(_history.c.site_id == site_id).order_by(
                _history.c.created_time.desc(), _history.c.id.desc()).limit(limit)).mappings().all()
        return [{**r, "detail": json.loads(r["detail"]) if r["detail"] else {}} for r in rows]

    def upgrade_history(self, site_id: str, source: str, target: str) -> list[dict[str, Any]]:
        """The history events of one upgrade of a site (source → target), oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(_history).where(
                _history.c.site_id == site_id, _history.c.source_version == source,
                _history.c.target_version == target).order_by(_history.c.created_time, _history.c.id)).mappings().all()
        return [{**r, "detail": json.loads(r["detail"]) if r["detail"] else {}} for r in rows]

    # writing ------------------------------------------------------------------------------------

    def record(self, site_id: str, event: SiteEvent, *, cutpoint: str | None = None, source: str | None = None,
               target: str | None = None, execution_id: str | None = None, flow_run_id: str | None = None,
               actor: str | None = None, detail: Mapping[str, Any] | None = None) -> None:
        """Append one history event (nothing else changes)."""
        with self.engine.begin() as conn:
            self._append(conn, site_id, event, cutpoint=cutpoint, source=source, target=target,
                         execution_id=execution_id, flow_run_id=flow_run_id, actor=actor, detail=detail)

    def cutpoint_started(self, site_id: str, *, source: str, target: str, cutpoint: str, execution_id: str,
                         flow_run_id: str | None, actor: str, detail: Mapping[str, Any]) -> None:
        """A cutpoint execution starts or resumes: the upgrade is in progress and the cutpoint RUNNING."""
        now = utcnow()
        with self.engine.begin() as conn:
            site = self._site_row(conn, site_id)
            if not (site and site["upgrade_status"] == UpgradeStatus.IN_PROGRESS and site["upgrade_source"] == source
                    and site["upgrade_target"] == target):
                self._save_site(conn, site_id, upgrade_source=source, upgrade_target=target,
                                upgrade_status=UpgradeStatus.IN_PROGRESS, upgrade_started_time=now,
                                upgrade_finished_time=None)
                self._append(conn, site_id, SiteEvent.UPGRADE_STARTED, source=source, target=target, actor=actor,
                             execution_id=execution_id, flow_run_id=flow_run_id,
                             detail={"previous_version": site["current_version"] if site else None})
            self._save_cutpoint(conn, site_id, source, target, cutpoint, state=CutpointState.RUNNING,
                                execution_id=execution_id, started_time=now, finished_time=None)
            self._append(conn, site_id, SiteEvent.CUTPOINT_STARTED, cutpoint=cutpoint, source=source, target=target,
                         execution_id=execution_id, flow_run_id=flow_run_id, actor=actor, detail=detail)

    def cutpoint_finished(self, site_id: str, *, source: str, target: str, cutpoint: str, execution_id: str,
                          flow_run_id: str | None, completed: bool, moves: Mapping[str, str],
                          detail: Mapping[str, Any], paused: bool = False) -> None:
        """The execution ended: COMPLETED, FAILED or PAUSED (waiting for an operator's decision); ``moves``
        sets the site's versions that this completes.

        ``moves`` may hold ``schema_version`` and ``current_version``; ``current_version`` also completes
        the upgrade in progress.
        """
        now = utcnow()
        state = CutpointState.COMPLETED if completed else CutpointState.PAUSED if paused else CutpointState.FAILED
        with self.engine.begin() as conn:
            self._save_cutpoint(conn, site_id, source, target, cutpoint, state=state, execution_id=execution_id,
                                finished_time=now)
            event = SiteEvent.CUTPOINT_COMPLETED if completed else \
                SiteEvent.CUTPOINT_PAUSED if paused else SiteEvent.CUTPOINT_FAILED
            self._append(conn, site_id, event, cutpoint=cutpoint, source=source, target=target,
                         execution_id=execution_id, flow_run_id=flow_run_id, detail=detail)
            if not completed or not moves:
                return
            site = self._site_row(conn, site_id) or {}
            values: dict[str, Any] = dict(moves)
            if "current_version" in moves:
                values.update(version_origin="UPGRADE")
                if site.get("upgrade_source") == source and site.get("upgrade_target") == target:
                    values.update(upgrade_status=UpgradeStatus.COMPLETED, upgrade_finished_time=now)
            self._save_site(conn, site_id, **values)
            for column, version in moves.items():
                if site.get(column) != version:
                    self._append(conn, site_id, SiteEvent.VERSION_MOVED, cutpoint=cutpoint, source=source,
                                 target=target, execution_id=execution_id, flow_run_id=flow_run_id,
                                 detail={"column": column, "from": site.get(column), "to": version})
            if values.get("upgrade_status") == UpgradeStatus.COMPLETED:
                self._append(conn, site_id, SiteEvent.UPGRADE_COMPLETED, source=source, target=target,
                             execution_id=execution_id, flow_run_id=flow_run_id)

    def record_scripts(self, site_id: str, scripts: Iterable[Mapping[str, str]], *, execution_id: str,
                       cutpoint: str, step_key: str, version: str) -> None:
        """Scripts fully applied by an execution, with the SHA-256 they had (newest application wins)."""
        now = utcnow()
        with self.engine.begin() as conn:
            for script in scripts:
                key = (_script.c.site_id == site_id, _script.c.script_path == script["path"])
                values = {"sha256": script["sha256"], "execution_id": execution_id, "cutpoint": cutpoint,
                          "step_key": step_key, "version": version, "applied_time": now, "updated_time": now}
                current = conn.execute(select(_script.c.sha256, _script.c.execution_id).where(*key)).first()
                if current is None:
                    conn.execute(insert(_script).values(site_id=site_id, script_path=script["path"],
                                                        created_time=now, **values))
                elif tuple(current) != (script["sha256"], execution_id):
                    conn.execute(update(_script).where(*key).values(**values))

    def accept_script_changes(self, site_id: str, changes: Iterable[tuple[str, str]], *, actor: str,
                              reason: str, execution_id: str | None = None) -> None:
        """An operator accepted scripts changed on disk after they were applied: record the new hashes."""
        now = utcnow()
        with self.engine.begin() as conn:
            for path, sha256 in changes:
                conn.execute(update(_script).where(_script.c.site_id == site_id, _script.c.script_path == path)
                             .values(sha256=sha256, updated_time=now))
            self._append(conn, site_id, SiteEvent.SCRIPT_CHANGES_ACCEPTED, actor=actor, execution_id=execution_id,
                         detail={"reason": reason, "scripts": [{"path": p, "sha256": h} for p, h in changes]})

    def set_baseline(self, site_id: str, version: str, *, actor: str, notes: str) -> SiteState | None:
        """Record the version a site is on (installed before this tool, or repaired); closes an open upgrade.

        Returns the state before the change.
        """
        now = utcnow()
        with self.engine.begin() as conn:
            before = self._site_row(conn, site_id)
            values: dict[str, Any] = {"current_version": version, "schema_version": version,
                                      "version_origin": "BASELINE"}
            if before and before["upgrade_status"] == UpgradeStatus.IN_PROGRESS:
                values.update(upgrade_status=UpgradeStatus.CLOSED, upgrade_finished_time=now)
            self._save_site(conn, site_id, **values)
            self._append(conn, site_id, SiteEvent.BASELINE, actor=actor, detail={
                "version": version, "notes": notes,
                "before": {k: before[k] for k in ("current_version", "schema_version", "upgrade_source",
                                                  "upgrade_target", "upgrade_status")} if before else None})
        return SiteState(**_fields(SiteState, before)) if before else None

    def rollback_started(self, site_id: str, *, source: str, target: str, execution_id: str,
                         flow_run_id: str | None, actor: str, detail: Mapping[str, Any]) -> None:
        """A rollback of ``source → target`` starts (or resumes): until it finishes no cutpoint may start."""
        with self.engine.begin() as conn:
            site = self._site_row(conn, site_id)
            values: dict[str, Any] = {"upgrade_source": source, "upgrade_target": target,
                                      "upgrade_status": UpgradeStatus.ROLLING_BACK, "upgrade_finished_time": None}
            if not (site and site["upgrade_source"] == source and site["upgrade_target"] == target):
                values["upgrade_started_time"] = utcnow()
            self._save_site(conn, site_id, **values)
            self._append(conn, site_id, SiteEvent.ROLLBACK_STARTED, cutpoint=ROLLBACK, source=source, target=target,
                         execution_id=execution_id, flow_run_id=flow_run_id, actor=actor, detail=detail)

    def rolled_back(self, site_id: str, *, source: str, target: str, execution_id: str, flow_run_id: str | None,
                    actor: str, detail: Mapping[str, Any]) -> dict[str, Any]:
        """The rollback ``execution_id`` finished: in one transaction it is SUCCESS, the site back on ``source``
        (version and schema version), every execution of the upgrade is closed (ROLLED_BACK, breakpoints resolved), its
        cutpoint states and applied scripts are retired (listed in the history event), so a new attempt starts
        from pre_business_check and sends every statement again. Returns what was retired."""
        now = utcnow()
        note = f"closed by the rollback {execution_id} of {source} → {target} ({actor}: {detail.get('reason') or '-'})"
        upgrade = (_exec.c.site_id == site_id, _exec.c.source_version == source, _exec.c.target_version == target,
                   _exec.c.step_type != ROLLBACK)
        with self.engine.begin() as conn:
            site = self._site_row(conn, site_id) or {}
            closed = [r[0] for r in conn.execute(select(_exec.c.execution_id).where(
                *upgrade, _exec.c.status != ExecutionStatus.ROLLED_BACK))]
            every = [r[0] for r in conn.execute(select(_exec.c.execution_id).where(*upgrade))]
            conn.execute(update(_exec).where(_exec.c.execution_id.in_(closed)).values(
                status=ExecutionStatus.ROLLED_BACK, error_message=note, updated_time=now))
            conn.execute(update(_exec).where(_exec.c.execution_id.in_(closed), _exec.c.end_time.is_(None))
                         .values(end_time=now))
            conn.execute(update(_bp).where(_bp.c.active_execution_id.in_(every)).values(
                status=BreakpointStatus.RESOLVED, active_execution_id=None, resolved_by=(actor or "")[:128],
                resolved_time=now, resolve_notes=note, updated_time=now))
            key = (_cut.c.site_id == site_id, _cut.c.source_version == source, _cut.c.target_version == target)
            cutpoints = {r["cutpoint"]: {"state": r["state"], "execution_id": r["execution_id"]}
                         for r in conn.execute(select(_cut).where(*key)).mappings()}
            conn.execute(delete(_cut).where(*key))
            scripts = [{"path": r["script_path"], "sha256": r["sha256"], "execution_id": r["execution_id"]}
                       for r in conn.execute(select(_script).where(
                           _script.c.site_id == site_id, _script.c.execution_id.in_(every))).mappings()]
            conn.execute(delete(_script).where(_script.c.site_id == site_id, _script.c.execution_id.in_(every)))
            steps = conn.execute(select(schema.step_execution.c.step_key).where(
                schema.step_execution.c.execution_id == execution_id)).all()
            conn.execute(update(_exec).where(_exec.c.execution_id == execution_id).values(  # the rollback's own
                status=ExecutionStatus.SUCCESS, end_time=now, error_message=None, completed_steps=len(steps),
                updated_time=now))
            self._save_site(conn, site_id, current_version=source, schema_version=source, version_origin="ROLLBACK",
                            upgrade_source=source, upgrade_target=target, upgrade_status=UpgradeStatus.ROLLED_BACK,
                            upgrade_finished_time=now)
            retired = {"executions_closed": closed, "cutpoints_retired": cutpoints, "scripts_retired": scripts,
                       "before": {"current_version": site.get("current_version"),
                                  "schema_version": site.get("schema_version")}}
            self._append(conn, site_id, SiteEvent.UPGRADE_ROLLED_BACK, cutpoint=ROLLBACK, source=source,
                         target=target, execution_id=execution_id, flow_run_id=flow_run_id, actor=actor,
                         detail={**detail, **retired})
        return retired

    # helpers ------------------------------------------------------------------------------------

    @staticmethod
    def _site_row(conn: Connection, site_id: str) -> dict[str, Any] | None:
        row = conn.execute(select(_site).where(_site.c.site_id == site_id)).mappings().first()
        return dict(row) if row else None

    def _save_site(self, conn: Connection, site_id: str, **values: Any) -> None:
        now = utcnow()
        if self._site_row(conn, site_id) is None:
            conn.execute(insert(_site).values(site_id=site_id, created_time=now, updated_time=now, **values))
        else:
            conn.execute(update(_site).where(_site.c.site_id == site_id).values(updated_time=now, **values))

    @staticmethod
    def _save_cutpoint(conn: Connection, site_id: str, source: str, target: str, cutpoint: str,
                       **values: Any) -> None:
        now = utcnow()
        key = (_cut.c.site_id == site_id, _cut.c.source_version == source, _cut.c.target_version == target,
               _cut.c.cutpoint == cutpoint)
        if conn.execute(select(_cut.c.state).where(*key)).first() is None:
            conn.execute(insert(_cut).values(site_id=site_id, source_version=source, target_version=target,
                                             cutpoint=cutpoint, created_time=now, updated_time=now, **values))
        else:
            conn.execute(update(_cut).where(*key).values(updated_time=now, **values))

    @staticmethod
    def _append(conn: Connection, site_id: str, event: SiteEvent, *, cutpoint: str | None = None,
                source: str | None = None, target: str | None = None, execution_id: str | None = None,
                flow_run_id: str | None = None, actor: str | None = None,
                detail: Mapping[str, Any] | None = None) -> None:
        conn.execute(insert(_history).values(
            id=utcnow().strftime("%Y%m%d%H%M%S%f") + uuid.uuid4().hex[:12], site_id=site_id, event=event.value,
            cutpoint=cutpoint, source_version=source, target_version=target, execution_id=execution_id,
            flow_run_id=flow_run_id, actor=(actor or "")[:128] or None,
            detail=json.dumps(dict(detail), ensure_ascii=False, default=str) if detail else None,
            created_time=utcnow()))
