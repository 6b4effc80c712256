"""SqlScriptStep: the SQL scripts of startup_pre_process, statement by statement, with resume.

The seed's ``StartupPreProcessStep`` and ``PatchSqlExecutorStep`` (and the overseas step of the
sample configs) resolve here. Scripts are read and split before anything runs; every logical
database they name must be configured; the ledger then decides what still has to run.
"""

from __future__ import annotations

import concurrent.futures
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from tasks.core.errors import InputError, SqlScriptError, StepFailed
from tasks.core.masking import secret_literals
from tasks.core.progress import Progress
from tasks.core.runtime import in_prefect_run
from tasks.core.statuses import STATEMENT_DONE, StatementStatus, StepStatus
from tasks.core.steps import StepParams, StepResult
from tasks.sql import kinds
from tasks.sql.script import ScriptFile, load_script
from tasks.sql.verify import VerifyCheck
from tasks.steps.base import UpgradeStep

if TYPE_CHECKING:  # the runtime (executor, sessions, ledger) is imported by run(): `validate` and `plan` need
    # only the parameters, and the runtime brings SQLAlchemy along (a third of a second)
    from tasks.sql.executor import ScriptRunner, StatementDecision
    from tasks.sql.schema_diff import Snapshot
    from tasks.sql.windows import Unit
    from tasks.store.breakpoints import Breakpoint


class SqlScriptParams(StepParams):
    sql_scripts: list[str] = Field(min_length=1, description="Paths relative to the SQL root, run in order.")
    database: str = Field(default="ft_db", pattern=r"^[a-z][a-z0-9_]*$",
                          description="Logical database of statements without a `-- @database:` line.")
    transaction: Literal["per_file"] | None = Field(
        default=None, description="per_file: a DML-only file commits all or nothing on every database it touches.")
    statement_timeout: float = Field(default=300, gt=0, le=86400, description="Seconds per statement.")
    parallel: bool = Field(default=False, description="Run files of different databases concurrently.")
    schema_diff: bool = Field(default=True, description="Report the schema objects the step changed in each "
                              "MySQL/MariaDB database (catalog before and after).")
    verify: list[VerifyCheck] = Field(default_factory=list, description="Integrity checks after the scripts.")
    mask_patterns: list[str] = Field(default_factory=list, description="Extra regexes whose match is masked.")

    @field_validator("sql_scripts")
    @classmethod
    def _relative(cls, paths: list[str]) -> list[str]:
        for p in paths:
            if Path(p).is_absolute() or ".." in Path(p).parts:
                raise ValueError(f"{p!r}: SQL script paths are relative to the SQL root and stay inside it")
        return paths

    @model_validator(mode="after")
    def _unique(self) -> SqlScriptParams:
        if len(set(self.sql_scripts)) != len(self.sql_scripts):
            raise ValueError("a script is listed twice")
        return self


