"""Scripts run with the site client's character set, so objects carry what the client gives them (issue 23,
item 5): a CREATE TABLE … AS SELECT column's charset, the character_set_client / collation_connection that
views, routines and triggers store. Compared with the plain ``mariadb`` client at the same setting.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from blocks.site_profile import SiteProfile
from tasks.core.errors import InputError
from tasks.sql.session import client_charset
from tests.client_compare import assert_same, client_database, client_result, snapshot
from tests.tasks.sql.test_executor import run_step, write

pytestmark = pytest.mark.mariadb

SCRIPT = """CREATE TABLE cs AS SELECT 'a' AS c, CONCAT('b', 1) AS d;
CREATE VIEW v AS SELECT 'é' AS e;
CREATE FUNCTION f() RETURNS VARCHAR(10) DETERMINISTIC RETURN 'x';
CREATE PROCEDURE p() SELECT 1;
CREATE TABLE tr (n INT);
CREATE TRIGGER trg BEFORE INSERT ON tr FOR EACH ROW SET NEW.n = NEW.n + 1;
"""


@pytest.mark.parametrize("charset", ["utf8mb3", "utf8mb4", None], ids=["utf8mb3", "utf8mb4", "default"])
def test_objects_carry_the_charset_the_client_gives_them(tmp_path: Path, mariadb_database: str, charset: str | None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    if charset:
        monkeypatch.setenv("FT_UPGRADE_CLIENT_CHARSET", charset)
    else:
        monkeypatch.delenv("FT_UPGRADE_CLIENT_CHARSET", raising=False)
    run_step(tmp_path, {"ft_db": mariadb_database}, [write(tmp_path / "sql", "c.sql", SCRIPT)])
    with client_database("i23b_client") as name:
        client = client_result([tmp_path / "sql" / "c.sql"], name, charset or "utf8mb3")
    assert_same(snapshot(mariadb_database), client)
    views = client.catalog["views"]
    assert [(row[6], row[7]) for row in views] == [(charset or "utf8mb3", f"{charset or 'utf8mb3'}_general_ci")]


def test_the_default_is_what_the_client_picks_by_itself_under_a_utf8_locale() -> None:
    picked = subprocess.run(["mariadb", "-h127.0.0.1", "-uroot", "-N", "-e", "SELECT @@character_set_client"],
                            capture_output=True, text=True, check=True, env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert picked.stdout.strip() == client_charset(None, "ft_db", "utf8mb3") == "utf8mb3"


def test_the_client_charset_is_chosen_per_database() -> None:
    profile = SiteProfile(site_id="CN", client_charset={"middle_db": "utf8mb4", "*": "latin1"})
    assert client_charset(profile, "middle_db", "utf8mb3") == "utf8mb4"
    assert client_charset(profile, "ft_db", "utf8mb3") == "latin1"
    assert client_charset(None, "ft_db", "utf8") == "utf8mb3", "utf8 as the MariaDB 10 client means it"
    with pytest.raises(InputError, match="'klingon' for database 'ft_db'"):
        client_charset(None, "ft_db", "klingon")
