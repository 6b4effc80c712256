"""The ClickHouse log store on the real embedded engine (chdb), one fresh data directory per test.

chdb hosts one engine path per process, so every store opened here is closed before the test ends.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import SecretStr

from blocks.clickhouse import ClickHouseLogStore
from tasks.events.logstore import ClickHouseEventLog, LogEvent
from tests.conftest import PROJECT
from tests.prefect_server import free_port


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ClickHouseLogStore]:
    with ClickHouseLogStore(dsn=SecretStr(f"chdb://{tmp_path / 'ch'}")) as s:
        yield s


@pytest.fixture
def log(store: ClickHouseLogStore) -> ClickHouseEventLog:
    event_log = ClickHouseEventLog(store)
    assert event_log.ensure_schema()
    return event_log


def _event(**overrides: object) -> LogEvent:
    values: dict[str, object] = {"execution_id": "exec-1", "site_id": "site-a", "cutpoint": "CP1"}
    values.update(overrides)
    return LogEvent(**values)  # type: ignore[arg-type]


def _engine_full(store: ClickHouseLogStore) -> str:
    return store.get_client().command(
        "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": store.database, "t": store.table},
    )


def test_schema_has_the_specified_column_types(store: ClickHouseLogStore, log: ClickHouseEventLog) -> None:
    rows = (
        store.get_client()
        .query(
            "SELECT name, type FROM system.columns WHERE database = 'ft_upgrade_log' "
            "AND table = 'upgrade_event' ORDER BY position"
        )
        .result_rows
    )
    assert rows == [
        ("event_time", "DateTime64(3, 'UTC')"),
        ("execution_id", "String"),
        ("site_id", "LowCardinality(String)"),
        ("cutpoint", "LowCardinality(String)"),
        ("step_id", "String"),
        ("level", "LowCardinality(String)"),
        ("kind", "LowCardinality(String)"),
        ("file", "String"),
        ("line", "UInt32"),
        ("sequence", "UInt32"),
        ("database", "LowCardinality(String)"),
        ("status", "LowCardinality(String)"),
        ("duration_ms", "Nullable(Float64)"),
        ("affected_rows", "Nullable(Int64)"),
        ("error_code", "String"),
        ("message", "String"),
        ("sql_text", "String"),
    ]


def test_table_is_partitioned_by_day_ordered_by_execution_and_expires(
    store: ClickHouseLogStore, log: ClickHouseEventLog
) -> None:
    assert _engine_full(store).startswith(
        "MergeTree PARTITION BY toYYYYMMDD(event_time) ORDER BY (execution_id, event_time) "
        "TTL event_time + toIntervalDay(30)"
    )


def test_ensure_schema_is_idempotent_and_follows_a_retention_change(
    store: ClickHouseLogStore, log: ClickHouseEventLog
) -> None:
    shorter = ClickHouseLogStore(dsn=store.dsn, retention_days=7)
    try:
        assert ClickHouseEventLog(shorter).ensure_schema()
        assert "TTL event_time + toIntervalDay(7)" in _engine_full(shorter)
    finally:
        shorter.close()


def test_written_events_read_back_equal_in_time_order(log: ClickHouseEventLog) -> None:
    t0 = datetime(2026, 11, 20, 8, 30, 0, 123456, tzinfo=UTC)
    statement = _event(
        event_time=t0 + timedelta(seconds=1),
        step_id="apply-ddl",
        level="INFO",
        kind="statement",
        file="sql/CP1/001_create.sql",
        line=12,
        sequence=3,
        database="ft_core",
        status="SUCCESS",
        duration_ms=12.5,
        affected_rows=0,
        message="executed",
        sql_text="ALTER TABLE t ADD COLUMN c INT",
    )
    failed_step = _event(
        event_time=t0,
        step_id="backup",
        level="ERROR",
        kind="step",
        status="FAILED",
        error_code="1045",
        message="access denied",
    )
    other_execution = _event(execution_id="exec-2", message="not mine")

    assert log.write([statement, failed_step, other_execution]) == 3

    read_back = log.events("exec-1")
    assert read_back == [failed_step, statement]
    assert read_back[0].event_time == datetime(2026, 11, 20, 8, 30, 0, 123000, tzinfo=UTC)
    assert log.dropped == 0


def test_event_times_are_utc_with_millisecond_precision() -> None:
    local = datetime(2026, 1, 2, 5, 0, 0, 987654, tzinfo=timezone(timedelta(hours=2)))
    assert _event(event_time=local).event_time == datetime(2026, 1, 2, 3, 0, 0, 987000, tzinfo=UTC)
    assert _event(event_time=datetime(2026, 1, 2, 3, 0)).event_time.tzinfo is UTC


def test_an_unknown_event_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="kind"):
        _event(kind="statment")


def test_event_through_batching_writer_is_queryable_within_one_second(log: ClickHouseEventLog) -> None:
    with log.writer() as writer:
        started = time.monotonic()
        writer.put(_event(execution_id="exec-latency", message="hello"))
        while not log.events("exec-latency"):
            assert time.monotonic() - started < 1.0, "event not visible within 1 s"
            time.sleep(0.02)
    assert [e.message for e in log.events("exec-latency")] == ["hello"]


def test_close_writes_everything_still_queued(store: ClickHouseLogStore, log: ClickHouseEventLog) -> None:
    writer = log.writer(flush_interval=5.0, max_batch=1000)
    writer.put_many(_event(execution_id="exec-bulk", sequence=i) for i in range(2500))
    writer.close()

    count = store.get_client().command(
        "SELECT count() FROM ft_upgrade_log.upgrade_event WHERE execution_id = 'exec-bulk'"
    )
    assert count == 2500
    assert writer.dropped == 0


def test_flush_makes_queued_events_visible_without_waiting_for_the_interval(log: ClickHouseEventLog) -> None:
    with log.writer(flush_interval=30.0) as writer:
        writer.put(_event(execution_id="exec-flush"))
        assert writer.flush(timeout=5.0)
        assert len(log.events("exec-flush")) == 1


def test_events_put_after_close_are_counted_as_dropped(log: ClickHouseEventLog) -> None:
    writer = log.writer()
    writer.close()
    writer.put(_event())
    assert writer.dropped == 1


def test_passwords_and_known_secrets_are_masked_before_they_are_stored(store: ClickHouseLogStore) -> None:
    log = ClickHouseEventLog(store, mask_patterns=[r"licence=(\w+)"], secrets=["Tr0ub4dor"])
    event = _event(
        kind="statement",
        sql_text="CREATE USER 'app'@'%' IDENTIFIED BY 'pa''ss'; -- licence=XYZ123",
        message="connect mysql://root:rootpw@db:3306/ft failed for Tr0ub4dor",
    )
    assert log.write([event]) == 1

    (stored,) = log.events("exec-1")
    assert stored.sql_text == "CREATE USER 'app'@'%' IDENTIFIED BY '***'; -- licence=***"
    assert stored.message == "connect mysql://root:***@db:3306/ft failed for ***"
    leaks = store.get_client().command(
        "SELECT count() FROM ft_upgrade_log.upgrade_event WHERE "
        "position(sql_text || message, 'pa''''ss') > 0 OR position(sql_text || message, 'rootpw') > 0 "
        "OR position(sql_text || message, 'XYZ123') > 0 OR position(sql_text || message, 'Tr0ub4dor') > 0"
    )
    assert leaks == 0


def test_drop_older_than_removes_whole_old_partitions(log: ClickHouseEventLog) -> None:
    now = datetime.now(UTC)
    ten_days, seven_days = now - timedelta(days=10), now - timedelta(days=7)
    log.write(
        [
            _event(event_time=ten_days, message="old"),
            _event(event_time=seven_days, message="older than five days"),
            _event(event_time=now, message="today"),
        ]
    )

    dropped = log.drop_older_than(5)

    assert dropped == [ten_days.strftime("%Y%m%d"), seven_days.strftime("%Y%m%d")]
    assert [e.message for e in log.events("exec-1")] == ["today"]
    assert log.drop_older_than(5) == []


def test_clickhouse_failure_is_logged_and_counted_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    broken_store = ClickHouseLogStore(dsn=SecretStr(f"clickhouse://127.0.0.1:{free_port()}"))  # nobody listens
    broken = ClickHouseEventLog(broken_store)

    with caplog.at_level(logging.WARNING, logger="tasks.events.logstore"):
        assert broken.ensure_schema() is False
        assert broken.write([_event(), _event()]) == 0
        assert broken.events("exec-1") == []
        assert broken.drop_older_than(1) == []
        with broken.writer() as writer:
            writer.put(_event())

    assert broken.dropped == 3
    assert writer.dropped == 3
    assert any("ClickHouse log store" in r.getMessage() for r in caplog.records)
    broken_store.close()


def test_default_dsn_is_an_absolute_chdb_path_under_the_tool_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FT_UPGRADE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FT_UPGRADE_CLICKHOUSE_DSN", raising=False)

    default = ClickHouseLogStore.from_env_or_default()

    assert default.dsn.get_secret_value() == f"chdb://{tmp_path / 'home' / 'clickhouse'}"
    assert default.database == "ft_upgrade_log"
    assert default.table == "upgrade_event"
    assert default.retention_days == 30


def test_dsn_from_the_environment_wins_and_stays_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FT_UPGRADE_CLICKHOUSE_DSN", "clickhouse://u:hunter2@ch:8123")

    configured = ClickHouseLogStore.from_env_or_default()

    assert configured.dsn.get_secret_value() == "clickhouse://u:hunter2@ch:8123"
    assert "hunter2" not in repr(configured)


# ---- one embedded store, many processes (blocks.clickhouse_process) ---------------------------------------

WRITER = """
import sys
from blocks.clickhouse import ClickHouseLogStore
from tasks.events.logstore import ClickHouseEventLog, LogEvent
with ClickHouseLogStore(dsn=sys.argv[1]) as store:
    log = ClickHouseEventLog(store)
    with log.writer(flush_interval=0.05) as writer:
        for i in range(int(sys.argv[3])):
            writer.put(LogEvent(execution_id=sys.argv[2], sequence=i))