class SqlScriptStep(UpgradeStep):
    """Runs SQL scripts on several logical databases, statement by statement, resumable."""

    Params = SqlScriptParams
    writes_events = True
    description = "SQL scripts statement by statement on several databases, with breakpoint resume"
    params: SqlScriptParams

    @classmethod
    def static_checks(cls, params: SqlScriptParams, roots: dict[str, Any]) -> list[str]:
        problems = []
        for relative in params.sql_scripts:
            try:
                script = load_script(Path(roots["sql_root"]), relative, version="0", default_database=params.database)
            except SqlScriptError as exc:
                problems += exc.problems
                continue
            if params.transaction == "per_file":
                problems += _per_file_problems(script)
        return problems

    def load_scripts(self) -> list[ScriptFile]:
        ctx = self.context
        scripts, problems = [], []
        for relative in self.params.sql_scripts:
            try:
                script = load_script(ctx.resources.sql_root, relative, version=ctx.version,
                                     default_database=self.params.database)
            except SqlScriptError as exc:
                problems += exc.problems
                continue
            if self.params.transaction == "per_file":
                problems += _per_file_problems(script)
            scripts.append(script)
        if problems:
            raise InputError("SQL scripts cannot run as written:\n" + "\n".join(problems))
        return scripts

    def run(self) -> StepResult:
        from tasks.sql import report
        from tasks.sql.executor import ScriptRunner, SqlRunOptions
        from tasks.sql.forecast.site import forecast_for_step, outcome_for_step
        from tasks.sql.ledger import SqlLedger
        from tasks.sql.session import DatabaseSession, client_charset
        from tasks.sql.verify import run_checks
        from tasks.store.breakpoints import active_breakpoint, resolve_as_decided

        ctx = self.context
        resources = ctx.resources
        scripts = self.load_scripts()
        databases = sorted({db for s in scripts for db in s.databases}
                           | {c.database for c in self.params.verify}
                           | {c.compare_to.database for c in self.params.verify if c.compare_to})
        for name in databases:  # every database named must be configured and reachable before anything runs
            resources.engine(name)
        store = resources.metadata_store()
        store_engine = store.engine
        bp = active_breakpoint(store_engine, ctx.execution_id)
        for script in scripts:  # values a server error may echo where no keyword is left to mask them by
            for stmt in script.statements:
                resources.secrets.update(secret_literals(stmt.text, self.params.mask_patterns))
        ledger = SqlLedger(store_engine, ctx.execution_id, ctx.step_id, fence=store.lock)
        options = SqlRunOptions(execution_id=ctx.execution_id, step_id=ctx.step_id, site_id=ctx.site_id,
                                cutpoint=ctx.cutpoint, statement_timeout=self.params.statement_timeout,
                                per_file_transaction=self.params.transaction == "per_file",
                                mask_patterns=tuple(self.params.mask_patterns),
                                decision=_statement_decision(bp, ctx.step_id),
                                secrets=tuple(resources.secrets), lock=store.lock)
        total = sum(len(s.statements) for s in scripts)
        writer = resources.event_writer()
        settings = self.context.settings
        charsets = {name: client_charset(resources.profile, name, settings.client_charset) for name in databases}

        def open_session(name: str) -> DatabaseSession:
            session = DatabaseSession(name, resources.engine(name), statement_timeout=self.params.statement_timeout,
                                      reconnect_wait=resources.retry_wait, marker_schema=settings.marker_schema,
                                      marker_retention_days=settings.marker_retention_days,
                                      charset=charsets.get(name))
            if session.marker_warning:
                ctx.logger.warning("%s", session.marker_warning)
            return session

        statement_logger = ctx.logger
        if in_prefect_run():  # every statement line to the UI, not through the console's rich rendering
            from tasks.sql.in_prefect import api_only

            statement_logger = api_only(ctx.logger)
        runner = ScriptRunner(scripts=scripts, ledger=ledger, options=options, logger=ctx.logger, events=writer,
                              progress=Progress(total, f"{ctx.step_id}: SQL statements"),
                              session_factory=open_session, statement_logger=statement_logger)
        before = self._schema_before(sorted({db for s in scripts for db in s.databases}))
        forecast = forecast_for_step(ctx, scripts)
        failed: StepFailed | None = None
        try:
            runner.prepare()
            if bp is not None:
                resolve_as_decided(store_engine, ctx.execution_id,
                                   why="it went on from here; the statement is checked again before anything is sent")
            self._run_all(runner, scripts)
        except StepFailed as exc:
            failed = exc
        finally:
            runner.close(succeeded=failed is None and sys.exc_info()[0] is None)
        details = report.summary_details(runner.summary, [s.path for s in scripts])
        details["scripts_applied"] = _applied_scripts(runner, scripts)
        if failed is None and self.params.verify:
            verify = run_checks(self.params.verify, resources.engine)
            details["verify"] = [v.to_json() for v in verify]
            bad = [v for v in verify if not v.passed]
            if bad:
                failed = StepFailed("integrity check failed: " + "; ".join(v.describe() for v in bad))
        _publish_statement_table(ctx.step_id, runner)
        markdown = report.render(details, ctx.execution_id, ctx.language)
        if details.get("verify"):
            markdown += f"\n\n{report.words(ctx.language)['checks']}\n\n" + "\n".join(
                f"- {'✅' if v['passed'] else '❌'} {v['name']}: {v['detail']}" for v in details["verify"])
        if before:
            markdown += "\n\n" + self._schema_changes(before, details, scripts)
        versus = outcome_for_step(ctx, forecast, runner.summary.records, details)
        markdown += f"\n\n{versus}" if versus else ""
        t = report.words(ctx.language)
        result = StepResult(status=StepStatus.FAILED if failed else StepStatus.SUCCESS,
                            summary=(t["failed"].format(error=failed) if failed else
                                     t["summary"].format(success=details["success"], skipped=details["skipped"])),
                            details=details, markdown=markdown)
        if failed is not None:
            raise StepFailed(str(failed), result) from failed
        return result

    def _schema_before(self, databases: list[str]) -> dict[str, Snapshot]:
        """Each MySQL/MariaDB database's catalog as it was when this step first started (kept across resumes).

        When the SQL step that started just before this one read a database's catalog at its end, that is
        this step's "before" (nothing ran in between): one catalog read per step and database, not two."""
        import json

        from tasks.core.files import Private
        from tasks.sql.schema_diff import snapshot

        if not self.params.schema_diff:
            return {}
        ctx = self.context
        started = ctx.resources.steps_started
        previous = started[-2] if len(started) >= 2 and started[-1] == ctx.step_key else None
        folder = ctx.resources.home / "schema-before" / ctx.execution_id
        found: dict[str, Snapshot] = {}
        for name in databases:
            engine = ctx.resources.engine(name)
            if engine.dialect.name not in ("mysql", "mariadb"):
                continue
            kept = folder / f"{ctx.step_id}.{name}.json"
            try:
                if kept.exists():
                    found[name] = json.loads(kept.read_text(encoding="utf-8"))
                    continue
                by, last = ctx.resources.schema_after.get(name, (None, None))
                found[name] = last if previous is not None and by == previous else snapshot(engine)
                private = Private(self.context.settings.backup_group)  # definitions may hold customer secrets
                private.mkdir(folder)
                private.write_text(kept, json.dumps(found[name], ensure_ascii=False))
            except Exception as exc:  # the report loses a section; the upgrade goes on
                ctx.logger.warning("schema of %s not read before the step (%s): no schema diff for it", name, exc)
                found.pop(name, None)
        return found

    def _schema_changes(self, before: dict[str, Snapshot], details: dict[str, Any],
                        scripts: list[ScriptFile]) -> str:
        """The report section of what changed since :meth:`_schema_before` (masked); also in ``details``.

        A database this step sent only DML and session settings keeps its catalog: it is not read again."""
        from tasks.core.masking import mask_text
        from tasks.sql.schema_diff import diff, render, snapshot

        ctx = self.context
        changes = {}
        for name, old in before.items():
            sent = {k for s in scripts for st, k in zip(s.statements, s.kinds, strict=True) if st.database == name}
            try:
                after = old if sent <= _CATALOG_KEEPING else snapshot(ctx.resources.engine(name))
                ctx.resources.schema_after[name] = (ctx.step_key, after)
                changes[name] = diff(old, after)
            except Exception as exc:
                ctx.resources.schema_after.pop(name, None)
                ctx.logger.warning("schema of %s not read after the step (%s): no schema diff for it", name, exc)
        secrets = ctx.resources.secrets
        details["schema_changes"] = {db: [{**c.to_json(), "details": [mask_text(d, secrets) for d in c.details]}
                                          for c in found] for db, found in changes.items()}
        return mask_text(render(changes, ctx.language), secrets)

    def _run_all(self, runner: ScriptRunner, scripts: list[ScriptFile]) -> None:
        lanes = _lanes(scripts) if self.params.parallel else [scripts]
        if len(lanes) == 1:
            self._run_lane(runner, lanes[0])
            return
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(lanes)) as pool:
            futures = [pool.submit(self._run_lane, runner, lane) for lane in lanes]
            errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]  # type: ignore[misc]

    def _run_lane(self, runner: ScriptRunner, scripts: list[ScriptFile]) -> None:
        """The lane's statements, in order; in a Prefect run shown as task runs over windows of them."""
        if not in_prefect_run():
            for _ in self._lane_units(runner, scripts):
                pass
            return
        from tasks.sql.in_prefect import show_window
        from tasks.sql.windows import follow

        settings = self.context.settings
        follow(lambda: self._lane_units(runner, scripts), show_window,
               window_seconds=settings.statement_window_seconds, long_seconds=settings.statement_long_seconds,
               on_long=runner.statement_log.flush)

    def _lane_units(self, runner: ScriptRunner, scripts: list[ScriptFile]) -> Iterator[tuple[str, Unit]]:
        from tasks.sql.windows import Unit

        for script in scripts:
            if self.params.transaction == "per_file":
                unit = Unit(f"{script.path} (per_file transaction)", len(script.statements))
                yield "start", unit
                runner.run_file_transaction(script)
                yield "done", unit
                continue
            yield from runner.iter_range(script, 0, len(script.statements))


