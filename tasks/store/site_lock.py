"""One upgrade per site at a time: a lock in the metadata database that cannot be lost silently.

On MySQL/MariaDB it is ``GET_LOCK`` on a dedicated connection (the server releases it when the
connection dies); on the embedded SQLite store it is a row with the holder's host, pid and heartbeat.
Either way a row in ``ft_upgrade_site_lock`` names the holder and carries a **fencing token**.

The holder checks its lock every ``check_seconds`` from a thread of its own — MySQL: the named lock
still belongs to its connection (the query also keeps that connection from idling into
``wait_timeout``); SQLite: its heartbeat still lands on a row with its token. A lost lock sets
:attr:`HeldLock.lost`: the run stops before its next statement with a breakpoint. Ledger and store
writes verify the token inside their own transaction (:meth:`HeldLock.verify`), so a run whose lock
was taken over cannot write.

A row is taken over only when its holder is really gone: its process no longer exists on this host,
or — a holder on another host — no heartbeat for ``STALE_CHECKS`` check intervals (the message names
the host). A second trigger for a busy site waits up to ``wait_seconds``, then is refused naming the holder.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from tasks.core.clock import utcnow
from tasks.core.errors import SiteBusy, SiteLockLost
from tasks.store.prepared import PreparedWrite
from tasks.store.schema import site_lock as site_lock_table

CHECK_SECONDS = 15.0
STALE_CHECKS = 10  # a heartbeat this many intervals old, from another host, means its holder is gone
_log = logging.getLogger("ft_upgrade.site_lock")
_t = site_lock_table


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class HeldLock:
    """What a holder knows of its lock: its token, and whether it was lost (and why)."""

    engine: Engine
    site_id: str
    holder: str
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    lost: threading.Event = field(default_factory=threading.Event)
    reason: str = ""
    on_lost: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        query = select(_t.c.token, _t.c.holder, _t.c.host).where(_t.c.site_id == bindparam("site_id"))
        if self.engine.dialect.name in ("mysql", "mariadb"):
            query = query.with_for_update(read=True)  # a takeover waits for the write being fenced
        self._fence = PreparedWrite(query, self.engine)

    def mark_lost(self, reason: str) -> None:
        if self.lost.is_set():
            return
        self.reason = reason
        self.lost.set()
        _log.error("%s", reason)
        if self.on_lost is not None:
            with contextlib.suppress(Exception):
                self.on_lost(reason)

    def ensure_held(self) -> None:
        """Raise :class:`SiteLockLost` if the checks found the lock lost."""
        if self.lost.is_set():
            raise SiteLockLost(self.reason)

    def verify(self, conn: Connection) -> None:
        """Inside a write transaction: the lock row still carries this run's token, else nothing is written."""
        cursor = conn.connection.cursor()
        try:
            self.verify_cursor(cursor)
        finally:
            cursor.close()

    def verify_cursor(self, cursor: Any) -> None:
        """:meth:`verify` on a raw DBAPI cursor (the ledger's prepared writes)."""
        cursor.execute(self._fence.sql, self._fence.parameters([{"site_id": self.site_id}])[0])
        row = cursor.fetchone()
        if row is None or row[0] != self.token:
            taken = f" now held by {row[1]} on host {row[2]}" if row is not None else " released"
            message = (f"site {self.site_id}: this run ({self.holder}) lost the site lock ({taken.strip()}); "
                       "it stops without writing further")
            self.mark_lost(message)
            raise SiteLockLost(message)


@contextlib.contextmanager
def site_lock(engine: Engine, site_id: str, *, holder: str, wait_seconds: float = 0.0,
              poll_seconds: float = 1.0, check_seconds: float = CHECK_SECONDS,
              on_lost: Callable[[str], None] | None = None) -> Iterator[HeldLock]:
    """Hold the site's lock for the block; raises :class:`SiteBusy` if it stays taken.

    ``on_lost`` is called (from the checking thread) with the reason when the lock turns out lost.
    """
    held = HeldLock(engine, site_id, holder, on_lost=on_lost)
    if engine.dialect.name in ("mysql", "mariadb"):
        with _mysql_lock(held, wait_seconds=wait_seconds, check_seconds=check_seconds):
            yield held
    else:
        with _row_lock(held, wait_seconds=wait_seconds, poll_seconds=poll_seconds, check_seconds=check_seconds):
            yield held


