"""Benchmark: back up 1,000,000+ rows while a writer keeps committing, change data, restore, compare.

Run on its own: ``.venv/bin/python tests/bench/bench_backup.py [--rows N]``. It creates a database on
the local MariaDB, fills ``orders`` (N rows) and ``users``, starts a writer process that commits one
INSERT and one UPDATE per transaction on ``orders`` the whole time, and runs BackupStep. Then it changes
data, runs RestoreBackupStep and checks that ``CHECKSUM TABLE`` equals the snapshot's value recorded in
the manifest; it times the restore's own proof (catalog and CHECKSUM TABLE comparison) and a second
restore, which finds the tables equal and loads nothing. Exit 1 on a mismatch. Everything it created is
removed. The last line is ``writer_max_stall_seconds: <value>``: the longest gap between two writer
commits during the backup.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from tasks.backup.manifest import Manifest  # noqa: E402
from tasks.backup.step import BackupParams, BackupStep, RestoreBackupStep, RestoreParams  # noqa: E402
from tasks.backup.verify import compare_with_backup  # noqa: E402
from tests.helpers import step_context  # noqa: E402
from tests.tasks.backup.data import checksums, fill  # noqa: E402

MARIADB = os.environ.get("FT_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")


def writer(url: str, measuring, stop, out) -> None:  # noqa: ANN001 - multiprocessing primitives
    """Commit small transactions back to back; report commits and the longest gap while ``measuring``."""
    engine = create_engine(url)
    commits = measured = 0
    worst = 0.0
    last = time.perf_counter()
    with engine.connect() as conn:
        while not stop.is_set():
            with conn.begin():
                conn.execute(text("INSERT INTO orders (customer, amount, created, status) "
                                  "VALUES ('writer', 1.00, NOW(3), 1)"))
                conn.execute(text("UPDATE orders SET status = 3 WHERE id = :id"), {"id": commits % 1000 + 1})
            now = time.perf_counter()
            if measuring.is_set():
                worst = max(worst, now - last)
                measured += 1
            last = now
            commits += 1
    engine.dispose()
    out.put((commits, measured, worst))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    rows = parser.parse_args().rows
    name = f"ft_bench_backup_{uuid.uuid4().hex[:8]}"
    admin = create_engine(MARIADB + "/test")
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    url = f"{MARIADB}/{name}?charset=utf8mb4"
    engine = create_engine(url)
    ok = True
    try:
        started = time.perf_counter()
        fill(engine, rows)
        print(f"filled {rows:,} orders + 100 users in {time.perf_counter() - started:.1f} s")
        ctx_mp = multiprocessing.get_context("spawn")
        measuring, stop, out = ctx_mp.Event(), ctx_mp.Event(), ctx_mp.Queue()
        proc = ctx_mp.Process(target=writer, args=(url, measuring, stop, out))
        proc.start()
        time.sleep(2.0)  # writer warmed up
        with tempfile.TemporaryDirectory() as tmp, \
                step_context(Path(tmp), databases={"ft_db": url}, execution_id="BENCH",
                             cutpoint="pre_upgrade_process") as ctx:
            params = BackupParams(databases=[{"database": "ft_db", "tables": ["orders", "users"]}])
            measuring.set()
            t0 = time.perf_counter()
            result = BackupStep(params, ctx).run()
            backup_seconds = time.perf_counter() - t0
            measuring.clear()
            stop.set()
            commits, measured, worst = out.get(timeout=60)
            proc.join(30)
            manifest = Manifest.load(Path(result.details["path"]))
            snap = {t.table: t.checksum for t in manifest.tables}
            mb = manifest.total_bytes / 1e6
            print(f"backup: {manifest.total_rows:,} rows, {mb:.1f} MB compressed in {backup_seconds:.1f} s "
                  f"({manifest.total_rows / backup_seconds:,.0f} rows/s, {mb / backup_seconds:.2f} MB/s compressed)")
            print(f"writer: {measured:,} commits during the backup ({measured / backup_seconds:,.0f}/s), "
                  f"{commits:,} in all")
            with engine.begin() as conn:
                conn.execute(text("UPDATE orders SET status = 7 WHERE id % 10 = 0"))
                conn.execute(text("DELETE FROM users WHERE id > 10"))
            assert checksums(engine) != snap
            t0 = time.perf_counter()
            restored = RestoreBackupStep(RestoreParams(), ctx).run().details["restored"][0]
            restore_seconds = time.perf_counter() - t0
            after = checksums(engine)
            print(f"restore: {manifest.total_rows:,} rows in {restore_seconds:.1f} s "
                  f"({manifest.total_rows / restore_seconds:,.0f} rows/s); proof: {restored['comparison']['ok']}")
            t0 = time.perf_counter()
            compare_with_backup(manifest, ctx.resources.engine)
            proof_seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            again = RestoreBackupStep(RestoreParams(), ctx).run().details["restored"][0]
            print(f"the comparison alone (catalog + CHECKSUM TABLE of every table): {proof_seconds:.2f} s "
                  f"({proof_seconds / restore_seconds:.1%} of the restore); the same restore again "
                  f"(tables {sorted({t['outcome'] for t in again['tables']})}): {time.perf_counter() - t0:.2f} s")
            print(f"CHECKSUM TABLE snapshot {snap} restored {after}: {'EQUAL' if after == snap else 'DIFFERENT'}")
            ok = after == snap
        print(f"writer_max_stall_seconds: {worst:.4f}")
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
