"""Kill -9 at 10 random instants of a chain holding issue 23's cases; each resume — with the decisions an
operator takes — ends equal to the plain ``mariadb`` client's uninterrupted run (catalog and rows,
auto-increment counters included), compared by :mod:`tests.client_compare`.

The chain: auto-increment inserts a later statement refers to by id, a trigger writing a MyISAM table,
``@r :=`` inside an UPDATE, a stored function that writes, called from ``SET @v = (SELECT f())``, a later
statement using those variables, DDL. The test plays the operator for a statement in doubt: it looks at the
database, cleans up what a killed statement left half done on a non-transactional table, and decides.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from tasks.store.breakpoints import OperatorDecision, active_breakpoint, record_decision
from tests.client_compare import assert_same, client_database, client_result, snapshot
from tests.tasks.sql.harness import launch
from tests.tasks.sql.test_executor import execute, query
from tests.tasks.sql.test_executor_kill9 import drop_database, fresh_database

pytestmark = pytest.mark.mariadb

KILLS = 10

SCHEMA = """CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL, x INT NOT NULL);
CREATE TABLE audit (n INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(20)) ENGINE=MyISAM;
CREATE TRIGGER t_ai AFTER INSERT ON t FOR EACH ROW INSERT INTO audit (what) VALUES (NEW.name);
CREATE TABLE items (id INT PRIMARY KEY, ord INT NOT NULL DEFAULT 0, ref INT NULL);
DELIMITER //
CREATE FUNCTION f() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO audit (what) VALUES ('f');
RETURN (SELECT COUNT(*) FROM audit); END //
DELIMITER ;
DO SLEEP(0.2);
"""

DATA = """INSERT INTO t (name, x) VALUES ('a', 1);
INSERT INTO t (name, x) VALUES ('b', 2);
INSERT INTO items (id) VALUES (1), (2);
DO SLEEP(0.2);
SET @r = 0;
UPDATE items SET ord = (@r := @r + 10) ORDER BY id;
DO SLEEP(0.2);
SET @v = (SELECT f());
INSERT INTO items (id, ord, ref) VALUES (3, @r + 10, 2);
INSERT INTO t (name, x) VALUES ('c', @v);
DO SLEEP(0.2);
ALTER TABLE t ADD COLUMN y INT NOT NULL DEFAULT 7;
INSERT INTO t (name, x) VALUES ('d', 4);
"""

FILES = {"01_schema.sql": SCHEMA, "02_data.sql": DATA}


def _orphan_audit(what: str) -> Callable[[str], bool]:
    """An INSERT into ``t`` in doubt: applied if its row is there; a trigger row left without it (MyISAM keeps
    what the rolled-back statement's trigger wrote) is removed by the operator before the retry."""

    def check(url: str) -> bool:
        if query(url, f"SELECT id FROM t WHERE name = '{what}'"):
            return True
        execute(url, f"DELETE FROM audit WHERE what = '{what}'")
        execute(url, "ALTER TABLE audit AUTO_INCREMENT = 1")
        return False

    return check


def _function_call(url: str) -> bool:
    """``SET @v = (SELECT f())`` in doubt: its value is lost, so undo what f wrote and run it again."""
    execute(url, "DELETE FROM audit WHERE what = 'f'")
    execute(url, "ALTER TABLE audit AUTO_INCREMENT = 1")
    return False


#: The operator's check per statement that can be in doubt: True = it took effect (applied), False = retry.
ORACLES: dict[str, Callable[[str], bool]] = {
    "CREATE TRIGGER t_ai": lambda url: bool(query(url, "SELECT 1 FROM information_schema.TRIGGERS WHERE "
                                                       "TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME = 't_ai'")),
    "INSERT INTO t (name, x) VALUES ('a'": _orphan_audit("a"),
    "INSERT INTO t (name, x) VALUES ('b'": _orphan_audit("b"),
    "INSERT INTO t (name, x) VALUES ('c'": _orphan_audit("c"),
    "INSERT INTO t (name, x) VALUES ('d'": _orphan_audit("d"),
    "UPDATE items SET ord = (@r": lambda url: False,  # the values it set were lost: it is idempotent, run again
    "SET @v = (SELECT f())": _function_call,
    "DO SLEEP": lambda url: False,
}


class Site:
    def __init__(self, root: Path, url: str, execution: str) -> None:
        self.root, self.url, self.execution = root, url, execution
        self.home = root / f"home-{execution}"
        self.decisions: list[tuple[str, str]] = []

    def start(self) -> subprocess.Popen[str]:
        return launch(self.root / "sql", self.home, self.execution, FILES, {"ft_db": self.url})

    def decide(self) -> None:
        engine = create_engine(f"sqlite:///{self.home / 'metadata.db'}")
        try:
            bp = active_breakpoint(engine, self.execution)
            assert bp is not None, "a failed run leaves a breakpoint"
            assert bp.in_doubt, f"unexpected failure: {bp.failure_reason}"
            oracle = next((check for prefix, check in ORACLES.items() if bp.sql_content.startswith(prefix)), None)
            assert oracle is not None, f"no operator check for a statement in doubt: {bp.sql_content}"
            inflight = "applied" if oracle(self.url) else "retry"
            self.decisions.append((bp.sql_content[:40], inflight))
            record_decision(engine, self.execution, OperatorDecision(by="test", notes="checked", inflight=inflight))
        finally:
            engine.dispose()

    def finish(self) -> None:
        for _ in range(10):
            proc = self.start()
            out, _ = proc.communicate(timeout=300)
            if proc.returncode == 0:
                return
            self.decide()
        raise AssertionError(f"the chain did not complete (decisions {self.decisions})")


def test_kill_9_at_10_instants_of_issue_23s_chain_then_resume_ends_as_the_client(tmp_path: Path) -> None:
    (tmp_path / "sql").mkdir()
    for name, body in FILES.items():
        (tmp_path / "sql" / name).write_text(body, encoding="utf-8")
    suffix = uuid.uuid4().hex[:8]  # unique: markers outlive the databases (retention)
    names = [f"i23_k9_{i}_{suffix}" for i in range(KILLS + 1)]
    rng = random.Random(20261207)
    try:
        with client_database("i23_k9cli") as client_db:
            client = client_result([tmp_path / "sql" / name for name in FILES], client_db)
        assert client.rows["items"] == [(1, 10, None), (2, 20, None), (3, 30, 2)]
        reference = Site(tmp_path, fresh_database(names[0]), "EXEC_K9_REF")
        proc = reference.start()
        assert proc.stdout is not None and proc.stdout.readline().strip() == "START"
        started = time.monotonic()
        out, _ = proc.communicate(timeout=300)
        duration = time.monotonic() - started
        assert proc.returncode == 0, out
        assert_same(snapshot(reference.url), client)
        decided = 0
        for trial in range(KILLS):
            site = Site(tmp_path, fresh_database(names[trial + 1]), f"EXEC_K9_{trial}")
            proc = site.start()
            assert proc.stdout is not None and proc.stdout.readline().strip() == "START"
            time.sleep(rng.uniform(0.05 * duration, 0.95 * duration))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            site.finish()
            decided += len(site.decisions)
            assert_same(snapshot(site.url), client)
        print(f"{KILLS} kills, {decided} operator decisions")
    finally:
        for name in names:
            drop_database(name)