@contextlib.contextmanager
def _watching(check: Callable[[], None], check_seconds: float) -> Iterator[None]:
    """Run ``check`` every ``check_seconds`` on a thread of its own while the block runs."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(check_seconds):
            check()

    thread = threading.Thread(target=loop, name="ft-site-lock", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=check_seconds + 5)


@contextlib.contextmanager
def _mysql_lock(held: HeldLock, *, wait_seconds: float, check_seconds: float) -> Iterator[None]:
    name = f"ft-upgrade:site:{held.site_id}"
    engine = held.engine
    with engine.connect() as conn:
        conn.exec_driver_sql("SET SESSION wait_timeout = 31536000")  # checks keep it busy; a year of idle is a bonus
        got = conn.exec_driver_sql("SELECT GET_LOCK(%s, %s)", (name, int(wait_seconds))).scalar()
        if got != 1:
            row = conn.execute(select(_t).where(_t.c.site_id == held.site_id)).mappings().first()
            raise SiteBusy(_busy_message(held.site_id, row))
        guard = threading.Lock()  # the checking thread and the release share the connection

        def check() -> None:
            if held.lost.is_set():
                return
            try:
                with guard:
                    mine = conn.exec_driver_sql("SELECT IS_USED_LOCK(%s) = CONNECTION_ID()", (name,)).scalar()
            except Exception as exc:  # the connection died: the server released the lock with it
                held.mark_lost(f"site {held.site_id}: the connection holding the site lock was lost "
                               f"({type(exc).__name__}: {str(exc)[:200]}); this run ({held.holder}) stops before "
                               "its next statement")
                return
            if mine != 1:
                held.mark_lost(f"site {held.site_id}: the site lock no longer belongs to this run ({held.holder}); "
                               "it stops before its next statement")

        try:
            with engine.begin() as meta:
                meta.execute(delete(_t).where(_t.c.site_id == held.site_id))
                meta.execute(insert(_t).values(_row(held)))
            with _watching(check, check_seconds):
                yield
        finally:
            with contextlib.suppress(Exception), engine.begin() as meta:
                meta.execute(delete(_t).where(_t.c.site_id == held.site_id, _t.c.token == held.token))
            with contextlib.suppress(Exception), guard:
                conn.exec_driver_sql("SELECT RELEASE_LOCK(%s)", (name,))


@contextlib.contextmanager
def _row_lock(held: HeldLock, *, wait_seconds: float, poll_seconds: float, check_seconds: float) -> Iterator[None]:
    engine, site_id = held.engine, held.site_id
    deadline = time.monotonic() + wait_seconds
    while not _try_take(held, stale_after=timedelta(seconds=check_seconds * STALE_CHECKS)):
        if time.monotonic() >= deadline:
            with engine.connect() as conn:
                row = conn.execute(select(_t).where(_t.c.site_id == site_id)).mappings().first()
            raise SiteBusy(_busy_message(site_id, row))
        time.sleep(poll_seconds)
    last_beat = time.monotonic()

    def heartbeat() -> None:
        nonlocal last_beat
        if held.lost.is_set():
            return
        try:
            with engine.begin() as conn:
                found = conn.execute(update(_t).where(_t.c.site_id == site_id, _t.c.token == held.token).values(
                    heartbeat_time=utcnow())).rowcount
        except Exception as exc:
            silent = time.monotonic() - last_beat
            _log.warning("site %s: heartbeat of the site lock not written for %.0f s: %s", site_id, silent, exc)
            if silent > check_seconds * STALE_CHECKS / 2:  # others may soon take it: stop before they do
                held.mark_lost(f"site {site_id}: the site lock's heartbeat could not be written for {silent:.0f} s "
                               f"({exc}); this run ({held.holder}) stops before its next statement")
            return
        if found != 1:
            held.mark_lost(f"site {site_id}: the site lock was taken from this run ({held.holder}); it stops "
                           "before its next statement")
        last_beat = time.monotonic()

    try:
        with _watching(heartbeat, check_seconds):
            yield
    finally:
        with contextlib.suppress(Exception), engine.begin() as conn:
            conn.execute(delete(_t).where(_t.c.site_id == site_id, _t.c.token == held.token))


def _try_take(held: HeldLock, *, stale_after: timedelta) -> bool:
    """Take the row if it is free or its holder is really gone (process gone here; long silent elsewhere)."""
    here = socket.gethostname()
    with held.engine.begin() as conn:
        row = conn.execute(select(_t).where(_t.c.site_id == held.site_id)).mappings().first()
        if row is not None:
            silent = utcnow() - row["heartbeat_time"]
            if row["host"] == here:
                if _pid_alive(row["pid"]):
                    return False  # alive here, however slow: never taken from a working process
                why = f"its process {row['pid']} is gone"
            elif silent > stale_after:
                why = f"no heartbeat from host {row['host']} for {silent.total_seconds():.0f} s"
            else:
                return False
            _log.warning("site %s: taking over the site lock of %s (host %s, pid %s): %s", held.site_id,
                         row["holder"], row["host"], row["pid"], why)
            conn.execute(delete(_t).where(_t.c.site_id == held.site_id, _t.c.pid == row["pid"],
                                          _t.c.host == row["host"]))
        try:
            conn.execute(insert(_t).values(_row(held)))
        except IntegrityError:
            return False
    return True


def _row(held: HeldLock) -> dict[str, object]:
    now = utcnow()
    return {"site_id": held.site_id, "holder": held.holder[:128], "host": socket.gethostname(), "pid": os.getpid(),
            "acquired_time": now, "heartbeat_time": now, "token": held.token}


def _busy_message(site_id: str, row: object) -> str:
    if not row:
        return f"site {site_id} is being upgraded by another run; wait for it to finish"
    r = dict(row)  # type: ignore[call-overload]
    return (f"site {site_id} is being upgraded by {r['holder']} (host {r['host']}, pid {r['pid']}, since "
            f"{r['acquired_time']:%Y-%m-%d %H:%M:%S} UTC, last heartbeat {r['heartbeat_time']:%H:%M:%S} UTC); "
            "wait for it to finish: one site never runs two upgrades at once")
