"""The forecast's classification against the real MariaDB: each kind of DDL on a small table, run, watched.

For every case the forecast is made from the facts the reader takes of the table, then the statement
runs as written and the server shows what it did: a rebuild gives the table a new InnoDB table id
(``information_schema.INNODB_SYS_TABLES``), a COPY also reports the rows it copied, an instant column
change moves ``Innodb_instant_alter_column``. A twin of the table then takes the statement with the
algorithm and lock the forecast claims (``ALGORITHM=INSTANT`` / ``INPLACE, LOCK=NONE``), and with the
next better one, which the server must refuse.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Connection, Engine, create_engine, text

from tasks.sql.forecast.ddl import Session, classify, target
from tasks.sql.forecast.facts import read_facts

pytestmark = pytest.mark.mariadb

TABLE = ("CREATE TABLE t (id INT PRIMARY KEY AUTO_INCREMENT, a INT NOT NULL, b VARCHAR(20), c CHAR(10), d INT, "
         "e ENUM('x','y'), f VARCHAR(40), p INT, KEY kd (d)) ENGINE=InnoDB")
NO_PK = ("CREATE TABLE t (a INT NOT NULL, b VARCHAR(20), d INT, p INT, KEY kd (d)) ENGINE=InnoDB")
FULLTEXT = TABLE.replace("KEY kd (d)", "KEY kd (d), FULLTEXT KEY fb (b)")
MYISAM = TABLE.replace("InnoDB", "MyISAM")
ROWS = 3


@dataclass(frozen=True)
class Case:
    sql: str
    category: str  # what the forecast must say
    rebuilt: bool
    setup: str = TABLE
    before: str = ""  # a session statement run first (e.g. SET foreign_key_checks)


CASES = {
    "instant add column": Case("ALTER TABLE t ADD COLUMN g INT", "INSTANT", False),
    "instant add column first": Case("ALTER TABLE t ADD COLUMN g INT NOT NULL DEFAULT 5 FIRST", "INSTANT", False),
    "instant drop column": Case("ALTER TABLE t DROP COLUMN b", "INSTANT", False),
    "instant move column": Case("ALTER TABLE t MODIFY b VARCHAR(20) AFTER id", "INSTANT", False),
    "instant rename column": Case("ALTER TABLE t RENAME COLUMN b TO bb", "INSTANT", False),
    "instant default": Case("ALTER TABLE t ALTER COLUMN d SET DEFAULT 7", "INSTANT", False),
    "instant varchar within 127 bytes": Case("ALTER TABLE t MODIFY b VARCHAR(300)", "INSTANT", False),
    "instant enum appended": Case("ALTER TABLE t MODIFY e ENUM('x','y','z')", "INSTANT", False),
    "instant virtual column": Case("ALTER TABLE t ADD COLUMN h INT AS (a + 1) VIRTUAL", "INSTANT", False),
    "instant drop foreign key": Case("ALTER TABLE t DROP FOREIGN KEY fk", "INSTANT", False,
                                     before="ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (p) REFERENCES par (id)"),
    "instant auto_increment and comment": Case("ALTER TABLE t AUTO_INCREMENT=1000, COMMENT='x'", "INSTANT", False),
    "instant rename table": Case("RENAME TABLE t TO t2", "INSTANT", False),
    "inplace add index": Case("ALTER TABLE t ADD INDEX ka (a)", "INPLACE (no lock)", False),
    "inplace create unique index": Case("CREATE UNIQUE INDEX ka ON t (a)", "INPLACE (no lock)", False),
    "inplace drop index": Case("ALTER TABLE t DROP INDEX kd", "INPLACE (no lock)", False),
    "inplace drop indexed column": Case("ALTER TABLE t DROP COLUMN d", "INPLACE (no lock)", False),
    "inplace not null": Case("ALTER TABLE t MODIFY d INT NOT NULL", "INPLACE (no lock)", True),
    "inplace null": Case("ALTER TABLE t MODIFY a INT NULL", "INPLACE (no lock)", True),
    "inplace replace primary key": Case("ALTER TABLE t DROP PRIMARY KEY, ADD PRIMARY KEY (id, a)",
                                        "INPLACE (no lock)", True),
    "inplace add primary key": Case("ALTER TABLE t ADD PRIMARY KEY (a)", "INPLACE (no lock)", True, NO_PK),
    "inplace force": Case("ALTER TABLE t FORCE", "INPLACE (no lock)", True),
    "inplace row format": Case("ALTER TABLE t ROW_FORMAT=COMPACT", "INPLACE (no lock)", True),
    "inplace optimize": Case("OPTIMIZE TABLE t", "INPLACE (no lock)", True),
    "inplace column beside index": Case("ALTER TABLE t ADD COLUMN g INT, ADD INDEX kg (g)", "INPLACE (no lock)",
                                        True),
    "inplace foreign key unchecked": Case("ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (p) REFERENCES par (id)",
                                          "INPLACE (no lock)", False, before="SET foreign_key_checks = 0"),
    "locked first fulltext": Case("ALTER TABLE t ADD FULLTEXT INDEX fb (b)", "INPLACE (lock)", True),
    "locked column on fulltext table": Case("ALTER TABLE t ADD COLUMN g INT", "INPLACE (lock)", True, FULLTEXT),
    "locked auto_increment column": Case("ALTER TABLE t ADD COLUMN id INT NOT NULL AUTO_INCREMENT, ADD KEY (id)",
                                         "INPLACE (lock)", True, NO_PK),
    "copy column type change": Case("ALTER TABLE t MODIFY a BIGINT NOT NULL", "COPY", True),
    "copy varchar shrink": Case("ALTER TABLE t MODIFY b VARCHAR(10)", "COPY", True),
    "copy varchar across 255 bytes": Case("ALTER TABLE t MODIFY f VARCHAR(100)", "COPY", True),
    "copy char to varchar": Case("ALTER TABLE t MODIFY c VARCHAR(10)", "COPY", True),
    "copy enum reordered": Case("ALTER TABLE t MODIFY e ENUM('y','x')", "COPY", True),
    "copy character set": Case("ALTER TABLE t CONVERT TO CHARACTER SET latin1", "COPY", True),
    "copy checked foreign key": Case("ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (p) REFERENCES par (id)",
                                     "COPY", True),
    "copy check constraint": Case("ALTER TABLE t ADD CONSTRAINT ck CHECK (a > 0)", "COPY", True),
    "copy stored column": Case("ALTER TABLE t ADD COLUMN h INT AS (a + 1) STORED", "COPY", True),
    "copy asked for": Case("ALTER TABLE t ADD COLUMN g INT, ALGORITHM=COPY", "COPY", True),
    "copy engine change": Case("ALTER TABLE t ENGINE=Aria", "COPY", True),
    "copy myisam add column": Case("ALTER TABLE t ADD COLUMN g INT", "COPY", True, MYISAM),
    "copy myisam add index": Case("ALTER TABLE t ADD INDEX ka (a)", "COPY", True, MYISAM),
    "instant myisam default": Case("ALTER TABLE t ALTER COLUMN d SET DEFAULT 7", "INSTANT", False, MYISAM),
}

#: What each category claims, as ALTER options the server must accept, and the next better claim it must refuse.
CLAIMS = {"INSTANT": ("ALGORITHM=INSTANT", None),
          "INPLACE (no lock)": ("ALGORITHM=INPLACE, LOCK=NONE", "ALGORITHM=INSTANT"),
          "INPLACE (lock)": ("ALGORITHM=INPLACE, LOCK=SHARED", "ALGORITHM=INPLACE, LOCK=NONE"),
          "COPY": ("ALGORITHM=COPY", "ALGORITHM=INPLACE")}


@pytest.fixture(scope="module")
def database() -> Iterator[Engine]:
    from tests.conftest import MARIADB_ROOT

    name = f"ft_forecast_{uuid.uuid4().hex[:10]}"
    admin = create_engine(MARIADB_ROOT + "/test")
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}`"))
    engine = create_engine(f"{MARIADB_ROOT}/{name}")
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


def fresh(conn: Connection, case: Case) -> None:
    for sql in ("SET foreign_key_checks = 1", "DROP TABLE IF EXISTS t", "DROP TABLE IF EXISTS t2",
                "CREATE TABLE IF NOT EXISTS par (id INT PRIMARY KEY) ENGINE=InnoDB",
                "INSERT IGNORE INTO par VALUES (1), (2), (3)", case.setup):
        conn.exec_driver_sql(sql)
    columns = "a, b, c, d, e, p" if case.setup != NO_PK else "a, b, d, p"
    values = ", ".join(f"({i}, 'v{i}', 'c', {i}, 'x', {i})" if case.setup != NO_PK else f"({i}, 'v{i}', {i}, {i})"
                       for i in range(1, ROWS + 1))
    conn.exec_driver_sql(f"INSERT INTO t ({columns}) VALUES {values}")
    if case.before:
        conn.exec_driver_sql(case.before)


def table_id(conn: Connection, name: str) -> int | None:
    schema = conn.exec_driver_sql("SELECT DATABASE()").scalar()
    return conn.exec_driver_sql("SELECT TABLE_ID FROM information_schema.INNODB_SYS_TABLES WHERE NAME = %s",
                                (f"{schema}/{name}",)).scalar()


def instant_changes(conn: Connection) -> int:
    return int(conn.exec_driver_sql("SHOW GLOBAL STATUS LIKE 'Innodb_instant_alter_column'").one()[1])


def with_claim(sql: str, claim: str) -> str:
    if sql.upper().startswith("CREATE"):  # CREATE INDEX takes its options without commas
        return f"{sql} {claim.replace(',', '')}"
    return f"{sql}, {claim}"


@pytest.mark.parametrize("name", list(CASES))
def test_the_forecast_says_what_the_server_does(database: Engine, name: str) -> None:
    case = CASES[name]
    with database.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        fresh(conn, case)
        facts = read_facts(database, [(None, "t")])
        session = Session(foreign_key_checks=not case.before.lower().startswith("set foreign_key_checks = 0"))
        forecast = classify(case.sql, facts.server, facts.table(None, "t"), session)
        assert forecast.category == case.category, (forecast, facts.table(None, "t"))
        assert forecast.rebuilds == case.rebuilt and forecast.certain, forecast

        myisam = case.setup == MYISAM
        before_id, before_instant = table_id(conn, "t"), instant_changes(conn)
        affected = conn.exec_driver_sql(case.sql).rowcount
        name_after = "t2" if target(case.sql).verb == "RENAME" else "t"  # type: ignore[union-attr]
        if not myisam:
            assert (table_id(conn, name_after) != before_id) == case.rebuilt, "table rebuilt?"
        if case.category == "COPY" and not case.sql.upper().startswith("OPTIMIZE"):
            assert affected == ROWS, "a COPY reports the rows it copied"
        elif not case.sql.upper().startswith("OPTIMIZE"):
            assert affected == 0, "in place: no rows copied"
        if forecast.instant_columns and case.category == "INSTANT":
            assert instant_changes(conn) > before_instant, "an instant column change is counted"

        claimable = target(case.sql).verb in ("ALTER", "CREATE_INDEX")  # type: ignore[union-attr]
        if claimable and not myisam and "ALGORITHM" not in case.sql:
            accepted, refused = CLAIMS[case.category]
            fresh(conn, case)
            conn.exec_driver_sql(with_claim(case.sql, accepted))
            if refused:
                fresh(conn, case)
                with pytest.raises(Exception, match="not supported|Try ALGORITHM|LOCK"):
                    conn.exec_driver_sql(with_claim(case.sql, refused))