#: Statement kinds that leave a database's catalog as it was (rows and session state only).
_CATALOG_KEEPING = frozenset({kinds.DML, kinds.SESSION, kinds.SESSION_RECORD, kinds.USE, kinds.TXN_BEGIN,
                              kinds.TXN_END, kinds.SAVEPOINT})


def _publish_statement_table(step_id: str, runner: ScriptRunner, limit: int = 2000) -> None:
    """The statements of this run as a table artifact (capped: a 10,000-row data script is summarised), sent
    off the path (:mod:`tasks.core.background`): the next step does not wait for the API."""
    if not in_prefect_run():
        return
    from prefect.artifacts import create_table_artifact

    from tasks.core import background

    records = runner.summary.records
    rows = [{"file": r.file, "line": r.line, "seq": r.sequence, "database": r.database, "status": r.status,
             "ms": r.duration_ms, "rows": r.affected_rows, "sql": r.sql[:200], "note": r.note[:200]}
            for r in records if r.status != StatementStatus.SKIPPED][:limit]
    description = f"{step_id}: {len(rows)} of {len(records)} statements (skipped ones left out)"
    background.submit(lambda: create_table_artifact(table=rows, description=description),
                      f"statement table of {step_id}")


def _statement_decision(bp: Breakpoint | None, step_id: str) -> StatementDecision | None:
    """The operator's decision applies to the breakpoint's statement only, in the step that stopped there."""
    from tasks.sql.executor import StatementDecision

    decision = bp.decision if bp is not None else None
    if bp is None or decision is None or decision.inflight is None or bp.step_id != step_id \
            or bp.sql_file_id is None or bp.sql_sequence is None:
        return None
    return StatementDecision(file_id=bp.sql_file_id, sequence=bp.sql_sequence, action=decision.inflight,
                             by=decision.by, notes=decision.notes)


def _applied_scripts(runner: ScriptRunner, scripts: list[ScriptFile]) -> list[dict[str, str]]:
    """Scripts whose every statement is done in this execution, with the file's SHA-256 (the site records them)."""
    done = []
    for script in scripts:
        rows = runner.rows.get(script.file_id, {})
        if rows and all(rows[s.sequence].status in STATEMENT_DONE for s in script.statements):
            done.append({"path": script.path, "sha256": script.sha256})
    return done


def _per_file_problems(script: ScriptFile) -> list[str]:
    allowed = ("DML", "SESSION", "USE")
    return [f"{s.where}: transaction per_file allows only DML (and plain SET/USE), found {kind}"
            for s, kind in zip(script.statements, script.kinds, strict=True) if kind not in allowed]


def _lanes(scripts: list[ScriptFile]) -> list[list[ScriptFile]]:
    """Files grouped by their single database; files spanning several databases force one lane."""
    if any(len(s.databases) != 1 for s in scripts):
        return [scripts]
    lanes: dict[str, list[ScriptFile]] = {}
    for s in scripts:
        lanes.setdefault(next(iter(s.databases)), []).append(s)
    return list(lanes.values())

