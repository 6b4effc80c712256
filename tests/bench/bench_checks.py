"""Benchmark: the full data-quality rule set on tables of 1,000,000 rows each (MariaDB and ClickHouse).

Run on its own: ``.venv/bin/python tests/bench/bench_checks.py [--rows N]``.

It creates a database on the local MariaDB (three tables of ``--rows`` rows: orders with duplicated
keys, control characters, 4-byte characters, invalid UTF-8, values that will not fit; order_items;
user_logs without a primary key) and the same orders table in an embedded ClickHouse (chdb) in a tmp
folder; runs PreBusinessCheckStep with every data-quality rule type on them; checks the counts; drops
everything. The requirement is ≤ 2 minutes for a million rows; the target here is ≤ 15 s. The last line
is ``data_quality_seconds_1m_rows: <seconds>`` (the whole rule set, both databases).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from sqlalchemy import create_engine, text  # noqa: E402

from tasks.checks.step import BusinessCheckParams, PreBusinessCheckStep  # noqa: E402
from tasks.core.errors import StepFailed  # noqa: E402
from tests.helpers import step_context  # noqa: E402

ROOT = "mysql+pymysql://root@127.0.0.1:3306"


def mariadb_tables(rows: int) -> list[str]:
    seq = f"seq_1_to_{rows}"
    return [
        "CREATE TABLE orders (row_id BIGINT AUTO_INCREMENT PRIMARY KEY, id BIGINT NOT NULL, customer VARCHAR(64), "
        "status VARCHAR(16), amount VARCHAR(20), note VARBINARY(64)) CHARACTER SET utf8mb4",
        # every 10,000th id appears twice; a few rows carry each kind of bad data
        f"INSERT INTO orders (id, customer, status, amount, note) SELECT IF(seq % 10000 = 0, seq - 1, seq), "
        f"CASE WHEN seq % 100000 = 1 THEN CONCAT('bell', CHAR(7)) WHEN seq % 100000 = 2 THEN 'emoji 😀' "
        f"ELSE CONCAT('customer number ', seq) END, ELT(1 + seq % 3, 'NEW', 'PAID', IF(seq % 50000 = 0, 'CLOSED', "
        f"'NEW')), IF(seq % 200000 = 0, 'n/a', CONCAT(seq % 1000, '.', seq % 100)), "
        f"IF(seq % 250000 = 0, UNHEX('C328'), 'ok') FROM {seq}",
        "CREATE TABLE order_items (item_id BIGINT AUTO_INCREMENT PRIMARY KEY, order_id BIGINT NOT NULL, "
        "sku VARCHAR(32) NOT NULL, qty INT NOT NULL)",
        f"INSERT INTO order_items (order_id, sku, qty) SELECT seq DIV 2, CONCAT('SKU-', seq % 2, "
        f"IF(seq % 100000 = 0, '', CONCAT('-', seq))), IF(seq % 100000 = 7, -1, 1 + seq % 5) FROM {seq}",
        "CREATE TABLE user_logs (user_id BIGINT, message VARCHAR(200))",
        f"INSERT INTO user_logs SELECT seq % 5000, CONCAT('user ', seq % 5000, ' did thing ', seq) FROM {seq}",
    ]


def clickhouse_tables(rows: int) -> list[str]:
    return [
        "CREATE DATABASE IF NOT EXISTS dq",
        "CREATE TABLE dq.orders (id UInt64, customer String, status String, amount String) "
        "ENGINE = MergeTree ORDER BY tuple()",
        f"INSERT INTO dq.orders SELECT if(seq % 10000 = 0, seq - 1, seq), "
        f"multiIf(seq % 100000 = 1, concat('bell', char(7)), seq % 100000 = 2, 'emoji 😀', "
        f"concat('customer number ', toString(seq))), ['NEW', 'PAID', 'CLOSED'][1 + seq % 3], "
        f"if(seq % 200000 = 0, 'n/a', concat(toString(seq % 1000), '.', toString(seq % 100))) "
        f"FROM (SELECT number + 1 AS seq FROM numbers({rows}))",
    ]


def rules() -> list[dict[str, Any]]:
    def rule(id_: str, type_: str, **fields: Any) -> dict[str, Any]:
        return {"id": id_, "title": id_, "type": type_, "target": "ft_db", "threshold": 10**9, **fields}

    mysql = [
        rule("orders_pk", "duplicate_keys", table="orders", columns=["id"]),
        rule("items_uk", "duplicate_keys", table="order_items", columns=["order_id", "sku"]),
        rule("no_pk", "missing_primary_key"),
        rule("orders_chars", "illegal_characters", table="orders", columns=["customer"],
             checks=["control", "four_byte"], patterns=["[<>]"]),
        rule("orders_note_utf8", "illegal_characters", table="orders", columns=["note"], checks=["invalid_utf8"]),
        rule("orders_status", "column_fit", table="orders", column="status", removed_values=["CLOSED"]),
        rule("orders_amount", "column_fit", table="orders", column="amount", target_type="decimal(10,2)"),
        rule("orders_customer_len", "column_fit", table="orders", column="customer", max_length=24),
        rule("items_qty", "custom_sql", sql="SELECT COUNT(*) FROM order_items WHERE qty < 0",
             detail_sql="SELECT * FROM order_items WHERE qty < 0"),
        rule("logs_chars", "illegal_characters", table="user_logs", columns=["message"], checks=["control"]),
    ]
    ch = [
        {**rule("ch_orders_pk", "duplicate_keys", table="orders", columns=["id"]), "database": "dq"},
        {**rule("ch_no_pk", "missing_primary_key"), "database": "dq"},
        {**rule("ch_orders_chars", "illegal_characters", table="orders", columns=["customer"],
                checks=["control", "four_byte", "invalid_utf8"]), "database": "dq"},
        {**rule("ch_orders_fit", "column_fit", table="orders", column="amount", target_type="decimal(10,2)"),
         "database": "dq"},
        rule("ch_custom", "custom_sql", sql="SELECT count() FROM dq.orders WHERE status = 'CLOSED'"),
    ]
    return mysql + [{**r, "target": "ft_ch"} for r in ch]


def expected(rows: int) -> dict[str, int]:
    """Counts the data above must produce (for rows = 1,000,000)."""
    return {"orders_pk": rows // 10000, "no_pk": 1, "orders_chars": 2 * (rows // 100000),
            "orders_note_utf8": rows // 250000, "items_qty": rows // 100000, "ch_orders_pk": rows // 10000,
            "ch_no_pk": 1}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    name = f"ft_bench_checks_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ROOT + "/test")
    tmp = Path(tempfile.mkdtemp(prefix="ft-bench-checks-"))
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    url = f"{ROOT}/{name}?charset=utf8mb4"
    ch_dsn = f"chdb://{tmp / 'ch'}"
    try:
        start = time.perf_counter()
        engine = create_engine(url)
        with engine.begin() as conn:
            for sql in mariadb_tables(args.rows):
                conn.execute(text(sql))
        engine.dispose()
        import clickhouse_connect

        client = clickhouse_connect.get_client(dsn=ch_dsn)
        for sql in clickhouse_tables(args.rows):
            client.command(sql)
        client.close()
        print(f"setup: 3 MariaDB tables and 1 ClickHouse table of {args.rows:,} rows in "
              f"{time.perf_counter() - start:.1f}s")

        params = BusinessCheckParams.model_validate({"rules": rules()})
        with step_context(tmp, databases={"ft_db": url, "ft_ch": ch_dsn}, cutpoint="pre_business_check") as ctx:
            start = time.perf_counter()
            try:
                result = PreBusinessCheckStep(params, ctx).run()
            except StepFailed as exc:
                result = exc.result
            seconds = time.perf_counter() - start
        checks = result.details["checksPerformed"]
        for c in checks:
            print(f"  {c['id']:<22} {c['status']:<5} count={c['count']!s:<8} {c['durationMs']:>6} ms")
        bad = [c["id"] for c in checks if c["status"] != "pass"]
        if bad:
            print(f"unexpected status for {bad}: " + "; ".join(c["result"] for c in checks if c["id"] in bad))
            return 1
        if args.rows == 1_000_000:
            counts = {c["id"]: c["count"] for c in checks}
            wrong = {k: (counts[k], v) for k, v in expected(args.rows).items() if counts[k] != v}
            if wrong:
                print(f"unexpected counts (got, expected): {wrong}")
                return 1
        print(f"{len(checks)} data-quality rules ({sum(c['type'] != 'custom_sql' for c in checks)} built-in, "
              f"{sum(c['type'] == 'custom_sql' for c in checks)} custom) on {args.rows:,} rows per table: "
              f"{seconds:.2f}s (target ≤ 15 s, requirement ≤ 120 s)")
        print(f"data_quality_seconds_1m_rows: {seconds:.2f}")
        return 0
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        admin.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
