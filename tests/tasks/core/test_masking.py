"""Credentials never leave the process: exact outputs of the masking functions."""

from __future__ import annotations

import re

import pytest

from tasks.core.masking import mask_sql, mask_text, mask_url


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        pytest.param(
            "CREATE USER 'app'@'%' IDENTIFIED BY 's3cr3t';",
            "CREATE USER 'app'@'%' IDENTIFIED BY '***';",
            id="identified by a plain password",
        ),
        pytest.param(
            "create user app identified by password '*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29'",
            "create user app identified by password '***'",
            id="identified by password hash, lower case",
        ),
        pytest.param(
            'ALTER USER app IDENTIFIED BY "dq-secret"',
            'ALTER USER app IDENTIFIED BY "***"',
            id="double quoted password keeps double quotes",
        ),
        pytest.param(
            "CREATE USER a IDENTIFIED BY 'it\\'s' , b IDENTIFIED BY 'x''y'",
            "CREATE USER a IDENTIFIED BY '***' , b IDENTIFIED BY '***'",
            id="escaped quotes stay inside the secret, every user masked",
        ),
        pytest.param(
            "CREATE USER a\n  IDENTIFIED\n  BY\n  'multi'",
            "CREATE USER a\n  IDENTIFIED\n  BY\n  '***'",
            id="keywords split over lines",
        ),
        pytest.param(
            "CREATE USER a IDENTIFIED VIA ed25519 USING 'hash' OR unix_socket",
            "CREATE USER a IDENTIFIED VIA ed25519 USING '***' OR unix_socket",
            id="mariadb identified via plugin using",
        ),
        pytest.param(
            "CREATE USER a IDENTIFIED VIA ed25519 USING PASSWORD('pw') OR mysql_native_password USING 'h2'",
            "CREATE USER a IDENTIFIED VIA ed25519 USING PASSWORD('***') OR mysql_native_password USING '***'",
            id="mariadb chained authentication",
        ),
        pytest.param(
            "CREATE USER a IDENTIFIED WITH caching_sha2_password BY 'pw8'",
            "CREATE USER a IDENTIFIED WITH caching_sha2_password BY '***'",
            id="mysql identified with plugin by",
        ),
        pytest.param(
            "SET PASSWORD FOR 'a'@'localhost' = PASSWORD('pw')",
            "SET PASSWORD FOR 'a'@'localhost' = PASSWORD('***')",
            id="set password with password function",
        ),
        pytest.param(
            "SET PASSWORD FOR `a`@`%` = 'plain'",
            "SET PASSWORD FOR `a`@`%` = '***'",
            id="set password for a backquoted user",
        ),
        pytest.param(
            "SET PASSWORD = 'new' REPLACE 'old'",
            "SET PASSWORD = '***' REPLACE '***'",
            id="set password replace masks the current password too",
        ),
        pytest.param(
            "CHANGE MASTER TO MASTER_HOST='h', MASTER_USER='repl', MASTER_PASSWORD='rpl', MASTER_PORT=3306",
            "CHANGE MASTER TO MASTER_HOST='h', MASTER_USER='repl', MASTER_PASSWORD='***', MASTER_PORT=3306",
            id="change master masks only the password",
        ),
        pytest.param(
            'CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD = "rpl"',
            'CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD = "***"',
            id="replication source password",
        ),
        pytest.param(
            "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (USER 'u', PASSWORD 'fpw')",
            "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (USER 'u', PASSWORD '***')",
            id="create server options password",
        ),
        pytest.param(
            "CREATE TABLE t (id INT) ENGINE=FEDERATED CONNECTION='mysql://fed:fpw@remote:3306/db/t'",
            "CREATE TABLE t (id INT) ENGINE=FEDERATED CONNECTION='mysql://fed:***@remote:3306/db/t'",
            id="url embedded in sql",
        ),
        pytest.param(
            "UPDATE cfg SET api_key = 'k1', name = 'n' WHERE id = 1",
            "UPDATE cfg SET api_key = '***', name = 'n' WHERE id = 1",
            id="secret-named column assigned a literal",
        ),
        pytest.param(
            "CREATE USER a IDENTIFIED BY 'truncated",
            "CREATE USER a IDENTIFIED BY '***'",
            id="unterminated literal of a truncated statement",
        ),
        pytest.param(
            "SELECT password_hash FROM users WHERE pwd_changed = 1 AND name = 'IDENTIFIED'",
            "SELECT password_hash FROM users WHERE pwd_changed = 1 AND name = 'IDENTIFIED'",
            id="sql without secrets is unchanged",
        ),
        pytest.param("", "", id="empty text"),
    ],
)
def test_mask_sql_hides_passwords(sql: str, expected: str) -> None:
    assert mask_sql(sql) == expected


def test_mask_sql_replaces_group_one_of_a_configured_pattern() -> None:
    assert mask_sql("CALL set_token('abc123')", [r"set_token\('([^']*)'\)"]) == "CALL set_token('***')"


