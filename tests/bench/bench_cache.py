"""Benchmark: rebuild a 1,000,000-key Redis cache from MariaDB while readers keep reading it.

Run on its own: ``.venv/bin/python tests/bench/bench_cache.py [--rows N]``. It creates a database
on the local MariaDB and a namespace on Redis db 9, builds generation 1, changes every row, then
rebuilds (generation 2) with reader processes resolving random keys the whole time, through the
switch and the drop of generation 1. It fails (exit 1) if any read found no key or a wrong value,
or the readers did not read through the switch. Everything it created is removed. The last line is
``cache_keys_per_second: <value>``: keys / (build + verify + switch) seconds, the slower of the two
rebuilds.
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
from sqlalchemy import create_engine, text  # noqa: E402

from tasks.cache.rebuild import CacheLayout, unlink_matching  # noqa: E402
from tasks.cache.step import CacheRebuildParams, CacheRebuildStep  # noqa: E402
from tests.helpers import step_context  # noqa: E402

MARIADB = os.environ.get("FT_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")
REDIS_URL = os.environ.get("FT_TEST_REDIS", "redis://127.0.0.1:6379/9")


def reader(namespace: str, rows: int, stop: multiprocessing.synchronize.Event, out: multiprocessing.Queue) -> None:
    """Resolve random keys as a service does (pointer, then key) until told to stop, ~5,000 reads/s at most.

    Reports (reads per generation seen, misses, wrong values).
    """
    client = redis.Redis.from_url(REDIS_URL)
    layout = CacheLayout(namespace)
    rng = random.Random(os.getpid())
    seen: dict[str, int] = {}
    reads = misses = wrong = 0
    while not stop.is_set():
        if reads % 50 == 0:
            time.sleep(0.01)
        key = rng.randint(1, rows)
        generation = client.get(layout.pointer).decode()
        value = client.get(layout.prefix(generation) + f"user:{key}")
        reads += 1
        seen[generation] = seen.get(generation, 0) + 1
        if value is None:
            misses += 1
        elif json.loads(value)["name"] not in (f"user{key}", f"new{key}"):
            wrong += 1
    out.put((seen, misses, wrong))


def rebuild(tmp: Path, db_url: str, namespace: str) -> dict:
    params = CacheRebuildParams.model_validate({
        "namespace": namespace, "drain_seconds": 1.0,
        "datasets": [{"name": "users", "database": "ft_db", "key": "user:{id}",
                      "query": "SELECT id, name, email, region, balance FROM users"}]})
    with step_context(tmp, databases={"ft_db": db_url}, cutpoint="startup_post_process") as ctx:
        os.environ["FT_UPGRADE_REDIS_URL"] = REDIS_URL
        start = time.perf_counter()
        result = CacheRebuildStep(params, ctx).run()
        details = dict(result.details)
    details["total_seconds"] = time.perf_counter() - start
    return details


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--readers", type=int, default=1)
    args = parser.parse_args()
    name = f"ft_bench_cache_{uuid.uuid4().hex[:8]}"
    namespace = f"ftbench:{uuid.uuid4().hex[:8]}"
    admin = create_engine(MARIADB + "/test")
    client = redis.Redis.from_url(REDIS_URL)
    tmp = Path(f"/tmp/{name}")
    tmp.mkdir()
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}`"))
    db_url = f"{MARIADB}/{name}?charset=utf8mb4"
    try:
        engine = create_engine(db_url)
        start = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(40), email VARCHAR(60), "
                              "region VARCHAR(8), balance DECIMAL(12,2))"))
            conn.execute(text(f"INSERT INTO users SELECT seq, CONCAT('user', seq), CONCAT('u', seq, '@example.com'), "
                              f"ELT(1 + seq % 3, 'CN', 'US', 'EU'), seq / 100 FROM seq_1_to_{args.rows}"))
        print(f"setup: {args.rows:,} rows in MariaDB in {time.perf_counter() - start:.1f}s", flush=True)

        first = rebuild(tmp, db_url, namespace)
        print(f"generation 1: {first['keys']:,} keys in {first['seconds']:.2f}s "
              f"({first['keys_per_second']:,} keys/s)", flush=True)
        with engine.begin() as conn:
            conn.execute(text("UPDATE users SET name = CONCAT('new', id)"))
        engine.dispose()

        ctx = multiprocessing.get_context("spawn")
        stop, out = ctx.Event(), ctx.Queue()
        readers = [ctx.Process(target=reader, args=(namespace, args.rows, stop, out)) for _ in range(args.readers)]
        for process in readers:
            process.start()
        time.sleep(1.0)  # readers are reading generation 1
        second = rebuild(tmp, db_url, namespace)
        stop.set()
        results = [out.get(timeout=60) for _ in readers]
        for process in readers:
            process.join()
        seen: dict[str, int] = {}
        for generation_reads, _, _ in results:
            for generation, count in generation_reads.items():
                seen[generation] = seen.get(generation, 0) + count
        reads = sum(seen.values())
        misses, wrong = sum(r[1] for r in results), sum(r[2] for r in results)
        print(f"generation 2 (with {args.readers} concurrent reader processes): {second['keys']:,} keys in "
              f"{second['seconds']:.2f}s build+verify+switch ({second['keys_per_second']:,} keys/s); "
              f"step total incl. row count, drain and drop {second['total_seconds']:.1f}s", flush=True)
        for note in second["notes"]:
            print(f"  {note}")
        print(f"concurrent reads: {reads:,} ({seen.get(first['generation'], 0):,} via generation 1, "
              f"{seen.get(second['generation'], 0):,} via generation 2), missing keys: {misses}, "
              f"unexpected values: {wrong}")
        assert client.get(CacheLayout(namespace).pointer).decode() == second["generation"]
        rate = min(first["keys_per_second"], second["keys_per_second"])
        spanned = seen.get(first["generation"], 0) > 0 and seen.get(second["generation"], 0) > 0
        ok = misses == 0 and wrong == 0 and spanned
        print("result:", "OK" if ok else "FAILED (a reader saw a missing or wrong key, or never saw the switch)")
        print(f"cache_keys_per_second: {rate}")
        return 0 if ok else 1
    finally:
        unlink_matching(client, namespace + ":*")
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()
        client.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
