"""The downtime forecast at a site: facts from its databases, rates from its store, and what a run teaches.

:func:`site_forecast` is what ``plan --sql`` and the SQL step call: it reads each database's facts
(read-only) and the site's learned throughput, then forecasts (:mod:`tasks.sql.forecast.estimate`). A
database it cannot read is named in the forecast, never guessed at. After a run :func:`compare` sets
each statement's forecast beside what the ledger recorded, and :func:`learn` adds the run's rebuilds,
copies, index builds and DML to the site's throughput memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine

from tasks.core.language import words
from tasks.core.statuses import StatementStatus
from tasks.sql.forecast.estimate import (
    DDL_SECONDS,
    STATEMENT_SECONDS,
    WORKS,
    Forecast,
    Rate,
    Statement,
    forecast,
    rates_with_defaults,
    to_explain,
    wanted_tables,
)
from tasks.sql.forecast.facts import DatabaseFacts, read_facts

MIN_ROWS = 1000  # a statement on fewer rows teaches only its fixed cost
MIN_SECONDS = 0.05


def statements_of(scripts: Iterable[Any], step: str = "") -> list[Statement]:
    """The statements of loaded scripts (``tasks.sql.script.ScriptFile``) in the order they run."""
    return [Statement(s.database, s.source_name, s.line, s.sequence, kind, s.text, step)
            for script in scripts for s, kind in zip(script.statements, script.kinds, strict=True)]


def site_forecast(statements: Sequence[Statement], engine_for: Callable[[str], Engine], *,
                  rates: Mapping[str, Rate] | None = None) -> Forecast:
    """Read every database's facts (``engine_for`` may raise: that database is then unavailable) and forecast."""
    tables, explain = wanted_tables(statements), to_explain(statements)
    facts: dict[str, DatabaseFacts] = {}
    unavailable: dict[str, str] = {}
    for database in sorted({s.database for s in statements}):
        try:
            engine = engine_for(database)
            if engine.dialect.name not in ("mysql", "mariadb"):
                unavailable[database] = f"{engine.dialect.name} database: no MySQL/MariaDB DDL rules"
                continue
            facts[database] = read_facts(engine, tables.get(database, set()), explain.get(database, []))
        except Exception as exc:  # an unreachable or unconfigured database: the forecast says so
            unavailable[database] = f"facts not read: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return forecast(statements, facts, rates_with_defaults(rates or {}), unavailable)


def plan_forecast(statements: Sequence[Statement], site_id: str, *, settings: Any, overrides: Any = None,
                  store_engine: Engine | None = None) -> Forecast:
    """The forecast ``plan --sql`` shows: the site's databases (its blocks, ``FT_UPGRADE_DB_*``, ``--db``) read
    with a short connect timeout, the rates its store learned (defaults without a store)."""
    from sqlalchemy import create_engine

    from tasks.site.resources import SiteResources

    resources = SiteResources(site_id=site_id, sql_root=settings.sql_root, configs_dir=settings.configs,
                              home=settings.home, overrides=overrides, settings=settings)
    engines: list[Engine] = []

    def engine_for(name: str) -> Engine:
        url = resources.database_url(name)
        mysql = url.get_backend_name() in ("mysql", "mariadb")
        engines.append(create_engine(url, connect_args={"connect_timeout": 5} if mysql else {}))
        return engines[-1]

    try:
        rates = learned_rates(store_engine, site_id) if store_engine is not None else {}
        return site_forecast(statements, engine_for, rates=rates)
    finally:
        for engine in engines:
            engine.dispose()


def learned_rates(store_engine: Engine, site_id: str) -> dict[str, Rate]:
    from tasks.store.throughput import read_throughput

    return {w: Rate(t.rows_per_second, t.statements) for w, t in read_throughput(store_engine, site_id).items()
            if t.rows_per_second > 0}


def compact(result: Forecast) -> dict[str, Any]:
    """What a run keeps of its forecast to compare and learn from (every statement, few fields)."""
    return {"seconds": round(result.seconds, 3), "servers": result.servers, "unavailable": result.unavailable,
            "rates": {w: r.rows_per_second for w, r in result.rates.items()},
            "statements": [[s.file, s.sequence, s.line, s.database, s.category, s.work, s.rows, round(s.seconds, 4),
                            s.algorithm, s.lock] for s in result.statements]}


