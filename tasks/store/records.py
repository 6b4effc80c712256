"""The records the metadata store hands out: typed, their JSON columns parsed once, here.

Like Alembic's ``Script`` or yoyo's ``Migration``: readers get attributes, never a row keyed by column
names. ``step_type`` (the seed's column name) is the record's ``cutpoint``. ``from_row`` is the one
place a row becomes a record; ``to_json`` gives the row's columns back for the CLI's ``--json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def parse_json(value: Any, empty: Any) -> Any:
    """A JSON column's value (already parsed values pass through); ``empty`` for NULL or ''."""
    if value is None or value == "":
        return empty
    return json.loads(value) if isinstance(value, (str, bytes)) else value


@dataclass(frozen=True)
class Execution:
    """One attempt at one cutpoint (``upgrade_execution``)."""

    execution_id: str
    site_id: str
    cutpoint: str
    source_version: str
    target_version: str
    status: str
    environment: dict[str, Any] = field(default_factory=dict)
    start_time: datetime | None = None
    end_time: datetime | None = None
    current_step_id: str | None = None
    total_steps: int = 0
    completed_steps: int = 0
    error_message: str | None = None
    created_by: str | None = None
    flow_run_id: str | None = None
    plan_fingerprint: str | None = None
    resume_count: int = 0
    requested_by: str | None = None
    rerun_of: str | None = None
    waivers: list[dict[str, Any]] = field(default_factory=list)
    configs_dir: str | None = None
    sql_root: str | None = None
    db_overrides: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Execution:
        return cls(
            execution_id=row["execution_id"], site_id=row["site_id"], cutpoint=row["step_type"],
            source_version=row["source_version"], target_version=row["target_version"], status=row["status"],
            environment=parse_json(row.get("environment"), {}), start_time=row.get("start_time"),
            end_time=row.get("end_time"), current_step_id=row.get("current_step_id"),
            total_steps=row.get("total_steps") or 0, completed_steps=row.get("completed_steps") or 0,
            error_message=row.get("error_message"), created_by=row.get("created_by"),
            flow_run_id=row.get("flow_run_id"), plan_fingerprint=row.get("plan_fingerprint"),
            resume_count=row.get("resume_count") or 0, requested_by=row.get("requested_by"),
            rerun_of=row.get("rerun_of"), waivers=parse_json(row.get("waivers"), []),
            configs_dir=row.get("configs_dir"), sql_root=row.get("sql_root"),
            db_overrides=tuple(n for n in (row.get("db_overrides") or "").split(",") if n))

    def listing(self) -> dict[str, Any]:
        """The columns ``ft-upgrade executions --json`` and ``info`` print (the seed's names)."""
        return {"execution_id": self.execution_id, "site_id": self.site_id, "step_type": self.cutpoint,
                "source_version": self.source_version, "target_version": self.target_version,
                "status": self.status, "resume_count": self.resume_count, "start_time": self.start_time,
                "end_time": self.end_time}


@dataclass(frozen=True)
class StepRun:
    """One step of one execution (``step_execution``); ``result`` is the step's parsed :class:`StepResult` JSON."""

    step_id: str
    step_key: str
    status: str
    execution_id: str = ""
    step_name: str | None = None
    cutpoint: str | None = None
    class_name: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration: int | None = None
    result: dict[str, Any] | None = None
    error_message: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    retry_count: int = 0
    execution_order: int = 0

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StepRun:
        return cls(
            step_id=row["step_id"], step_key=row["step_key"], status=row["status"],
            execution_id=row.get("execution_id") or "", step_name=row.get("step_name"),
            cutpoint=row.get("step_type"), class_name=row.get("class_name"), start_time=row.get("start_time"),
            end_time=row.get("end_time"), duration=row.get("duration"), result=_result(row.get("result")),
            error_message=row.get("error_message"), metadata=parse_json(row.get("metadata"), {}),
            retry_count=row.get("retry_count") or 0, execution_order=row.get("execution_order") or 0)

    @property
    def version(self) -> str:
        """The version code the step came from (its key is ``<version code>:<step id>``)."""
        return self.step_key.split(":", 1)[0]

    @property
    def summary(self) -> str:
        return str((self.result or {}).get("summary") or "")

    @property
    def description(self) -> str:
        """The config's description of the step, as the run recorded it."""
        return str(self.metadata.get("description") or "")

    @property
    def details(self) -> dict[str, Any]:
        return dict((self.result or {}).get("details") or {})

    @property
    def markdown(self) -> str:
        return str((self.result or {}).get("markdown") or "")


def _result(raw: Any) -> dict[str, Any] | None:
    """A step's stored result; one that does not parse reads as none (as the report always did)."""
    try:
        parsed = parse_json(raw, None)
    except (TypeError, ValueError):
        return None
    return parsed if isinstance(parsed, dict) else None


@dataclass(frozen=True)
class StoredReport:
    """A published report (``upgrade_report``): its JSON content, the markdown inside it."""

    id: str
    execution_id: str
    report_type: str
    status: str
    content: dict[str, Any]
    summary: str | None = None
    recommendations: str | None = None
    generated_time: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StoredReport:
        return cls(id=row["id"], execution_id=row["execution_id"], report_type=row["report_type"],
                   status=row["status"], content=parse_json(row.get("report_content"), {}),
                   summary=row.get("summary"), recommendations=row.get("recommendations"),
                   generated_time=row.get("generated_time"))
