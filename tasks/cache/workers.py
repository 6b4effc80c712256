"""Parallel cache builds: one dataset split into shards, each built by its own process.

Parsing rows in the MySQL driver is pure Python and holds the GIL, so one process tops out at
roughly 100,000 keys/s. Big datasets are therefore split with ``MOD(CRC32(<key columns>), n)``
(MySQL / MariaDB) and built by ``n`` spawned processes writing into the same generation; ``SET NX``
still catches a key produced by two shards. Processes report progress and their outcome on a queue;
a failure terminates the others, so nothing writes into a generation after it was dropped.

Trade-off: each shard reads in its own statement, so the shards are not one consistent snapshot.
In place, a shard sends back the keys it wrote, for the parent's sweep of stale keys.
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import redis
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from tasks.cache.rebuild import CacheBuilder, CacheLayout, DatasetOutcome, DatasetSpec, prefetch
from tasks.core.errors import CacheBuildFailed
from tasks.sql.select_query import literal_sql

REDIS_KEYS = ("host", "port", "db", "username", "password", "socket_timeout", "socket_connect_timeout", "path",
              "ssl_certfile", "ssl_keyfile", "ssl_ca_certs", "ssl_cert_reqs", "ssl_check_hostname")
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def stream_rows(engine: Engine, query: str, size: int) -> Iterator[tuple[list[str], Sequence[Any]]]:
    """Rows of ``query`` in batches from a server-side cursor, as (columns, rows)."""
    with engine.connect() as conn:
        if conn.dialect.driver == "pymysql":  # the plain DB-API cursor: ~20% less CPU per row than Row objects
            import pymysql.cursors

            cursor = conn.connection.driver_connection.cursor(pymysql.cursors.SSCursor)
            try:
                cursor.execute(query)
                columns = [d[0] for d in cursor.description]
                while rows := cursor.fetchmany(size):
                    yield columns, rows
            finally:
                cursor.close()  # abandoned mid-stream (a failed build): the driver reads off the rest
            return
        result = conn.execution_options(stream_results=True, yield_per=size).execute(literal_sql(query))
        try:
            for part in result.partitions(size):
                yield list(result.keys()), part
        finally:
            result.close()


def shard_query(query: str, key_columns: Sequence[str], shards: int, index: int) -> str:
    """``query`` restricted to shard ``index`` of ``shards`` by a hash of the key's columns (MySQL/MariaDB)."""
    if not key_columns:
        raise ValueError("sharding needs the key template's columns")
    hashed = ", ".join(f"`{c}`" for c in key_columns)
    return (f"SELECT * FROM ({query}) AS ft_cache_shard "
            f"WHERE MOD(CRC32(CONCAT_WS('|', {hashed})), {shards}) = {index}")


@dataclass(frozen=True)
class ShardJob:
    """Everything a worker process needs (credentials travel in the pipe, never on a command line)."""

    index: int
    db_url: str
    redis_kwargs: dict[str, Any]
    namespace: str
    generation: str | None  # None: in place (the shard sends back the keys it wrote)
    spec: DatasetSpec
    query: str
    batch_size: int
    sample_size: int


def redis_kwargs(client: Any) -> dict[str, Any]:
    """The connection settings of a client, for a worker to open its own."""
    pool = client.connection_pool
    kwargs = {k: pool.connection_kwargs[k] for k in REDIS_KEYS if k in pool.connection_kwargs}
    if issubclass(pool.connection_class, redis.SSLConnection):
        kwargs["ssl"] = True
    return kwargs