def compare(kept: Mapping[str, Any], records: Iterable[Any]) -> dict[str, Any]:
    """Forecast beside actual per statement (``StatementRecord`` s of the run), and in total.

    Statements done in an earlier attempt have no actual here; the totals say how many."""
    records = list(records)
    actual = {(r.file, r.sequence): r.duration_ms / 1000 for r in records if r.status == StatementStatus.SUCCESS}
    earlier = {(r.file, r.sequence) for r in records if r.status == StatementStatus.SKIPPED}
    rows = []
    for file, sequence, line, database, category, work, n, seconds, algorithm, lock in kept["statements"]:
        rows.append({"where": f"{file}:{line}", "database": database, "category": category, "work": work,
                     "rows": n, "forecast": seconds, "actual": actual.get((file, sequence)),
                     "earlier": (file, sequence) in earlier, "algorithm": algorithm, "lock": lock})
    ran = [r for r in rows if r["actual"] is not None]
    forecast_ran = sum(r["forecast"] for r in ran)
    actual_total = sum(r["actual"] for r in ran)
    notable = sorted((r for r in rows if max(r["forecast"], r["actual"] or 0) >= MIN_SECONDS
                      or r["category"] not in ("OTHER", "DML", "INSTANT", "UNKNOWN")),
                     key=lambda r: max(r["forecast"], r["actual"] or 0), reverse=True)[:30]
    return {"forecast_seconds": kept["seconds"], "forecast_seconds_of_statements_run": round(forecast_ran, 3),
            "actual_seconds": round(actual_total, 3), "statements_run": len(ran), "statements": len(rows),
            "error_ratio": round(abs(forecast_ran - actual_total) / actual_total, 3) if actual_total > 0 else None,
            "rates": kept["rates"], "servers": kept["servers"], "unavailable": kept["unavailable"],
            "by_statement": notable}


def observations(kept: Mapping[str, Any], records: Iterable[Any]) -> dict[str, tuple[float, float, int]]:
    """Rows and seconds per kind of work the run's statements did, for :func:`learn` (small ones left out)."""
    done = {(r.file, r.sequence): r.duration_ms / 1000 for r in records if r.status == StatementStatus.SUCCESS}
    out: dict[str, tuple[float, float, int]] = {}
    for file, sequence, _line, _db, _category, work, rows, _seconds, _algorithm, _lock in kept["statements"]:
        seconds = done.get((file, sequence))
        if work not in WORKS or seconds is None or rows < MIN_ROWS or seconds < MIN_SECONDS:
            continue
        spent = max(seconds - (STATEMENT_SECONDS if work == "dml" else DDL_SECONDS), 1e-3)
        r, s, n = out.get(work, (0.0, 0.0, 0))
        out[work] = (r + rows, s + spent, n + 1)
    return out


def learn(store: Any, site_id: str, kept: Mapping[str, Any], records: Iterable[Any]) -> dict[str, Any]:
    """Teach the site's throughput memory (in ``store``, fenced by the run's lock) what this run did; returns what
    was learned (for the report)."""
    from tasks.store.throughput import learn_throughput

    observed = observations(kept, records)
    if observed:
        learn_throughput(store.engine, site_id, observed, fence=store.lock)
    return {w: {"rows": r, "seconds": round(s, 3), "statements": n, "rows_per_second": round(r / s)}
            for w, (r, s, n) in observed.items()}


TEXT = {
    "zh": {
        "title": "停机时间预测", "total": "预测停机时间（SQL）：**{seconds}**，共 {count} 条语句",
        "servers": "服务器：{servers}", "unavailable": "无法读取 `{db}` 的表信息：{why}（其语句按固定开销计，不确定）",
        "rates": "吞吐量（行/秒）：{rates}", "learned": "已学习", "default": "默认",
        "dominating": "主要耗时语句：", "online": "可在停机前在线执行的语句（仅建议，不会自动移动）：",
        "uncertain": "{n} 条语句无法确定耗时（按固定开销计）",
        "header": "| 文件:行号 | 数据库 | 表 | 方式 | 行数 | 预测秒 |",
        "vs_title": "预测与实际",
        "vs_total": "预测 {forecast} ，实际 {actual}（本次执行的 {ran} 条语句；误差 {error}）",
        "vs_header": "| 文件:行号 | 方式 | 行数 | 预测秒 | 实际秒 |", "earlier": "此前执行",
        "learned_line": "本站点吞吐量已更新：{learned}",
    },
    "en": {
        "title": "Downtime forecast", "total": "Forecast downtime (SQL): **{seconds}** over {count} statements",
        "servers": "Servers: {servers}", "unavailable": "no facts for `{db}`: {why} (its statements count at their "
                                                         "fixed cost, uncertain)",
        "rates": "Throughput (rows/s): {rates}", "learned": "learned", "default": "default",
        "dominating": "Dominating statements:", "online": "Could run online before the stop (advice only; nothing "
                                                         "moves by itself):",
        "uncertain": "{n} statements of unknown duration (counted at their fixed cost)",
        "header": "| file:line | database | table | how | rows | forecast s |",
        "vs_title": "Forecast and actual", "vs_total": "forecast {forecast}, actual {actual} (the {ran} statements run "
                                                      "in this attempt; error {error})",
        "vs_header": "| file:line | how | rows | forecast s | actual s |", "earlier": "earlier attempt",
        "learned_line": "The site's throughput learned: {learned}",
    },
}


def _actual(row: Mapping[str, Any], t: Mapping[str, str]) -> str:
    if row["actual"] is not None:
        return f"{row['actual']:.2f}"
    return t["earlier"] if row["earlier"] else "-"


def _how(category: str, algorithm: str, lock: str) -> str:
    if category in ("DML", "OTHER", "UNKNOWN", "INSTANT", "COPY"):
        return category
    return f"{category} [{algorithm}, LOCK={lock}]"


