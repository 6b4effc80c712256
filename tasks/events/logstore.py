"""Detailed upgrade log events (one row per statement / step / message) in ClickHouse.

The log store is a diagnostic aid, never a reason to fail an upgrade: every ClickHouse error is
logged as a warning and the affected events are counted in ``dropped``. An embedded store
(``chdb:///dir``) loses nothing even then: a batch its engine process cannot take is spooled to disk
and ingested by the next one (:mod:`blocks.clickhouse_process`). Secrets are masked here, before
anything leaves the process, so no caller can forget it.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from tasks.core.masking import mask_sql, mask_text, mask_url

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from blocks.clickhouse import ClickHouseLogStore

logger = logging.getLogger(__name__)

EventKind = Literal["statement", "step", "message"]
KINDS: frozenset[str] = frozenset({"statement", "step", "message"})
MAX_TEXT = 64 * 1024  # a giant data INSERT must not turn the log store into a second copy of the data
# After an embedded engine process failed an insert, batches go straight to the spool this long, so a run
# that ends meanwhile is not held up by a second attempt (its writer has 30 s to finish)
SPOOL_SECONDS = 30.0


def utc_now_ms() -> datetime:
    """Current UTC time truncated to milliseconds (the precision of the ``event_time`` column)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass(frozen=True, slots=True, kw_only=True)
