"""The data-quality SQL: identifiers validated and quoted, values bound, the shown SQL ready to run."""

from __future__ import annotations

import pytest

from tasks.checks import sql_builders as sb


def test_duplicate_key_view_sql_is_the_seed_reports_select() -> None:
    q = sb.duplicate_keys(sb.MYSQL, None, "orders", ["id"])
    assert q.view_sql == "SELECT * FROM orders WHERE id IN (SELECT id FROM orders GROUP BY id HAVING COUNT(*) > 1);"
    assert q.sql == "SELECT COUNT(*) - COUNT(DISTINCT `id`) AS conflicting_rows FROM `orders` WHERE `id` IS NOT NULL"
    ch = sb.duplicate_keys(sb.CLICKHOUSE, "dq", "orders", ["id", "site"])
    assert ch.sql == ("SELECT COUNT(*) - uniqExact(`id`, `site`) AS conflicting_rows FROM `dq`.`orders` "
                      "WHERE `id` IS NOT NULL AND `site` IS NOT NULL")


def test_composite_keys_and_reserved_words_are_quoted_in_the_shown_sql() -> None:
    q = sb.duplicate_keys(sb.MYSQL, "ft", "order", ["site_id", "key"])
    assert q.view_sql == ("SELECT * FROM ft.`order` WHERE (site_id, `key`) IN (SELECT site_id, `key` FROM ft.`order` "
                          "GROUP BY site_id, `key` HAVING COUNT(*) > 1);")


def test_values_are_bound_parameters_and_only_literals_in_the_shown_sql() -> None:
    q = sb.column_fit(sb.MYSQL, None, "orders", "status", removed_values=["CLOSED", "x' OR '1'='1"])
    assert q.params == {"removed": ["CLOSED", "x' OR '1'='1"]}
    assert "CLOSED" not in q.sql and ":removed" in q.sql
    assert q.expanding == ("removed",)
    assert "IN ('CLOSED', 'x'' OR ''1''=''1')" in q.view_sql
    ch = sb.column_fit(sb.CLICKHOUSE, None, "orders", "status", allowed_values=["NEW"])
    assert "{allowed:Array(String)}" in ch.sql and ch.params == {"allowed": ["NEW"]}


def test_regex_patterns_from_rules_are_bound_too() -> None:
    q = sb.illegal_characters(sb.MYSQL, None, "users", ["name"], ["control"], ["[<>]"])
    assert q.params == {"ctl": sb.CONTROL_REGEX, "p0": "[<>]"}
    assert q.sql == ("SELECT COALESCE(SUM(CASE WHEN (CONVERT(`name` USING utf8mb4) REGEXP :ctl OR `name` REGEXP :p0) "
                     "THEN 1 ELSE 0 END), 0) AS bad_rows FROM `users`")
    assert q.view_sql == ("SELECT * FROM users WHERE CONVERT(name USING utf8mb4) REGEXP "
                          r"'[\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F]' OR name REGEXP '[<>]';")


@pytest.mark.parametrize("bad", ["orders; DROP TABLE x", "a b", "`x`", "12345", "", "x" * 65, "na-me"])
def test_names_that_are_not_plain_identifiers_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not an allowed table/column name"):
        sb.check_identifier(bad)


def test_only_one_read_only_select_is_accepted_as_custom_sql() -> None:
    assert sb.check_read_only_select("SELECT COUNT(*) FROM t WHERE a = ';' ;") == "SELECT COUNT(*) FROM t WHERE a = ';'"
    assert sb.check_read_only_select("WITH x AS (SELECT 1 AS a) SELECT COUNT(*) FROM x").startswith("WITH")
    with pytest.raises(ValueError, match="one statement, found 2"):
        sb.check_read_only_select("SELECT 1; DELETE FROM t")
    with pytest.raises(ValueError, match="read-only SELECT, not DELETE"):
        sb.check_read_only_select("DELETE FROM t")
    with pytest.raises(ValueError, match="no INTO OUTFILE"):
        sb.check_read_only_select("SELECT * FROM t INTO OUTFILE '/tmp/x'")
    with pytest.raises(ValueError, match="SQL is empty"):
        sb.check_read_only_select("  ;  ")


def test_target_types_know_their_ranges() -> None:
    assert sb.parse_target_type("TINYINT UNSIGNED") == sb.IntegerType("tinyint unsigned", 0, 255)
    assert sb.parse_target_type("int") == sb.IntegerType("int", -(2**31), 2**31 - 1)
    assert sb.parse_target_type("decimal(10, 2)").limit == 10**8
    with pytest.raises(ValueError, match="not one of"):
        sb.parse_target_type("varchar(10)")
    with pytest.raises(ValueError, match="precision"):
        sb.parse_target_type("decimal(5,6)")


def test_only_mysql_mariadb_and_clickhouse_urls_get_a_dialect() -> None:
    assert sb.dialect_for("mysql+pymysql") is sb.MYSQL
    assert sb.dialect_for("chdb") is sb.CLICKHOUSE
    with pytest.raises(ValueError, match="not 'postgresql'"):
        sb.dialect_for("postgresql+psycopg")
