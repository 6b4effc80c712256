"""Rows per second of each kind of work on this machine's MariaDB: where the forecast's default rates come from.

    .venv/bin/python tests/bench/bench_forecast_rates.py [ROWS]

Builds a table of ROWS rows (default 300,000; a bigint key, ints, a VARCHAR(64), a DATETIME, a DECIMAL and
two secondary indexes) in a scratch database, then times a COPY (a column type change), an INPLACE rebuild
(FORCE), an index build and a full-table UPDATE, and prints ``<work>_rows_per_second`` for each beside the
default in :data:`tasks.sql.forecast.estimate.DEFAULT_RATES`; then forecasts the same statements with those
defaults and prints ``forecast_error_ratio`` per statement.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import create_engine, text  # noqa: E402

from tasks.sql.forecast.ddl import classify  # noqa: E402
from tasks.sql.forecast.estimate import DEFAULT_RATES, DML, INDEX, REBUILD, TABLE_COPY  # noqa: E402
from tasks.sql.forecast.facts import read_facts  # noqa: E402

ROOT = os.environ.get("FT_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")
WORK = [(TABLE_COPY, "ALTER TABLE big MODIFY qty BIGINT NOT NULL"),
        (REBUILD, "ALTER TABLE big FORCE"),
        (INDEX, "ALTER TABLE big ADD INDEX k_amount (amount)"),
        (DML, "UPDATE big SET qty = qty + 1")]


def main(rows: int) -> None:
    name = f"ft_bench_forecast_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ROOT + "/test")
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}`"))
    engine = create_engine(f"{ROOT}/{name}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE big (id BIGINT PRIMARY KEY AUTO_INCREMENT, customer INT NOT NULL, "
                              "qty INT NOT NULL, note VARCHAR(64), created DATETIME NOT NULL, amount DECIMAL(12,2), "
                              "KEY k_customer (customer), KEY k_created (created)) ENGINE=InnoDB"))
            conn.execute(text("INSERT INTO big (customer, qty, note, created, amount) "
                              "SELECT seq % 5000, seq % 97, CONCAT('note ', seq), NOW() - INTERVAL seq SECOND, "
                              f"seq / 7 FROM seq_1_to_{rows}"))
            conn.execute(text("ANALYZE TABLE big"))
        for work, sql in WORK:
            facts = read_facts(engine, [(None, "big")], [(0, None, sql)] if work == DML else [])
            table = facts.table(None, "big")
            assert table is not None
            execution = classify(sql, facts.server, table)
            estimated = facts.explained.get(0, table.rows) if work == DML else table.rows
            started = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(text(sql))
            seconds = time.perf_counter() - started
            forecast = estimated / DEFAULT_RATES[work]
            print(f"{work}_rows_per_second {estimated / seconds:,.0f} (default {DEFAULT_RATES[work]:,.0f}; "
                  f"{execution.category if work != DML else 'DML'}, {estimated} rows estimated, {seconds:.2f}s; "
                  f"forecast_error_ratio {abs(forecast - seconds) / seconds:.2f})")
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300_000)
