"""A MODIFY's probe decides only what it fully sees (issue 23, item 2), against the real catalog.

For each definition: before the ALTER the probe must never say "applied"; after it, it must say so
(or, for what it cannot read, leave it to the operator) and never "not applied".
"""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pytest

from tasks.sql.inflight import ddl_probes, decide

pytestmark = pytest.mark.mariadb

BEFORE = ("CREATE TABLE t (id INT PRIMARY KEY, c VARCHAR(50) NULL, n INT, s VARCHAR(10) COMMENT 'old', "
          "ts TIMESTAMP NULL, e ENUM('a','b'), d DECIMAL(10,2) DEFAULT 1.50, "
          "g INT AS (id + 1) VIRTUAL)")


@pytest.fixture
def cursor(mariadb_database: str) -> Iterator[pymysql.cursors.Cursor]:
    db = mariadb_database.rsplit("/", 1)[1].split("?")[0]
    conn = pymysql.connect(host="127.0.0.1", user="root", database=db, autocommit=True, charset="utf8mb4")
    with conn.cursor() as cur:
        yield cur
    conn.close()


def verdict(cur: pymysql.cursors.Cursor, statement: str) -> bool | None:
    probes = ddl_probes(statement)
    if not probes:
        return None
    answers = []
    for probe in probes:
        sql, args = probe.query()
        cur.execute(sql, args)
        row = cur.fetchone()
        answers.append(decide(probe, row[0] if row else None))
    if all(a is True for a in answers):
        return True
    if all(a is False for a in answers):
        return False
    return None


@pytest.mark.parametrize(("clause", "after"), [
    ("MODIFY c VARCHAR(50) NOT NULL DEFAULT ''", True),  # the case: the type alone already matched
    ("MODIFY c VARCHAR(50) NULL DEFAULT 'x'", True),
    ("MODIFY c VARCHAR(50) COMMENT 'new'", True),
    ("MODIFY c VARCHAR(50) CHARACTER SET latin1", True),
    ("MODIFY c VARCHAR(50) COLLATE utf8mb4_bin", True),
    ("MODIFY c VARCHAR(50) AFTER n", True),
    ("MODIFY COLUMN c VARCHAR(50) FIRST", True),
    ("MODIFY n BIGINT UNSIGNED NOT NULL DEFAULT 0", True),
    ("MODIFY n INT NOT NULL", True),
    ("MODIFY s VARCHAR(10)", True),  # drops the comment
    ("MODIFY e ENUM('a','b','c') NOT NULL DEFAULT 'a'", True),
    ("MODIFY d DECIMAL(12,2) DEFAULT 1.5", True),
    ("MODIFY ts TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP", True),
    ("CHANGE c c2 VARCHAR(60) NOT NULL", True),
    ("MODIFY c VARCHAR(50) NOT NULL, ADD COLUMN extra INT", True),
    ("MODIFY c VARCHAR(50) NOT NULL, ALGORITHM=COPY", True),
    ("MODIFY g INT AS (id + 1) VIRTUAL COMMENT 'generated'", True),
    ("MODIFY g INT AS (`id`+2) VIRTUAL", True),  # the catalog adds quotes and spaces to the expression
    ("MODIFY c VARCHAR(50) NOT NULL UNIQUE", None),  # an inline key: not read
    ("MODIFY c VARCHAR(50) NOT NULL DEFAULT (CONCAT('a', 'b'))", None),
])
def test_a_modify_is_decided_only_from_what_the_catalog_shows(cursor: pymysql.cursors.Cursor, clause: str,
                                                             after: bool | None) -> None:
    cursor.execute(BEFORE)
    statement = f"ALTER TABLE t {clause}"
    assert verdict(cursor, statement) is not True, "not applied yet: never taken as applied"
    cursor.execute(statement)
    assert verdict(cursor, statement) is after
