"""Benchmark and proofs of the async data migration on the local MariaDB (2,000,000 rows).

Run on its own: ``.venv/bin/python tests/bench/bench_migration.py [--rows N] [--kills N] [--seed N]``.

1. Unthrottled copy of 2,000,000 rows (INSERT … SELECT chunks, checkpoint in each chunk's transaction),
   verified by the step; rows/s of the copy phase.
2. kill -9 proof: the same migration from scratch, SIGKILLed at random points (≥ 10 trials), then
   run to the end; the target must equal the transformed source row for row (join on the key, both
   side checksums) with no duplicate keys (the target's key index is deliberately not unique).
3. OLTP writer p99: a writer process doing small transactions at a fixed rate on the source
   database (update a hot row, append an order, read one by key); its latency alone, next to a
   throttled migration (the step's defaults), and next to an unthrottled one for contrast.

It creates its own database, drops it at the end, and prints ``migration_rows_per_second: <value>``
as its last line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from sqlalchemy import create_engine  # noqa: E402

from tasks.migration.step import AsyncDataMigrationStep, DataMigrationParams  # noqa: E402
from tests.helpers import step_context  # noqa: E402
from tests.support.orders import assert_identical, create_tables, task  # noqa: E402
from tests.tasks.migration.kill_harness import finish, kill_trials, start  # noqa: E402

ROOT = "mysql+pymysql://root@127.0.0.1:3306"
WRITER_RATE = 200  # transactions per second, like a busy OLTP client
UNTHROTTLED = {"max_rows_per_second": None, "max_chunk_rows": 100_000, "target_chunk_seconds": 1.0,
               "initial_chunk_rows": 5_000}


def reset_target(engine: Any) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE TABLE orders_v2")
        conn.exec_driver_sql("DROP TABLE IF EXISTS ft_upgrade_migration_checkpoint")


def run_in_process(url: str, params: dict[str, Any]) -> dict[str, Any]:
    with step_context(Path(tempfile.mkdtemp(prefix="ft-bench-")), databases={"ft_db": url},
                      cutpoint="post_upgrade", step_id="bench") as context:
        result = AsyncDataMigrationStep(DataMigrationParams.model_validate(params), context).run()
    return result.details["migrations"][0]


# ---- the OLTP writer ----------------------------------------------------------------------------------------

def writer(url: str, seconds: float, first_id: int, out: Any, warmup: float = 2.0) -> None:
    """Fixed-rate small transactions; sends the latency (ms) of each after ``warmup`` s back through ``out``."""
    import pymysql
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = pymysql.connect(host=u.host, port=u.port or 3306, user=u.username, password=u.password or "",
                           database=u.database, autocommit=False)
    cur = conn.cursor()
    rng = random.Random(first_id)
    latencies: list[float] = []
    interval = 1.0 / WRITER_RATE
    next_at = time.perf_counter()
    measure_from = next_at + warmup
    end = measure_from + seconds
    order_id = first_id
    while next_at < end:
        now = time.perf_counter()
        if now < next_at:
            time.sleep(next_at - now)
        begin = time.perf_counter()
        cur.execute("UPDATE accounts SET balance = balance + 1, updated_at = NOW(3) WHERE id = %s",
                    (rng.randrange(1, 10_001),))
        cur.execute("INSERT INTO orders VALUES (%s, %s, 12.34, 'NEW', 'live order', NOW(3))",
                    (order_id, rng.randrange(1, 9_973)))
        cur.execute("SELECT status FROM orders WHERE id = %s", (rng.randrange(1, first_id),))
        cur.fetchall()
        conn.commit()
        if begin >= measure_from:
            latencies.append((time.perf_counter() - begin) * 1000)
        order_id += 1
        next_at += interval
    conn.close()
    out.send(latencies)


def measure_writer(url: str, seconds: float, first_id: int) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=writer, args=(url, seconds, first_id, send))
    proc.start()
    latencies = sorted(receive.recv())
    proc.join()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]

    return {"n": len(latencies), "p50": pct(50), "p95": pct(95), "p99": pct(99), "max": latencies[-1]}


def writer_next_to_migration(url: str, engine: Any, params: dict[str, Any], seconds: float,
                             first_id: int) -> tuple[dict[str, float], float]:
    """Writer latency while a migration subprocess copies (then SIGKILLed: it is resumable); its rows/s meanwhile."""
    reset_target(engine)
    proc = start(url, params)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not copied_rows(engine):
        time.sleep(0.05)
    first, since = copied_rows(engine), time.monotonic()
    stats = measure_writer(url, seconds, first_id)
    rate = (copied_rows(engine) - first) / (time.monotonic() - since)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return stats, rate


def copied_rows(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT COUNT(*) FROM orders_v2").scalar() or 0)


def fmt(stats: dict[str, float]) -> str:
    return (f"{stats['n']} tx, p50 {stats['p50']:.2f} ms, p95 {stats['p95']:.2f} ms, p99 {stats['p99']:.2f} ms, "
            f"max {stats['max']:.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--writer-seconds", type=float, default=15.0)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    name = f"ft_bench_migration_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ROOT + "/test")
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    url = f"{ROOT}/{name}?charset=utf8mb4"
    engine = create_engine(url)
    try:
        t0 = time.perf_counter()
        create_tables(engine, args.rows)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL, "
                                 "updated_at DATETIME(3) NOT NULL) ENGINE=InnoDB")
            conn.exec_driver_sql("INSERT INTO accounts SELECT seq, 0, NOW(3) FROM seq_1_to_10000")
        print(f"setup: {args.rows:,} source rows in {time.perf_counter() - t0:.1f}s (database {name})", flush=True)
        whole = [task(condition=None)]

        # 1. unthrottled throughput
        stats = run_in_process(url, {"tasks": whole, **UNTHROTTLED})
        rate = stats["rows_per_second"]
        v = stats["verification"]
        print(f"unthrottled copy: {stats['run_rows']:,} rows in {stats['copy_seconds']:.2f}s = {rate:,.0f} rows/s "
              f"({stats['run_chunks']} chunks); verification {v['segments']} segments, "
              f"{v['target_rows']:,} rows, mismatches {len(v['mismatches'])}", flush=True)
        assert_identical(engine, condition=None)

        # 2. kill -9 at random points, then resume to the end
        reset_target(engine)
        params = {"tasks": whole, **UNTHROTTLED}
        trials = kill_trials(url, engine, params, trials=args.kills, total_rows=args.rows, rng=random.Random(seed),
                             task_name="orders_v2")
        for trial in trials:
            print("  " + trial.describe(), flush=True)
        killed = sum(t.killed for t in trials)
        final = finish(url, params)["migrations"][0]
        found = assert_identical(engine, condition=None)
        print(f"kill -9 proof (seed {seed}): {killed}/{len(trials)} runs killed mid-migration, final run resumed "
              f"from key {final['resumed_from']} (run {final['runs']}); target {found['target']:,} rows = "
              f"expected {found['expected']:,}, distinct keys {found['distinct']:,}, rows equal to the transformed "
              f"source {found['matching']:,}, checksum {found['target_checksum']} = {found['source_checksum']}",
              flush=True)
        assert killed == args.kills, "a run finished before its kill point"

        # 3. OLTP writer p99: alone, next to the throttled migration (defaults), next to an unthrottled one
        secs = args.writer_seconds
        base = measure_writer(url, secs, 10_000_000)
        print(f"writer alone:                 {fmt(base)}", flush=True)
        throttled, rate_t = writer_next_to_migration(url, engine, {"tasks": whole}, secs, 20_000_000)
        print(f"writer + throttled migration: {fmt(throttled)} (migration meanwhile {rate_t:,.0f} rows/s)", flush=True)
        loud, rate_u = writer_next_to_migration(url, engine, {"tasks": whole, **UNTHROTTLED}, secs, 30_000_000)
        print(f"writer + unthrottled:         {fmt(loud)} (migration meanwhile {rate_u:,.0f} rows/s)", flush=True)
        again = measure_writer(url, secs, 40_000_000)
        print(f"writer alone again:           {fmt(again)}", flush=True)
        base = min(base, again, key=lambda s: s["p99"])  # the stricter baseline
        ratio = throttled["p99"] / base["p99"]
        print(f"p99 ratio throttled/baseline: {ratio:.2f} (must be <= 2.0); unthrottled/baseline: "
              f"{loud['p99'] / base['p99']:.2f}", flush=True)
        print(json.dumps({"rows": args.rows, "unthrottled_rows_per_second": round(rate), "kills": killed,
                          "writer_p99_ms": {"baseline": round(base["p99"], 2),
                                            "throttled": round(throttled["p99"], 2),
                                            "unthrottled": round(loud["p99"], 2)}}), flush=True)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        admin.dispose()
    print(f"migration_rows_per_second: {rate:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
