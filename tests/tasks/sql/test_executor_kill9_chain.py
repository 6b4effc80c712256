"""Kill -9 at 20 random points of a procedure-heavy chain on two databases; every resume — with the
decisions its breakpoints ask for — ends in the same schema and rows as an uninterrupted run.

The chain holds what real scripts hold: DELIMITER procedures that do DDL and are CALLed, CREATE OR
REPLACE objects, ``SET STATEMENT … FOR``, a value set from a query, a MyISAM table, a script with its
own transaction, a mysqldump prologue/epilogue, and a second database. The test plays the operator:
for a statement in doubt it looks at the database (an oracle per statement) and decides.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from tasks.store.breakpoints import OperatorDecision, active_breakpoint, record_decision
from tests.tasks.sql.harness import launch
from tests.tasks.sql.test_executor import query
from tests.tasks.sql.test_executor_kill9 import drop_database, fresh_database

pytestmark = pytest.mark.mariadb

TRIALS = 5
KILLS_PER_TRIAL = 4

SCHEMA = """SET NAMES utf8mb4;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
CREATE TABLE orders (id INT PRIMARY KEY, status VARCHAR(16) NOT NULL, amount DECIMAL(10,2)) ENGINE=InnoDB;
CREATE TABLE audit_log (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(64)) ENGINE=MyISAM;
CREATE OR REPLACE TABLE settings (k VARCHAR(32) PRIMARY KEY, v VARCHAR(64));
DELIMITER $$
CREATE PROCEDURE add_col_if_missing()
BEGIN
  IF NOT EXISTS (SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()
                 AND TABLE_NAME = 'orders' AND COLUMN_NAME = 'region') THEN
    ALTER TABLE orders ADD COLUMN region VARCHAR(8) NOT NULL DEFAULT 'cn';
  END IF;
