"""Breakpoints (断点): where an execution stopped, why, and how to continue; at most one ACTIVE each.

Written before a step reports its failure, so the operator (and the next attempt) always finds
it. Expires after 7 days. An operator's decision (:class:`OperatorDecision`: who, notes, and for a
statement in doubt ``--inflight applied|retry``) is kept in the breakpoint's own columns until the
resume that uses it resolves the breakpoint.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, get_args

from sqlalchemy import Engine, select, update

from tasks.core.clock import utcnow
from tasks.core.parameters import InflightDecision
from tasks.core.statuses import BreakpointStatus
from tasks.store import schema

if TYPE_CHECKING:
    from tasks.store.site_lock import HeldLock

BREAKPOINT_TTL = timedelta(days=7)
_bp = schema.upgrade_breakpoint

Inflight = InflightDecision
INFLIGHT_CHOICES: tuple[str, ...] = get_args(InflightDecision)


@dataclass(frozen=True)
class OperatorDecision:
    """What the operator decided before resuming: recorded on the breakpoint, applied by the resume.

    ``inflight`` applies to the breakpoint's statement only: ``applied`` (it took effect), ``retry`` (run
    it again) or ``skip`` (the operator applied it by hand; never run, recorded with who and why).
    """

    by: str
    notes: str
    inflight: Inflight | None = None
    time: datetime | None = None

    @classmethod
    def of(cls, row: dict[str, Any] | None) -> OperatorDecision | None:
        """The decision recorded on a breakpoint row, if any."""
        if row is None or not row.get("decision_by"):
            return None
        return cls(by=row["decision_by"], notes=row.get("decision_notes") or "",
                   inflight=row.get("decision_inflight"), time=row.get("decision_time"))


def open_breakpoint(engine: Engine, *, execution_id: str, step_id: str, kind: str, message: str,
                    instructions: str, context: dict[str, Any], file: str | None = None,
                    file_id: str | None = None, line: int | None = None, sequence: int | None = None,
                    sql: str | None = None, error_code: str | None = None, fence: HeldLock | None = None) -> str:
    """Record an ACTIVE breakpoint (superseding an older active one of the same execution).

    ``fence``: the site lock of the run writing it; nothing is written if the run no longer holds it.
    """
    now = utcnow()
    bp_id = "BP_" + now.strftime("%Y%m%d_%H%M%S_") + uuid.uuid4().hex[:6]
    with engine.begin() as conn:
        if fence is not None:
            fence.verify(conn)
        conn.execute(update(_bp).where(_bp.c.active_execution_id == execution_id).values(
            status=BreakpointStatus.RESOLVED, active_execution_id=None, resolved_by="ft-upgrade", resolved_time=now,
            resolve_notes="superseded by a new failure", updated_time=now))
        conn.execute(_bp.insert().values(
            id=bp_id, execution_id=execution_id, step_id=step_id, sql_file_id=file_id, sql_file_name=file,
            sql_line_number=line, sql_sequence=sequence, sql_content=sql, breakpoint_type=kind,
            context_data=json.dumps(context, ensure_ascii=False, default=str), failure_reason=message,
            error_code=error_code, resume_instructions=instructions, status=BreakpointStatus.ACTIVE,
            active_execution_id=execution_id, breakpoint_time=now, expiry_time=now + BREAKPOINT_TTL,
            created_time=now, updated_time=now))
    return bp_id


def active_breakpoint(engine: Engine, execution_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(_bp).where(_bp.c.active_execution_id == execution_id)).mappings().first()
    return dict(row) if row else None


def resolve_breakpoint(engine: Engine, execution_id: str, *, by: str, notes: str) -> None:
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(update(_bp).where(_bp.c.active_execution_id == execution_id).values(
            status=BreakpointStatus.RESOLVED, active_execution_id=None, resolved_by=by, resolved_time=now,
            resolve_notes=notes,
            updated_time=now))


def expire_breakpoint(engine: Engine, execution_id: str) -> None:
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(update(_bp).where(_bp.c.active_execution_id == execution_id).values(
            status=BreakpointStatus.EXPIRED, active_execution_id=None, updated_time=now))


def record_decision(engine: Engine, execution_id: str, decision: OperatorDecision) -> bool:
    """Store an operator's decision on the active breakpoint; False if there is none."""
    now = utcnow()
    with engine.begin() as conn:
        found = conn.execute(update(_bp).where(_bp.c.active_execution_id == execution_id).values(
            decision_inflight=decision.inflight, decision_by=decision.by[:128], decision_notes=decision.notes,
            decision_time=now, updated_time=now))
    return bool(found.rowcount)


def pending_decision(engine: Engine, execution_id: str) -> OperatorDecision | None:
    """The decision recorded on the execution's active breakpoint (None: no breakpoint or no decision)."""
    return OperatorDecision.of(active_breakpoint(engine, execution_id))
