"""Benchmark: rebuild a 1,000,000-key Redis cache from MariaDB while readers keep reading it, in both modes.

Run on its own: ``.venv/bin/python tests/bench/bench_cache.py [--rows N] [--readers N] [--mode M]``.
For each mode (``in_place``, ``generation``; default both) it creates a table on the local MariaDB and a
namespace on Redis db 9, rebuilds once, then changes every row and deletes 1% of them, and rebuilds
again with reader processes reading random surviving keys the whole time, the way a service reads
them: in place the key itself (``<ns>:user:<id>``), by generation the pointer first. It fails (exit 1)
if any read found no key or a wrong value, if the readers did not read old and new values across the
rebuild, or if a deleted row's key survived. Everything it created is removed. The last lines are
``cache_keys_per_second_<mode>: <value>`` (keys / (write + verify [+ sweep or switch]) seconds of the
rebuild under readers) and ``cache_keys_per_second: <value>`` (the slower mode).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from sqlalchemy import Engine, create_engine, text  # noqa: E402

from tasks.cache.rebuild import CacheLayout, unlink_matching  # noqa: E402
from tasks.cache.step import CacheRebuildParams, CacheRebuildStep  # noqa: E402
from tests.helpers import step_context  # noqa: E402

MARIADB = os.environ.get("FT_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")
REDIS_URL = os.environ.get("FT_TEST_REDIS", "redis://127.0.0.1:6379/9")
KEPT = 0.99  # the share of rows the second rebuild still has


def reader(mode: str, namespace: str, rows: int, stop: multiprocessing.synchronize.Event,
           out: multiprocessing.Queue) -> None:
    """Read random surviving keys as a service does until told to stop, ~5,000 reads/s at most.

    Reports (reads of old values, reads of new values, misses, wrong values).
    """
    client = redis.Redis.from_url(REDIS_URL)
    layout = CacheLayout(namespace)
    rng = random.Random(os.getpid())
    old = new = misses = wrong = 0
    reads = 0
    while not stop.is_set():
        if reads % 50 == 0:
            time.sleep(0.01)
        key = rng.randint(1, int(rows * KEPT))
        if mode == "in_place":
            value = client.get(f"{namespace}:user:{key}")
        else:
            generation = client.get(layout.pointer).decode()
            value = client.get(layout.prefix(generation) + f"user:{key}")
        reads += 1
        name = json.loads(value)["name"] if value is not None else None
        if name is None:
            misses += 1
        elif name == f"user{key}":
            old += 1
        elif name == f"new{key}":
            new += 1
        else:
            wrong += 1
    out.put((old, new, misses, wrong))


def rebuild(tmp: Path, db_url: str, namespace: str, mode: str) -> dict:
    dataset = {"name": "users", "database": "ft_db", "key": "user:{id}",
               "query": "SELECT id, name, email, region, balance FROM users"}
    if mode == "in_place":
        dataset["pattern"] = "user:*"
    params = CacheRebuildParams.model_validate({"namespace": namespace, "drain_seconds": 1.0, "datasets": [dataset]})
    with step_context(tmp, databases={"ft_db": db_url}, cutpoint="startup_post_process") as ctx:
        os.environ["FT_UPGRADE_REDIS_URL"] = REDIS_URL
        start = time.perf_counter()
        result = CacheRebuildStep(params, ctx).run()
        details = dict(result.details)
    details["total_seconds"] = time.perf_counter() - start
    return details


def fill(engine: Engine, rows: int) -> None:
    start = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS users"))
        conn.execute(text("CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(40), email VARCHAR(60), "
                          "region VARCHAR(8), balance DECIMAL(12,2))"))
        conn.execute(text(f"INSERT INTO users SELECT seq, CONCAT('user', seq), CONCAT('u', seq, '@example.com'), "
                          f"ELT(1 + seq % 3, 'CN', 'US', 'EU'), seq / 100 FROM seq_1_to_{rows}"))
    print(f"setup: {rows:,} rows in MariaDB in {time.perf_counter() - start:.1f}s", flush=True)


def bench(mode: str, tmp: Path, db_url: str, rows: int, readers: int, client: redis.Redis) -> tuple[int, bool]:
    """Both rebuilds of one mode; (keys/s of the rebuild under readers, all checks held)."""
    namespace = f"ftbench:{uuid.uuid4().hex[:8]}"
    engine = create_engine(db_url)
    try:
        fill(engine, rows)
        first = rebuild(tmp, db_url, namespace, mode)
        print(f"[{mode}] first rebuild: {first['keys']:,} keys in {first['seconds']:.2f}s "
              f"({first['keys_per_second']:,} keys/s)", flush=True)
        with engine.begin() as conn:
            conn.execute(text("UPDATE users SET name = CONCAT('new', id)"))
            conn.execute(text(f"DELETE FROM users WHERE id > {int(rows * KEPT)}"))
        ctx = multiprocessing.get_context("spawn")
        stop, out = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=reader, args=(mode, namespace, rows, stop, out)) for _ in range(readers)]
        for process in procs:
            process.start()
        time.sleep(1.5)  # readers are reading the first rebuild's values
        second = rebuild(tmp, db_url, namespace, mode)
        time.sleep(0.5)  # and the second's
        stop.set()
        results = [out.get(timeout=60) for _ in procs]
        for process in procs:
            process.join()
        old, new = sum(r[0] for r in results), sum(r[1] for r in results)
        misses, wrong = sum(r[2] for r in results), sum(r[3] for r in results)
        print(f"[{mode}] rebuild with {readers} concurrent reader process(es): {second['keys']:,} keys in "
              f"{second['seconds']:.2f}s ({second['keys_per_second']:,} keys/s); step total incl. row count"
              f"{', drain and drop' if mode == 'generation' else ''} {second['total_seconds']:.1f}s", flush=True)
        for note in second["notes"]:
            print(f"  {note}")
        print(f"[{mode}] concurrent reads: {old + new:,} ({old:,} old values, {new:,} new), missing keys: {misses}, "
              f"unexpected values: {wrong}")
        if mode == "in_place":
            print(f"[{mode}] phases (s): {second['phases']}")
            gone = client.exists(*[f"{namespace}:user:{i}" for i in range(int(rows * KEPT) + 1, rows + 1)]) == 0
            print(f"[{mode}] stale keys deleted: {second['stale_keys_deleted']:,}; none left: {gone}")
        else:
            gone = client.get(CacheLayout(namespace).pointer).decode() == second["generation"]
        ok = misses == 0 and wrong == 0 and old > 0 and new > 0 and gone
        return second["keys_per_second"], ok
    finally:
        engine.dispose()
        unlink_matching(client, namespace + ":*")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--readers", type=int, default=1)
    parser.add_argument("--mode", choices=("both", "in_place", "generation"), default="both")
    args = parser.parse_args()
    name = f"ft_bench_cache_{uuid.uuid4().hex[:8]}"
    admin = create_engine(MARIADB + "/test")
    client = redis.Redis.from_url(REDIS_URL)
    tmp = Path(f"/tmp/{name}")
    tmp.mkdir()
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}`"))
    db_url = f"{MARIADB}/{name}?charset=utf8mb4"
    modes = ("in_place", "generation") if args.mode == "both" else (args.mode,)
    try:
        measured = {mode: bench(mode, tmp, db_url, args.rows, args.readers, client) for mode in modes}
        ok = all(good for _, good in measured.values())
        print("result:", "OK" if ok else "FAILED (a reader saw a missing or wrong key, or never saw the change, "
                                         "or a stale key survived)")
        for mode, (rate, _) in measured.items():
            print(f"cache_keys_per_second_{mode}: {rate}")
        print(f"cache_keys_per_second: {min(rate for rate, _ in measured.values())}")
        return 0 if ok else 1
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()
        client.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