class LogEvent:
    """One log row. Fields are keyword-only; only ``execution_id`` is required."""

    event_time: datetime = field(default_factory=utc_now_ms)
    execution_id: str
    site_id: str = ""
    cutpoint: str = ""
    step_id: str = ""
    level: str = "INFO"
    kind: EventKind = "message"
    file: str = ""
    line: int = 0
    sequence: int = 0
    database: str = ""
    status: str = ""
    duration_ms: float | None = None
    affected_rows: int | None = None
    error_code: str = ""
    message: str = ""
    sql_text: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"LogEvent.kind must be one of {sorted(KINDS)}, got {self.kind!r}")
        t = self.event_time
        t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
        object.__setattr__(self, "event_time", t.replace(microsecond=t.microsecond // 1000 * 1000))


# Column name -> ClickHouse type, in LogEvent field order.
COLUMNS: dict[str, str] = {
    "event_time": "DateTime64(3, 'UTC')",
    "execution_id": "String",
    "site_id": "LowCardinality(String)",
    "cutpoint": "LowCardinality(String)",
    "step_id": "String",
    "level": "LowCardinality(String)",
    "kind": "LowCardinality(String)",
    "file": "String",
    "line": "UInt32",
    "sequence": "UInt32",
    "database": "LowCardinality(String)",
    "status": "LowCardinality(String)",
    "duration_ms": "Nullable(Float64)",
    "affected_rows": "Nullable(Int64)",
    "error_code": "String",
    "message": "String",
    "sql_text": "String",
}
assert list(COLUMNS) == [f.name for f in fields(LogEvent)]

_UINT32 = ("line", "sequence")
_TTL_DAYS_RE = re.compile(r"TTL\s+event_time\s*\+\s*toIntervalDay\((\d+)\)")
# An embedded store's inserts carry a token (blocks.clickhouse_process): a batch delivered twice is kept once.
DEDUPLICATION_WINDOW = "non_replicated_deduplication_window = 1000"


def _ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _truncate(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    return f"{text[:MAX_TEXT]} ... [truncated {len(text) - MAX_TEXT} chars]"


class ClickHouseEventLog:
    """Writes and reads :class:`LogEvent` rows in the table configured by a :class:`ClickHouseLogStore`.

    The store owns the client (close the store, not this object). All client calls go through one
    lock because an HTTP client session must not run two queries at once.
    """

    def __init__(
        self,
        store: ClickHouseLogStore,
        *,
        mask_patterns: Sequence[str] = (),
        secrets: Iterable[str] = (),
    ) -> None:
        self.store = store
        self.mask_patterns = tuple(mask_patterns)
        self._compile_patterns()
        self.secrets = tuple(s for s in secrets if s)
        self.dropped = 0
        self._lock = threading.RLock()
        self._schema_ready = False
        self._failing = False
        self._spool_until = 0.0

    @property
    def table_ref(self) -> str:
        return f"{_ident(self.store.database)}.{_ident(self.store.table)}"

    def _compile_patterns(self) -> None:
        """Compile configured patterns now, so a bad regex fails at setup and not mid-upgrade."""
        for pattern in self.mask_patterns:
            re.compile(pattern)

    # ---- failure policy ---------------------------------------------------------------------------

    def count_dropped(self, n: int) -> None:
        """Record events that never reached ClickHouse (also used by :class:`BatchingWriter`)."""
        with self._lock:
            self.dropped += n

    def _failed(self, action: str, exc: BaseException, n_dropped: int = 0) -> None:
        self.count_dropped(n_dropped)
        detail = mask_text(mask_url(str(exc)), self.secrets)
        # The first failure is a warning; repeats while ClickHouse stays down are debug, not a flood.
        log = logger.debug if self._failing else logger.warning
        log("ClickHouse log store: %s failed (%d events dropped so far): %s", action, self.dropped, detail)
        self._failing = True

    def _ok(self) -> None:
        if self._failing:
            logger.warning("ClickHouse log store recovered (%d events dropped while failing)", self.dropped)
            self._failing = False

    def _client(self) -> Client:
        return self.store.get_client()

    # ---- schema -------------------------------------------------------------------------------------

    @property
    def _deduplicates(self) -> bool:
        """Only an embedded store's inserts carry tokens; a ClickHouse server's table stays as it was."""
        return self.store.directory is not None

    def schema_sql(self) -> list[str]:
        """DDL creating the database and the event table."""
        cols = ",\n    ".join(f"{_ident(name)} {ctype}" for name, ctype in COLUMNS.items())
        days = int(self.store.retention_days)
        return [
            f"CREATE DATABASE IF NOT EXISTS {_ident(self.store.database)}",
            f"CREATE TABLE IF NOT EXISTS {self.table_ref} (\n    {cols}\n)\n"
            "ENGINE = MergeTree\n"
            "PARTITION BY toYYYYMMDD(event_time)\n"
            "ORDER BY (execution_id, event_time)\n"
            f"TTL event_time + INTERVAL {days} DAY\n"
            "SETTINGS ttl_only_drop_parts = 1" + (f", {DEDUPLICATION_WINDOW}" if self._deduplicates else ""),
        ]

    def ensure_schema(self) -> bool:
        """Create database and table if missing and align the TTL with ``retention_days``."""
        try:
            with self._lock:
                client = self._client()
                for ddl in self.schema_sql():
                    client.command(ddl)
                engine_full = client.command(
                    "SELECT engine_full FROM system.tables "
                    "WHERE database = {db:String} AND name = {t:String}",
                    parameters={"db": self.store.database, "t": self.store.table},
                )
                m = _TTL_DAYS_RE.search(str(engine_full))
                if m and int(m.group(1)) != int(self.store.retention_days):
                    client.command(
                        f"ALTER TABLE {self.table_ref} MODIFY TTL "
                        f"event_time + INTERVAL {int(self.store.retention_days)} DAY"
                    )
                if self._deduplicates and DEDUPLICATION_WINDOW not in str(engine_full):  # made by an older version
                    client.command(f"ALTER TABLE {self.table_ref} MODIFY SETTING {DEDUPLICATION_WINDOW}")
                self._schema_ready = True
        except Exception as exc:
            self._failed("ensure_schema", exc)
            return False
        self._ok()
        return True

    # ---- write / read -------------------------------------------------------------------------------

    def _clean(self, text: str) -> str:
        return _truncate(mask_text(mask_sql(text, self.mask_patterns), self.secrets)) if text else text

    def _rows(self, batch: list[LogEvent]) -> bytes:
        """The batch as ``JSONEachRow`` (masked, clamped): inserted as is, no client-side type conversion
        (clickhouse-connect's typed insert imports pandas, a third of a second holding the interpreter lock)."""
        lines = []
        for event in batch:
            row = {name: getattr(event, name) for name in COLUMNS}
            row["event_time"] = event.event_time.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
            row["sql_text"], row["message"] = self._clean(event.sql_text), self._clean(event.message)
            for name in _UINT32:
                row[name] = min(max(int(row[name] or 0), 0), 2**32 - 1)
            for name in COLUMNS:
                if row[name] is None and name not in ("duration_ms", "affected_rows"):
                    row[name] = ""
            lines.append(json.dumps(row, ensure_ascii=False))
        return "\n".join(lines).encode("utf-8", "surrogatepass")

    def write(self, events: Iterable[LogEvent]) -> int:
        """Insert events in one batch (masked first); returns how many were written (or spooled), 0 on failure."""
        batch = list(events)
        if not batch:
            return 0
        try:
            body = self._rows(batch)
        except Exception as exc:
            self._failed(f"insert of {len(batch)} events", exc, len(batch))
            return 0
        if time.monotonic() < self._spool_until:  # the engine process just failed: no second wait now
            return self._spool(body, len(batch), None)
        try:
            with self._lock:
                if not self._schema_ready and not self.ensure_schema():
                    return self._spool(body, len(batch), None)
                self._client().raw_insert(self.table_ref, column_names=list(COLUMNS), insert_block=body,
                                          fmt="JSONEachRow")
        except Exception as exc:
            return self._spool(body, len(batch), exc)
        self._ok()
        return len(batch)

    def _spool(self, body: bytes, n: int, exc: BaseException | None) -> int:
        """An embedded store keeps a batch its engine process could not take on disk, for the next one."""
        if self.store.directory is None:
            if exc is not None:
                self._failed(f"insert of {n} events", exc, n)
            else:
                self.count_dropped(n)
            return 0
        from blocks.clickhouse_process import spool

        try:
            where = spool(self.store.dsn.get_secret_value(), table=self.table_ref, column_names=list(COLUMNS),
                          body=body, fmt="JSONEachRow", schema=self.schema_sql())
        except Exception as spool_exc:
            self._failed(f"spooling of {n} events", spool_exc, n)
            return 0
        log = logger.debug if self._failing else logger.warning
        log("ClickHouse log store: %d events kept in %s for the engine process to ingest (%s)", n, where,
            mask_url(str(exc)) if exc else "the engine process is unavailable")
        self._failing = True
        self._spool_until = max(self._spool_until, time.monotonic() + SPOOL_SECONDS)
        return n

    def events(self, execution_id: str) -> list[LogEvent]:
        """All events of one execution in time order; [] if ClickHouse is unavailable."""
        sql = (
            f"SELECT {', '.join(_ident(c) for c in COLUMNS)} FROM {self.table_ref} "
            "WHERE execution_id = {eid:String} ORDER BY event_time, sequence"
        )
        try:
            with self._lock:
                result = self._client().query(sql, parameters={"eid": execution_id})
        except Exception as exc:
            self._failed("read", exc)
            return []
        self._ok()
        return [LogEvent(**dict(zip(COLUMNS, row, strict=True))) for row in result.result_rows]

    def drop_older_than(self, days: int) -> list[str]:
        """Drop whole daily partitions whose day ended more than ``days`` days ago; returns their ids.

        Dropping partitions is instant and frees disk at once, unlike a ``DELETE`` mutation.
        """
        cutoff = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y%m%d")
        try:
            with self._lock:
                client = self._client()
                old = client.query(
                    "SELECT DISTINCT partition_id FROM system.parts "
                    "WHERE database = {db:String} AND table = {t:String} AND active "
                    "AND partition_id < {cutoff:String} ORDER BY partition_id",
                    parameters={"db": self.store.database, "t": self.store.table, "cutoff": cutoff},
                ).result_rows
                dropped = [str(row[0]) for row in old]
                for partition_id in dropped:
                    client.command(f"ALTER TABLE {self.table_ref} DROP PARTITION ID '{partition_id}'")
        except Exception as exc:
            self._failed("drop_older_than", exc)
            return []
        self._ok()
        return dropped

    def writer(self, **kwargs: Any) -> BatchingWriter:
        """A started :class:`BatchingWriter` on this log."""
        return BatchingWriter(self, **kwargs)


_STOP = object()


class BatchingWriter:
    """Background thread batching events into :meth:`ClickHouseEventLog.write`.

    Callers never wait for ClickHouse: ``put`` only enqueues. A batch is written when it holds
    ``max_batch`` events or ``flush_interval`` seconds after its first event, so each event is
    queryable within about half a second (the 1 s goal) while ClickHouse gets at most two inserts a
    second: each insert makes a part to merge later, and the embedded engine spends its CPU on them
    next to the upgrade. ``close()`` writes everything still queued.
    """

    def __init__(
        self,
        log: ClickHouseEventLog,
        *,
        flush_interval: float = 0.5,
        max_batch: int = 1000,
        max_pending: int = 100_000,
    ) -> None:
        self.log = log
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_pending)
        self._closed = False
        self._warned_closed = False
        self._thread = threading.Thread(target=self._run, name="ft-clickhouse-log-writer", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        """Events lost so far (queue overflow, put after close, ClickHouse failures) — same as the log's."""
        return self.log.dropped

    def put(self, event: LogEvent) -> None:
        """Enqueue one event; never blocks and never raises on a full queue (the event is counted dropped)."""
        if self._closed:
            if not self._warned_closed:
                logger.warning("ClickHouse log writer is closed; events are dropped")
                self._warned_closed = True
            self.log.count_dropped(1)
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.log.count_dropped(1)

    def put_many(self, events: Iterable[LogEvent]) -> None:
        for event in events:
            self.put(event)

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Write everything enqueued so far; True once it has been handed to ClickHouse."""
        if self._closed or not self._thread.is_alive():
            return False
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop accepting events, write what is queued and stop the thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._queue.put(_STOP, timeout=timeout)  # a full queue behind a hung server must not hang us
        except queue.Full:
            logger.warning("ClickHouse log writer queue stayed full; pending events may be lost")
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning(
                "ClickHouse log writer did not finish within %ss; pending events may be lost", timeout
            )

    def __enter__(self) -> BatchingWriter:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def _run(self) -> None:
        self.log.ensure_schema()  # the engine boots now, before the first events need it
        stop = False
        while not stop:
            batch: list[LogEvent] = []
            barriers: list[threading.Event] = []
            item = self._queue.get()
            deadline = time.monotonic() + self.flush_interval
            while True:
                if item is _STOP:
                    stop = True
                elif isinstance(item, threading.Event):
                    barriers.append(item)
                else:
                    batch.append(item)
                if stop or barriers or len(batch) >= self.max_batch:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            try:
                self.log.write(batch)
            except Exception:  # write() already swallows ClickHouse errors; this guards the thread itself
                logger.exception("ClickHouse log writer: unexpected error")
                self.log.count_dropped(len(batch))
            for barrier in barriers:
                barrier.set()
