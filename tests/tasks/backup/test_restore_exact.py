"""A restore ends exactly as the backup: objects the upgrade created are dropped, the rest put back, proved.

Real MariaDB; every database here is a fresh one dropped after (the ``mariadb_database`` fixture).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tasks.backup.manifest import Manifest
from tasks.backup.step import BackupParams, BackupStep, RestoreBackupStep, RestoreParams
from tasks.core.errors import StepFailed
from tests.conftest import PROJECT
from tests.helpers import step_context
from tests.tasks.backup.data import database_state, fill_rich, upgrade_like


def make_backup(tmp_path: Path, url: str, tables: list[str] | None = None):
    params = BackupParams(databases=[{"database": "ft_db", "tables": tables or []}])
    with step_context(tmp_path, databases={"ft_db": url}, execution_id="EXEC_X", cutpoint="pre_upgrade_process") as ctx:
        return BackupStep(params, ctx).run()


def run_restore(tmp_path: Path, url: str):
    with step_context(tmp_path, databases={"ft_db": url}, execution_id="EXEC_X") as ctx:
        return RestoreBackupStep(RestoreParams(), ctx).run()


def test_after_upgrade_like_changes_a_restore_gives_back_every_object_and_every_checksum(
        tmp_path: Path, mariadb_database: str):
    engine = create_engine(mariadb_database)
    fill_rich(engine)
    before = database_state(engine)
    made = make_backup(tmp_path, mariadb_database)
    manifest = Manifest.load(Path(made.details["path"]))
    kinds = {o.kind for o in manifest.catalogs[0].objects}
    assert kinds == {"table", "view", "trigger", "procedure", "function", "event"}
    upgrade_like(engine)
    assert database_state(engine) != before

    done = run_restore(tmp_path, mariadb_database)
    assert database_state(engine) == before
    restored = done.details["restored"][0]
    assert {t["table"]: t["outcome"] for t in restored["tables"]}["ft_db.lines2"] == "unchanged", \
        "rows and columns as backed up: only the foreign key the upgrade added is dropped"
    assert sorted(restored["dropped"]) == sorted(
        f"{kind} ft_db.{name}" for kind, name in [
            ("event", "new_event"), ("trigger", "orders2_new"), ("view", "invoice_count"), ("function", "new_fn"),
            ("procedure", "new_proc"), ("table", "invoice_items"), ("table", "invoice_seq"), ("table", "invoices")])
    comparison = restored["comparison"]
    assert comparison["ok"] and not comparison["differences"] and not comparison["not_compared"]
    assert len(comparison["checksummed"]) == 4 and "Compared with the backup" not in done.markdown
    assert "与备份比对" in done.markdown and "equal to backup" in done.markdown
    counters = {name: counter for name, _, _, _, counter, _ in before["tables"]}
    with engine.begin() as conn:  # the triggers fire again, in their order; the counters go on as they would have
        conn.execute(text("INSERT INTO orders2 (customer_id, total) VALUES (3, 7)"))
        n = counters["orders2"]
        assert conn.execute(text("SELECT what FROM audit2 ORDER BY id DESC LIMIT 2")).scalars().all() == [
            f"second {n}", f"order {n}"]
        assert conn.execute(text("SELECT MIN(id) FROM audit2 WHERE id > 10")).scalar() == counters["audit2"]

    again = run_restore(tmp_path, mariadb_database)
    assert again.details["restored"][0]["dropped"] == []
    outcomes = {t["table"]: t["outcome"] for t in again.details["restored"][0]["tables"]}
    assert outcomes == {"ft_db.audit2": "loaded", "ft_db.customers": "unchanged", "ft_db.lines2": "unchanged",
                        "ft_db.orders2": "loaded"}, "only the tables the insert changed are loaded again"
    assert database_state(engine) == before
    engine.dispose()


def test_a_backup_without_a_catalog_is_restored_on_what_it_holds_and_says_what_it_could_not_compare(
        tmp_path: Path, mariadb_database: str):
    engine = create_engine(mariadb_database)
    fill_rich(engine, orders=100)
    folder = Path(make_backup(tmp_path, mariadb_database).details["path"])
    old = Manifest.load(folder)
    Manifest.from_json({**old.to_json(), "catalogs": [], "format": 1}).save(folder)
    with engine.begin() as conn:
        conn.execute(text("UPDATE customers SET name = 'x'"))
        conn.execute(text("CREATE TABLE later (id INT PRIMARY KEY)"))
    done = run_restore(tmp_path, mariadb_database)
    comparison = done.details["restored"][0]["comparison"]
    assert comparison["ok"] and "objects created after the backup" in comparison["not_compared"]
    assert "not compared, the backup does not record them: procedures" in done.markdown
    with engine.connect() as conn:
        assert conn.execute(text("SHOW TABLES LIKE 'later'")).all(), "nothing known to drop"
        assert conn.execute(text("SELECT COUNT(*) FROM customers WHERE name = 'x'")).scalar() == 0
    engine.dispose()


def test_what_the_restore_cannot_put_back_fails_it_naming_each_difference(tmp_path: Path, mariadb_database: str):
    """A backup of two tables: the upgrade dropped a third and altered a view's base; the restore says so."""
    engine = create_engine(mariadb_database)
    fill_rich(engine, orders=100)
    make_backup(tmp_path, mariadb_database, tables=["customers", "orders2"])
    with engine.begin() as conn:
        conn.execute(text("SET SESSION FOREIGN_KEY_CHECKS=0"))
        conn.execute(text("DROP TABLE audit2"))
        conn.execute(text("ALTER TABLE lines2 ADD COLUMN qty INT NULL"))
        conn.execute(text("CREATE TABLE later (id INT PRIMARY KEY)"))
    with pytest.raises(StepFailed) as failed:
        run_restore(tmp_path, mariadb_database)
    message = str(failed.value)
    assert "the restore did not bring the databases back to the backup: 1 difference from backup CN-" in message
    assert "table ft_db.audit2: missing (it existed at backup time, but the backup holds no rows of it)" in message
    details = failed.value.result.details["comparison"]
    assert details["outside_backup"] == ["ft_db.audit2", "ft_db.lines2"] and not details["ok"]
    with engine.connect() as conn:
        assert not conn.execute(text("SHOW TABLES LIKE 'later'")).all(), "created after the backup: dropped"
    engine.dispose()


