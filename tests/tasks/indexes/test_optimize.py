"""IndexOptimizationStep on the real MariaDB: statistics, probes, rollback and the time budget."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tasks.core.errors import StepFailed
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepResult
from tasks.indexes.optimize import IndexDef, TableRequest, TableStats, percent_change, plan_operations
from tasks.indexes.step import IndexOptimizationStep, IndexOptimizeParams
from tests.helpers import step_context
from tests.support.builders import run_sql

ROWS = 60_000


@pytest.fixture
def orders_db(mariadb_database: str) -> str:
    run_sql(mariadb_database,
            "CREATE TABLE orders (id INT PRIMARY KEY, customer INT, status VARCHAR(12), note VARCHAR(100), "
            "KEY ix_status (status))",
            f"INSERT INTO orders SELECT seq, seq % 5000, ELT(1 + seq % 4, 'NEW', 'PAID', 'SENT', 'DONE'), "
            f"REPEAT('x', 80) FROM seq_1_to_{ROWS}")
    return mariadb_database


def indexes(url: str) -> dict[str, tuple[str, ...]]:
    rows = run_sql(url, "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE "
                        "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'orders' ORDER BY INDEX_NAME, SEQ_IN_INDEX")
    out: dict[str, tuple[str, ...]] = {}
    for name, column in rows:
        out[name] = (*out.get(name, ()), column)
    return out


def optimize(tmp_path: Path, url: str, **params: Any) -> StepResult:
    model = IndexOptimizeParams.model_validate({"database": "ft_db", **params})
    with step_context(tmp_path, databases={"ft_db": url}, cutpoint="startup_post_process") as ctx:
        return IndexOptimizationStep(model, ctx).run()


PROBE = {"name": "orders of one customer", "sql": "SELECT COUNT(*) FROM orders WHERE customer = 42", "repeat": 5}


def test_a_new_index_makes_the_probe_faster_and_the_report_says_by_how_much(tmp_path: Path, orders_db: str) -> None:
    result = optimize(tmp_path, orders_db, probes=[PROBE], tables=[{
        "table": "orders", "optimize": True,
        "indexes": [{"name": "ix_customer", "columns": ["customer", "status(4)"]},
                    {"name": "ix_status", "columns": ["status"], "action": "rebuild"}]}])
    assert result.status is StepStatus.SUCCESS, result.summary
    assert indexes(orders_db)["ix_customer"] == ("customer", "status")
    probe = result.details["probes"][0]
    assert probe["improvement_percent"] > 50, probe
    assert result.details["performance_improvement_percent"] == probe["improvement_percent"]
    assert result.details["indexes_optimized"] == 2
    assert [d["operation"] for d in result.details["operations"]] == [
        "create index ix_customer (customer, status(4)) on orders",
        "rebuild index ix_status (status) on orders", "OPTIMIZE TABLE orders", "ANALYZE TABLE orders"]
    table = result.details["tables"][0]
    assert table["cardinality_after"]["ix_customer"] > 0
    assert "| orders of one customer |" in result.markdown


def test_running_again_skips_indexes_that_already_exist_as_configured(tmp_path: Path, orders_db: str) -> None:
    spec = [{"table": "orders", "analyze": False, "indexes": [{"name": "ix_customer", "columns": ["customer"]}]}]
    optimize(tmp_path, orders_db, tables=spec)
    again = optimize(tmp_path, orders_db, tables=spec)
    assert again.details["operations"] == []
    assert "index ix_customer on orders already exists as configured" in again.details["notes"]


def test_a_failing_index_operation_drops_what_the_step_created(tmp_path: Path, orders_db: str) -> None:
    before = indexes(orders_db)
    with pytest.raises(StepFailed) as failed:
        optimize(tmp_path, orders_db, tables=[{"table": "orders", "indexes": [
            {"name": "ix_customer", "columns": ["customer"]},
            {"name": "ux_customer", "columns": ["customer"], "unique": True}]}])  # duplicates: cannot be unique
    assert "Duplicate entry" in str(failed.value)
    assert "dropped 1 index(es) it had created" in str(failed.value)
    assert indexes(orders_db) == before


def test_config_problems_stop_the_step_before_anything_runs(tmp_path: Path, orders_db: str) -> None:
    before = indexes(orders_db)
    with pytest.raises(StepFailed, match="not started") as failed:
        optimize(tmp_path, orders_db, tables=[
            {"table": "orders", "indexes": [{"name": "ix_new", "columns": ["customer"]},
                                            {"name": "ix_status", "columns": ["customer"]},
                                            {"name": "ix_x", "columns": ["nope"]}]},
            {"table": "missing_table"}])
    message = str(failed.value)
    assert "index ix_status on orders exists as (status), the config says (customer): use action 'rebuild'" in message
    assert "index ix_x on orders: no column(s) nope" in message
    assert "table missing_table does not exist" in message
    assert indexes(orders_db) == before


def test_the_time_budget_stops_a_blocked_operation_keeps_finished_work_and_warns(
        tmp_path: Path, orders_db: str) -> None:
    run_sql(orders_db, "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(20))")
    blocker = create_engine(orders_db).connect()
    blocker.execute(text("SELECT * FROM orders LIMIT 1"))  # open transaction: holds a metadata lock on orders
    release = threading.Timer(6, blocker.rollback)
    release.start()
    try:
        result = optimize(tmp_path, orders_db, time_budget_seconds=2.5, tables=[
            {"table": "customers", "indexes": [{"name": "ix_name", "columns": ["name"]}]},
            {"table": "orders", "indexes": [{"name": "ix_customer", "columns": ["customer"]}]}])
    finally:
        release.cancel()
        blocker.rollback()
        blocker.close()
    assert result.status is StepStatus.WARNING
    assert "执行 create index ix_customer (customer) on orders 时用完 2.5 秒的时间预算" in result.markdown
    assert "ix_customer" not in indexes(orders_db)
    assert result.details["operations"][0]["operation"] == "create index ix_name (name) on customers", "kept"
    assert len(result.details["skipped"]) == 3  # the blocked index, ANALYZE customers, ANALYZE orders


def test_a_budget_used_up_by_the_probes_starts_no_operation(tmp_path: Path, orders_db: str) -> None:
    result = optimize(tmp_path, orders_db, time_budget_seconds=1,
                      probes=[{"name": "slow", "sql": "SELECT SLEEP(0.4)", "repeat": 2}],
                      tables=[{"table": "orders", "indexes": [{"name": "ix_customer", "columns": ["customer"]}]}])
    assert result.status is StepStatus.WARNING
    assert result.details["skipped"] == ["create index ix_customer (customer) on orders", "ANALYZE TABLE orders"]


def test_operations_are_planned_indexes_first_then_optimize_then_analyze() -> None:
    stats = {"t": TableStats("t", columns={"a", "b"}, indexes={"ix_a": IndexDef("ix_a", ("a",))})}
    ops, problems, notes = plan_operations([TableRequest("t", (
        (IndexDef("ix_b", ("b",)), "create"), (IndexDef("ix_a", ("a",)), "rebuild"),
        (IndexDef("ix_c", ("b",)), "rebuild")), analyze=True, optimize=True)], stats)
    assert problems == []
    assert [(o.kind, o.index.name if o.index else None) for o in ops] == [
        ("create_index", "ix_b"), ("rebuild_index", "ix_a"), ("create_index", "ix_c"), ("optimize", None),
        ("analyze", None)]
    assert notes == ["index ix_c on t does not exist: creating it"]


def test_percent_change_is_positive_when_faster_and_none_without_a_baseline() -> None:
    assert percent_change(200, 50) == 75.0
    assert percent_change(100, 120) == -20.0
    assert percent_change(0, 5) is None
