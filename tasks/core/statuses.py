"""Every status the tool records, as enums: the metadata tables store their values, code compares members.

``StrEnum`` members equal their strings, so rows read back from the store compare with them directly.
"""

from __future__ import annotations

from enum import StrEnum


class ExecutionStatus(StrEnum):
    """``upgrade_execution.status``: one attempt at one cutpoint."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    PAUSED = "PAUSED"  # stopped at a breakpoint, waiting for an operator's decision (the seed's PAUSED)
    ABANDONED = "ABANDONED"
    EXPIRED = "EXPIRED"  # its breakpoint outlived the 7 days: never resumed again
    ROLLED_BACK = "ROLLED_BACK"  # closed by a rollback of its upgrade: never resumed, retried or redeployed


class ReportStatus(StrEnum):
    """``upgrade_report.status`` (the requirements' 报告状态): a report is GENERATED, then ARCHIVED once it is
    older than the report retention (``FT_UPGRADE_REPORT_RETENTION_DAYS``). The outcome is in its content."""

    GENERATED = "GENERATED"
    ARCHIVED = "ARCHIVED"


#: Executions a trigger of the same request continues (EXPIRED is found, then refused).
RESUMABLE = (ExecutionStatus.RUNNING, ExecutionStatus.FAILED, ExecutionStatus.PAUSED, ExecutionStatus.PENDING)


class StepStatus(StrEnum):
    """``step_execution.status`` and a step's own result."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


#: Steps that need not run again in the same execution.
STEP_DONE = (StepStatus.SUCCESS, StepStatus.SKIPPED)
#: Steps that ended without failing the execution.
STEP_FINISHED = (StepStatus.SUCCESS, StepStatus.WARNING, StepStatus.SKIPPED)
#: Steps whose dependents are skipped.
STEP_BLOCKING = (StepStatus.FAILED, StepStatus.WARNING, StepStatus.SKIPPED)


class StatementStatus(StrEnum):
    """``sql_execution_record.status``: one statement in the ledger."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"  # the operator applied it by hand (in the ledger); "already done" (in a run's records)


#: Statements that are done: skipped on resume, their session state replayed.
STATEMENT_DONE = (StatementStatus.SUCCESS, StatementStatus.SKIPPED)
#: Statements found in this state after a crash are decided before anything else.
STATEMENT_IN_FLIGHT = (StatementStatus.RUNNING, StatementStatus.FAILED)


class BreakpointStatus(StrEnum):
    """``upgrade_breakpoint.status``."""

    ACTIVE = "ACTIVE"
    RESOLVED = "RESOLVED"
    EXPIRED = "EXPIRED"


class BreakpointKind(StrEnum):
    """``upgrade_breakpoint.breakpoint_type``: where a run stopped."""

    SQL_LEVEL = "SQL_LEVEL"  # at one statement of a script (the ledger knows which)
    STEP_LEVEL = "STEP_LEVEL"  # at a step that failed otherwise


class CutpointState(StrEnum):
    """A cutpoint's state in one upgrade at one site."""

    NOT_STARTED = "NOT_STARTED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    PAUSED = "PAUSED"  # its execution waits for an operator's decision


class UpgradeStatus(StrEnum):
    """A site's upgrade (source → target)."""

    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    CLOSED = "CLOSED"  # a baseline recorded where the site stands instead
    ROLLING_BACK = "ROLLING_BACK"  # a rollback started and has not finished: no cutpoint may start
    ROLLED_BACK = "ROLLED_BACK"  # the site is back on the source version, the upgrade's records retired


class SiteEvent(StrEnum):
    """``upgrade_site_history.event``: what happened to a site, append-only."""

    TRIGGER_REFUSED = "TRIGGER_REFUSED"
    TRIGGER_NOOP = "TRIGGER_NOOP"
    UPGRADE_STARTED = "UPGRADE_STARTED"
    UPGRADE_COMPLETED = "UPGRADE_COMPLETED"
    CUTPOINT_STARTED = "CUTPOINT_STARTED"
    CUTPOINT_COMPLETED = "CUTPOINT_COMPLETED"
    CUTPOINT_FAILED = "CUTPOINT_FAILED"
    CUTPOINT_PAUSED = "CUTPOINT_PAUSED"  # stopped at a breakpoint, waiting for an operator's decision
    VERSION_MOVED = "VERSION_MOVED"
    SCRIPT_CHANGES_ACCEPTED = "SCRIPT_CHANGES_ACCEPTED"
    BASELINE = "BASELINE"
    OPERATOR_STOPPED = "OPERATOR_STOPPED"
    ROLLBACK_STARTED = "ROLLBACK_STARTED"
    ROLLBACK_FINISHED = "ROLLBACK_FINISHED"
    UPGRADE_ROLLED_BACK = "UPGRADE_ROLLED_BACK"  # who, why, which backup; what was retired
    ROLLBACK_FAILED = "ROLLBACK_FAILED"
