"""``ft-upgrade``: the command line used by CICD scripts, operators and tests.

Exit codes: 0 success, 1 the upgrade failed (state saved, resumable), 2 bad input (nothing
executed). Only this module prints or exits; everything else returns values or raises.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from tasks.core.cutpoints import Cutpoint
from tasks.core.parameters import InflightDecision
from tasks.core.statuses import ExecutionStatus

EXIT_CODES = ("Exit codes: 0 done, or nothing to do (already completed); 1 failed: the output names the "
              "execution and how to resume it; 2 bad input, or refused (busy site, missing precondition, a --from "
              "that differs from the site's version): nothing ran.")
app = typer.Typer(help="FT system upgrades: plan, run and resume the five CICD cutpoints.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False, epilog=EXIT_CODES)
blocks_app = typer.Typer(help="Create or update the Prefect blocks of a site.", no_args_is_help=True)
app.add_typer(blocks_app, name="blocks")
backup_app = typer.Typer(help="List and restore the backups taken by pre_upgrade_process.", no_args_is_help=True)
app.add_typer(backup_app, name="backup")

def _console(stderr: bool = False) -> Console:
    """Piped (a CI log, a file), tables keep their full width instead of a terminal's 80 columns."""
    stream = sys.stderr if stderr else sys.stdout
    piped = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, soft_wrap=True, width=240 if piped else None)


out = _console()
err = _console(stderr=True)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"ft-auto-upgrade {version('ft-auto-upgrade')} (prefect {version('prefect')})")
        raise typer.Exit(0)


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                   help="Print the version and exit.")] = False,
             debug: Annotated[bool, typer.Option(
                 "--debug", help="Show Python tracebacks of expected failures too (a failed statement, a "
                                 "refusal, bad input).")] = False) -> None:
    """FT system upgrades: plan, run and resume the five CICD cutpoints."""
    from tasks.core.quiet import quiet_expected_failures

    quiet_expected_failures(not debug and os.environ.get("FT_UPGRADE_DEBUG", "") not in ("1", "true"))

