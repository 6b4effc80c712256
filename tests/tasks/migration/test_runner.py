"""AsyncDataMigrationStep on the real MariaDB: copy, transform, verify, fail, resume, pause, throttle."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tasks.core.errors import StepFailed
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepResult
from tasks.migration.checkpoint import CheckpointTable
from tasks.migration.probe import LoadProbe
from tasks.migration.sql import table_ref
from tasks.migration.step import AsyncDataMigrationStep, DataMigrationParams
from tasks.migration.verify import Verifier
from tests.helpers import step_context
from tests.support.orders import assert_identical, compare, create_tables, fill, task

pytestmark = pytest.mark.mariadb


def migrate(tmp_path: Path, url: str, tasks: list[dict[str, Any]] | None = None, **params: Any) -> StepResult:
    config = {"tasks": tasks or [task()], "retry_wait_seconds": 0.01, **params}
    with step_context(tmp_path, databases={"ft_db": url}, cutpoint="post_upgrade") as context:
        return AsyncDataMigrationStep(DataMigrationParams.model_validate(config), context).run()


def checkpoint(engine: Engine, name: str = "orders_v2") -> Any:
    with engine.connect() as conn:
        return CheckpointTable(engine.url.database or "").read(conn, name)


def test_rows_are_copied_transformed_verified_and_a_rerun_copies_nothing(
        tmp_path: Path, mariadb_database: str, engine: Engine) -> None:
    create_tables(engine, 20_000)
    result = migrate(tmp_path, mariadb_database, max_rows_per_second=None)
    found = assert_identical(engine)
    assert found["target"] == 15_000  # the condition leaves out the NEW quarter
    migration = result.details["migrations"][0]
    assert migration["status"] == "DONE" and migration["mode"] == "insert_select"
    assert migration["verification"] == {"segments": 1, "source_rows": 15_000, "target_rows": 15_000,
                                         "mismatches": []}
    assert "| orders_v2 | insert_select | DONE | 15,000 / 15,000 |" in result.markdown
    assert checkpoint(engine).status == "DONE"

    again = migrate(tmp_path, mariadb_database)
    assert again.details["migrations"][0]["already_done"] is True
    assert again.details["migrations"][0]["run_rows"] == 0
    assert compare(engine)["target"] == 15_000


def test_streamed_copy_between_servers_gives_the_same_rows(
        tmp_path: Path, mariadb_database: str, engine: Engine) -> None:
    create_tables(engine, 12_345)
    result = migrate(tmp_path, mariadb_database, [task(mode="stream")], max_rows_per_second=None,
                     initial_chunk_rows=1_000, max_chunk_rows=2_000)
    assert result.details["migrations"][0]["mode"] == "stream"
    assert result.details["migrations"][0]["run_chunks"] >= 5
    assert_identical(engine)


def test_without_a_condition_every_row_is_copied(tmp_path: Path, mariadb_database: str, engine: Engine) -> None:
    create_tables(engine, 5_000)
    migrate(tmp_path, mariadb_database, [task(condition=None)])
    assert assert_identical(engine, condition=None)["target"] == 5_000


def test_a_failing_chunk_is_retried_then_fails_the_step_and_a_rerun_resumes_after_the_last_committed_chunk(
        tmp_path: Path, mariadb_database: str, engine: Engine) -> None:
    create_tables(engine, 30_000)
    with engine.begin() as conn:  # amount_cents is NOT NULL in the target: this row cannot be copied
        conn.exec_driver_sql("UPDATE orders SET amount = NULL WHERE id = 20001")
    with pytest.raises(StepFailed) as failed:
        migrate(tmp_path, mariadb_database, max_rows_per_second=None, retries=2, initial_chunk_rows=1_000,
                min_chunk_rows=1_000, max_chunk_rows=1_000)
    message = str(failed.value)
    assert "migration orders_v2: chunk after key 20000 failed 3 times" in message
    assert "cannot be null" in message.lower() and "continues from this key" in message
    report = failed.value.result
    assert isinstance(report, StepResult) and report.status == StepStatus.FAILED
    assert "| orders_v2 | insert_select | COPYING | 15,000 / 22,500 | 15,000 |" in report.markdown
    stopped = checkpoint(engine)
    assert stopped.last_key == 20_000 and stopped.status == "COPYING"
    assert compare(engine)["target"] == stopped.rows_done == 15_000

    with engine.begin() as conn:  # the operator fixes the data, then retries the flow run
        conn.exec_driver_sql("UPDATE orders SET amount = 1.50 WHERE id = 20001")
    resumed = migrate(tmp_path, mariadb_database, max_rows_per_second=None)
    migration = resumed.details["migrations"][0]
    assert migration["resumed_from"] == 20_000 and migration["runs"] == 2
    assert migration["run_rows"] == 7_500
    assert_identical(engine)


def test_a_changed_definition_is_refused_instead_of_mixing_two_transforms(
        tmp_path: Path, mariadb_database: str, engine: Engine) -> None:
    create_tables(engine, 2_000)
    migrate(tmp_path, mariadb_database, verify=False)
    changed = task(columns={**task()["columns"], "status": "UPPER(status)"})
    with pytest.raises(StepFailed, match="its definition changed since it started"):
        migrate(tmp_path, mariadb_database, [changed])


def test_tables_that_cannot_be_copied_safely_are_refused_before_any_row_moves(
        tmp_path: Path, mariadb_database: str, engine: Engine) -> None:
    create_tables(engine, 100)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE orders DROP PRIMARY KEY, ADD KEY k_id (id)")
    with pytest.raises(StepFailed, match="key 'id' of .*orders needs a PRIMARY KEY or UNIQUE index of its own"):
        migrate(tmp_path, mariadb_database)
    with pytest.raises(StepFailed, match="target table .*orders_v3 does not exist"):
        migrate(tmp_path, mariadb_database, [task(target_table="orders_v3")])
    assert compare(engine)["target"] == 0


def test_verification_finds_changed_missing_and_duplicated_rows_in_their_segment(
        tmp_path: Path, mariadb_database: str, engine: Engine) -> None:
    create_tables(engine, 10_000)
    migrate(tmp_path, mariadb_database, [task(condition=None)])
    schema = engine.url.database or ""
    from tasks.migration.spec import MigrationTask

    verifier = Verifier(MigrationTask.model_validate(task(condition=None)), source=engine, target=engine,
                        source_ref=table_ref(schema, "orders"), target_ref=table_ref(schema, "orders_v2"),
                        casts={"id": "SIGNED", "customer_id": "SIGNED", "amount_cents": "SIGNED", "status": "CHAR",
                               "note": "CHAR", "created_day": "DATE"}, segment_rows=1_000)
    assert verifier.run(10_000).ok
    tampering = ["UPDATE orders_v2 SET note = 'x' WHERE id = 1500",
                 "DELETE FROM orders_v2 WHERE id = 4321",
                 "INSERT INTO orders_v2 SELECT * FROM orders_v2 WHERE id = 9999",
                 "UPDATE orders_v2 SET note = NULL WHERE id = 6999 AND note IS NOT NULL"]
    with engine.begin() as conn:
        for sql in tampering:
            conn.exec_driver_sql(sql)
    result = verifier.run(10_000)
    assert result.segments == 10
    assert [(m["from_key"], m["to_key"]) for m in result.mismatches] == [
        (1000, 2000), (4000, 5000), (6000, 7000), (9000, 10000)]
    assert result.source_rows == 10_000 and result.target_rows == 10_000  # one deleted, one duplicated


def test_the_copy_waits_while_the_pause_flag_is_set(tmp_path: Path, mariadb_database: str, engine: Engine) -> None:
    create_tables(engine, 3_000)
    flag = tmp_path / "pause"
    flag.touch()
    threading.Timer(1.2, flag.unlink).start()
    started = time.monotonic()
    result = migrate(tmp_path, mariadb_database, pause_file=str(flag), pause_poll_seconds=0.1)
    migration = result.details["migrations"][0]
    assert time.monotonic() - started >= 1.2
    assert migration["paused_seconds"] >= 1.0
    assert migration["pauses"] == [f"pause flag file {flag} exists"]
    assert_identical(engine)


def test_the_load_probe_reads_threads_running_of_each_server(engine: Engine) -> None:
    load = LoadProbe({"local": engine}).threads_running()
    assert set(load) == {"local"} and load["local"] >= 1


def test_the_rows_per_second_ceiling_holds(tmp_path: Path, mariadb_database: str, engine: Engine) -> None:
    create_tables(engine, 20_000)
    result = migrate(tmp_path, mariadb_database, [task(condition=None)], max_rows_per_second=10_000,
                     initial_chunk_rows=1_000)
    migration = result.details["migrations"][0]
    assert migration["copy_seconds"] >= 1.8
    assert migration["rows_per_second"] <= 10_500


def test_the_key_range_is_fixed_at_the_start_so_later_rows_are_left_to_the_application(
        tmp_path: Path, mariadb_database: str, engine: Engine) -> None:
    create_tables(engine, 4_000)
    migrate(tmp_path, mariadb_database, [task(condition=None)])
    assert checkpoint(engine).upper_key == 4_000
    fill(engine, 4_001, 4_100)
    again = migrate(tmp_path, mariadb_database, [task(condition=None)])
    assert again.details["migrations"][0]["already_done"] is True
    assert compare(engine, condition=None)["target"] == 4_000
