"""The pure parts of the migration: the task model, SQL text, throttle decisions, progress numbers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tasks.migration.spec import MigrationTask, expression_problem
from tasks.migration.sql import (
    boundary_sql,
    cast_type,
    insert_select_sql,
    insert_values_sql,
    key_range,
    source_checksum_sql,
    target_checksum_sql,
)
from tasks.migration.stats import Snapshot, format_duration
from tasks.migration.step import DataMigrationParams
from tasks.migration.throttle import ChunkSizer, Throttle, chunk_ceiling, pause_reason, rate_delay
from tests.support.orders import task


def make(**overrides: object) -> MigrationTask:
    return MigrationTask.model_validate({**task(), **overrides})


def test_the_key_is_added_first_to_the_mapping_when_the_config_leaves_it_out() -> None:
    spec = make()
    assert list(spec.mapping)[0] == "id"
    assert spec.mapping["id"] == "src.`id`"


def test_a_transformed_key_is_refused_because_resume_and_verification_need_it_unchanged() -> None:
    with pytest.raises(ValidationError, match="columns.id must be the key 'id' itself"):
        make(columns={"id": "id + 1000", "status": "status"})
    assert make(columns={"id": "`id`", "status": "status"}).mapping["id"] == "src.`id`"


@pytest.mark.parametrize(("text", "problem"), [
    ("", "is empty"),
    ("1; DROP TABLE orders", "contains ';'"),
    ("CONCAT('a", "unterminated quote"),
    ("status /* open", "unterminated quote or comment"),
])
def test_expressions_that_are_not_one_expression_are_refused(text: str, problem: str) -> None:
    assert problem in (expression_problem(text) or "")


def test_semicolons_inside_strings_and_comments_are_fine() -> None:
    assert expression_problem("CONCAT(note, ';') /* a;b */") is None
    assert expression_problem("REPLACE(note, 'it''s;', '')") is None


def test_plan_time_errors_name_the_problem() -> None:
    with pytest.raises(ValidationError, match="target column 'bad col' is not a plain identifier"):
        make(columns={"bad col": "status"})
    with pytest.raises(ValidationError, match="condition contains ';'"):
        make(condition="1=1; DELETE FROM orders")
    with pytest.raises(ValidationError, match="String should match pattern"):
        make(source_table="orders`; DROP")
    with pytest.raises(ValidationError, match="task names must be unique"):
        DataMigrationParams.model_validate({"tasks": [task(), task()]})
    with pytest.raises(ValidationError, match="min_chunk_rows <= initial_chunk_rows <= max_chunk_rows"):
        DataMigrationParams.model_validate({"tasks": [task()], "initial_chunk_rows": 10, "min_chunk_rows": 100})


def test_fingerprint_changes_with_the_transform_but_not_with_mode_or_name() -> None:
    base = make()
    assert make(mode="stream", name="other").fingerprint() == base.fingerprint()
    assert make(condition="status = 'DONE'").fingerprint() != base.fingerprint()
    assert make(columns={**task()["columns"], "status": "UPPER(status)"}).fingerprint() != base.fingerprint()


def test_chunk_sql_escapes_percent_signs_of_configured_expressions_and_quotes_identifiers() -> None:
    sql = insert_select_sql(make(), "`s`.`orders`", "`t`.`orders_v2`", has_lower=True)
    assert sql == ("INSERT INTO `t`.`orders_v2` (`id`, `customer_id`, `amount_cents`, `status`, `note`, `created_day`) "
                   "SELECT src.`id`, customer_id, CAST(amount * 100 AS SIGNED), LOWER(status), "
                   "CONCAT('100%%: ', note), DATE(created_at) FROM `s`.`orders` AS src "
                   "WHERE src.`id` > %s AND src.`id` <= %s AND (status <> 'NEW')")


def test_the_first_chunk_has_no_lower_bound() -> None:
    assert key_range("k", has_lower=False) == "k <= %s"
    assert boundary_sql(make(), "`s`.`orders`", has_lower=False) == (
        "SELECT src.`id` FROM `s`.`orders` AS src WHERE src.`id` <= %s ORDER BY src.`id` LIMIT 1 OFFSET %s")


def test_streamed_rows_are_written_with_one_placeholder_per_column() -> None:
    assert insert_values_sql(make(columns={"status": "status"}), "`t`.`x`") == (
        "INSERT INTO `t`.`x` (`id`, `status`) VALUES (%s, %s)")


def test_checksums_cast_both_sides_to_the_target_types() -> None:
    spec = make(columns={"amount_cents": "amount * 100"})
    casts = {"id": "SIGNED", "amount_cents": "SIGNED"}
    source = source_checksum_sql(spec, "`s`.`o`", casts, has_lower=False)
    target = target_checksum_sql(spec, "`t`.`o`", casts, has_lower=False)
    assert "CAST((amount * 100) AS SIGNED)" in source and "WHERE src.`id` <= %s AND (status <> 'NEW')" in source
    assert "CAST(tgt.`amount_cents` AS SIGNED)" in target and target.endswith("WHERE tgt.`id` <= %s")
    assert "COUNT(*), COALESCE(SUM(CRC32(" in source and "BIT_XOR" in target


@pytest.mark.parametrize(("args", "expected"), [
    (("bigint", "bigint(20)", 19, 0, None), "SIGNED"),
    (("int", "int(10) unsigned", 10, 0, None), "UNSIGNED"),
    (("decimal", "decimal(12,2)", 12, 2, None), "DECIMAL(12,2)"),
    (("datetime", "datetime(3)", None, None, 3), "DATETIME(3)"),
    (("date", "date", None, None, None), "DATE"),
    (("varchar", "varchar(80)", None, None, None), "CHAR"),
    (("blob", "blob", None, None, None), "BINARY"),
    (("double", "double", 22, None, None), "DOUBLE"),
])
def test_cast_types_follow_the_target_column(args: tuple, expected: str) -> None:
    assert cast_type(*args) == expected


def test_chunk_size_moves_toward_the_target_duration_but_at_most_doubles_or_halves() -> None:
    sizer = ChunkSizer(target_seconds=0.5, minimum=100, maximum=50_000, initial=1_000)
    assert sizer.observe(1_000, 0.05) == 2_000  # 10x too fast: doubles, not 10x
    assert sizer.observe(2_000, 0.25) == 4_000
    assert sizer.observe(4_000, 0.5) == 4_000  # on target: stays
    assert sizer.observe(4_000, 5.0) == 2_000  # a slow chunk (lock wait) halves it, no collapse to 400
    assert sizer.observe(2_000, 0.0) == 2_000  # nothing measured: unchanged


def test_chunk_size_stays_within_its_bounds() -> None:
    sizer = ChunkSizer(target_seconds=1.0, minimum=100, maximum=3_000, initial=2_000)
    assert sizer.observe(2_000, 0.01) == 3_000
    for _ in range(10):
        sizer.observe(sizer.size, 100.0)
    assert sizer.size == 100
    with pytest.raises(ValueError, match="chunk bounds"):
        ChunkSizer(1.0, 0, 10, 5)


def test_under_a_rate_ceiling_chunks_stay_small_and_steady_instead_of_bursting() -> None:
    throttled = Throttle(max_rows_per_second=10_000, target_chunk_seconds=0.5, max_chunk_rows=50_000)
    assert chunk_ceiling(throttled) == 5_000
    assert ChunkSizer.for_throttle(throttled).maximum == 5_000
    assert chunk_ceiling(Throttle(max_rows_per_second=None, max_chunk_rows=50_000)) == 50_000
    assert chunk_ceiling(Throttle(max_rows_per_second=10, min_chunk_rows=100)) == 100


def test_rate_delay_keeps_rows_per_second_under_the_ceiling() -> None:
    assert rate_delay(5_000, 0.2, 10_000) == pytest.approx(0.3)
    assert rate_delay(5_000, 0.7, 10_000) == 0.0
    assert rate_delay(5_000, 0.2, None) == 0.0
    assert rate_delay(0, 0.2, 10_000) == 0.0


def test_pause_reason_names_the_flag_or_the_loaded_server() -> None:
    assert pause_reason({"db:3306": 5}, 32, None) is None
    assert pause_reason({"db:3306": 40, "other:3306": 2}, 32, None) == "server loaded: db:3306 Threads_running=40 > 32"
    assert pause_reason({"db:3306": 40}, None, None) is None
    assert pause_reason({}, 32, "pause flag file /x exists") == "pause flag file /x exists"


def test_snapshot_reports_remaining_rate_and_eta() -> None:
    snap = Snapshot(task="t", rows_done=600_000, total_rows=2_000_000, run_rows=500_000, run_seconds=10.0)
    assert snap.remaining == 1_400_000
    assert snap.rows_per_second == 50_000
    assert snap.eta_seconds == 28
    assert snap.describe() == "t: 600,000/2,000,000 rows, 1,400,000 remaining, 50,000 rows/s, ETA 28s"
    assert Snapshot("t", 0, 0, 0, 0.0).percent == 100.0
    assert [format_duration(s) for s in (None, 5, 185, 3720)] == ["-", "5s", "3m05s", "1h02m"]