ConfigsOpt = Annotated[Path | None, typer.Option("--configs", help="Folder of version configs.")]
SqlRootOpt = Annotated[Path | None, typer.Option("--sql-root", help="Root folder of SQL scripts.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
DbOpt = Annotated[list[str] | None, typer.Option("--db", help="Override a logical database: NAME=URL "
                                                             "(metadata=URL: the store the run used).")]
SiteOpt = Annotated[str | None, typer.Option("--site", help="The site whose metadata store holds the execution "
                                                          "(default: found in the shared store or the site blocks).")]
ByOpt = Annotated[str, typer.Option("--by", help="Who asks (recorded); default: the local user.")]
YesOpt = Annotated[bool, typer.Option("--yes", help="Confirm without asking (needed when not on a terminal).")]


@dataclass(frozen=True)
class _Where:
    """Where a command reads configs and SQL and which connections it was given: passed on, never set in os.environ."""

    settings: Any
    databases: dict[str, str]

    @property
    def metadata_url(self) -> str | None:
        return self.databases.get("metadata")

    @property
    def overrides(self) -> Any:
        from tasks.site.resources import SiteOverrides

        return SiteOverrides(databases=self.databases)

    def flow_parameters(self) -> dict[str, Any]:
        """The same, as the flow's parameters (URLs as secrets: Prefect shows them masked)."""
        from pydantic import SecretStr

        return {"configs_dir": str(self.settings.configs), "sql_root": str(self.settings.sql_root),
                "databases": {k: SecretStr(v) for k, v in self.databases.items()} or None}


def _where(configs: Path | None = None, sql_root: Path | None = None, db: list[str] | None = None) -> _Where:
    from blocks.database import check_logical_name
    from tasks.core.settings import get_settings

    databases = _pairs(db, "--db")
    for name in databases:
        try:
            check_logical_name(name)
        except ValueError as exc:
            raise _BadInput(str(exc)) from None
    return _Where(settings=get_settings(configs=configs.resolve() if configs else None,
                                        sql_root=sql_root.resolve() if sql_root else None),
                  databases=databases)


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise _BadInput(f"{option} expects NAME=VALUE, got {item!r}")
        result[key.strip()] = value
    return result


class _BadInput(Exception):
    pass


def _read_json(file: Path) -> Any:
    """A JSON file named on the command line; a bad one is bad input naming file:line:col."""
    try:
        return json.loads(file.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise _BadInput(f"{file}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise _BadInput(f"{file}:{exc.lineno}:{exc.colno}: {exc.msg}") from None


#: Whether the running command was given --json: its failures are a JSON object on stdout too.
_JSON_FAILURES: contextvars.ContextVar[bool] = contextvars.ContextVar("ft_upgrade_json_failures", default=False)


def _fail(message: str, code: int, prefix: str = "error") -> NoReturn:
    """The failure on stderr; under --json also ``{"status": "error"|"refused", "exit_code": …, "error": …}`` on
    stdout (``refused``: a busy site or a trigger that may not run; nothing ran)."""
    err.print(f"[bold red]{prefix}:[/] {message}", highlight=False)
    if _JSON_FAILURES.get():
        status = "refused" if prefix == "refused" else "error"
        print(json.dumps({"status": status, "exit_code": code, "error": message}, ensure_ascii=False))
    raise typer.Exit(code)


def _fail_input(message: str) -> NoReturn:
    _fail(message, 2)


def _guard(fn: Any) -> Any:
    """Turn input errors into exit 2 with the message, and nothing else."""
    import functools

    from tasks.core.errors import InputError

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = _JSON_FAILURES.set(bool(kwargs.get("json_out")))
        try:
            return fn(*args, **kwargs)
        except (InputError, _BadInput) as exc:
            _fail_input(str(exc))
        finally:
            _JSON_FAILURES.reset(token)

    return wrapper


@app.command()
@_guard
def validate(configs: ConfigsOpt = None, sql_root: SqlRootOpt = None,
             site: Annotated[str | None, typer.Option(
                 "--site", help="Also check that the scripts applied at this site are unchanged on disk, and "
                                "plan from the site's recorded version.")] = None,
             source: Annotated[str | None, typer.Option(
                 "--from", help="Also plan from this source version (e.g. the version of the sites to upgrade).")
             ] = None,
             db: DbOpt = None, json_out: JsonOpt = False) -> None:
    """Check every config, step class, step parameter and SQL file, and plan every range at every site known;
    exit 2 listing every problem."""
    from tasks.core.errors import InputError
    from tasks.planning.validation import validate_tree

    where = _where(configs, sql_root, db)
    settings = where.settings
    sites, databases = _known_sites(where, site)
    loaded = validate_tree(settings.configs, settings.sql_root, settings.allowed_step_modules, sites=sites,
                           known_databases=databases, sources=_sources(source, site, where))
    drift = _script_drift(site, where) if site else []
    if drift:
        raise InputError(f"scripts applied at site {site} have changed on disk:\n" +
                         "\n".join(x.describe() for x in drift))
    if json_out:
        print(json.dumps({"status": "ok", "configs": [c.path for c in loaded]}))
        return
    for item in loaded:
        for warning in item.warnings:
            err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    checked = f"; scripts applied at site {site} unchanged" if site else ""
    out.print(f"[green]ok[/]: {len(loaded)} configs valid in {settings.configs}{checked}", highlight=False)


def _sources(source: str | None, site: str | None, where: _Where) -> dict[Any, str]:
    """Versions ``validate`` plans from: ``--from``, and the version the site's store records for ``--site``."""
    from tasks.core.versions import Version

    found: dict[Any, str] = {Version.parse(source): "--from"} if source else {}
    if site and _has_store(where):
        from tasks.execution.service import ExecutionService

        with ExecutionService.open(site, metadata_url=where.metadata_url) as service:
            state = service.sites.get(site)
        if state and state.current_version:
            current = Version.parse(state.current_version)
            label = f"site {site}'s version"
            found[current] = f"{found[current]}, {label}" if current in found else label
    return found


def _known_sites(where: _Where, site: str | None) -> tuple[set[str], set[str]]:
    """Sites ``validate`` plans for (the site files', ``--site``) and the logical databases they can reach:
    the standard ones, the site files', ``FT_UPGRADE_DB_<NAME>`` and ``--db``."""
    from blocks.database import LOGICAL_DATABASES
    from tasks.core.settings import PROJECT_ROOT
    from tasks.planning.validation import site_files

    files = site_files(PROJECT_ROOT / "deployments" / "sites")
    sites = set(files) | ({site} if site else set())
    from_env = {k.removeprefix("FT_UPGRADE_DB_").lower() for k in os.environ if k.startswith("FT_UPGRADE_DB_")}
    databases = set(LOGICAL_DATABASES).union(*files.values(), from_env, where.databases)
    return sites, databases


def _script_drift(site: str, where: _Where) -> list[Any]:
    """Scripts applied at the site that changed on disk since (the site's own metadata store).

    Without any store (no URL, no block to ask, no local file) nothing was applied here yet: answered
    without opening, hence creating, one.
    """
    if not _has_store(where):
        return []
    from tasks.execution.service import ExecutionService

    with ExecutionService.open(site, metadata_url=where.metadata_url) as service:
        return service.script_drift(site, where.settings.sql_root)


def _has_store(where: _Where) -> bool:
    """Whether a metadata store may exist (a URL, blocks to ask, the local file): else nothing was applied yet."""
    from blocks.database import can_load_blocks, url_from_environment

    return bool(where.metadata_url or url_from_environment("metadata") or can_load_blocks()
                or (where.settings.home / "metadata.db").exists())


def _sql_preview(result: Any, where: _Where) -> tuple[Any, Any]:
    """The plan's statements per database, marked by what the site's store recorded as applied, and the
    downtime forecast of those still to run (the site's databases read, read-only)."""
    from tasks.planning.sql_preview import preview_sql
    from tasks.sql.forecast.site import plan_forecast

    if not _has_store(where):
        preview = preview_sql(result, where.settings.sql_root, {})
        return preview, plan_forecast(preview.pending, result.site_id, settings=where.settings,
                                      overrides=where.overrides)
    from tasks.execution.service import ExecutionService

    with ExecutionService.open(result.site_id, metadata_url=where.metadata_url) as service:
        applied = {a.path: a for a in service.applied_scripts(result.site_id)}
        preview = preview_sql(result, where.settings.sql_root, applied)
        return preview, plan_forecast(preview.pending, result.site_id, settings=where.settings,
                                      overrides=where.overrides, store_engine=service.store.engine)


def _print_forecast(forecast: Any) -> None:
    """The downtime forecast: each DDL's algorithm and seconds, the total, what dominates, what could run online."""
    from rich.text import Text

    from tasks.sql.forecast.site import seconds_text

    shown = [s for s in forecast.statements if s.shown]
    table = Table(title=f"downtime forecast of startup_pre_process: {seconds_text(forecast.seconds)} for "
                        f"{len(forecast.statements)} statements still to run")
    for col in ("file:line", "database", "table", "algorithm", "rebuild", "rows", "seconds", "statement"):
        table.add_column(col, overflow="fold")
    for s in shown:
        how = s.category + (f" [{s.algorithm}, LOCK={s.lock}]" if s.algorithm not in ("", "INSTANT", "COPY") else "")
        first = s.sql.strip().splitlines()[0][:60] if s.sql.strip() else ""
        table.add_row(Text(s.where), s.database, s.table, how + ("" if s.certain else " ?"),
                      {"rebuild": "yes", "copy": "copy"}.get(s.work, "-"), str(s.rows), f"{s.seconds:.2f}", Text(first))
    out.print(table)
    rates = ", ".join(f"{w} {r.rows_per_second:,.0f} rows/s ({'learned' if r.learned_from else 'default'})"
                      for w, r in forecast.rates.items())
    out.print(f"throughput: {rates}", highlight=False)
    for db, server in forecast.servers.items():
        out.print(f"{db}: {server}", highlight=False)
    for db, why in forecast.unavailable.items():
        err.print(f"[yellow]forecast:[/] no facts for {db}: {why}; its statements count at their fixed cost",
                  highlight=False)
    if forecast.uncertain:
        out.print(f"{len(forecast.uncertain)} statements of unknown duration (marked ?)", highlight=False)
    for s in forecast.dominating:
        out.print(f"dominating: {s.where} {s.seconds:.1f}s ({s.category}, {s.rows} rows of {s.table})", highlight=False)
    for s in forecast.online_candidates:
        out.print(f"could run online before the stop (advice only): {s.where} {s.seconds:.1f}s "
                  f"({s.category}, LOCK=NONE)", highlight=False)


_STATUS_STYLE = {"applied": "green", "pending": "yellow", "changed since applied": "red"}


def _print_sql_preview(preview: Any) -> None:
    """One table per logical database: each statement with file:line, kind, guarantee and status at the site."""
    from rich.text import Text  # SQL may hold [brackets] that rich would read as markup

    for database, rows in preview.by_database().items():
        counts = ", ".join(f"{sum(r.status == s for r in rows)} {s}" for s in _STATUS_STYLE
                           if any(r.status == s for r in rows))
        table = Table(title=f"{database}: {len(rows)} statements ({counts})")
        for col in ("#", "file:line", "kind", "guarantee", "status", "statement"):
            table.add_column(col, overflow="fold")
        for i, row in enumerate(rows, 1):
            first = row.sql.strip().splitlines()[0] if row.sql.strip() else ""
            text = first[:80] + ("…" if len(first) > 80 or "\n" in row.sql.strip() else "")
            style = _STATUS_STYLE.get(row.status, "")
            table.add_row(str(i), Text(row.where), f"{row.kind} {row.verb}".strip(), row.guarantee,
                          f"[{style}]{row.status}[/]", Text(text))
        out.print(table)
    if not preview.statements:
        out.print("no SQL statements in this plan", highlight=False)


def _print_releases(result: Any) -> None:
    """The releases the range crosses, each with its config or the words "no config" (nothing of it runs)."""
    table = Table(title=f"releases crossed by {result.source_version} → {result.target_version}")
    for col in ("version", "kind", "config", "steps"):
        table.add_column(col)
    for release in result.releases:
        config = release.config_file or f"[yellow]no config[/] ({release.known_from}): nothing of it runs"
        table.add_row(release.version, release.kind, config, str(release.steps))
    out.print(table)


@app.command()
@_guard
def plan(
    source: Annotated[str, typer.Option("--from", help="Source version, e.g. 3.17.0.")],
    target: Annotated[str, typer.Option("--to", help="Target version, e.g. 3.17.5-P1.")],
    site: Annotated[str, typer.Option("--site", help="Site id.")],
    cutpoint: Annotated[Cutpoint | None, typer.Option("--cutpoint", help="Only this cutpoint.")] = None,
    configs: ConfigsOpt = None,
    sql_root: SqlRootOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
    sql: Annotated[bool, typer.Option("--sql", help="Also list every statement per database: file:line, kind, "
                                                    "the guarantee it gets, applied at the site or not; and the "
                                                    "downtime forecast (reads the site's databases, read-only).")
                   ] = False,
) -> None:
    """Show which steps would run, in order; unresolved step classes and changed applied scripts are marked."""
    from rich.text import Text  # a description may hold [brackets] that rich would read as markup

    from tasks.planning.config_loader import load_configs
    from tasks.planning.plan import build_plan

    where = _where(configs, sql_root, db)
    settings = where.settings
    result = build_plan(load_configs(settings.configs), source, target, site, cutpoint,
                        allowed_step_modules=settings.allowed_step_modules, sql_root=settings.sql_root)
    preview, forecast = _sql_preview(result, where) if sql else (None, None)
    if json_out and preview is not None:
        print(json.dumps({**result.model_dump(mode="json"), "sql": preview.to_json(), "forecast": forecast.to_json()},
                         indent=2, ensure_ascii=False))
        return
    if json_out:
        print(result.model_dump_json(indent=2))
        return
    table = Table(title=f"plan {result.source_version} → {result.target_version} at {result.site_id} "
                        f"(chain: {', '.join(result.chain)})")
    for col in ("#", "cutpoint", "version", "step", "description", "class", "timeout", "retries", "required", "est."):
        table.add_column(col)
    for i, step in enumerate(result.steps, 1):
        impl = step.class_name.rpartition(".")[2] if step.resolved else f"[red]UNRESOLVED {step.class_name}[/]"
        table.add_row(str(i), step.cutpoint.value, step.version, step.step_id, Text(step.description or "-"), impl,
                      str(step.timeout or "-"),
                      str(step.retry_count), "yes" if step.required else "no", f"{step.estimated_duration or 0}s")
    out.print(table)
    _print_releases(result)
    out.print(f"estimated duration: {result.estimated_seconds}s", highlight=False)
    for w in result.warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False)
    for step in result.unresolved:
        err.print(f"[red]unresolved:[/] {step.config_file}: {step.step_id}: {step.unresolved_reason}", highlight=False)
    if preview is not None:
        _print_sql_preview(preview)
        _print_forecast(forecast)
    for drift in _script_drift(result.site_id, where):
        err.print(f"[red]changed since applied:[/] {drift.describe()}", highlight=False)


@app.command()
@_guard
def run(
    cutpoint: Annotated[Cutpoint, typer.Argument(help="Which cutpoint to run.")],
    source: Annotated[str, typer.Option("--from", help="Source version.")],
    target: Annotated[str, typer.Option("--to", help="Target version.")],
    site: Annotated[str, typer.Option("--site", help="Site id.")],
    env: Annotated[list[str] | None, typer.Option("--env", help="Environment value K=V (repeatable).")] = None,
    db: DbOpt = None,
    configs: ConfigsOpt = None,
    sql_root: SqlRootOpt = None,
    rerun: Annotated[bool, typer.Option(
        "--rerun", help="Run again although this cutpoint already completed for (site, from, to); needs --reason.")
    ] = False,
    waive: Annotated[list[str] | None, typer.Option(
        "--waive", help="Waive a precondition (pre_business_check, pre_upgrade_process, services_stopped, "
                        "startup_pre_process, services_started, startup_post_process, off_peak); needs --reason.")
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded with --rerun, --waive, "
                                                         "--accept-changed-scripts).")] = "",
    by: ByOpt = "",
    accept_changed_scripts: Annotated[bool, typer.Option(
        "--accept-changed-scripts", help="Run although scripts applied at this site changed on disk; needs --reason.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Run one cutpoint now, in this process (the same flow a deployment runs).

    A cutpoint that already completed for (site, from, to) executes nothing and exits 0; a missing
    precondition or a --from that differs from the site's recorded version is refused (exit 2).
    """
    import getpass

    from flows.registry import CUTPOINT_FLOWS
    from tasks.core.environment import check_environment
    from tasks.core.versions import Version
    from tasks.planning.validation import validate_for_run

    Version.parse(source), Version.parse(target)
    where = _where(configs, sql_root, db)
    environment = _pairs(env, "--env")
    check_environment(environment, where="--env")
    settings = where.settings
    later = validate_for_run(settings.configs, settings.sql_root, settings.allowed_step_modules,  # every config,
                             cutpoint.value, sources={Version.parse(source): "--from"})  # this cutpoint's files
    for problem in later:  # another cutpoint's files: that cutpoint refuses to run until they are fixed
        err.print(f"[yellow]warning:[/] {problem}", highlight=False)
    with _terminal_progress(not json_out), _ephemeral_api_patience():
        state = CUTPOINT_FLOWS[cutpoint](source_version=source, target_version=target, site_id=site,
                                         environment=environment, rerun=rerun, waive=list(waive or []),
                                         reason=reason, requested_by=by or getpass.getuser(),
                                         accept_changed_scripts=accept_changed_scripts, return_state=True,
                                         **where.flow_parameters())
    _finish_run(state, json_out, site, where)


@contextlib.contextmanager
def _ephemeral_api_patience(seconds: int = 120) -> Iterator[None]:
    """Without a Prefect server, Prefect starts a temporary one and waits 20 s for it by default; the first
    start on a new PREFECT_HOME migrates its database, which takes longer on a slow or busy host."""
    if os.environ.get("PREFECT_API_URL") or os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"):
        yield
        return
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, temporary_settings

    with temporary_settings(updates={PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: seconds}):
        yield


@contextlib.contextmanager
def _terminal_progress(enabled: bool) -> Iterator[None]:
    """A rich progress bar per long piece of work (SQL statements, rows restored…) while a command runs."""
    if not enabled or not err.is_terminal:
        yield
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from tasks.core.progress import Progress as WorkProgress
    from tasks.core.progress import listening

    bars: dict[int, Any] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=False) as bar:
        def listener(work: WorkProgress) -> None:
            if id(work) not in bars:
                bars[id(work)] = bar.add_task(work.description, total=work.total)
            bar.update(bars[id(work)], completed=work.done)

        with listening(listener):
            yield


def _finish_run(state: Any, json_out: bool, site: str, where: _Where) -> None:
    """Print what the flow run returned (its report) and exit with the report's code; refusals exit 2."""
    from tasks.core.errors import InputError, Refused, SiteBusy, UpgradeFailed
    from tasks.execution.service import ExecutionService

    if state.is_completed():
        data = state.result()
        _print_report(data, json_out)
        raise typer.Exit(0 if data["status"] == ExecutionStatus.SUCCESS else 1)
    exc = state.result(raise_on_failure=False)
    if isinstance(exc, (Refused, SiteBusy)):
        _fail(str(exc), exc.exit_code, "refused")
    if isinstance(exc, InputError):
        _fail_input(str(exc))
    execution_id = exc.execution_id if isinstance(exc, UpgradeFailed) else None
    if execution_id is None:
        _fail(f"flow run {state.state_details.flow_run_id} ended {state.name}: {state.message}", 1)
    with ExecutionService.open(site, metadata_url=where.metadata_url) as service:
        data = service.build_report(execution_id).to_json()
        stored = service.latest_report(execution_id)
    if stored and stored.content:  # what was published, notification outcome included
        data = {**stored.content, **data}
        data.pop("markdown", None)
    _print_report(data, json_out)
    raise typer.Exit(1)


def _print_report(data: dict[str, Any], json_out: bool) -> None:
    if json_out:
        print(json.dumps(data, ensure_ascii=False, default=str))
        return
    colour = {ExecutionStatus.SUCCESS: "green", ExecutionStatus.PAUSED: "yellow"}.get(data["status"], "red")
    out.print(f"[{colour}]{data['status']}[/] {data['cutpoint']} {data['source_version']} → "
              f"{data['target_version']} at {data['site_id']} (execution {data['execution_id']})", highlight=False)
    if data.get("notice"):
        out.print(data["notice"], highlight=False)
    table = Table()
    for col in ("step", "version", "status", "ms", "summary"):
        table.add_column(col)
    for s in data["step_results"]:
        version = s["key"].split(":", 1)[0]
        summary = s["error"] or s["summary"] or ""
        table.add_row(s["step_id"], version, s["status"], str(s["duration_ms"] or "-"), summary)
    out.print(table)
    if data["status"] != ExecutionStatus.SUCCESS:
        for line in data.get("resume", []):
            out.print(f"  • {line}", highlight=False)


@app.command()
@_guard
def resume(
    execution_id: Annotated[str, typer.Argument(help="Execution to continue.")],
    inflight: Annotated[InflightDecision | None, typer.Option(
        "--inflight", help="For the breakpoint's statement only: 'applied' (it took effect; in doubt only), 'retry' "
                           "(run it again) or 'skip' (you applied it by hand; needs --notes).")] = None,
    by: Annotated[str, typer.Option("--by", help="Who resolved the cause (recorded on the breakpoint).")] = "",
    notes: Annotated[str, typer.Option("--notes", help="What was done (recorded on the breakpoint).")] = "",
    env: Annotated[list[str] | None, typer.Option(
        "--env", help="Environment value K=V again (secret-looking values are stored masked).")] = None,
    site: SiteOpt = None,
    db: DbOpt = None,
    configs: ConfigsOpt = None,
    sql_root: SqlRootOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Continue a failed execution from where it stopped (after fixing the cause).

    The execution's configs and SQL folders are the ones recorded when it started unless given again.
    Databases it had from --db or from the environment (FT_UPGRADE_DB_*) of the process that ran it are
    found again here (--db, this shell's environment, the site's blocks) or the resume is refused before
    it starts, naming them (their URLs are never stored).
    """
    import getpass

    from flows.registry import CUTPOINT_FLOWS
    from tasks.core.environment import check_environment
    from tasks.core.errors import InputError
    from tasks.execution.service import ExecutionService, resume_environment
    from tasks.store.breakpoints import OperatorDecision

    if inflight == "skip" and not notes.strip():
        raise InputError("--inflight skip needs --notes WHY (what you did by hand; it is recorded)")
    where = _where(db=db)
    decision = OperatorDecision(by=by or getpass.getuser(), notes=notes or "resumed with ft-upgrade resume",
                                inflight=inflight)
    with ExecutionService.locate(execution_id, site, metadata_url=where.metadata_url) as service:
        execution = service.prepare_resume(execution_id, decision)
    if execution.status == ExecutionStatus.SUCCESS:
        out.print(f"execution {execution_id} already succeeded; nothing to resume")
        return
    where = _where(configs or _recorded_path(execution.configs_dir), sql_root or _recorded_path(execution.sql_root), db)
    given = _pairs(env, "--env")
    check_environment(given, where="--env")
    environment, masked = resume_environment(execution, given)
    if masked:
        raise InputError(f"{', '.join(masked)} were stored masked (before secrets were passed by reference): "
                         f"give them again as --env {masked[0]}=secret:<Secret block name>")
    cutpoint = Cutpoint(execution.cutpoint)
    with _terminal_progress(not json_out), _ephemeral_api_patience():
        state = CUTPOINT_FLOWS[cutpoint](source_version=execution.source_version,
                                         target_version=execution.target_version, site_id=execution.site_id,
                                         environment=environment, requested_by=decision.by,
                                         execution_id=execution_id, return_state=True, **where.flow_parameters())
    _finish_run(state, json_out, execution.site_id, where)


def _recorded_path(recorded: str | None) -> Path | None:
    return Path(recorded) if recorded and Path(recorded).is_dir() else None


@app.command()
@_guard
def executions(
    site: Annotated[str | None, typer.Option("--site", help="Only this site (and its own metadata store).")] = None,
    cutpoint: Annotated[Cutpoint | None, typer.Option("--cutpoint", help="Only this cutpoint.")] = None,
    latest: Annotated[bool, typer.Option("--latest", help="Print only the newest execution id.")] = False,
    limit: Annotated[int, typer.Option("--limit")] = 20,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List executions, newest first (``--latest`` prints one id, for scripts)."""
    from tasks.core.errors import InputError
    from tasks.execution.service import ExecutionService

    with ExecutionService.open(site, metadata_url=_where(db=db).metadata_url) as service:
        rows = service.executions(site_id=site, cutpoint=cutpoint.value if cutpoint else None,
                                  limit=1 if latest else limit)
    if latest:
        if not rows:
            raise InputError("no execution matches")
        print(rows[0].execution_id)
        return
    if json_out:
        print(json.dumps([r.listing() for r in rows], default=str, ensure_ascii=False))
        return
    table = Table()
    for col in ("execution", "site", "cutpoint", "from", "to", "status", "resumes", "started (UTC)"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.execution_id, r.site_id, r.cutpoint, r.source_version, r.target_version, r.status,
                      str(r.resume_count), str(r.start_time)[:19])
    out.print(table)


@app.command()
@_guard
def abandon(execution_id: Annotated[str, typer.Argument()],
            reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")] = "abandoned by operator",
            by: ByOpt = "", site: SiteOpt = None, db: DbOpt = None) -> None:
    """Give up an unfinished execution: the next run of the same cutpoint starts a new one."""
    import getpass

    from tasks.execution.service import ExecutionService

    with ExecutionService.locate(execution_id, site, metadata_url=_where(db=db).metadata_url) as service:
        service.abandon(execution_id, by=by or getpass.getuser(), reason=reason)
    out.print(f"execution {execution_id} abandoned", highlight=False)


@app.command()
@_guard
def status(execution_id: Annotated[str, typer.Argument()], site: SiteOpt = None, db: DbOpt = None,
           json_out: JsonOpt = False) -> None:
    """Show an execution's status and step counts; exit 0 succeeded or running, 4 waiting for an operator's
    decision (PAUSED: where to decide is printed), 1 otherwise."""
    from tasks.execution.service import ExecutionService

    with ExecutionService.locate(execution_id, site, metadata_url=_where(db=db).metadata_url) as service:
        report = service.build_report(execution_id)
    _print_report(report.to_json(), json_out)
    raise typer.Exit(0 if report.status in (ExecutionStatus.SUCCESS, ExecutionStatus.RUNNING)
                     else 4 if report.status == ExecutionStatus.PAUSED else 1)


@app.command()
@_guard
def report(execution_id: Annotated[str, typer.Argument()],
           fmt: Annotated[Literal["md", "json"], typer.Option("--format", help="Markdown or JSON.")] = "md",
           site: SiteOpt = None, db: DbOpt = None) -> None:
    """Print the latest report of an execution (markdown, as in the Prefect UI, or JSON)."""
    from tasks.core.errors import InputError
    from tasks.execution.service import ExecutionService

    with ExecutionService.locate(execution_id, site, metadata_url=_where(db=db).metadata_url) as service:
        stored = service.latest_report(execution_id)
    if stored is None:
        raise InputError(f"no report for execution {execution_id!r}")
    content = dict(stored.content)
    if fmt == "md":
        print(content["markdown"])
    else:
        content.pop("markdown", None)
        print(json.dumps(content, ensure_ascii=False, default=str, indent=2))


@app.command()
@_guard
def baseline(
    site: Annotated[str, typer.Option("--site", help="Site id.")],
    version: Annotated[str, typer.Option("--version", help="The version the site is on, e.g. 3.17.0.")],
    by: ByOpt = "",
    notes: Annotated[str, typer.Option("--notes", help="Why / how it was established (recorded).")] = "",
    db: DbOpt = None,
) -> None:
    """Record the version of a site installed before this tool (or repair its record); audited in its history.

    An upgrade the site was in is closed: the next trigger must start from this version.
    """
    import getpass

    from tasks.core.versions import Version
    from tasks.execution.service import ExecutionService

    parsed = str(Version.parse(version))
    where = _where(db=db)
    who = by or getpass.getuser()
    with ExecutionService.open(site, metadata_url=where.metadata_url) as service, \
            service.hold(site, f"baseline {parsed} by {who}", settings=where.settings):
        before = service.baseline(site, parsed, by=who, notes=notes)
    was = f" (was {before.current_version or 'unknown'})" if before else ""
    out.print(f"site {site} is on {parsed}{was}; recorded by {who}", highlight=False)


@app.command()
@_guard
def info(site: Annotated[str, typer.Option("--site", help="Site id.")], db: DbOpt = None,
         configs: ConfigsOpt = None, json_out: JsonOpt = False) -> None:
    """Where a site stands: version, upgrade in progress with each cutpoint, active breakpoint, pending configs."""
    from tasks.core.versions import Version
    from tasks.execution.service import ExecutionService
    from tasks.execution.site_info import site_info
    from tasks.planning.config_loader import load_configs

    where = _where(configs, None, db)
    with ExecutionService.open(site, metadata_url=where.metadata_url) as service:
        state = service.site(site)
        current = Version.parse(state.current_version) if state and state.current_version else None
        configs_found = sorted(load_configs(where.settings.configs), key=lambda c: c.version.code)
        pending = [str(c.version) for c in configs_found if current is None or c.version > current]
        data = site_info(service, site, pending_configs=pending)
    if json_out:
        for bp in data["active_breakpoints"]:
            bp.pop("breakpoint")
        data["last_executions"] = [e.listing() for e in data["last_executions"]]
        print(json.dumps(data, ensure_ascii=False, default=str))
        return
    _print_info(data)


def _print_info(data: dict[str, Any]) -> None:
    site = data["site_id"]
    if not data["known"]:
        out.print(f"site {site}: no record yet (no cutpoint has run here; `ft-upgrade baseline` records a site "
                  "installed before this tool)", highlight=False)
    else:
        origin = f" ({data['version_origin'].lower()})" if data["version_origin"] else ""
        out.print(f"site {site}: version {data['current_version'] or 'unknown'}{origin}, schema "
                  f"{data['schema_version'] or 'unknown'}", highlight=False)
    upgrade = data["upgrade"]
    if upgrade:
        out.print(f"upgrade {upgrade['source_version']} → {upgrade['target_version']}: {upgrade['status']}",
                  highlight=False)
        table = Table()
        for col in ("cutpoint", "state", "execution", "finished (UTC)"):
            table.add_column(col)
        for c in upgrade["cutpoints"]:
            table.add_row(c["cutpoint"], c["state"], c["execution_id"] or "-", str(c["finished"] or "-")[:19])
        out.print(table)
    for bp in data["active_breakpoints"]:
        out.print("[bold red]active breakpoint[/]", highlight=False)
        for line in bp["lines"]:
            out.print(f"  {line}", highlight=False, markup=False)
    out.print(f"pending configs: {', '.join(data['pending_configs']) or 'none'}; scripts applied here: "
              f"{data['applied_scripts']}", highlight=False)
    if data["last_executions"]:
        table = Table(title="last executions")
        for col in ("execution", "cutpoint", "from → to", "status", "started (UTC)"):
            table.add_column(col)
        for e in data["last_executions"]:
            table.add_row(e.execution_id, e.cutpoint, f"{e.source_version} → {e.target_version}", e.status,
                          str(e.start_time)[:19])
        out.print(table)


@app.command()
@_guard
def doctor(
    site: Annotated[str | None, typer.Option("--site", help="Also check this site's Redis and ClickHouse.")] = None,
    configs: ConfigsOpt = None,
    sql_root: SqlRootOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check the Prefect API, metadata database, log store, Redis, configs and disk; exit 1 naming what is wrong."""
    from dataclasses import asdict

    from tasks.execution.doctor import problems, run_doctor

    checks = run_doctor(site, settings=_where(configs, sql_root).settings)
    bad = problems(checks)
    if json_out:
        print(json.dumps({"status": "fail" if bad else "ok",
                          "checks": [{**asdict(c), "status": c.status} for c in checks]}))
    else:
        marks = {"ok": "[green]ok[/]     ", "skipped": "[yellow]skipped[/]", "failed": "[red]FAIL[/]   "}
        for c in checks:
            out.print(f"{marks[c.status]} {c.name}: {c.reason}", highlight=False)
        if bad:
            err.print(f"[red]not ready:[/] {', '.join(c.name for c in bad)}", highlight=False)
    if bad:
        raise typer.Exit(1)


@app.command()
@_guard
def checksum(files: Annotated[list[Path], typer.Argument(help="Version config files.")],
             algorithm: Annotated[str, typer.Option("--algorithm", help="sha256 or md5.")] = "sha256") -> None:
    """Print the metadata.checksum each config must carry (its canonical JSON without the checksum itself)."""
    from tasks.core.errors import InputError
    from tasks.planning.config_loader import config_checksum

    if algorithm not in ("sha256", "md5"):
        raise InputError(f"--algorithm must be sha256 or md5, not {algorithm!r}")
    for file in files:
        print(f"{config_checksum(_read_json(file), algorithm)}  {file}")


@app.command()
def schema(check: Annotated[bool, typer.Option("--check", help="Fail if configs/schema.json is stale.")] = False,
           configs: ConfigsOpt = None) -> None:
    """Write (or check) configs/schema.json, generated from the config models."""
    from tasks.planning.config_models import config_json_schema

    path = _where(configs).settings.configs / "schema.json"
    text = json.dumps(config_json_schema(), indent=2, ensure_ascii=False) + "\n"
    if check:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            err.print(f"{path} is stale: run `ft-upgrade schema`")
            raise typer.Exit(1)
        out.print(f"{path} is up to date")
        return
    path.write_text(text, encoding="utf-8")
    out.print(f"wrote {path}")


@blocks_app.command("apply")
@_guard
def blocks_apply(
    file: Annotated[Path | None, typer.Option("--file", help="Site JSON (see deployments/sites/*.json).")] = None,
    site: Annotated[str | None, typer.Option("--site", help="Site id (overrides the file's).")] = None,
    db: Annotated[list[str] | None, typer.Option("--db", help="Logical database NAME=URL.")] = None,
    redis_url: Annotated[str | None, typer.Option("--redis", help="Redis URL.")] = None,
    clickhouse: Annotated[str | None, typer.Option("--clickhouse", help="ClickHouse DSN.")] = None,
    service: Annotated[list[str] | None, typer.Option("--service", help="Service NAME=URL.")] = None,
) -> None:
    """Create or update a site's blocks (databases, Redis, ClickHouse, site profile); secrets never printed."""
    from blocks.apply import SiteSpec, apply_site

    data: dict[str, Any] = _read_json(file) if file is not None else {}
    if site:
        data["site_id"] = site
    data.setdefault("databases", {}).update(_pairs(db, "--db"))
    data.setdefault("services", {}).update(_pairs(service, "--service"))
    if redis_url:
        data["redis"] = redis_url
    if clickhouse:
        data["clickhouse"] = clickhouse
    spec = SiteSpec.from_data(data, source=str(file) if file else "options")
    for name in apply_site(spec):
        out.print(f"saved block {name}", highlight=False)


@contextlib.contextmanager
def _site_resources(site: str, where: _Where) -> Iterator[Any]:
    """The site's resources as a run builds them (the options given, the environment, the site's blocks)."""
    from blocks.site_profile import load_site_profile
    from tasks.site.resources import open_site_resources

    with open_site_resources(site, settings=where.settings, overrides=where.overrides,
                             profile=load_site_profile(site)) as resources:
        yield resources


@backup_app.command("list")
@_guard
def backup_list(site: Annotated[str, typer.Option("--site", help="Site id.")], json_out: JsonOpt = False) -> None:
    """The site's complete backups, newest first."""
    from tasks.backup.commands import list_backups

    with _site_resources(site, _where()) as resources:
        rows = list_backups(resources.path("backup_dir"), site)
    if json_out:
        print(json.dumps(rows, ensure_ascii=False, default=str))
        return
    table = Table()
    for col in ("backup", "execution", "from → to", "created (UTC)", "tables", "rows", "MB"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["backup_id"], r["execution_id"] or "-", f"{r['source_version']} → {r['target_version']}",
                      str(r["created_at"])[:19], ", ".join(r["tables"]), str(r["rows"]), f"{r['bytes'] / 1e6:.2f}")
    out.print(table)


@backup_app.command("restore")
@_guard
def backup_restore(
    backup_id: Annotated[str, typer.Argument(help="Backup to restore (ft-upgrade backup list).")],
    site: Annotated[str, typer.Option("--site", help="Site id.")],
    tables: Annotated[str | None, typer.Option("--tables", help="Comma-separated tables (default: all).")] = None,
    files: Annotated[bool, typer.Option("--files", help="Also restore the backed-up config files.")] = False,
    db: Annotated[list[str] | None, typer.Option("--db", help="Override a logical database: NAME=URL.")] = None,
    yes: YesOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Verify the backup's checksums, restore it, and compare CHECKSUM TABLE with the manifest; holds the site's
    lock and asks for confirmation on a terminal (--yes for scripts)."""
    from tasks.backup.commands import restore_backup
    from tasks.core.errors import SiteBusy, UpgradeError
    from tasks.execution.service import ExecutionService

    _confirm(yes, f"restore backup {backup_id} over the live tables of site {site}"
                  f"{' (' + tables + ')' if tables else ''}?")
    where = _where(db=db)
    try:
        with _site_resources(site, where) as resources, _terminal_progress(not json_out), \
                ExecutionService(resources.metadata_store()).hold(site, f"ft-upgrade backup restore {backup_id}",
                                                                  settings=where.settings):
            report = restore_backup(backup_id, resources.path("backup_dir"), resources.engine,
                                    tables=[t.strip() for t in tables.split(",")] if tables else None,
                                    include_files=files, group=resources.settings.backup_group)
    except UpgradeError as exc:
        _fail(str(exc), exc.exit_code, "refused" if isinstance(exc, SiteBusy) else "error")
    if json_out:
        print(json.dumps({"backup_id": report.backup_id, "tables": report.tables, "files": report.files,
                          "dropped": report.dropped,
                          "comparison": report.comparison.to_json() if report.comparison else None},
                         ensure_ascii=False, default=str))
        return
    out.print(f"[green]restored[/] {report.backup_id}: {len(report.tables)} tables, {len(report.files)} files",
              highlight=False)
    if report.comparison is not None:
        out.print(report.comparison.describe(), highlight=False)


@app.command()
@_guard
def rollback(
    execution_id: Annotated[str | None, typer.Argument(help="Optional: any execution of the upgrade.")] = None,
    site: Annotated[str | None, typer.Option("--site", help="Site id: alone, its upgrade in progress.")] = None,
    upgrade: Annotated[str, typer.Option("--upgrade", help="A completed upgrade: SOURCE->TARGET.")] = "",
    force: Annotated[bool, typer.Option("--force", help="Past rollback_supported: false (needs --reason).")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the site's history).")] = "",
    by: ByOpt = "",
    yes: YesOpt = False,
    db: Annotated[list[str] | None, typer.Option("--db", help="Override a logical database: NAME=URL.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Roll back a site's upgrade (the one in progress, or --upgrade, or that of EXECUTION_ID) as the rollback
    flow, holding the site's lock: rollback_steps newest version first, the backup of its pre_upgrade_process
    restored, the site back on the source version. A failed rollback is finished by running it again. Asks for
    confirmation on a terminal (--yes for scripts)."""
    import getpass

    from flows.rollback import rollback as rollback_flow
    from tasks.core.errors import InputError, SiteBusy
    from tasks.execution.service import ExecutionService

    where = _where(db=db)
    if execution_id:
        with ExecutionService.locate(execution_id, site, metadata_url=where.metadata_url) as service:
            site = service.execution(execution_id).site_id
    if not site:
        _fail_input("give the site (--site S) or an execution id of the upgrade to roll back")
    assert site is not None
    _confirm(yes, f"roll back the upgrade {upgrade or ('of ' + execution_id if execution_id else 'in progress')} "
                  f"at site {site}?")
    with _terminal_progress(not json_out), _ephemeral_api_patience():
        state = rollback_flow(site_id=site, upgrade=upgrade, execution_id=execution_id or "", force=force,
                              reason=reason, requested_by=by or getpass.getuser(),
                              configs_dir=str(where.settings.configs),
                              databases=where.flow_parameters()["databases"], return_state=True)
    if not state.is_completed():
        failure = state.result(raise_on_failure=False)
        if isinstance(failure, SiteBusy | InputError):
            _fail(str(failure), failure.exit_code, "refused")
        _fail(str(failure), 1, prefix="rollback failed")
    results = state.result()
    if json_out:
        print(json.dumps(results, ensure_ascii=False, default=str))
        return
    out.print(f"rolled back {results['source_version']} → {results['target_version']} at site {site} "
              f"({results['execution_id']}, backup {results['backup_id']})", highlight=False)
    for r in results["steps"]:
        out.print(f"[green]{r['status']}[/] {r['version']} {r['step_id']}: {r['summary']}", highlight=False)


def _confirm(yes: bool, question: str) -> None:
    """A destructive command asks on a terminal; elsewhere it needs --yes (nothing is done without it)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise _BadInput(f"{question} Not on a terminal: add --yes to confirm.")
    if not typer.confirm(question, default=False):
        raise _BadInput("not confirmed; nothing was done")


#: Commands that only read (configs, scripts, the site's store): the process ends as soon as they have
#: printed, without the interpreter's clean-up of every module, which takes longer than `validate` itself
#: (about 0.3 s of the second they may take). mypy ends the same way.
_QUICK_EXIT = {"validate", "plan"}


def main() -> None:  # pragma: no cover - console entry
    """The console entry (``ft-upgrade``): the Typer app; read-only commands end at once."""
    if len(sys.argv) < 2 or sys.argv[1] not in _QUICK_EXIT:
        app()
        return
    code = 0
    try:
        app()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
