"""The metadata store on the real MariaDB: the requirements' tables and indexes, created by the tool."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from tasks.store.breakpoints import active_breakpoint, open_breakpoint
from tasks.store.metadata_store import MetadataStore
from tasks.store.migrations import CURRENT_VERSION, migrate

pytestmark = pytest.mark.mariadb


def test_the_tool_creates_the_five_tables_with_the_seed_indexes_on_mariadb(mariadb_database: str) -> None:
    store = MetadataStore.open(mariadb_database)
    try:
        inspector = inspect(store.engine)
        tables = set(inspector.get_table_names())
        assert {"upgrade_execution", "step_execution", "sql_execution_record", "upgrade_breakpoint",
                "upgrade_report", "ft_upgrade_schema_version"} <= tables
        indexes = {t: {i["name"] for i in inspector.get_indexes(t)} for t in tables}
        assert {"idx_version_site", "idx_exec_status_time", "idx_step_type"} <= indexes["upgrade_execution"]
        assert {"idx_execution_id", "idx_step_status", "idx_execution_order"} <= indexes["step_execution"]
        assert {"idx_execution_step", "idx_sql_file_seq", "idx_sql_status_time", "uk_sql_content"} <= \
            indexes["sql_execution_record"]
        assert {"uk_execution_active", "idx_bp_status_time"} <= indexes["upgrade_breakpoint"]
        assert migrate(store.engine) == 0, "a second start applies nothing"
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT MAX(version) FROM ft_upgrade_schema_version").scalar() == \
                CURRENT_VERSION
    finally:
        store.close()


def test_one_execution_has_at_most_one_active_breakpoint(mariadb_database: str) -> None:
    store = MetadataStore.open(mariadb_database)
    try:
        first = open_breakpoint(store.engine, execution_id="E1", step_id="s", kind="STEP_LEVEL", message="one",
                                instructions="", context={})
        second = open_breakpoint(store.engine, execution_id="E1", step_id="s", kind="STEP_LEVEL",
                                 message="two", instructions="", context={})
        active = active_breakpoint(store.engine, "E1")
        assert active is not None and active.id == second != first
        with pytest.raises(IntegrityError), store.engine.begin() as conn:  # the unique index holds the line
            conn.exec_driver_sql("UPDATE upgrade_breakpoint SET active_execution_id = 'E1' WHERE id = %s",
                                 (first,))
    finally:
        store.close()


def test_times_are_stored_in_utc(mariadb_database: str) -> None:
    from datetime import UTC, datetime

    store = MetadataStore.open(mariadb_database)
    try:
        before = datetime.now(UTC).replace(tzinfo=None)
        execution = store.create_execution(source_version="3.17.0", target_version="3.17.5", site_id="CN",
                                           cutpoint="pre_business_check", environment={}, total_steps=0,
                                           flow_run_id=None, plan_fingerprint="x")
        row = store.get_execution(execution)
        assert row is not None
        assert abs((row.start_time - before).total_seconds()) < 5
    finally:
        store.close()


def test_the_site_lock_on_mariadb_refuses_a_second_holder_and_frees_itself(mariadb_database: str) -> None:
    from tasks.core.errors import SiteBusy
    from tasks.store.site_lock import site_lock

    store = MetadataStore.open(mariadb_database)
    try:
        with site_lock(store.engine, "CN", holder="first run"):
            with pytest.raises(SiteBusy, match="site CN is being upgraded by first run"), \
                    site_lock(store.engine, "CN", holder="second run"):
                pass
            with site_lock(store.engine, "US", holder="other site"):
                pass
        with site_lock(store.engine, "CN", holder="after release"):
            pass
    finally:
        store.close()


def test_a_breakpoint_keeps_the_first_error_of_its_statement_and_says_which_attempt_closed_the_last(
        mariadb_database: str) -> None:
    from tasks.store.breakpoints import resolve_as_decided

    store = MetadataStore.open(mariadb_database)
    try:
        e = store.create_execution(source_version="3.17.0", target_version="3.17.5", site_id="CN",
                                   cutpoint="startup_pre_process", environment={}, total_steps=1,
                                   flow_run_id="run-1", plan_fingerprint="p")
        at = {"execution_id": e, "step_id": "sql_001", "kind": "SQL_LEVEL", "instructions": "", "file": "s.sql",
              "file_id": "F1", "line": 2, "sequence": 2}
        first = open_breakpoint(store.engine, message="Data too long for column 'tag'", error_code="1406",
                                context={"in_doubt": True}, **at)
        store.reopen_execution(e, flow_run_id="run-1", total_steps=1)  # a Retry: attempt 2, nobody decided
        resolve_as_decided(store.engine, e, why="it went on from here")
        second = open_breakpoint(store.engine, message="InDoubt: its effects are not visible", context={}, **at)
        third = open_breakpoint(store.engine, message="InDoubt again", context={}, **at)  # superseding
        bp = active_breakpoint(store.engine, e)
        assert bp is not None and bp.id == third
        assert bp.original_error == {"breakpoint": first, "time": bp.original_error["time"], "error_code": "1406",
                                     "message": "Data too long for column 'tag'"}
        with store.engine.connect() as conn:
            notes = dict(conn.exec_driver_sql("SELECT id, resolve_notes FROM upgrade_breakpoint").fetchall())
        assert notes[first] == ("closed by attempt 2 (resume 1, flow run run-1) without an operator's decision: "
                                "it went on from here")
        assert notes[second] == f"superseded by {third}: attempt 2 (resume 1, flow run run-1) stopped at s.sql:2"
        elsewhere = open_breakpoint(store.engine, message="other", context={}, **{**at, "sequence": 3})
        assert active_breakpoint(store.engine, e).id == elsewhere and \
            active_breakpoint(store.engine, e).original_error is None, "another statement: its own first error"
    finally:
        store.close()