END$$
DELIMITER ;
CALL add_col_if_missing();
DROP PROCEDURE add_col_if_missing;
DO SLEEP(0.3);
/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
"""

DATA = """INSERT INTO orders (id, status, amount) VALUES (1, 'NEW', 10.00), (2, 'PAID', 20.00), (3, 'NEW', 30.00);
INSERT INTO audit_log (note) VALUES ('seeded');
SET STATEMENT max_statement_time=0 FOR UPDATE orders SET amount = amount + 1 WHERE status = 'NEW';
SET @top = (SELECT MAX(id) FROM orders);
START TRANSACTION;
INSERT INTO orders (id, status, amount) VALUES (@top + 1, 'NEW', 40.00);
UPDATE orders SET status = 'OPEN' WHERE status = 'NEW';
COMMIT;
INSERT INTO settings VALUES ('top', CAST(@top AS CHAR));
CREATE OR REPLACE PROCEDURE close_orders() UPDATE orders SET status = 'CLOSED' WHERE status = 'PAID';
CALL close_orders();
DO SLEEP(0.3);
INSERT INTO audit_log (note) VALUES ('closed');
ALTER TABLE orders ADD UNIQUE KEY uk_status_amount (status, amount, id);
"""

MIDDLE = """-- @database: middle_db
CREATE TABLE sync_state (k VARCHAR(16) PRIMARY KEY, n INT NOT NULL);
INSERT INTO sync_state VALUES ('orders', 0);
CREATE OR REPLACE TABLE sync_log (id INT PRIMARY KEY);
INSERT INTO sync_log VALUES (1), (2);
UPDATE sync_state SET n = n + 2 WHERE k = 'orders';
DELIMITER //
CREATE OR REPLACE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2//
DELIMITER ;
DO SLEEP(0.3);
INSERT INTO sync_log VALUES (twice(5));
"""

FILES = {"01_schema.sql": SCHEMA, "02_data.sql": DATA, "03_middle.sql": MIDDLE}


def exists(url: str, kind: str, name: str) -> bool:
    table, column = {"table": ("TABLES", "TABLE_NAME"), "routine": ("ROUTINES", "ROUTINE_NAME")}[kind]
    schema_column = "TABLE_SCHEMA" if kind == "table" else "ROUTINE_SCHEMA"
    db = url.rsplit("/", 1)[1].split("?")[0]
    return bool(query(url, f"SELECT COUNT(*) FROM information_schema.{table} WHERE {schema_column} = '{db}' "
                          f"AND {column} = '{name}'")[0][0])


#: The operator's check per statement that can be in doubt: True = it took effect.
ORACLES: dict[str, Callable[[str, str], bool]] = {
    "CALL add_col_if_missing()": lambda ft, mid: bool(query(ft, "SHOW COLUMNS FROM orders LIKE 'region'")),
    "CALL close_orders()": lambda ft, mid: not query(ft, "SELECT id FROM orders WHERE status = 'PAID'"),
    "INSERT INTO audit_log (note) VALUES ('seeded')": lambda ft, mid: bool(
        query(ft, "SELECT id FROM audit_log WHERE note = 'seeded'")),
    "INSERT INTO audit_log (note) VALUES ('closed')": lambda ft, mid: bool(
        query(ft, "SELECT id FROM audit_log WHERE note = 'closed'")),
    "CREATE OR REPLACE TABLE settings": lambda ft, mid: exists(ft, "table", "settings"),
    "CREATE OR REPLACE PROCEDURE close_orders": lambda ft, mid: exists(ft, "routine", "close_orders"),
    "CREATE OR REPLACE TABLE sync_log": lambda ft, mid: exists(mid, "table", "sync_log"),
    "CREATE OR REPLACE FUNCTION twice": lambda ft, mid: exists(mid, "routine", "twice"),
    "DO SLEEP": lambda ft, mid: False,  # no effect: run it again
}


def snapshot(url: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    db = url.rsplit("/", 1)[1].split("?")[0]
    for (name,) in query(url, "SHOW TABLES"):
        create = query(url, f"SHOW CREATE TABLE `{name}`")[0][1]
        out[f"table {name}"] = (re.sub(r" AUTO_INCREMENT=\d+", "", create),
                                sorted(query(url, f"SELECT * FROM `{name}`"), key=repr))
    for kind, name in query(url, f"SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE "
                                f"ROUTINE_SCHEMA = '{db}'"):
        out[f"{kind} {name}"] = query(url, f"SHOW CREATE {kind} `{name}`")[0][2]
    return out


class Site:
    """Two databases and a metadata store; the chain run by the harness, as often as needed."""

    def __init__(self, root: Path, ft: str, mid: str, execution: str) -> None:
        self.root, self.ft, self.mid, self.execution = root, ft, mid, execution
        self.home = root / f"home-{execution}"
        self.decisions: list[tuple[str, str]] = []

    def start(self) -> subprocess.Popen[str]:
        return launch(self.root / "sql", self.home, self.execution, FILES,
                      {"ft_db": self.ft, "middle_db": self.mid})

    def decide(self) -> None:
        """The operator reads the breakpoint, checks the database, records a decision."""
        engine = create_engine(f"sqlite:///{self.home / 'metadata.db'}")
        try:
            bp = active_breakpoint(engine, self.execution)
            assert bp is not None, "a failed run leaves a breakpoint"
            assert bp.in_doubt, f"unexpected failure: {bp.failure_reason}"
            sql = bp.sql_content
            oracle = next((check for prefix, check in ORACLES.items() if sql.startswith(prefix)), None)
            assert oracle is not None, f"no operator check for a statement in doubt: {sql}"
            inflight = "applied" if oracle(self.ft, self.mid) else "retry"
            self.decisions.append((sql, inflight))
            record_decision(engine, self.execution, OperatorDecision(by="test", notes="checked", inflight=inflight))
        finally:
            engine.dispose()

    def finish(self) -> None:
        for _ in range(12):
            proc = self.start()
            out, _ = proc.communicate(timeout=300)
            if proc.returncode == 0:
                return
            self.decide()
        raise AssertionError("the chain did not complete")


def test_kill_9_at_20_points_of_a_procedure_heavy_chain_then_resume_ends_as_an_uninterrupted_run(
        tmp_path: Path) -> None:
    (tmp_path / "sql").mkdir()
    for name, body in FILES.items():
        (tmp_path / "sql" / name).write_text(body, encoding="utf-8")
    suffix = uuid.uuid4().hex[:8]  # unique: markers outlive the databases (retention)
    names = [f"ft_kc_{i}_{part}_{suffix}" for i in range(TRIALS + 1) for part in ("ft", "mid")]
    rng = random.Random(20261201)
    try:
        reference = Site(tmp_path, fresh_database(names[0]), fresh_database(names[1]), "EXEC_KC_REF")
        proc = reference.start()
        assert proc.stdout is not None and proc.stdout.readline().strip() == "START"
        started = time.monotonic()
        out, _ = proc.communicate(timeout=300)
        duration = time.monotonic() - started
        assert proc.returncode == 0, out
        expected = (snapshot(reference.ft), snapshot(reference.mid))
        assert expected[0]["table audit_log"][1] == [(1, "seeded"), (2, "closed")]
        kills, decided = 0, 0
        for trial in range(TRIALS):
            site = Site(tmp_path, fresh_database(names[2 * trial + 2]), fresh_database(names[2 * trial + 3]),
                        f"EXEC_KC_{trial}")
            for _ in range(KILLS_PER_TRIAL):
                proc = site.start()
                assert proc.stdout is not None and proc.stdout.readline().strip() == "START"
                time.sleep(rng.uniform(0.0, duration))
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=60)
                kills += 1
                if proc.returncode == 1:  # it stopped at a breakpoint before the kill: decide, as an operator
                    site.decide()
            site.finish()
            decided += len(site.decisions)
            got = (snapshot(site.ft), snapshot(site.mid))
            assert got == expected, f"trial {trial}: differs from the uninterrupted run (decisions {site.decisions})"
        assert kills == 20
        print(f"{kills} kills, {decided} operator decisions")
    finally:
        for name in names:
            drop_database(name)