def test_mask_sql_keeps_quotes_when_the_group_is_a_quoted_literal() -> None:
    assert mask_sql('CALL f("abc")', [r"call f\((\"[^\"]*\")\)"]) == 'CALL f("***")'


def test_mask_sql_replaces_the_whole_match_of_a_pattern_without_group() -> None:
    assert mask_sql("-- licence ABCDEF-1234 ok", [r"ABCDEF-\d+"]) == "-- licence *** ok"


def test_mask_sql_applies_configured_patterns_case_insensitively() -> None:
    assert mask_sql("call SET_TOKEN('x1')", [r"set_token\('([^']*)'\)"]) == "call SET_TOKEN('***')"


def test_mask_sql_rejects_an_invalid_configured_pattern() -> None:
    with pytest.raises(re.error):
        mask_sql("SELECT 1", ["(unclosed"])


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("mysql+pymysql://u:secret@h/db", "mysql+pymysql://u:***@h/db", id="sqlalchemy url"),
        pytest.param(
            "clickhouse://default:pw@ch:8123/logs?secure=1",
            "clickhouse://default:***@ch:8123/logs?secure=1",
            id="clickhouse dsn",
        ),
        pytest.param("redis://:pw@host:6379/0", "redis://:***@host:6379/0", id="redis password without user"),
        pytest.param(
            "mysql://u:p@ss#w/rd@h:3306/db",
            "mysql://u:***@h:3306/db",
            id="unencoded at, hash, slash in password",
        ),
        pytest.param(
            "mysql://u:p@h/db?charset=utf8&password=zz&ssl=1",
            "mysql://u:***@h/db?charset=utf8&password=***&ssl=1",
            id="password query parameter",
        ),
        pytest.param(
            "clickhouse://h:8123/?user=u&PASSWORD=pp",
            "clickhouse://h:8123/?user=u&PASSWORD=***",
            id="upper case query parameter",
        ),
        pytest.param("chdb:///tmp/x?password=1", "chdb:///tmp/x?password=1", id="chdb is left untouched"),
        pytest.param("chdb://", "chdb://", id="in memory chdb"),
        pytest.param("mysql://u@h/db", "mysql://u@h/db", id="user without password"),
        pytest.param("http://h:80/path", "http://h:80/path", id="no userinfo"),
        pytest.param(
            "host=h user=u password=secret dbname=x",
            "host=h user=u password=*** dbname=x",
            id="libpq key value dsn",
        ),
        pytest.param("Server=h;Uid=u;Pwd={se;cret};Db=x", "Server=h;Uid=u;Pwd={***};Db=x", id="odbc dsn"),
        pytest.param("", "", id="empty"),
    ],
)
def test_mask_url_hides_the_password(url: str, expected: str) -> None:
    assert mask_url(url) == expected


def test_mask_url_masks_every_url_in_a_message() -> None:
    text = "copy from mysql://a:one@h1/db to clickhouse://b:two@h2:8123"
    assert mask_url(text) == "copy from mysql://a:***@h1/db to clickhouse://b:***@h2:8123"


def test_mask_text_replaces_known_secrets_anywhere() -> None:
    text = "login hunter2 failed; retry with hunter2!"
    assert mask_text(text, ["hunter2"]) == "login *** failed; retry with ***!"


def test_mask_text_ignores_secrets_shorter_than_three_characters() -> None:
    assert mask_text("ab and xy", ["ab", "", "xy"]) == "ab and xy"


def test_mask_text_masks_the_url_encoded_spelling_too() -> None:
    assert mask_text("dsn mysql://u:p%40ss@h and p@ss", ["p@ss"]) == "dsn mysql://u:***@h and ***"


def test_mask_text_prefers_the_longest_overlapping_secret() -> None:
    assert mask_text("token abcdef", ["abc", "abcdef"]) == "token ***"


def test_mask_text_treats_regex_characters_literally() -> None:
    assert mask_text("a.b*c and axbbc", ["a.b*c"]) == "*** and axbbc"


def test_mask_text_masks_a_secrets_truncated_echo_after_a_keyword_or_in_its_statements_error() -> None:
    secret = "u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8dKLzdocJ2isAjIhKtJ0RlgLKOmxgJTeKdNnFRIBXuDL7DxtpYlSXpfKtHF4vU"
    echo = f"right syntax to use near 'BY '{secret[:73]}...' at line 1"
    assert mask_text(echo, [secret]) == "right syntax to use near 'BY '***...' at line 1"
    assert mask_text(f"near '{secret[:20]}' at", [secret]) == f"near '{secret[:20]}' at", "no keyword before it"
    assert mask_text(f"near '{secret[:20]}' at", [], echoed=[secret]) == "near '***' at", "its statement's error"
    assert mask_text(f"PASSWORD('{secret[:4]}", [secret]) == "PASSWORD('***"
    assert mask_text(f"BY '{secret[:3]}'", [secret]) == f"BY '{secret[:3]}'", "three characters tell nothing"
