"""A realistic table pair for migration tests and benchmarks: ``orders`` → ``orders_v2`` with a transform.

The target's key index is NOT unique on purpose: a chunk copied twice would show up as duplicate
rows instead of being refused by the server, so "no duplicates" is something the tests observe.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

SOURCE_DDL = """CREATE TABLE orders (
    id BIGINT NOT NULL PRIMARY KEY,
    customer_id INT NOT NULL,
    amount DECIMAL(12,2) NULL,
    status VARCHAR(16) NOT NULL,
    note VARCHAR(64) NULL,
    created_at DATETIME(3) NOT NULL
) ENGINE=InnoDB"""

TARGET_DDL = """CREATE TABLE orders_v2 (
    id BIGINT NOT NULL,
    customer_id INT NOT NULL,
    amount_cents BIGINT NOT NULL,
    status VARCHAR(16) NOT NULL,
    note VARCHAR(80) NULL,
    created_day DATE NOT NULL,
    KEY k_id (id)
) ENGINE=InnoDB"""

COLUMNS = {
    "customer_id": "customer_id",
    "amount_cents": "CAST(amount * 100 AS SIGNED)",
    "status": "LOWER(status)",
    "note": "CONCAT('100%: ', note)",  # a '%' in an expression must survive the driver's formatting
    "created_day": "DATE(created_at)",
}
CONDITION = "status <> 'NEW'"

# The same transform written out for an independent row-for-row comparison (not the migration's SQL).
_MATCH = ("t.customer_id <=> s.customer_id AND t.amount_cents <=> CAST(s.amount * 100 AS SIGNED) "
          "AND t.status <=> LOWER(s.status) AND t.note <=> CONCAT('100%%: ', s.note) "
          "AND t.created_day <=> DATE(s.created_at)")


def create_tables(engine: Engine, rows: int, *, first_id: int = 1) -> None:
    """Both tables; ``rows`` source rows (ids from ``first_id``), a quarter of them status NEW, some notes NULL."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS orders, orders_v2")
        conn.exec_driver_sql(SOURCE_DDL)
        conn.exec_driver_sql(TARGET_DDL)
    fill(engine, first_id, first_id + rows - 1)


def fill(engine: Engine, first: int, last: int) -> None:
    step = 500_000
    for low in range(first, last + 1, step):
        high = min(low + step - 1, last)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"INSERT INTO orders SELECT seq, seq %% 9973, (seq %% 100000) / 100, "
                f"ELT(1 + seq %% 4, 'NEW', 'PAID', 'SHIPPED', 'DONE'), IF(seq %% 7 = 0, NULL, CONCAT('note-', seq)), "
                f"TIMESTAMP'2024-01-01 00:00:00' + INTERVAL (seq %% 86400) MINUTE FROM seq_{low}_to_{high}", ())


def task(name: str = "orders_v2", database: str = "ft_db", condition: str | None = CONDITION,
         **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": name, "source_database": database, "source_table": "orders",
                            "target_database": database, "target_table": "orders_v2", "key": "id",
                            "columns": dict(COLUMNS), **extra}
    if condition:
        data["condition"] = condition
    return data


def compare(engine: Engine, condition: str | None = CONDITION) -> dict[str, int]:
    """Independent proof: expected vs target counts, distinct keys, rows that differ, and both-side checksums."""
    where = f"WHERE {condition}" if condition else ""
    with engine.connect() as conn:
        expected = conn.exec_driver_sql(f"SELECT COUNT(*) FROM orders {where}").scalar()
        target, distinct = conn.exec_driver_sql("SELECT COUNT(*), COUNT(DISTINCT id) FROM orders_v2").one()
        s_where = f"WHERE {condition.replace('status', 's.status')}" if condition else ""
        matching = conn.exec_driver_sql(
            f"SELECT COUNT(*) FROM orders s JOIN orders_v2 t ON t.id = s.id {s_where} {'AND' if s_where else 'WHERE'} "
            f"{_MATCH}", ()).scalar()
        source_sum = conn.exec_driver_sql(
            "SELECT COALESCE(SUM(CRC32(CONCAT_WS('|', id, customer_id, CAST(amount * 100 AS SIGNED), LOWER(status), "
            f"IFNULL(CONCAT('100%%: ', note), '-'), DATE(created_at)))), 0) FROM orders {where}", ()).scalar()
        target_sum = conn.exec_driver_sql(
            "SELECT COALESCE(SUM(CRC32(CONCAT_WS('|', id, customer_id, amount_cents, status, IFNULL(note, '-'), "
            "created_day))), 0) FROM orders_v2").scalar()
    return {"expected": int(expected), "target": int(target), "distinct": int(distinct), "matching": int(matching),
            "source_checksum": int(source_sum), "target_checksum": int(target_sum)}


def assert_identical(engine: Engine, condition: str | None = CONDITION) -> dict[str, int]:
    found = compare(engine, condition)
    assert found["target"] == found["expected"], found
    assert found["distinct"] == found["target"], f"duplicate keys in the target: {found}"
    assert found["matching"] == found["expected"], f"rows differ from the transformed source: {found}"
    assert found["target_checksum"] == found["source_checksum"], found
    return found
