"""Core statements compiled once and run on a raw DBAPI connection, for the ledger's hot writes.

A DDL statement gets two small ledger writes around it (RUNNING before, SUCCESS after) and a big
data script thousands of buffered ones. Through ``Connection.execute`` SQLAlchemy's per-call work
(cache key, parameter construction, result set-up) costs several times what SQLite spends on the
write itself. Compiling the statement once for the engine's dialect, with the dialect's own bind
processors (SQLite stores ``DATETIME`` as text, for example), keeps exactly what SQLAlchemy would send.
:class:`BufferedWriter` then takes the buffered writes off the caller's thread.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.sql import ClauseElement


class Fence(Protocol):
    """Checked inside every write transaction (the site lock's token: :class:`tasks.store.site_lock.HeldLock`)."""

    def verify_cursor(self, cursor: Any) -> None: ...


class PreparedWrite:
    """One INSERT/UPDATE with named bind parameters, ready for ``cursor.executemany``."""

    def __init__(self, statement: ClauseElement, engine: Engine) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        self.names: list[str] = list(compiled.positiontup or []) if self.positional else list(compiled.binds)
        self._plan: list[tuple[str, Callable[[Any], Any] | None]] = [
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in self.names]

    def parameters(self, rows: Iterable[Mapping[str, Any]]) -> list[Any]:
        """Rows of named values in the driver's parameter style."""
        plan = self._plan
        values = [tuple(row[name] if process is None else process(row[name]) for name, process in plan)
                  for row in rows]
        return values if self.positional else [dict(zip(self.names, v, strict=True)) for v in values]


class WriteConnection:
    """A pooled raw connection kept between writes (a checkout per write costs as much as the write).

    It goes back to the pool after ``idle_seconds`` without use, so a long statement elsewhere never
    meets a connection the server has closed meanwhile; any error discards it.
    """

    def __init__(self, engine: Engine, *, idle_seconds: float = 30.0, fence: Fence | None = None) -> None:
        self.engine = engine
        self.idle_seconds = idle_seconds
        self.fence = fence
        self._connection: Any = None
        self._last_used = 0.0

    def run(self, writes: Iterable[tuple[PreparedWrite, list[Mapping[str, Any]]]]) -> None:
        """Run several prepared writes in one transaction (one commit for all)."""
        if self._connection is not None and time.monotonic() - self._last_used > self.idle_seconds:
            self.close()
        if self._connection is None:
            self._connection = self.engine.raw_connection()
        connection = self._connection
        try:
            cursor = connection.cursor()
            if self.fence is not None:
                self.fence.verify_cursor(cursor)
            for write, rows in writes:
                if rows:
                    cursor.executemany(write.sql, write.parameters(rows))
            cursor.close()
            connection.commit()
        except BaseException:
            with contextlib.suppress(Exception):  # a dead connection: the original error matters
                connection.rollback()
            with contextlib.suppress(Exception):
                connection.invalidate()
            self._connection = None
            raise
        self._last_used = time.monotonic()

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None


class BufferedWriter:
    """Buffered rows written by a background thread; durable writes at once, taking the buffer along.

    Buffered rows are written in ``order`` (inserts before the updates of the same rows) and always
    before a durable write's own rows, in one commit. The background flush overlaps the caller's
    waits on other databases. Rows a flush could not write stay buffered for the next one, so an
    error that persists is raised by the next :meth:`write_now` or :meth:`close`.
    """

    def __init__(self, engine: Engine, order: Iterable[PreparedWrite], *, flush_rows: int = 200,
                 flush_seconds: float = 0.2, fence: Fence | None = None) -> None:
        self.order = list(order)
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self._connection = WriteConnection(engine, fence=fence)
        self._buffer: dict[PreparedWrite, list[Mapping[str, Any]]] = {w: [] for w in self.order}
        self._buffered = 0
        self._buffer_lock = threading.Lock()  # held only to append or swap: callers never wait for a write
        self._write_lock = threading.Lock()  # one writer at a time, in buffer order
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None

    def buffer(self, write: PreparedWrite, row: Mapping[str, Any]) -> None:
        with self._buffer_lock:
            self._buffer[write].append(row)
            self._buffered += 1
            full = self._buffered >= self.flush_rows
        if self._thread is None:
            self._start()
        if full:
            self._wake.set()

    def discard(self, write: PreparedWrite, keep: Callable[[Mapping[str, Any]], bool]) -> None:
        """Drop buffered rows of ``write`` that ``keep`` rejects (they turned out not to have happened)."""
        with self._write_lock, self._buffer_lock:
            rows = self._buffer[write]
            kept = [r for r in rows if keep(r)]
            self._buffered -= len(rows) - len(kept)
            self._buffer[write] = kept

    def write_now(self, *writes: tuple[PreparedWrite, list[Mapping[str, Any]]]) -> None:
        """The buffer, then ``writes``, committed before this returns."""
        with self._write_lock:
            self._write_buffer(extra=list(writes))

    def write_alone(self, *writes: tuple[PreparedWrite, list[Mapping[str, Any]]]) -> None:
        """Only ``writes``, committed before this returns; the buffer stays with the background writer."""
        with self._write_lock:
            self._connection.run([(w, rows) for w, rows in writes if rows])

    def close(self) -> None:
        """Write what is buffered, stop the thread, give the connection back."""
        if self._thread is not None:
            self._stop = True
            self._wake.set()
            self._thread.join()
            self._thread = None
        try:
            self.write_now()
        finally:
            self._connection.close()

    def _write_buffer(self, extra: list[tuple[PreparedWrite, list[Mapping[str, Any]]]]) -> None:
        """Under the write lock: swap the buffer out and write it (with ``extra``) in one commit."""
        with self._buffer_lock:
            taken = [(w, self._buffer[w]) for w in self.order]
            self._buffer = {w: [] for w in self.order}
            self._buffered = 0
        writes = [(w, rows) for w, rows in taken + extra if rows]
        if not writes:
            return
        try:
            self._connection.run(writes)
        except BaseException:
            with self._buffer_lock:  # not written: back in front, for the next attempt
                for w, rows in taken:
                    self._buffer[w][:0] = rows
                    self._buffered += len(rows)
            raise

    def _start(self) -> None:
        with self._write_lock:
            if self._thread is None:
                self._stop = False
                self._thread = threading.Thread(target=self._run, name="ft-ledger-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            with self._write_lock, contextlib.suppress(Exception):  # rows stay buffered: the next write retries
                self._write_buffer(extra=[])
