"""IndexOptimizationStep: create/rebuild configured indexes, OPTIMIZE and ANALYZE, within a time budget.

Statistics (row counts, sizes, index cardinality) and probe-query timings are recorded before and
after; the report gives the change in percent. All problems found in the plan (missing table or
column, an index that exists with another definition) stop the step before anything runs. A
failing operation drops the indexes this step created and fails the step; running out of the time
budget (seed: 5 minutes) stops before the next operation, keeps finished work and warns.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from tasks.core.errors import StepFailed
from tasks.core.language import words
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepParams, StepResult
from tasks.indexes.optimize import (
    INDEX_COLUMN,
    IndexDef,
    Operation,
    TableRequest,
    TableStats,
    budget_exhausted,
    drop_index,
    limit_session,
    percent_change,
    plan_operations,
    read_stats,
    run_operation,
    time_probe,
)
from tasks.sql.select_query import check_select
from tasks.steps.base import UpgradeStep

if TYPE_CHECKING:  # the runtime is imported by run(): `validate` and `plan` need only the parameters
    from sqlalchemy import Connection

_IDENT = r"^[A-Za-z_][A-Za-z0-9_$]{0,63}$"
_MIN_START_SECONDS = 1.0

#: 索引优化结果's words. Operations (``create index ix on t``) and the planner's notes are shown as they are.
TEXT = {
    "zh": {
        "tables": "| 表 | 行数 | 优化前大小 | 优化后大小 | 变化 |",
        "indexes": "| 表 | 索引 | 优化前基数 | 优化后基数 |",
        "probes": "| 探测查询 | 优化前毫秒 | 优化后毫秒 | 提升 |",
        "overall": "探测查询总体性能提升：{gain:+.1f}%",
        "not_done": "- ⏭️ 未执行：{op}",
        "budget": "已用完 {budget:g} 秒的时间预算：{count} 个操作未开始",
        "budget_during": "执行 {op} 时用完 {budget:g} 秒的时间预算（服务器已回滚该操作）；{count} 个操作未完成",
        "failed": "{op} 失败：{reason}",
        "dropped": "- ↩️ 已删除本步骤创建的索引 {index}",
        "left": "- ⚠️ 无法删除索引 {index}：请手工删除",
        "not_started": "索引优化未开始：{problems}",
        "summary": "{done} 个操作，新建或重建 {indexes} 个索引",
        "summary_gain": "，探测查询提升 {gain:+.1f}%", "summary_skipped": "；{count} 个操作未执行（时间预算）",
    },
    "en": {
        "tables": "| table | rows | size before | size after | change |",
        "indexes": "| table | index | cardinality before | after |",
        "probes": "| probe | before ms | after ms | improvement |",
        "overall": "Probe queries overall: {gain:+.1f}%",
        "not_done": "- ⏭️ not done: {op}",
        "budget": "time budget of {budget:g}s reached: {count} operation(s) not started",
        "budget_during": "time budget of {budget:g}s reached during {op} (the server rolled it back); {count} "
                         "operation(s) not done",
        "failed": "{op} failed: {reason}",
        "dropped": "- ↩️ dropped index {index} (created by this step)",
        "left": "- ⚠️ could not drop index {index}: drop it by hand",
        "not_started": "{problems}",
        "summary": "{done} operation(s), {indexes} index(es) created or rebuilt",
        "summary_gain": ", probe queries {gain:+.1f}% faster", "summary_skipped": "; {count} not done (time budget)",
    },
}


class IndexSpec(StepParams):
    name: str = Field(pattern=_IDENT)
    columns: list[str] = Field(min_length=1, description="Columns in order; 'col(20)' for a prefix index.")
    unique: bool = False
    action: Literal["create", "rebuild"] = Field(default="create",
                                                 description="create: add if missing; rebuild: drop and re-add.")

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: list[str]) -> list[str]:
        bad = [c for c in value if not INDEX_COLUMN.match(c)]
        if bad:
            raise ValueError(f"index columns must be 'name' or 'name(length)': {bad}")
        return value


class TableSpec(StepParams):
    table: str = Field(pattern=_IDENT)
    analyze: bool = Field(default=True, description="ANALYZE TABLE (fresh statistics).")
    optimize: bool = Field(default=False, description="OPTIMIZE TABLE (InnoDB: online rebuild, reclaims space).")
    indexes: list[IndexSpec] = Field(default_factory=list)


class Probe(StepParams):
    name: str
    sql: str = Field(description="A SELECT whose timing shows the effect (median of 'repeat' runs).")
    repeat: int = Field(default=5, ge=1, le=50)

    @field_validator("sql")
    @classmethod
    def _select(cls, value: str) -> str:
        return check_select(value)


class IndexOptimizeParams(StepParams):
    database: str = Field(description="Logical database (MySQL / MariaDB).")
    tables: list[TableSpec] = Field(min_length=1)
    probes: list[Probe] = Field(default_factory=list)
    time_budget_seconds: float = Field(default=300, gt=0, le=3600, description="Whole step, probes included.")
    online: bool = Field(default=True, description="ALGORITHM=INPLACE, LOCK=NONE for index changes.")

    def requests(self) -> list[TableRequest]:
        return [TableRequest(t.table, tuple((IndexDef(i.name, tuple(i.columns), i.unique), i.action)
                                            for i in t.indexes), t.analyze, t.optimize) for t in self.tables]


class IndexOptimizationStep(UpgradeStep):
    """Optimizes configured indexes and tables and reports the effect."""

    Params = IndexOptimizeParams
    description = "Index optimization: statistics and probe timings before/after, time budget, rollback"
    off_peak = True  # the requirements: 索引优化需在低峰期执行
    params: IndexOptimizeParams
    _mariadb = False

    def run(self) -> StepResult:
        from sqlalchemy import text

        p = self.params
        deadline = time.monotonic() + p.time_budget_seconds
        tables = [t.table for t in p.tables]
        with self.context.resources.engine(p.database).connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            mariadb = self._mariadb = "mariadb" in str(conn.execute(text("SELECT VERSION()")).scalar_one()).lower()
            before = read_stats(conn, tables)
            ops, problems, planned = plan_operations(p.requests(), before)
            notes: list[str | tuple[str, dict[str, Any]]] = list(planned)  # (key, values): a note of TEXT
            if problems:
                shown = words(TEXT, self.context.language)["not_started"].format(problems="; ".join(problems))
                result = StepResult(StepStatus.FAILED, shown, {"problems": problems},
                                    "\n".join(f"- ❌ {x}" for x in problems))
                raise StepFailed(f"index optimization not started: {'; '.join(problems)}", result)
            probes_before = {probe.name: time_probe(conn, probe.sql, probe.repeat) for probe in p.probes}
            done: list[dict[str, Any]] = []
            skipped: list[Operation] = []
            created: list[Operation] = []
            try:
                for position, op in enumerate(ops):
                    remaining = deadline - time.monotonic()
                    if remaining < _MIN_START_SECONDS:
                        skipped = ops[position:]
                        notes.append(("budget", {"budget": p.time_budget_seconds, "count": len(skipped)}))
                        break
                    limit_session(conn, remaining, mariadb=mariadb)
                    start = time.monotonic()
                    try:
                        messages = run_operation(conn, op, online=p.online)
                    except Exception as exc:
                        if budget_exhausted(exc, deadline, time.monotonic()):
                            skipped = ops[position:]
                            notes.append(("budget_during", {"budget": p.time_budget_seconds, "op": op.describe(),
                                                            "count": len(skipped)}))
                            break
                        raise self._failure(conn, op, exc, created, done, before) from exc
                    done.append({"operation": op.describe(), "seconds": round(time.monotonic() - start, 3),
                                 "messages": messages})
                    if op.kind == "create_index":
                        created.append(op)
            finally:
                self._reset_session(conn, mariadb)
            after = read_stats(conn, tables)
            probes_after = {probe.name: time_probe(conn, probe.sql, probe.repeat) for probe in p.probes}
        status = StepStatus.WARNING if skipped else StepStatus.SUCCESS
        return self._result(status, before, after, probes_before, probes_after, done, skipped, notes)

    @staticmethod
    def _reset_session(conn: Connection, mariadb: bool) -> None:
        from sqlalchemy import text

        conn.execute(text("SET SESSION lock_wait_timeout = DEFAULT"))
        if mariadb:
            conn.execute(text("SET SESSION max_statement_time = DEFAULT"))

    def _failure(self, conn: Connection, op: Operation, exc: Exception, created: list[Operation],
                 done: list[dict[str, Any]], before: dict[str, TableStats]) -> StepFailed:
        """Drop what this step created (newest first) and describe the failure."""
        self._reset_session(conn, self._mariadb)
        reason = str(getattr(exc, "orig", exc)).splitlines()[0][:300]
        rolled, left = [], []
        for made in reversed(created):
            assert made.index is not None
            try:
                drop_index(conn, made.table, made.index.name)
                rolled.append(f"{made.index.name} on {made.table}")
            except Exception as drop_exc:  # reported: the operator drops it by hand
                left.append(f"{made.index.name} on {made.table} ({str(drop_exc).splitlines()[0][:120]})")
        message = TEXT["en"]["failed"].format(op=op.describe(), reason=reason)
        w = words(TEXT, self.context.language)
        lines = [f"- ❌ {w['failed'].format(op=op.describe(), reason=reason)}"]
        lines += [f"- ✅ {d['operation']} ({d['seconds']}s)" for d in done]
        lines += [w["dropped"].format(index=r) for r in rolled]
        lines += [w["left"].format(index=x) for x in left]
        self.context.logger.error("index optimization failed: %s; rolled back %d created index(es)", message,
                                  len(rolled))
        result = StepResult(StepStatus.FAILED, w["failed"].format(op=op.describe(), reason=reason),
                            {"failed": op.describe(), "error": reason, "done": done, "rolled_back": rolled,
                             "left": left}, "\n".join(lines))
        summary = f"index optimization failed: {message}; " + (
            f"dropped {len(rolled)} index(es) it had created" if rolled else "nothing it created was left")
        return StepFailed(summary, result)

    def _result(self, status: StepStatus, before: dict[str, TableStats], after: dict[str, TableStats],
                probes_before: dict[str, float], probes_after: dict[str, float], done: list[dict[str, Any]],
                skipped: list[Operation], notes: list[str | tuple[str, dict[str, Any]]]) -> StepResult:
        w = words(TEXT, self.context.language)
        lines = [w["tables"], "|---|---|---|---|---|"]
        tables = []
        for name, b in before.items():
            a = after[name]
            change = percent_change(b.total_bytes, a.total_bytes)
            tables.append({"table": name, "rows": a.rows, "bytes_before": b.total_bytes, "bytes_after": a.total_bytes,
                           "size_change_percent": change,
                           "cardinality_before": b.cardinality, "cardinality_after": a.cardinality})
            lines.append(f"| {name} | {a.rows:,} | {_mb(b.total_bytes)} | {_mb(a.total_bytes)} | "
                         f"{'' if change is None else f'{-change:+.1f}%'} |")
        lines += ["", w["indexes"], "|---|---|---|---|"]
        for t in tables:
            for index in sorted(set(t["cardinality_before"]) | set(t["cardinality_after"])):
                lines.append(f"| {t['table']} | {index} | {t['cardinality_before'].get(index, '—')} | "
                             f"{t['cardinality_after'].get(index, '—')} |")
        probes = []
        if probes_before:
            lines += ["", w["probes"], "|---|---|---|---|"]
            for name, ms in probes_before.items():
                gain = percent_change(ms, probes_after[name])
                probes.append({"probe": name, "before_ms": ms, "after_ms": probes_after[name],
                               "improvement_percent": gain})
                lines.append(f"| {name} | {ms} | {probes_after[name]} | {'' if gain is None else f'{gain:+.1f}%'} |")
        overall = percent_change(sum(probes_before.values()), sum(probes_after.values())) if probes_before else None
        if overall is not None:
            lines += ["", w["overall"].format(gain=overall)]
        lines += ["", *[f"- ✅ {d['operation']} ({d['seconds']}s)" for d in done]]
        lines += [w["not_done"].format(op=op.describe()) for op in skipped]
        lines += [f"- {n if isinstance(n, str) else w[n[0]].format(**n[1])}" for n in notes]
        english = [n if isinstance(n, str) else TEXT["en"][n[0]].format(**n[1]) for n in notes]
        indexes = sum(1 for d in done if d["operation"].startswith(("create index", "rebuild index")))
        summary = (w["summary"].format(done=len(done), indexes=indexes)
                   + (w["summary_gain"].format(gain=overall) if overall is not None else "")
                   + (w["summary_skipped"].format(count=len(skipped)) if skipped else ""))
        return StepResult(status, summary,
                          {"tables": tables, "probes": probes, "operations": done,
                           "skipped": [op.describe() for op in skipped], "indexes_optimized": indexes,
                           "performance_improvement_percent": overall, "notes": english},
                          "\n".join(lines))


def _mb(size: int) -> str:
    return f"{size / 1048576:.2f} MB"
