"""Statement kinds by effective verb: pure, on literal statements taken from real upgrade scripts."""

from __future__ import annotations

import pytest

from tasks.sql.kinds import dml_tables, statement_kind


@pytest.mark.parametrize(("text", "kind", "targets"), [
    ("SET STATEMENT max_statement_time=0 FOR UPDATE t SET a = 1", "DML", ()),  # issue 13, case 2
    ("SET STATEMENT foreign_key_checks=0 FOR ALTER TABLE t ADD c INT", "DDL", ()),
    ("SET @v = (SELECT MAX(id) FROM t)", "SESSION_RECORD", ("@v",)),
    ("SET sql_mode=(SELECT REPLACE(@@sql_mode,'ONLY_FULL_GROUP_BY',''))", "SESSION_RECORD", ("@@SESSION.sql_mode",)),
    ("SET @now = NOW(), @n = 1", "SESSION_RECORD", ("@now", "@n")),
    ("/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */", "SESSION", ()),
    ("/*!40101 SET SQL_MODE=@OLD_SQL_MODE */", "SESSION", ()),
    ("SET NAMES utf8mb4", "SESSION", ()),
    ("SET FOREIGN_KEY_CHECKS = 0", "SESSION", ()),
    ("SET SESSION group_concat_max_len = 102400", "SESSION", ()),
    ("SET @x = 'it''s; (SELECT)'", "SESSION", ()),
    ("SET GLOBAL event_scheduler = ON", "OTHER", ()),
    ("SET PASSWORD FOR 'u'@'%' = PASSWORD('x')", "OTHER", ()),
    ("SELECT @id := MAX(id) FROM t", "SESSION_RECORD", ("@id",)),
    ("SELECT a, b INTO @a, @b FROM t LIMIT 1", "SESSION_RECORD", ("@a", "@b")),
    ("SELECT COUNT(*) FROM t", "OTHER", ()),
    ("START TRANSACTION", "TXN_BEGIN", ()),
    ("BEGIN", "TXN_BEGIN", ()),
    ("begin work", "TXN_BEGIN", ()),
    ("COMMIT", "TXN_END", ()),
    ("ROLLBACK", "TXN_END", ()),
    ("ROLLBACK TO SAVEPOINT s1", "SAVEPOINT", ()),
    ("SAVEPOINT s1", "SAVEPOINT", ()),
    ("CALL add_col_if_missing()", "UNKNOWN", ()),
    ("DO RELEASE_LOCK('x')", "UNKNOWN", ()),
    ("PREPARE stmt FROM @sql", "UNKNOWN", ()),
    ("EXECUTE stmt", "UNKNOWN", ()),
    ("BEGIN NOT ATOMIC DECLARE x INT; SELECT 1; END", "UNKNOWN", ()),
    ("ALTER TABLE t ADD c INT; UPDATE t SET c = 1", "UNKNOWN", ()),  # issue 13, case 5
    ("CREATE PROCEDURE p() BEGIN IF NOT EXISTS (SELECT 1 FROM x) THEN ALTER TABLE t ADD c INT; END IF; END", "DDL",
     ()),
    ("CREATE PROCEDURE p() BEGIN REPEAT SET x = 1; UNTIL x END REPEAT; END", "DDL", ()),
    ("CREATE PROCEDURE p() BEGIN SELECT 1; END; CALL p()", "UNKNOWN", ()),
    ("/*!50003 CREATE*/ /*!50020 DEFINER=`root`@`%`*/ /*!50003 PROCEDURE p() BEGIN SELECT 1; SELECT 2; END */", "DDL",
     ()),
    ("INSERT INTO t VALUES ('a;b')", "DML", ()),
    ("-- a comment\nINSERT INTO t VALUES (1)", "DML", ()),
    ("CREATE OR REPLACE TABLE t (a INT)", "DDL", ()),
])
def test_the_effective_verb_decides_the_kind(text: str, kind: str, targets: tuple[str, ...]) -> None:
    found = statement_kind(text)
    assert (found.kind, found.targets) == (kind, targets)


@pytest.mark.parametrize(("text", "reason"), [
    ("LOCK TABLES t WRITE", "LOCK TABLES is not supported"),
    ("UNLOCK TABLES", "LOCK TABLES is not supported"),
    ("SET autocommit = 0", "SET autocommit = 0 is not supported"),
    ("SET AUTOCOMMIT=OFF", "SET autocommit = 0 is not supported"),
    ("CREATE TEMPORARY TABLE tmp (a INT)", "temporary tables are not supported"),
    ("DROP TEMPORARY TABLE IF EXISTS tmp", "temporary tables are not supported"),
    ("XA START 'x'", "XA transactions are not supported"),
    # inside a DELIMITER block as on its own line (issue 23, item 8)
    ("LOCK TABLES t WRITE; UPDATE t SET a = 1; UNLOCK TABLES", "LOCK TABLES is not supported"),
    ("UPDATE t SET a = 1;\nunlock tables", "LOCK TABLES is not supported"),
    ("CREATE PROCEDURE p() BEGIN SELECT 1; END; LOCK TABLES t READ", "LOCK TABLES is not supported"),
    ("SELECT 1; SET autocommit = 0", "SET autocommit = 0 is not supported"),
    ("SELECT 1; CREATE TEMPORARY TABLE tmp (a INT)", "temporary tables are not supported"),
])
def test_constructs_that_cannot_behave_as_under_the_client_are_refused_with_a_reason(text: str, reason: str) -> None:
    found = statement_kind(text)
    assert found.kind == "REFUSED" and found.refusal.startswith(reason)


def test_a_stored_program_body_is_not_searched_for_refusals() -> None:
    body = "CREATE PROCEDURE p() BEGIN CREATE TEMPORARY TABLE x (a INT); SET autocommit = 0; END"
    assert statement_kind(body).kind == "DDL"
    assert statement_kind(body + "; SELECT 1").kind == "UNKNOWN"


def test_autocommit_back_on_is_a_plain_session_setting() -> None:
    assert statement_kind("SET autocommit = 1").kind == "SESSION"


@pytest.mark.parametrize(("text", "tables"), [
    ("INSERT IGNORE INTO db.t (a) VALUES (1)", [("db", "t")]),
    ("REPLACE INTO t SELECT * FROM u", [(None, "t")]),
    ("UPDATE t1 JOIN t2 ON t1.a = t2.a SET t1.b = 1", [(None, "t1"), (None, "t2")]),
    ("UPDATE t AS x SET a = 1 WHERE b", [(None, "t")]),
    ("DELETE FROM t WHERE a = 1", [(None, "t")]),
    ("DELETE t1 FROM t1 JOIN t2 ON t1.a = t2.a WHERE 1", [(None, "t1"), (None, "t2")]),
    ("DELETE FROM t1 USING t1, t2 WHERE t1.a = t2.a", [(None, "t1"), (None, "t2")]),
    ("SET STATEMENT x=1 FOR UPDATE `q`.`t` SET a = 2", [("q", "t")]),
    ("LOAD DATA INFILE '/tmp/x' INTO TABLE t", [(None, "t")]),
    ("UPDATE (SELECT 1) x, t SET t.a = 1", None),
])
def test_the_tables_a_dml_statement_writes(text: str, tables: list[tuple[str | None, str]] | None) -> None:
    assert dml_tables(text) == tables