KILLED = """
import sys
from pathlib import Path
from sqlalchemy import create_engine
from tasks.backup.catalog import find_backup
from tasks.backup.restore import restore_backup
engine = create_engine(sys.argv[2])
backup = find_backup(Path(sys.argv[1]), sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
restore_backup(backup, lambda name: engine)
"""


def test_a_restore_killed_at_random_instants_ends_exactly_as_the_backup_after_the_next(
        tmp_path: Path, mariadb_database: str):
    """kill -9 at random instants of a restore (after upgrade-like changes each time), then restore again."""
    engine = create_engine(mariadb_database)
    fill_rich(engine, orders=3000)
    before = database_state(engine)
    made = make_backup(tmp_path, mariadb_database)
    root, backup_id = tmp_path / "home" / "backup_dir", made.details["backup_id"]
    seed = int(os.environ.get("FT_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)

    def restore_in_child(kill_after: float | None) -> tuple[float, int]:
        upgrade_like(engine)
        child = subprocess.Popen([sys.executable, "-c", KILLED, str(root), mariadb_database, backup_id], cwd=PROJECT,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        child.stdin.write("go\n")
        child.stdin.flush()
        started = time.perf_counter()
        try:
            child.wait(kill_after)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        return time.perf_counter() - started, child.returncode

    length, code = restore_in_child(None)  # how long a whole restore takes here
    assert code == 0 and database_state(engine) == before
    outcomes: list[tuple[float, int]] = []
    while sum(code == -9 for _, code in outcomes) < 4 and len(outcomes) < 8:
        at = rng.uniform(0, length)
        took, code = restore_in_child(at)
        if code == 0:  # finished before the instant: this machine is faster now
            length = min(length, took)
        outcomes.append((round(at, 3), code))
        run_restore(tmp_path, mariadb_database)
        assert database_state(engine) == before, f"seed {seed}, trial {len(outcomes)}, killed after {at:.3f}s"
    print(f"seed {seed}; restore {length:.2f}s; killed at (s, exit code) {outcomes}")
    assert sum(code == -9 for _, code in outcomes) >= 3, f"seed {seed}: most trials must be killed midway"
    engine.dispose()


BEFORE = """CREATE TABLE `t` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `a` int(11) DEFAULT NULL,
  `b` varchar(10) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `k_a` (`a`),
  CONSTRAINT `fk_a` FOREIGN KEY (`a`) REFERENCES `p` (`id`),
  CONSTRAINT `chk` CHECK (`a` > 0)
) ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"""


def test_a_table_difference_names_the_column_index_key_or_option() -> None:
    from tasks.backup.verify import table_differences

    after = (BEFORE.replace("  `b` varchar(10) DEFAULT NULL,\n", "  `b` varchar(20) DEFAULT NULL,\n  `memo` text,\n")
             .replace("  KEY `k_a` (`a`),\n", "  KEY `k_a` (`a`,`b`),\n  KEY `k_new` (`b`),\n")
             .replace("  CONSTRAINT `fk_a` FOREIGN KEY (`a`) REFERENCES `p` (`id`),\n", "")
             .replace("AUTO_INCREMENT=5", "AUTO_INCREMENT=9"))
    assert table_differences(BEFORE, after) == [
        "foreign key `fk_a` missing", "column `memo` added", "index `k_new` added",
        "column `b` is `b` varchar(20) DEFAULT NULL, backup `b` varchar(10) DEFAULT NULL",
        "index `k_a` is KEY `k_a` (`a`,`b`), backup KEY `k_a` (`a`)",
        "table options ENGINE=InnoDB AUTO_INCREMENT=9 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci, "
        "backup ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"]
    swapped = BEFORE.replace("  `a` int(11) DEFAULT NULL,\n  `b` varchar(10) DEFAULT NULL,\n",
                             "  `b` varchar(10) DEFAULT NULL,\n  `a` int(11) DEFAULT NULL,\n")
    assert table_differences(BEFORE, swapped) == ["column order differs"]
    assert table_differences(BEFORE, BEFORE) == []
