"""Breakpoints (断点): where an execution stopped, why, and how to continue; at most one ACTIVE each.

Written before a step reports its failure, so the operator (and the next attempt) always finds
it. Expires after 7 days. An operator's decision (:class:`OperatorDecision`: who, notes, and for a
statement in doubt ``--inflight applied|retry``) is kept in the breakpoint's own columns until the
resume that uses it resolves the breakpoint.

A breakpoint at a statement (or step) where an earlier attempt already stopped keeps the first error
there (:attr:`Breakpoint.original_error`): a resume that finds the statement in doubt says so in its own
words, and the server's message must not be lost with it. A breakpoint closed by a later attempt says
which attempt (resume count, flow run) and why.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, get_args

from sqlalchemy import Connection, Engine, select, update

from tasks.core.clock import utcnow
from tasks.core.parameters import InflightDecision
from tasks.core.statuses import BreakpointKind, BreakpointStatus
from tasks.store import schema
from tasks.store.records import parse_json

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
    def of_row(cls, row: Mapping[str, Any]) -> OperatorDecision | None:
        """The decision recorded in a breakpoint row's columns, if any."""
        if not row.get("decision_by"):
            return None
        return cls(by=row["decision_by"], notes=row.get("decision_notes") or "",
                   inflight=row.get("decision_inflight"), time=row.get("decision_time"))


@dataclass(frozen=True)
class Breakpoint:
    """Where an execution stopped (``upgrade_breakpoint``), its context read once: what kind, which
    statement and database, whether it may have taken effect (``in_doubt``), whether the run lost its lock."""

    id: str
    execution_id: str
    step_id: str
    kind: BreakpointKind
    expiry_time: datetime
    status: str = BreakpointStatus.ACTIVE
    breakpoint_time: datetime | None = None
    sql_file_id: str | None = None
    sql_file_name: str | None = None
    sql_line_number: int | None = None
    sql_sequence: int | None = None
    sql_content: str | None = None
    failure_reason: str | None = None
    error_code: str | None = None
    resume_instructions: str | None = None
    database: str | None = None
    in_doubt: bool = False
    lock_lost: bool = False
    step_key: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    decision: OperatorDecision | None = None
    resolved_by: str | None = None
    resolved_time: datetime | None = None
    resolve_notes: str | None = None

    @property
    def original_error(self) -> dict[str, Any] | None:
        """The first error at this statement (or step), when an earlier attempt stopped here with another one:
        ``breakpoint``, ``time``, ``error_code``, ``message``."""
        first = self.context.get("original_error")
        if not isinstance(first, dict):
            return None
        if (first.get("error_code"), first.get("message")) == (self.error_code, self.failure_reason):
            return None
        return first

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Breakpoint:
        context = parse_json(row.get("context_data"), {})
        return cls(
            id=row["id"], execution_id=row.get("execution_id") or "", step_id=row["step_id"],
            kind=BreakpointKind(row["breakpoint_type"]), expiry_time=row["expiry_time"],
            status=row.get("status") or BreakpointStatus.ACTIVE, breakpoint_time=row.get("breakpoint_time"),
            sql_file_id=row.get("sql_file_id"),
            sql_file_name=row.get("sql_file_name"), sql_line_number=row.get("sql_line_number"),
            sql_sequence=row.get("sql_sequence"), sql_content=row.get("sql_content"),
            failure_reason=row.get("failure_reason"), error_code=row.get("error_code"),
            resume_instructions=row.get("resume_instructions"), database=context.get("database"),
            in_doubt=bool(context.get("in_doubt")), lock_lost=bool(context.get("lock_lost")),
            step_key=context.get("step_key"), context=context, decision=OperatorDecision.of_row(row),
            resolved_by=row.get("resolved_by"), resolved_time=row.get("resolved_time"),
            resolve_notes=row.get("resolve_notes"))

    @property
    def at_statement(self) -> bool:
        """A statement's breakpoint (the ledger knows it): an operator may decide about that statement."""
        return self.kind == BreakpointKind.SQL_LEVEL and self.sql_sequence is not None

    @property
    def where(self) -> str:
        """``file:line`` of a statement's breakpoint, else the step."""
        return f"{self.sql_file_name}:{self.sql_line_number}" if self.sql_file_name else f"step {self.step_id}"