def build_shard(job: ShardJob, report: Callable[[tuple[str, int, Any]], None]) -> None:
    """Worker body: build one shard, report key counts as they go and the outcome (or error) at the end."""
    try:
        engine = create_engine(job.db_url, poolclass=NullPool)
        client = redis.Redis(**job.redis_kwargs)
        builder = CacheBuilder(client, CacheLayout(job.namespace), job.generation,
                               on_keys=lambda n: report(("keys", job.index, n)), sample_size=job.sample_size)
        with closing(prefetch(stream_rows(engine, job.query, job.batch_size))) as batches:
            outcome = builder.write(job.spec, batches)
        if builder.written is not None:
            outcome.keys = list(builder.written)
        report(("done", job.index, outcome))
    except BaseException as exc:  # reported to the parent, which fails the build
        report(("error", job.index, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))


def main() -> None:
    """``python -m tasks.cache.workers``: a pickled :class:`ShardJob` on stdin, pickled events on stdout."""
    out = sys.stdout.buffer

    def report(event: tuple[str, int, Any]) -> None:
        pickle.dump(event, out)
        out.flush()

    build_shard(pickle.load(sys.stdin.buffer), report)


class _Worker:
    """One shard process (a plain subprocess: no re-import of the parent's ``__main__`` as spawn does)."""

    def __init__(self, job: ShardJob, events: queue.Queue[tuple[str, int, Any]]) -> None:
        self.job = job
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - kept for the failure message, closed in stop()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT),
                                                                           os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen([sys.executable, "-m", "tasks.cache.workers"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.stderr, env=env, cwd=PROJECT_ROOT)
        assert self.process.stdin is not None
        pickle.dump(job, self.process.stdin)  # credentials travel in the pipe, never on a command line
        self.process.stdin.close()
        self.reader = threading.Thread(target=self._read, args=(events,), daemon=True)
        self.reader.start()

    def _read(self, events: queue.Queue[tuple[str, int, Any]]) -> None:
        assert self.process.stdout is not None
        try:
            while True:
                events.put(pickle.load(self.process.stdout))
        except EOFError:
            self.process.wait()
            events.put(("exit", self.job.index, self.process.returncode))
        except Exception as exc:  # garbled output: the worker is treated as failed
            events.put(("error", self.job.index, f"unreadable worker output: {exc}"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.reader.join(5)
        self.stderr.close()


def run_shards(jobs: Sequence[ShardJob], on_keys: Callable[[int], None]) -> DatasetOutcome:
    """Run every job in its own process; the merged outcome, or :class:`CacheBuildFailed`.

    Any failure kills every worker before returning, so nothing writes into the generation after.
    """
    events: queue.Queue[tuple[str, int, Any]] = queue.Queue()
    workers = [_Worker(job, events) for job in jobs]
    outcomes: dict[int, DatasetOutcome] = {}
    try:
        while len(outcomes) < len(jobs):
            kind, index, payload = events.get()
            if kind == "keys":
                on_keys(payload)
            elif kind == "done":
                outcomes[index] = payload
            elif kind == "exit":
                if index not in outcomes:
                    raise CacheBuildFailed(f"shard {index}/{len(jobs)}: worker exited ({payload}) without a "
                                           f"result: {_last_line(workers[index].stderr)}")
            else:
                raise CacheBuildFailed(f"shard {index}/{len(jobs)}: {payload}")
    finally:
        for worker in workers:
            worker.stop()
    return merge([outcomes[i] for i in range(len(jobs))], sample_size=sum(j.sample_size for j in jobs))


def _last_line(stream: IO[bytes]) -> str:
    stream.seek(0)
    lines = stream.read().decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else "no output"


def merge(parts: Sequence[DatasetOutcome], *, sample_size: int) -> DatasetOutcome:
    """One dataset's outcome from its shards' (shards ran side by side: the time is the longest)."""
    merged = DatasetOutcome(parts[0].name if parts else "")
    for part in parts:
        merged.rows += part.rows
        merged.created += part.created
        merged.duplicates += part.duplicates
        merged.seconds = max(merged.seconds, part.seconds)
        merged.samples += part.samples
        merged.keys += part.keys
    merged.samples = merged.samples[:sample_size]
    return merged


if __name__ == "__main__":
    main()
