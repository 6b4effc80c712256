"""Scripts run with the site client's character set, so objects carry what the client gives them (issue 23,
item 5): a CREATE TABLE … AS SELECT column's charset, the character_set_client / collation_connection that
views, routines and triggers store. Compared with the plain ``mariadb`` client at the same setting.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from blocks.site_profile import SiteProfile
from tasks.core.errors import InputError
from tasks.sql.session import client_charset
from tests.tasks.test_sql_engine import run_step, write

pytestmark = pytest.mark.mariadb

SCRIPT = """CREATE TABLE cs AS SELECT 'a' AS c, CONCAT('b', 1) AS d;
CREATE VIEW v AS SELECT 'é' AS e;
CREATE FUNCTION f() RETURNS VARCHAR(10) DETERMINISTIC RETURN 'x';
CREATE PROCEDURE p() SELECT 1;
CREATE TABLE tr (n INT);
CREATE TRIGGER trg BEFORE INSERT ON tr FOR EACH ROW SET NEW.n = NEW.n + 1;
"""

CATALOG = [
    "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
    "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION",
    "SELECT TABLE_NAME, CHARACTER_SET_CLIENT, COLLATION_CONNECTION FROM information_schema.VIEWS "
    "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME",
    "SELECT ROUTINE_NAME, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DATABASE_COLLATION FROM "
    "information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s ORDER BY ROUTINE_NAME",
    "SELECT TRIGGER_NAME, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DATABASE_COLLATION FROM "
    "information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s ORDER BY TRIGGER_NAME",
]


def admin() -> pymysql.Connection:
    return pymysql.connect(host="127.0.0.1", user="root", autocommit=True, charset="utf8mb4")


@pytest.fixture
def client_database() -> Iterator[str]:
    name = f"ft_test_client_{uuid.uuid4().hex[:8]}"
    with admin() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield name
    finally:
        with admin() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def catalog(schema: str) -> list[object]:
    with admin() as conn, conn.cursor() as cur:
        out: list[object] = []
        for query in CATALOG:
            cur.execute(query, (schema,))
            out.append(cur.fetchall())
        return out


@pytest.mark.parametrize("charset", ["utf8mb3", "utf8mb4", None], ids=["utf8mb3", "utf8mb4", "default"])
def test_objects_carry_the_charset_the_client_gives_them(tmp_path: Path, mariadb_database: str,
                                                        client_database: str, charset: str | None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    if charset:
        monkeypatch.setenv("FT_UPGRADE_CLIENT_CHARSET", charset)
    else:
        monkeypatch.delenv("FT_UPGRADE_CLIENT_CHARSET", raising=False)
    run_step(tmp_path, {"ft_db": mariadb_database}, [write(tmp_path / "sql", "c.sql", SCRIPT)])
    # the plain client: --default-character-set, or none at all (auto: from the UTF-8 locale here)
    option = [f"--default-character-set={charset}"] if charset else []
    subprocess.run(["mariadb", "-h127.0.0.1", "-uroot", *option, client_database], input=SCRIPT.encode(),
                   check=True, env={**os.environ, "LC_ALL": "C.UTF-8"})
    mine = catalog(mariadb_database.rsplit("/", 1)[1].split("?")[0])
    assert mine == catalog(client_database)
    assert mine[1][0][1] == (charset or "utf8mb3"), "the view stores the connection's character set"


def test_the_client_charset_is_chosen_per_database() -> None:
    profile = SiteProfile(site_id="CN", client_charset={"middle_db": "utf8mb4", "*": "latin1"})
    assert client_charset(profile, "middle_db", "utf8mb3") == "utf8mb4"
    assert client_charset(profile, "ft_db", "utf8mb3") == "latin1"
    assert client_charset(None, "ft_db", "utf8") == "utf8mb3", "utf8 as the MariaDB 10 client means it"
    with pytest.raises(InputError, match="'klingon' for database 'ft_db'"):
        client_charset(None, "ft_db", "klingon")