print(log.dropped)
"""


def _stored(store: ClickHouseLogStore, execution_id: str) -> tuple[int, int]:
    """(rows, distinct sequences) of one execution."""
    rows, distinct = store.get_client().query(
        "SELECT count(), uniqExact(sequence) FROM ft_upgrade_log.upgrade_event WHERE execution_id = {e:String}",
        parameters={"e": execution_id}).result_rows[0]
    return int(rows), int(distinct)


def test_processes_of_one_host_write_and_read_one_embedded_store_at_once(
        store: ClickHouseLogStore, log: ClickHouseEventLog) -> None:
    dsn = store.dsn.get_secret_value()
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, dsn, f"proc-{i}", "2000"], cwd=PROJECT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    reads = 0
    while any(w.poll() is None for w in writers):  # this process reads while they write
        log.events("proc-0")
        reads += 1
    outputs = [w.communicate()[0] for w in writers]
    assert [w.returncode for w in writers] == [0, 0], outputs
    assert [o.strip().splitlines()[-1] for o in outputs] == ["0", "0"], "no process dropped an event"
    assert [_stored(store, f"proc-{i}") for i in range(2)] == [(2000, 2000)] * 2
    assert reads > 0 and log.dropped == 0


def test_an_engine_process_killed_mid_run_loses_no_event_and_stores_none_twice(
        store: ClickHouseLogStore, log: ClickHouseEventLog) -> None:
    killed = []
    with log.writer(flush_interval=0.02) as writer:
        for i in range(1500):
            writer.put(_event(execution_id="exec-killed", sequence=i))
            if i in (400, 1000):
                assert writer.flush(timeout=30)
                pid = store.get_client().server_pid
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    assert _stored(store, "exec-killed") == (1500, 1500)
    assert log.dropped == 0
    assert store.get_client().server_pid not in killed, "a new engine process serves the directory"


def test_a_batch_the_engine_process_cannot_take_is_spooled_and_ingested_by_the_next(tmp_path: Path) -> None:
    import clickhouse_connect

    dsn = f"chdb://{tmp_path / 'ch'}"
    holder = clickhouse_connect.get_client(dsn=dsn)  # the directory opened outside any engine process
    try:
        with ClickHouseLogStore(dsn=SecretStr(dsn)) as blocked:
            log = ClickHouseEventLog(blocked)
            assert log.write([_event(execution_id="exec-spooled", sequence=i) for i in range(10)]) == 10
            assert log.dropped == 0
    finally:
        holder.close()
    assert len(list((tmp_path / "ch.spool").glob("*.insert"))) == 1
    with ClickHouseLogStore(dsn=SecretStr(dsn)) as store:
        deadline = time.monotonic() + 30
        while not (tmp_path / "ch.spool").is_dir() or list((tmp_path / "ch.spool").glob("*.insert")):
            assert time.monotonic() < deadline, "the spooled batch was never ingested"
            store.get_client().command("SELECT 1")
        assert _stored(store, "exec-spooled") == (10, 10)
