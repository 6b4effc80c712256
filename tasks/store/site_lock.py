"""One upgrade per site at a time: a lock in the metadata database that frees itself when its holder dies.

On MySQL/MariaDB it is ``GET_LOCK`` on a dedicated connection (the server releases it when the
connection dies). On the embedded SQLite store it is a row with the holder's host, pid and a
heartbeat; a row whose process is gone (same host) or whose heartbeat is older than
``STALE_SECONDS`` is taken over. A second trigger for a busy site waits up to ``wait_seconds``,
then is refused with an error naming the holder.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from tasks.core.clock import utcnow
from tasks.core.errors import SiteBusy
from tasks.store.schema import site_lock as site_lock_table

STALE_SECONDS = 120
HEARTBEAT_SECONDS = 20

def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def site_lock(engine: Engine, site_id: str, *, holder: str, wait_seconds: float = 0.0,
              poll_seconds: float = 1.0) -> Iterator[None]:
    """Hold the site's lock for the block; raises :class:`SiteBusy` if it stays taken."""
    if engine.dialect.name in ("mysql", "mariadb"):
        with _mysql_lock(engine, site_id, holder=holder, wait_seconds=wait_seconds):
            yield
    else:
        with _row_lock(engine, site_id, holder=holder, wait_seconds=wait_seconds, poll_seconds=poll_seconds):
            yield


@contextlib.contextmanager
def _mysql_lock(engine: Engine, site_id: str, *, holder: str, wait_seconds: float) -> Iterator[None]:
    name = f"ft-upgrade:site:{site_id}"
    with engine.connect() as conn:
        got = conn.exec_driver_sql("SELECT GET_LOCK(%s, %s)", (name, int(wait_seconds))).scalar()
        if got != 1:
            row = conn.execute(select(site_lock_table).where(site_lock_table.c.site_id == site_id)).mappings().first()
            raise SiteBusy(_busy_message(site_id, row))
        try:
            with engine.begin() as meta:
                meta.execute(delete(site_lock_table).where(site_lock_table.c.site_id == site_id))
                meta.execute(insert(site_lock_table).values(_row(site_id, holder)))
            yield
        finally:
            with engine.begin() as meta:
                meta.execute(delete(site_lock_table).where(site_lock_table.c.site_id == site_id))
            conn.exec_driver_sql("SELECT RELEASE_LOCK(%s)", (name,))


@contextlib.contextmanager
def _row_lock(engine: Engine, site_id: str, *, holder: str, wait_seconds: float,
              poll_seconds: float) -> Iterator[None]:
    deadline = time.monotonic() + wait_seconds
    while not _try_take(engine, site_id, holder):
        if time.monotonic() >= deadline:
            with engine.connect() as conn:
                row = conn.execute(select(site_lock_table).where(
                    site_lock_table.c.site_id == site_id)).mappings().first()
            raise SiteBusy(_busy_message(site_id, row))
        time.sleep(poll_seconds)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(engine, site_id, stop), daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join(timeout=5)
        with engine.begin() as conn:
            conn.execute(delete(site_lock_table).where(site_lock_table.c.site_id == site_id,
                                                       site_lock_table.c.pid == os.getpid(),
                                                       site_lock_table.c.host == socket.gethostname()))


def _try_take(engine: Engine, site_id: str, holder: str) -> bool:
    with engine.begin() as conn:
        row = conn.execute(select(site_lock_table).where(site_lock_table.c.site_id == site_id)).mappings().first()
        if row is not None:
            dead = row["host"] == socket.gethostname() and not _pid_alive(row["pid"])
            stale = utcnow() - row["heartbeat_time"] > timedelta(seconds=STALE_SECONDS)
            if not (dead or stale):
                return False
            conn.execute(delete(site_lock_table).where(site_lock_table.c.site_id == site_id,
                                                       site_lock_table.c.pid == row["pid"]))
        try:
            conn.execute(insert(site_lock_table).values(_row(site_id, holder)))
        except IntegrityError:
            return False
    return True


def _heartbeat(engine: Engine, site_id: str, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        with contextlib.suppress(Exception), engine.begin() as conn:
            conn.execute(update(site_lock_table).where(site_lock_table.c.site_id == site_id,
                                                       site_lock_table.c.pid == os.getpid()).values(
                heartbeat_time=utcnow()))


def _row(site_id: str, holder: str) -> dict[str, object]:
    now = utcnow()
    return {"site_id": site_id, "holder": holder[:128], "host": socket.gethostname(), "pid": os.getpid(),
            "acquired_time": now, "heartbeat_time": now}


def _busy_message(site_id: str, row: object) -> str:
    if not row:
        return f"site {site_id} is being upgraded by another run; wait for it to finish"
    r = dict(row)  # type: ignore[call-overload]
    return (f"site {site_id} is being upgraded by {r['holder']} (host {r['host']}, pid {r['pid']}, since "
            f"{r['acquired_time']:%Y-%m-%d %H:%M:%S} UTC); wait for it to finish: one site never runs two "
            "upgrades at once")
