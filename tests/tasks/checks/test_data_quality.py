"""Data-quality checks on a real MariaDB database and on ClickHouse (chdb): each type passes, warns and
fails by its threshold and severity, gives count, threshold and a SELECT that really shows the rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tasks.checks.outcome import CheckOutcome, CheckStatus
from tests.tasks.checks.support import run_check, run_checks, with_level

LEVELS = ["pass", "warn", "fail"]

SETUP = [
    "CREATE TABLE orders (row_id INT AUTO_INCREMENT PRIMARY KEY, id INT, customer VARCHAR(64), status VARCHAR(16), "
    "amount VARCHAR(20), note VARBINARY(50)) CHARACTER SET utf8mb4",
    # 20 distinct ids, then ids 1..15 once more: 15 conflicting rows on 15 key values
    "INSERT INTO orders (id, customer, status, amount, note) SELECT seq, CONCAT('customer ', seq), 'NEW', '12.50', "
    "'ok' FROM seq_1_to_20",
    "INSERT INTO orders (id, customer, status, amount, note) SELECT seq, 'dup', 'PAID', '1', 'ok' FROM seq_1_to_15",
    "INSERT INTO orders (id, customer, status, amount, note) VALUES (NULL, 'no id', 'NEW', '2', 'ok'), "
    "(NULL, 'no id', 'NEW', '3', 'ok')",
    "UPDATE orders SET customer = CONCAT('bell', CHAR(7)) WHERE row_id IN (1, 2)",
    "UPDATE orders SET customer = 'tab\tand\nnewline are fine' WHERE row_id = 3",
    "UPDATE orders SET customer = 'emoji 😀', status = 'CLOSED' WHERE row_id = 4",
    "UPDATE orders SET status = 'CLOSED', amount = 'abc', note = UNHEX('C328') WHERE row_id = 5",
    "UPDATE orders SET amount = '99999999999.5' WHERE row_id = 6",
    "CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(20))",
    "INSERT INTO users VALUES (1, 'a'), (2, 'b')",
    "CREATE TABLE user_logs (id INT, msg TEXT)",
    "CREATE TABLE temp_data (x INT)",
    "CREATE TABLE audit_records (a INT, b INT, UNIQUE KEY uk (a))",
    "CREATE VIEW v_orders AS SELECT * FROM orders",
]


@pytest.fixture
def ft_db(mariadb_database: str) -> Iterator[str]:
    engine = create_engine(mariadb_database)
    with engine.begin() as conn:
        for sql in SETUP:
            conn.execute(text(sql.replace(":", "\\:")))
    engine.dispose()
    yield mariadb_database


def raw_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            cursor = conn.connection.cursor()
            cursor.execute(sql)
            return list(cursor.fetchall())
    finally:
        engine.dispose()


def level_of(o: CheckOutcome) -> str:
    return o.status.value


DUP = {"id": "orders_pk", "title": "主键冲突检测", "type": "duplicate_keys", "target": "ft_db", "table": "orders",
       "columns": ["id"]}


@pytest.mark.parametrize("level", LEVELS)
def test_duplicate_keys_count_conflicting_rows_against_the_threshold(tmp_path: Path, ft_db: str, level: str) -> None:
    o = run_check(tmp_path, with_level(DUP, level), databases={"ft_db": ft_db})
    assert level_of(o) == level
    assert o.count == 15
    sql = "SELECT * FROM orders WHERE id IN (SELECT id FROM orders GROUP BY id HAVING COUNT(*) > 1);"
    assert o.sql == sql
    if level == "pass":
        assert o.result == "发现15条冲突记录，未超过阈值1000000"
    else:
        assert o.result == "发现15条冲突记录，阈值0"
        assert o.suggestion == f"执行 `{sql}` 查看冲突记录"
    assert len(raw_rows(ft_db, sql)) == 30, "the shown SELECT lists both rows of every duplicated key"


def test_a_key_without_duplicates_passes_with_zero(tmp_path: Path, ft_db: str) -> None:
    o = run_check(tmp_path, {**DUP, "table": "users"}, databases={"ft_db": ft_db})
    assert (o.status, o.count, o.result) == (CheckStatus.PASS, 0, "未发现冲突记录")
    composite = run_check(tmp_path, {**DUP, "columns": ["id", "note"]}, databases={"ft_db": ft_db})
    assert composite.count == 14, "row 5 got another note, so id 5 no longer collides on (id, note)"
    assert composite.sql.startswith("SELECT * FROM orders WHERE (id, note) IN")
    assert len(raw_rows(ft_db, composite.sql)) == 28


NO_PK = {"id": "no_pk", "title": "无主键表检测", "type": "missing_primary_key", "target": "ft_db"}


@pytest.mark.parametrize("level", LEVELS)
def test_tables_without_primary_key_are_named(tmp_path: Path, ft_db: str, level: str) -> None:
    o = run_check(tmp_path, with_level(NO_PK, level), databases={"ft_db": ft_db})
    assert level_of(o) == level
    assert o.count == 3
    assert o.facts["tables"] == "audit_records, temp_data, user_logs", "a unique key is not a primary key; views skip"
    if level != "pass":
        assert o.result == "发现3张无主键表"
        assert o.suggestion == "为表 audit_records, temp_data, user_logs 添加主键"
    only = run_check(tmp_path, {**NO_PK, "tables": ["orders", "users"]}, databases={"ft_db": ft_db})
    assert (only.status, only.count) == (CheckStatus.PASS, 0)
    rest = run_check(tmp_path, {**NO_PK, "exclude": ["temp_data"]}, databases={"ft_db": ft_db})
    assert rest.facts["tables"] == "audit_records, user_logs"


ILLEGAL = {"id": "orders_chars", "title": "非法字符检测", "type": "illegal_characters", "target": "ft_db",
           "table": "orders", "columns": ["customer"]}


@pytest.mark.parametrize("level", LEVELS)
def test_control_characters_but_not_tabs_or_newlines_are_illegal(tmp_path: Path, ft_db: str, level: str) -> None:
    o = run_check(tmp_path, with_level(ILLEGAL, level), databases={"ft_db": ft_db})
    assert level_of(o) == level
    assert o.count == 2
    assert sorted(r[0] for r in raw_rows(ft_db, o.sql)) == [1, 2]


def test_four_byte_invalid_utf8_and_configured_patterns(tmp_path: Path, ft_db: str) -> None:
    four = run_check(tmp_path, {**ILLEGAL, "checks": ["four_byte"]}, databases={"ft_db": ft_db})
    assert four.count == 1 and [r[0] for r in raw_rows(ft_db, four.sql)] == [4]
    invalid = run_check(tmp_path, {**ILLEGAL, "columns": ["note"], "checks": ["invalid_utf8"]},
                        databases={"ft_db": ft_db})
    assert invalid.count == 1 and [r[0] for r in raw_rows(ft_db, invalid.sql)] == [5]
    pattern = run_check(tmp_path, {**ILLEGAL, "checks": [], "patterns": ["^no id$", "'"]}, databases={"ft_db": ft_db})
    assert pattern.count == 2
    assert "customer REGEXP '^no id$' OR customer REGEXP ''''" in pattern.sql
    assert len(raw_rows(ft_db, pattern.sql)) == 2


FIT = {"id": "orders_status", "title": "数据兼容性检查", "type": "column_fit", "target": "ft_db", "table": "orders"}


@pytest.mark.parametrize("level", LEVELS)
def test_enum_values_removed_in_the_target_are_found(tmp_path: Path, ft_db: str, level: str) -> None:
    o = run_check(tmp_path, with_level({**FIT, "column": "status", "removed_values": ["CLOSED"]}, level),
                  databases={"ft_db": ft_db})
    assert level_of(o) == level and o.count == 2
    assert o.sql == "SELECT * FROM orders WHERE status IN ('CLOSED');"
    allowed = run_check(tmp_path, {**FIT, "column": "status", "allowed_values": ["NEW", "PAID"]},
                        databases={"ft_db": ft_db})
    assert allowed.count == 2


@pytest.mark.parametrize(("change", "count"), [
    ({"column": "customer", "max_length": 7}, 17),
    ({"column": "amount", "target_type": "decimal(10,2)"}, 2),
    ({"column": "amount", "target_type": "int"}, 20),
    ({"column": "id", "target_type": "tinyint unsigned"}, 0),
])
def test_values_that_will_not_fit_a_changed_column_are_counted(tmp_path: Path, ft_db: str, change: dict,
                                                               count: int) -> None:
    o = run_check(tmp_path, {**FIT, **change}, databases={"ft_db": ft_db})
    assert o.count == count, o.sql
    assert len(raw_rows(ft_db, o.sql)) == count


CUSTOM = {"id": "custom", "title": "自定义检查", "type": "custom_sql", "target": "ft_db",
          "sql": "SELECT COUNT(*) FROM orders WHERE customer LIKE 'dup%' AND status = 'PAID'",
          "detail_sql": "SELECT * FROM orders WHERE customer LIKE 'dup%' AND status = 'PAID'"}


@pytest.mark.parametrize("level", LEVELS)
def test_custom_sql_counts_violating_rows_exactly_as_written(tmp_path: Path, ft_db: str, level: str) -> None:
    o = run_check(tmp_path, with_level(CUSTOM, level), databases={"ft_db": ft_db})
    assert level_of(o) == level and o.count == 15
    assert o.sql == CUSTOM["detail_sql"] + ";"


def test_an_sql_error_stops_the_checks_with_that_error(tmp_path: Path, ft_db: str) -> None:
    rules = [{**CUSTOM, "id": "missing_table", "sql": "SELECT COUNT(*) FROM order_items", "severity": "warn"},
             {**DUP, "severity": "warn"},
             {**DUP, "id": "bad_column", "columns": ["nope"]}]
    outcomes = run_checks(tmp_path, rules, databases={"ft_db": ft_db})
    assert [o.status for o in outcomes] == [CheckStatus.FAIL, CheckStatus.SKIPPED, CheckStatus.SKIPPED]
    assert "SQL error in rule missing_table: (1146, \"Table '" in outcomes[0].result
    assert ".order_items' doesn't exist" in outcomes[0].result
    assert outcomes[0].sql == "SELECT COUNT(*) FROM order_items"
    assert outcomes[1].result == "未执行：规则missing_table的SQL出错，检查已终止"
    going_on = run_checks(tmp_path, rules, databases={"ft_db": ft_db}, stop_on_sql_error=False)
    assert [o.status for o in going_on] == [CheckStatus.FAIL, CheckStatus.WARN, CheckStatus.FAIL]
    assert "Unknown column 'nope'" in going_on[2].result


def test_a_missing_table_in_a_built_in_check_is_an_error(tmp_path: Path, ft_db: str) -> None:
    o = run_check(tmp_path, {**DUP, "table": "order_items", "severity": "warn"}, databases={"ft_db": ft_db})
    assert o.status == CheckStatus.FAIL and "order_items' doesn't exist" in o.error


def test_checks_run_read_only_and_leave_the_pool_writable(tmp_path: Path, ft_db: str) -> None:
    from tasks.checks.data_quality import MySqlTarget
    from tasks.core.errors import RuleSqlError
    from tests.helpers import step_context

    with step_context(tmp_path, databases={"ft_db": ft_db}) as ctx:
        target = MySqlTarget(ctx.resources.engine("ft_db"), "probe")
        with pytest.raises(RuleSqlError, match="Cannot execute statement in a READ ONLY transaction"):
            target.raw("DELETE FROM users")
        target.close()
        with ctx.resources.engine("ft_db").begin() as conn:
            conn.execute(text("INSERT INTO users VALUES (3, 'c')"))  # the pooled connection is writable again


@pytest.fixture
def ft_ch(tmp_path: Path) -> Iterator[str]:
    import clickhouse_connect

    dsn = f"chdb://{tmp_path / 'ch'}"
    client = clickhouse_connect.get_client(dsn=dsn)
    try:
        for sql in [
            "CREATE DATABASE dq",
            "CREATE TABLE dq.orders (id UInt64, customer String, status String, amount String) "
            "ENGINE = MergeTree ORDER BY tuple()",
            "INSERT INTO dq.orders SELECT number + 1, concat('customer ', toString(number)), 'NEW', '12.50' "
            "FROM numbers(20)",
            "INSERT INTO dq.orders SELECT number + 1, 'dup', 'PAID', '1' FROM numbers(15)",
            "INSERT INTO dq.orders VALUES (100, concat('bell', char(7)), 'CLOSED', 'abc'), "
            "(101, 'emoji 😀', 'CLOSED', '99999999999'), (102, unhex('C328'), 'NEW', '3')",
            "CREATE TABLE dq.users (id UInt64, name String) ENGINE = MergeTree ORDER BY id",
            "CREATE TABLE dq.logs (id UInt64) ENGINE = Log",
        ]:
            client.command(sql)
    finally:
        client.close()
    yield dsn


CH = {"target": "ft_ch", "database": "dq"}
CH_CUSTOM = {**CUSTOM, "target": "ft_ch", "sql": "SELECT count() FROM dq.orders WHERE status = 'CLOSED'",
             "detail_sql": "SELECT * FROM dq.orders WHERE status = 'CLOSED'"}


@pytest.mark.parametrize("level", LEVELS)
def test_clickhouse_data_quality_checks_pass_warn_and_fail(tmp_path: Path, ft_ch: str, level: str) -> None:
    rules = [with_level({**DUP, **CH}, level), with_level({**NO_PK, **CH}, level),
             with_level({**ILLEGAL, **CH, "checks": ["control", "invalid_utf8", "four_byte"]}, level),
             with_level({**FIT, **CH, "column": "amount", "target_type": "decimal(10,2)"}, level),
             with_level(CH_CUSTOM, level)]
    outcomes = run_checks(tmp_path, [{**r, "id": f"r{i}"} for i, r in enumerate(rules)], databases={"ft_ch": ft_ch})
    assert [level_of(o) for o in outcomes] == [level] * 5, [o.result for o in outcomes]
    assert [o.count for o in outcomes] == [15, 2, 3, 2, 2]
    assert outcomes[0].sql == "SELECT * FROM dq.orders WHERE id IN (SELECT id FROM dq.orders GROUP BY id " \
                              "HAVING COUNT(*) > 1);"
    assert outcomes[1].facts["tables"] == "logs, orders"


def test_clickhouse_sql_error_is_reported_and_stops(tmp_path: Path, ft_ch: str) -> None:
    outcomes = run_checks(tmp_path, [{**CH_CUSTOM, "sql": "SELECT count() FROM dq.nope"}, {**DUP, **CH}],
                          databases={"ft_ch": ft_ch})
    assert outcomes[0].status == CheckStatus.FAIL and "UNKNOWN_TABLE" in outcomes[0].result
    assert outcomes[1].status == CheckStatus.SKIPPED