def seconds_text(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s" if seconds >= 1 else f"{seconds:.2f} s"


def render_forecast(result: Forecast, language: str | None = None) -> str:
    """The forecast as markdown (the run's artifact): total, dominating and online-capable statements."""
    t = words(TEXT, language)
    lines = [f"### {t['title']}", "", t["total"].format(seconds=seconds_text(result.seconds),
                                                         count=len(result.statements))]
    if result.servers:
        lines += ["", t["servers"].format(servers=", ".join(f"{db}: {v}" for db, v in result.servers.items()))]
    lines += [t["unavailable"].format(db=db, why=why) for db, why in result.unavailable.items()]
    lines += ["", t["rates"].format(rates=", ".join(
        f"{w} {r.rows_per_second:,.0f} ({t['learned'] if r.learned_from else t['default']})"
        for w, r in result.rates.items()))]
    if result.uncertain:
        lines += ["", t["uncertain"].format(n=len(result.uncertain))]
    for title, chosen in ((t["dominating"], result.dominating), (t["online"], result.online_candidates)):
        if chosen:
            lines += ["", title, "", t["header"], "|---|---|---|---|---|---|"]
            lines += [f"| {s.where} | {s.database} | {s.table} | {_how(s.category, s.algorithm, s.lock)} | {s.rows} | "
                      f"{s.seconds:.2f} |" for s in chosen]
    return "\n".join(lines)


def render_comparison(found: Mapping[str, Any], language: str | None = None) -> str:
    """Forecast beside actual, per statement and in total (the SQL step's report section)."""
    t = words(TEXT, language)
    error = found["error_ratio"]
    lines = [f"### {t['vs_title']}", "",
             t["vs_total"].format(forecast=seconds_text(found["forecast_seconds_of_statements_run"]),
                                  actual=seconds_text(found["actual_seconds"]), ran=found["statements_run"],
                                  error="-" if error is None else f"{error:.0%}")]
    if found["by_statement"]:
        lines += ["", t["vs_header"], "|---|---|---|---|---|"]
        lines += [f"| {r['where']} | {_how(r['category'], r['algorithm'], r['lock'])} | {r['rows']} | "
                  f"{r['forecast']:.2f} | {_actual(r, t)} |"
                  for r in found["by_statement"]]
    if found.get("learned"):
        lines += ["", t["learned_line"].format(learned=", ".join(
            f"{w} {v['rows_per_second']:,} rows/s" for w, v in found["learned"].items()))]
    return "\n".join(lines)


def forecast_for_step(ctx: Any, scripts: Sequence[Any]) -> dict[str, Any] | None:
    """The SQL step's forecast: made when its first attempt starts (kept for its resumes, which compare with the
    same forecast), published as the run's forecast artifact. None, with a warning, when it cannot be made:
    the forecast never stops an upgrade."""
    import json

    from tasks.core.files import Private

    kept_file = ctx.resources.home / "forecast" / ctx.execution_id / f"{ctx.step_id}.json"
    try:
        if kept_file.exists():
            return dict(json.loads(kept_file.read_text(encoding="utf-8")))
        store = ctx.resources.metadata_store()
        result = site_forecast(statements_of(scripts, ctx.step_key), ctx.resources.engine,
                               rates=learned_rates(store.engine, ctx.site_id))
        kept = compact(result)
        private = Private(ctx.settings.backup_group)  # statements may hold customer values
        private.mkdir(kept_file.parent)
        private.write_text(kept_file, json.dumps(kept, ensure_ascii=False))
        _publish(ctx, render_forecast(result, ctx.language))
        ctx.logger.info("forecast of %s: %s for %d statements", ctx.step_id, seconds_text(result.seconds),
                        len(result.statements))
        return kept
    except Exception as exc:
        ctx.logger.warning("no downtime forecast for %s (%s): the run goes on", ctx.step_id, exc)
        return None


def outcome_for_step(ctx: Any, kept: Mapping[str, Any] | None, records: Sequence[Any],
                     details: dict[str, Any]) -> str:
    """After the step: forecast beside actual (``details["forecast"]`` and a report section), and the site's
    throughput taught what the run's statements did. "" without a forecast."""
    if kept is None:
        return ""
    found = compare(kept, records)
    try:
        found["learned"] = learn(ctx.resources.metadata_store(), ctx.site_id, kept, records)
    except Exception as exc:  # the memory misses one run; the upgrade is not affected
        ctx.logger.warning("throughput not learned from %s: %s", ctx.step_id, exc)
    details["forecast"] = found
    return render_comparison(found, ctx.language)


def _publish(ctx: Any, markdown: str) -> None:
    from tasks.core.runtime import in_prefect_run

    if not in_prefect_run():
        return
    from prefect.artifacts import create_markdown_artifact

    from tasks.core import background

    key = "".join(c if c.isalnum() else "-" for c in f"ft-{ctx.site_id}-{ctx.step_id}-forecast".lower())
    description = f"{ctx.step_id} at {ctx.site_id}: downtime forecast"
    background.submit(lambda: create_markdown_artifact(markdown=markdown, key=key, description=description),
                      f"forecast of {ctx.step_id}")  # off the path: the statements do not wait for the API
