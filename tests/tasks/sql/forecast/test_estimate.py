"""The downtime forecast, pure: the classifier across server versions, the walk over a script, the arithmetic,
what a run teaches. (What the server really does: test_ddl_on_server.py.)"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tasks.sql.forecast.ddl import Column, Index, Server, Session, Table, classify, normalise_type
from tasks.sql.forecast.estimate import DEFAULT_RATES, DML, INDEX, REBUILD, TABLE_COPY, Rate, Statement, forecast
from tasks.sql.forecast.facts import DatabaseFacts
from tasks.sql.forecast.site import compact, compare, observations, render_comparison, render_forecast

MARIADB = Server.parse("10.11.19-MariaDB-0+deb12u1")
ORDERS = Table("shop", "orders", rows=1_000_000, collation="utf8mb4_general_ci", columns={
    "id": Column("id", "bigint(20)", False), "qty": Column("qty", "int(11)", False),
    "note": Column("note", "varchar(40)", True, 160, 40, "utf8mb4", "utf8mb4_general_ci"),
    "code": Column("code", "varchar(20)", True, 80, 20, "utf8mb4", "utf8mb4_general_ci")},
    indexes={"PRIMARY": Index("PRIMARY", ("id",), unique=True), "k_qty": Index("k_qty", ("qty",))})
RATES = {w: Rate(r) for w, r in DEFAULT_RATES.items()}


def category(sql: str, server: Server = MARIADB, table: Table | None = ORDERS, **session: bool) -> str:
    return classify(sql, server, table, Session(**session)).category


@pytest.mark.parametrize(("server", "sql", "expected"), [
    ("10.11.19-MariaDB", "ALTER TABLE orders ADD COLUMN x INT AFTER id", "INSTANT"),
    ("10.3.39-MariaDB", "ALTER TABLE orders ADD COLUMN x INT", "INSTANT"),
    ("10.3.39-MariaDB", "ALTER TABLE orders ADD COLUMN x INT AFTER id", "INPLACE (no lock)"),
    ("10.3.39-MariaDB", "ALTER TABLE orders DROP COLUMN note", "INPLACE (no lock)"),
    ("10.2.44-MariaDB", "ALTER TABLE orders ADD COLUMN x INT", "INPLACE (no lock)"),
    ("8.0.36", "ALTER TABLE orders ADD COLUMN x INT FIRST", "INSTANT"),
    ("8.0.20", "ALTER TABLE orders ADD COLUMN x INT", "INSTANT"),
    ("8.0.20", "ALTER TABLE orders ADD COLUMN x INT FIRST", "INPLACE (no lock)"),
    ("8.0.20", "ALTER TABLE orders DROP COLUMN note", "INPLACE (no lock)"),
    ("5.7.44", "ALTER TABLE orders ADD COLUMN x INT", "INPLACE (no lock)"),
    ("5.7.44", "ALTER TABLE orders MODIFY code VARCHAR(60)", "INPLACE (no lock)"),  # 80 → 240 bytes: 1 length byte
    ("5.7.44", "ALTER TABLE orders MODIFY code VARCHAR(100)", "COPY"),  # 80 → 400 bytes: a second length byte
    ("10.11.19-MariaDB", "ALTER TABLE orders MODIFY code VARCHAR(100)", "INSTANT"),  # ≤ 127 bytes before
    ("10.11.19-MariaDB", "ALTER TABLE orders MODIFY note VARCHAR(100)", "COPY"),  # 160 → 400 bytes
    ("10.11.19-MariaDB", "ALTER TABLE orders MODIFY qty INT NOT NULL AFTER note", "INSTANT"),
    ("8.0.36", "ALTER TABLE orders MODIFY qty INT NOT NULL AFTER note", "INPLACE (no lock)"),
])
def test_the_rules_follow_the_servers_version(server: str, sql: str, expected: str) -> None:
    assert category(sql, Server.parse(server)) == expected


def test_the_session_and_the_statement_can_ask_for_a_copy() -> None:
    fk = "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (qty) REFERENCES p (id)"
    assert category(fk) == "COPY" and category(fk, foreign_key_checks=False) == "INPLACE (no lock)"
    assert category("ALTER TABLE orders ADD COLUMN x INT, ALGORITHM=COPY") == "COPY"
    assert category("ALTER TABLE orders ADD COLUMN x INT", old_alter_table=True) == "COPY"
    assert category("ALTER TABLE orders ADD INDEX k (note), LOCK=SHARED") == "INPLACE (lock)"


def test_a_type_change_copies_but_a_same_type_redefinition_does_not() -> None:
    assert category("ALTER TABLE orders MODIFY qty BIGINT NOT NULL") == "COPY"
    assert category("ALTER TABLE orders MODIFY qty INT(11) NOT NULL COMMENT 'how many'") == "INSTANT"
    assert category("ALTER TABLE orders MODIFY qty INTEGER NOT NULL DEFAULT 1") == "INSTANT"
    assert category("ALTER TABLE orders MODIFY qty INT") == "INPLACE (no lock)", "MODIFY without NOT NULL: NULL"
    assert category("ALTER TABLE orders CHANGE note remark VARCHAR(40)") == "INSTANT"
    assert category("ALTER TABLE orders MODIFY note VARCHAR(40) CHARACTER SET latin1") == "COPY"
    assert normalise_type("DECIMAL") == "decimal(10,0)" and normalise_type("int(10) unsigned") == "int unsigned"


def test_what_the_forecast_cannot_know_it_says_rather_than_promise_the_fast_case() -> None:
    unknown_column = classify("ALTER TABLE orders MODIFY missing INT", MARIADB, ORDERS)
    assert unknown_column.category == "COPY" and not unknown_column.certain
    odd = classify("ALTER TABLE orders PARTITION BY HASH (id) PARTITIONS 4", MARIADB, ORDERS)
    assert odd.category == "COPY" and not odd.certain


def facts(**tables: Table) -> DatabaseFacts:
    return DatabaseFacts(MARIADB, Session(), "shop", {("shop", n): t for n, t in tables.items()})


def statements(*sql: str, database: str = "ft_db") -> list[Statement]:
    from tasks.sql.kinds import classify as kind

    return [Statement(database, "a.sql", i + 1, i + 1, "USE" if s.startswith("USE") else kind(s), s, "317500:sql")
            for i, s in enumerate(sql)]


def test_each_statement_gets_its_algorithm_and_seconds_from_the_tables_rows_and_the_rate() -> None:
    found = forecast(statements(
        "ALTER TABLE orders ADD COLUMN status TINYINT NOT NULL DEFAULT 0",
        "ALTER TABLE orders ADD INDEX k_note (note)",
        "ALTER TABLE orders MODIFY qty BIGINT NOT NULL",
        "UPDATE orders SET qty = qty + 1",
        "INSERT INTO orders (id, qty) VALUES (1, 2)",
    ), {"ft_db": facts(orders=ORDERS)}, RATES)
    by = [(s.category, s.work, s.rows) for s in found.statements]
    assert by == [("INSTANT", "metadata", 0), ("INPLACE (no lock)", INDEX, 1_000_000),
                  ("COPY", TABLE_COPY, 1_000_000), ("DML", DML, 1_000_000), ("DML", DML, 0)]
    seconds = [s.seconds for s in found.statements]
    assert seconds[1] == pytest.approx(0.01 + 1_000_000 / DEFAULT_RATES[INDEX])
    assert seconds[2] == pytest.approx(0.01 + 1_000_000 / DEFAULT_RATES[TABLE_COPY])
    assert found.seconds == pytest.approx(sum(seconds))
    assert [s.where for s in found.dominating] == ["a.sql:3", "a.sql:4"]  # 6.7 s + 2.2 s of 9.9 s
    assert [s.where for s in found.online_candidates] == ["a.sql:2"]  # the index build, LOCK=NONE, ≥ 1 s


def test_the_walk_follows_the_script_session_and_tables_it_creates() -> None:
    found = forecast(statements(
        "SET foreign_key_checks = 0",
        "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (qty) REFERENCES p (id)",
        "CREATE TABLE fresh (id INT PRIMARY KEY, v INT)",
        "ALTER TABLE fresh ADD INDEX kv (v)",
        "RENAME TABLE orders TO orders_old",
        "ALTER TABLE orders_old FORCE",
    ), {"ft_db": facts(orders=ORDERS)}, RATES)
    rows = [(s.category, s.rows) for s in found.statements]
    assert rows[1] == ("INPLACE (no lock)", 0), "foreign_key_checks=0 from the script: no copy"
    assert rows[3] == ("INPLACE (no lock)", 0), "a table the plan creates is empty"
    assert rows[5] == ("INPLACE (no lock)", 1_000_000), "the renamed table keeps its rows"


def test_a_database_without_facts_is_named_and_its_statements_are_uncertain() -> None:
    found = forecast(statements("ALTER TABLE t ADD INDEX k (a)", database="middle_db"), {}, RATES,
                     {"middle_db": "facts not read: OperationalError: refused"})
    assert found.unavailable == {"middle_db": "facts not read: OperationalError: refused"}
    assert found.statements[0].category == "UNKNOWN" and not found.statements[0].certain
    assert "no facts for `middle_db`" in render_forecast(found, "en")


def test_dml_rows_come_from_explain_where_it_could_plan_them() -> None:
    explained = DatabaseFacts(MARIADB, Session(), "shop", {("shop", "orders"): ORDERS}, {0: 1234})
    found = forecast(statements("UPDATE orders SET qty = 1 WHERE note = 'x'", "DELETE FROM orders WHERE id < 5"),
                     {"ft_db": explained}, RATES)
    assert [(s.rows, s.certain) for s in found.statements] == [(1234, True), (0, False)]


def record(file: str, sequence: int, ms: int, status: str = "SUCCESS") -> SimpleNamespace:
    return SimpleNamespace(file=file, sequence=sequence, duration_ms=ms, status=status)


def test_a_run_sets_actual_beside_forecast_and_teaches_rows_per_second() -> None:
    kept = compact(forecast(statements("ALTER TABLE orders MODIFY qty BIGINT NOT NULL",
                                       "ALTER TABLE orders ADD INDEX k_note (note)",
                                       "ALTER TABLE orders ADD COLUMN x INT"),
                            {"ft_db": facts(orders=ORDERS)}, RATES))
    records = [record("a.sql", 1, 10_010), record("a.sql", 2, 0, "SKIPPED"), record("a.sql", 3, 5)]
    found = compare(kept, records)
    assert found["statements_run"] == 2 and found["actual_seconds"] == pytest.approx(10.015)
    assert found["forecast_seconds_of_statements_run"] == pytest.approx(0.01 + 1e6 / 150_000 + 0.01, abs=1e-3)
    assert found["error_ratio"] == pytest.approx(abs(6.687 - 10.015) / 10.015, abs=1e-3)
    assert observations(kept, records) == {TABLE_COPY: (1_000_000, pytest.approx(10.0), 1)}, \
        "the instant ADD COLUMN teaches nothing; the skipped index ran in an earlier attempt"
    text = render_comparison(found, "en")
    assert "a.sql:1 | COPY | 1000000 | 6.68 | 10.01 |" in text and "a.sql:2" in text and "earlier attempt" in text
    assert REBUILD not in observations(kept, records)


def test_the_sites_throughput_follows_its_runs_older_ones_weighing_half(tmp_path: object) -> None:
    from tasks.sql.forecast.site import learned_rates
    from tasks.store.metadata_store import MetadataStore
    from tasks.store.throughput import learn_throughput, read_throughput

    store = MetadataStore.open(f"sqlite:///{tmp_path}/m.db")
    try:
        assert learned_rates(store.engine, "CN") == {}
        learn_throughput(store.engine, "CN", {TABLE_COPY: (1_000_000, 10.0, 2)})
        learn_throughput(store.engine, "CN", {TABLE_COPY: (1_000_000, 5.0, 1), DML: (0, 1.0, 1)})
        copy = read_throughput(store.engine, "CN")[TABLE_COPY]
        assert (copy.rows, copy.seconds, copy.statements) == (1_500_000, 10.0, 3)  # 0.5 × old + new
        assert learned_rates(store.engine, "CN") == {TABLE_COPY: Rate(150_000.0, 3)}
        assert read_throughput(store.engine, "US") == {}, "per site"
    finally:
        store.close()
