"""A site's throughput memory: rows per second of each kind of work, learned from the statements run there.

The downtime forecast divides a table's rows by these rates. Each run adds what its statements did
(rows and seconds per kind of work) to sums in which earlier runs count half as much each time, so a
site's rate follows its server (new disks, a bigger buffer pool) without one odd run replacing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine, insert, select, update

from tasks.core.clock import utcnow
from tasks.store import schema

if TYPE_CHECKING:
    from tasks.store.site_lock import HeldLock

_t = schema.site_throughput
DECAY = 0.5  # the weight of everything learned before, at each run


@dataclass(frozen=True)
class Throughput:
    """What a site has taught about one kind of work."""

    work: str
    rows: float
    seconds: float
    statements: int

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def read_throughput(engine: Engine, site_id: str) -> dict[str, Throughput]:
    """Every kind of work the site has a rate for."""
    with engine.connect() as conn:
        rows = conn.execute(select(_t).where(_t.c.site_id == site_id)).mappings().all()
    return {r["work"]: Throughput(r["work"], float(r["rows_done"]), float(r["seconds"]), int(r["statements"]))
            for r in rows}


def learn_throughput(engine: Engine, site_id: str, observed: Mapping[str, tuple[float, float, int]], *,
                     fence: HeldLock | None = None) -> None:
    """Add one run's (rows, seconds, statements) per kind of work; older runs weigh :data:`DECAY` as much.

    ``fence``: the run's site lock; a run that lost it writes nothing."""
    now = utcnow()
    with engine.begin() as conn:
        if fence is not None:
            fence.verify(conn)
        for work, (rows, seconds, statements) in observed.items():
            if rows <= 0 or seconds <= 0:
                continue
            row = conn.execute(select(_t).where(_t.c.site_id == site_id, _t.c.work == work)).mappings().first()
            if row is None:
                conn.execute(insert(_t).values(site_id=site_id, work=work, rows_done=int(rows), seconds=seconds,
                                               statements=statements, created_time=now, updated_time=now))
            else:
                conn.execute(update(_t).where(_t.c.site_id == site_id, _t.c.work == work).values(
                    rows_done=int(DECAY * row["rows_done"] + rows), seconds=DECAY * row["seconds"] + seconds,
                    statements=row["statements"] + statements, updated_time=now))
