"""``plan --sql``: every statement the planned SQL steps will send, per logical database, for a DBA's review.

Pure apart from reading the scripts (through :func:`tasks.sql.script.load_script`, the loader the
engine itself uses, so the statements, lines and kinds are the ones that will run). What the engine
guarantees a statement follows from its kind (README, "SQL scripts"); whether it already ran at the
site follows from the scripts the site recorded as applied, with their SHA-256. It opens no database;
``pending`` (what is still to run) is what the downtime forecast (:mod:`tasks.sql.forecast.site`) reads them for.

Example:
    ```python
    preview = preview_sql(plan, Path("sql"), {a.path: a for a in service.applied_scripts("CN")})
    preview.by_database()["ft_db"][0].where  # 'baseline/317500/001_orders_status.sql:3'
    ```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from tasks.core.cutpoints import Cutpoint
from tasks.core.errors import SqlScriptError
from tasks.core.masking import mask_sql
from tasks.planning.plan import PlannedStep, UpgradePlan
from tasks.sql import kinds as k
from tasks.sql.forecast.estimate import Statement
from tasks.sql.forecast.site import statements_of
from tasks.sql.inflight import ddl_probes, decidable_by_catalog
from tasks.sql.kinds import StatementKind
from tasks.sql.script import ScriptFile, load_script

APPLIED, CHANGED, PENDING = "applied", "changed since applied", "pending"

#: What the engine guarantees after a crash or a lost connection, per statement kind (README table).
GUARANTEES = {
    k.DML: "exactly once: its marker commits in its transaction (on a non-transactional table: the operator "
           "decides)",
    k.SESSION: "replayed on resume and reconnect",
    k.USE: "replayed on resume and reconnect",
    k.SESSION_RECORD: "its value is recorded and replayed, never recomputed",
    k.UNKNOWN: "the operator decides",
    k.OTHER: "the operator decides",
}
UNIT = "one unit with the script's transaction: committed → done, else again from its start"
CATALOG = "decided from the catalog"
CREATION_TIME = "decided by the object's creation time against the server's clock"


class Applied(Protocol):
    """A script the site recorded as applied (``tasks.store.site_state.AppliedScript``)."""

    sha256: str
    execution_id: str


@dataclass(frozen=True)
class PreviewStatement:
    """One statement as it will be sent, and what the engine promises about it."""

    database: str
    file: str
    line: int
    sequence: int
    kind: str
    verb: str
    guarantee: str
    status: str
    step: str
    sql: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class PreviewFile:
    """One script of the plan: its hash now and, where it was applied at the site, then."""

    path: str
    step: str
    sha256: str
    status: str
    applied_sha256: str | None
    execution_id: str | None


@dataclass(frozen=True)
class SqlPreview:
    files: tuple[PreviewFile, ...]
    statements: tuple[PreviewStatement, ...]
    #: What startup_pre_process will run at the site (files not applied there yet), unmasked, for the downtime
    #: forecast.
    pending: tuple[Statement, ...] = ()

    def by_database(self) -> dict[str, list[PreviewStatement]]:
        """Statements per logical database, in the order they run there."""
        out: dict[str, list[PreviewStatement]] = {}
        for statement in self.statements:
            out.setdefault(statement.database, []).append(statement)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"files": [asdict(f) for f in self.files],
                "databases": {db: [asdict(s) for s in rows] for db, rows in self.by_database().items()}}


def preview_sql(plan: UpgradePlan, sql_root: Path, applied: Mapping[str, Applied]) -> SqlPreview:
    """The statements of the plan's SQL steps; raises :class:`SqlScriptError` naming file:line, as a run would."""
    files: list[PreviewFile] = []
    statements: list[PreviewStatement] = []
    pending: list[Statement] = []
    for step in plan.steps:
        for script in step_scripts(step, sql_root):
            record = applied.get(script.path)
            status = PENDING if record is None else APPLIED if record.sha256 == script.sha256 else CHANGED
            files.append(PreviewFile(script.path, step.key, script.sha256, status,
                                     record.sha256 if record else None, record.execution_id if record else None))
            statements += _statements(script, step.key, status)
            if status == PENDING and step.cutpoint == Cutpoint.STARTUP_PRE_PROCESS:  # the services are down then
                pending += statements_of([script], step.key)
    return SqlPreview(tuple(files), tuple(statements), tuple(pending))


def step_scripts(step: PlannedStep, sql_root: Path) -> list[ScriptFile]:
    """The scripts a planned SQL step runs, loaded as the step loads them (other steps: none)."""
    database = step.params.get("database") or "ft_db"
    loaded, problems = [], []
    for relative in step.params.get("sql_scripts") or []:  # every problem of every file, as validate lists them
        try:
            loaded.append(load_script(sql_root, relative, version=step.version, default_database=database))
        except SqlScriptError as exc:
            problems += exc.problems
    if problems:
        raise SqlScriptError("\n".join(problems), problems=problems)
    return loaded


def _statements(script: ScriptFile, step: str, status: str) -> list[PreviewStatement]:
    in_unit = {i for begin, end in script.units for i in range(begin, end + 1)}
    return [PreviewStatement(database=s.database, file=s.source_name, line=s.line, sequence=s.sequence, kind=d.kind,
                             verb=d.verb, guarantee=UNIT if i in in_unit else guarantee(d, s.text), status=status,
                             step=step, sql=mask_sql(s.text))
            for i, (s, d) in enumerate(zip(script.statements, script.details, strict=True))]


def guarantee(detail: StatementKind, text: str) -> str:
    """What the engine guarantees for one statement outside a script transaction."""
    if detail.kind != k.DDL:
        return GUARANTEES.get(detail.kind, "the operator decides")
    if decidable_by_catalog(text):
        return CATALOG
    probes = ddl_probes(text)
    if probes and all(p.replaced for p in probes):
        return CREATION_TIME + " (the same second: the operator)"
    return "the operator decides"