def open_breakpoint(engine: Engine, *, execution_id: str, step_id: str, kind: BreakpointKind | str, message: str,
                    instructions: str, context: dict[str, Any], file: str | None = None,
                    file_id: str | None = None, line: int | None = None, sequence: int | None = None,
                    sql: str | None = None, error_code: str | None = None, fence: HeldLock | None = None) -> str:
    """Record an ACTIVE breakpoint (superseding an older active one of the same execution); the first error
    of an earlier breakpoint at the same place is kept in its context (``original_error``).

    ``fence``: the site lock of the run writing it; nothing is written if the run no longer holds it.
    """
    now = utcnow()
    bp_id = "BP_" + now.strftime("%Y%m%d_%H%M%S_") + uuid.uuid4().hex[:6]
    with engine.begin() as conn:
        if fence is not None:
            fence.verify(conn)
        first = _first_error_here(conn, execution_id, step_id, file_id, sequence)
        if first is not None:
            context = {**context, "original_error": first}
        where = f"{file}:{line}" if file else f"step {step_id}"
        conn.execute(update(_bp).where(_bp.c.active_execution_id == execution_id).values(
            status=BreakpointStatus.RESOLVED, active_execution_id=None, resolved_by="ft-upgrade", resolved_time=now,
            resolve_notes=f"superseded by {bp_id}: {_attempt(conn, execution_id)} stopped at {where}",
            updated_time=now))
        conn.execute(_bp.insert().values(
            id=bp_id, execution_id=execution_id, step_id=step_id, sql_file_id=file_id, sql_file_name=file,
            sql_line_number=line, sql_sequence=sequence, sql_content=sql, breakpoint_type=kind,
            context_data=json.dumps(context, ensure_ascii=False, default=str), failure_reason=message,
            error_code=error_code, resume_instructions=instructions, status=BreakpointStatus.ACTIVE,
            active_execution_id=execution_id, breakpoint_time=now, expiry_time=now + BREAKPOINT_TTL,
            created_time=now, updated_time=now))
    return bp_id


def _first_error_here(conn: Connection, execution_id: str, step_id: str, file_id: str | None,
                      sequence: int | None) -> dict[str, Any] | None:
    """The first error of the execution at this statement (or this step, for a step's breakpoint), if an
    earlier breakpoint stopped there."""
    earlier = conn.execute(select(_bp).where(
        _bp.c.execution_id == execution_id, _bp.c.step_id == step_id,
        _bp.c.sql_file_id == file_id if file_id is not None else _bp.c.sql_file_id.is_(None),
        _bp.c.sql_sequence == sequence if sequence is not None else _bp.c.sql_sequence.is_(None),
    ).order_by(_bp.c.breakpoint_time.desc()).limit(1)).mappings().first()
    if earlier is None:
        return None
    kept = parse_json(earlier.get("context_data"), {}).get("original_error")
    if isinstance(kept, dict):
        return kept
    return {"breakpoint": earlier["id"], "time": f"{earlier['breakpoint_time']:%Y-%m-%d %H:%M:%S} UTC",
            "error_code": earlier.get("error_code"), "message": earlier.get("failure_reason")}


def _attempt(conn: Connection, execution_id: str) -> str:
    """Which attempt of the execution is running: its resume count and flow run (for a breakpoint it closes)."""
    e = schema.upgrade_execution
    row = conn.execute(select(e.c.resume_count, e.c.flow_run_id).where(e.c.execution_id == execution_id)).first()
    if row is None:
        return "a later attempt"
    resumes, flow_run_id = int(row[0] or 0), row[1]
    which = f"resume {resumes}" if resumes else "the first run"
    return f"attempt {resumes + 1} ({which}" + (f", flow run {flow_run_id})" if flow_run_id else ")")


def active_breakpoint(engine: Engine, execution_id: str) -> Breakpoint | None:
    with engine.connect() as conn:
        row = conn.execute(select(_bp).where(_bp.c.active_execution_id == execution_id)).mappings().first()
    return Breakpoint.from_row(row) if row else None


def breakpoints_of(engine: Engine, execution_ids: list[str]) -> list[Breakpoint]:
    """Every breakpoint of these executions, settled ones included (with their decisions), oldest first."""
    if not execution_ids:
        return []
    with engine.connect() as conn:
        rows = conn.execute(select(_bp).where(_bp.c.execution_id.in_(execution_ids))
                            .order_by(_bp.c.breakpoint_time, _bp.c.id)).mappings().all()
    return [Breakpoint.from_row(r) for r in rows]


def resolve_breakpoint(engine: Engine, execution_id: str, *, by: str, notes: str) -> None:
    """The active breakpoint is settled: by whom, how."""
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


def resolve_as_decided(engine: Engine, execution_id: str, *, why: str) -> None:
    """Settle the active breakpoint the way the operator's recorded decision says (who, notes); without a
    decision the tool closes it, saying which attempt and ``why`` (never just "resumed"). The one way a
    resume that got under way resolves it."""
    bp = active_breakpoint(engine, execution_id)
    if bp is None:
        return
    decision = bp.decision
    if decision is not None:
        resolve_breakpoint(engine, execution_id, by=decision.by, notes=decision.notes)
        return
    with engine.connect() as conn:
        attempt = _attempt(conn, execution_id)
    resolve_breakpoint(engine, execution_id, by="ft-upgrade", notes=f"closed by {attempt} without an operator's "
                                                                   f"decision: {why}")

