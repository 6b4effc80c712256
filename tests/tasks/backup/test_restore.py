"""Backup → change data → restore on the real MariaDB; retention; corruption detection."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import IntegrityError

from tasks.backup.catalog import expired, list_backups
from tasks.backup.manifest import Manifest
from tasks.backup.step import BackupParams, BackupStep, RestoreBackupStep, RestoreParams
from tasks.core.errors import StepFailed
from tasks.core.files import Private
from tests.conftest import PROJECT
from tests.helpers import step_context
from tests.tasks.backup.data import checksums, fill, fill_related

ROWS = 50_000


def backup(tmp_path: Path, url: str, execution_id: str = "EXEC_A", **fields: object):
    params = BackupParams(databases=[{"database": "ft_db", "tables": ["orders", "users"]}], **fields)
    with step_context(tmp_path, databases={"ft_db": url}, execution_id=execution_id,
                      cutpoint="pre_upgrade_process") as ctx:
        return BackupStep(params, ctx).run()


def restore(tmp_path: Path, url: str, execution_id: str = "EXEC_A", **fields: object):
    with step_context(tmp_path, databases={"ft_db": url}, execution_id=execution_id) as ctx:
        return RestoreBackupStep(RestoreParams(**fields), ctx).run()


def test_backup_then_data_changes_then_restore_gives_equal_checksum_table(tmp_path: Path, mariadb_database: str):
    engine = create_engine(mariadb_database)
    fill(engine, ROWS)
    before = checksums(engine)
    result = backup(tmp_path, mariadb_database)
    assert result.details["rows"] == ROWS + 100
    manifest = Manifest.load(Path(result.details["path"]))
    assert {t.table: t.checksum for t in manifest.tables} == before
    assert manifest.site_id == "CN" and manifest.source_version == "3.17.0" and manifest.execution_id == "EXEC_A"
    assert all(len(t.sha256) == 64 for t in manifest.tables)

    with engine.begin() as conn:
        conn.execute(text("UPDATE orders SET status = 9 WHERE id % 3 = 0"))
        conn.execute(text("DELETE FROM orders WHERE id % 11 = 0"))
        conn.execute(text("INSERT INTO users VALUES (500, 'new', 1)"))
    assert checksums(engine) != before

    done = restore(tmp_path, mariadb_database)
    assert done.status == "SUCCESS"
    assert checksums(engine) == before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM users WHERE id = 0")).scalar() == "zero ' quote"
        leftovers = conn.execute(text("SHOW TABLES LIKE '\\_\\_ft%'")).all()
    assert leftovers == []
    engine.dispose()


def test_restore_of_chosen_tables_leaves_the_others_alone(tmp_path: Path, mariadb_database: str):
    engine = create_engine(mariadb_database)
    fill(engine, 1000)
    before = checksums(engine)
    backup(tmp_path, mariadb_database)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM orders"))
        conn.execute(text("DELETE FROM users WHERE id > 50"))
    restore(tmp_path, mariadb_database, tables=["users"])
    after = checksums(engine)
    assert after["users"] == before["users"] and after["orders"] != before["orders"]
    engine.dispose()


def test_a_corrupted_backup_file_is_detected_and_nothing_is_restored(tmp_path: Path, mariadb_database: str):
    engine = create_engine(mariadb_database)
    fill(engine, 1000)
    folder = Path(backup(tmp_path, mariadb_database).details["path"])
    data = folder / "db" / "ft_db.orders.sql.gz"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM orders"))
    with pytest.raises(StepFailed, match=r"corrupted, nothing restored: db/ft_db.orders.sql.gz sha256"):
        restore(tmp_path, mariadb_database)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM orders")).scalar() == 0, "users was not restored either"
    engine.dispose()


def test_a_tampered_but_well_formed_file_fails_the_checksum_table_comparison(tmp_path: Path, mariadb_database: str):
    engine = create_engine(mariadb_database)
    fill(engine, 1000)
    folder = Path(backup(tmp_path, mariadb_database).details["path"])
    data = folder / "db" / "ft_db.users.sql.gz"
    text_ = gzip.decompress(data.read_bytes()).decode().replace("'用户-7\\n", "'用户-8\\n")
    data.write_bytes(gzip.compress(text_.encode()))
    manifest = json.loads((folder / "manifest.json").read_text())
    from tasks.backup.manifest import sha256_file

    for t in manifest["tables"]:
        if t["table"] == "users":
            t["sha256"] = sha256_file(data)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with engine.begin() as conn:  # else the live table, equal to the backup, is not loaded at all
        conn.execute(text("UPDATE users SET name = 'changed' WHERE id = 3"))
    before = checksums(engine)
    with pytest.raises(StepFailed, match="restored ft_db.users: expected .* the live table was left unchanged"):
        restore(tmp_path, mariadb_database, tables=["users"])
    assert checksums(engine) == before
    engine.dispose()


def test_retention_keeps_exactly_the_last_three_upgrades(tmp_path: Path, mariadb_database: str):
    engine = create_engine(mariadb_database)
    fill(engine, 100)
    ids = []
    for n in range(5):
        result = backup(tmp_path, mariadb_database, execution_id=f"EXEC_{n}")
        ids.append(result.details["backup_id"])
    assert result.details["removed_backups"] == [ids[1]]
    kept = list_backups(tmp_path / "home" / "backup_dir", "CN")
    assert [b.manifest.execution_id for b in kept] == ["EXEC_4", "EXEC_3", "EXEC_2"]
    assert "按保留策略删除" in result.markdown
    engine.dispose()


def test_retention_counts_upgrades_not_backups() -> None:
    def m(execution: str, at: str) -> Manifest:
        return Manifest(backup_id=f"{execution}-{at}", site_id="CN", execution_id=execution, source_version="a",
                        target_version="b", created_at=at)

    items = [m("E1", "01"), m("E2", "02"), m("E2", "03"), m("E3", "04"), m("E4", "05"), m("E1", "00")]
    assert sorted(x.backup_id for x in expired(items, keep=3)) == ["E1-00", "E1-01"]
    assert expired(items, keep=4) == []


def test_a_missing_config_file_fails_before_anything_is_written(tmp_path: Path, mariadb_database: str):
    with pytest.raises(StepFailed, match="config files to back up are missing: .*nope.yaml"):
        backup(tmp_path, mariadb_database, config_files=["nope.yaml"])
    assert list_backups(tmp_path / "home" / "backup_dir") == []


def test_config_files_are_backed_up_and_restored(tmp_path: Path, mariadb_database: str):
    engine = create_engine(mariadb_database)
    fill(engine, 10)
    conf = tmp_path / "home" / "config_dir" / "application.yml"
    conf.parent.mkdir(parents=True)
    conf.write_text("a: 1\n")
    backup(tmp_path, mariadb_database, config_files=["application.yml"])
    conf.write_text("a: 2\n")
    result = restore(tmp_path, mariadb_database)
    assert conf.read_text() == "a: 1\n"
    assert str(conf.resolve()) in result.details["restored"][0]["files"]
    assert result.details["restored"][0]["comparison"]["files"] == [str(conf.resolve())], "its content compared"
    engine.dispose()


@pytest.fixture
def umask_000() -> Iterator[None]:
    """Whatever the umask lets through: only explicit modes keep a backup private."""
    old = os.umask(0)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_backup_files_are_private_and_a_restored_config_file_gets_its_mode_back(
        tmp_path: Path, mariadb_database: str, umask_000: None):
    engine = create_engine(mariadb_database)
    fill(engine, 10)
    conf = tmp_path / "home" / "config_dir" / "application.yml"
    conf.parent.mkdir(parents=True)
    conf.write_text("a: 1\n")
    conf.chmod(0o640)
    folder = Path(backup(tmp_path, mariadb_database, config_files=["application.yml"]).details["path"])
    conf.write_text("a: 2\n")
    conf.chmod(0o666)
    restore(tmp_path, mariadb_database)
    assert (conf.read_text(), mode(conf)) == ("a: 1\n", 0o640), "the mode it had when backed up"
    inside = [folder.parent, folder, *folder.rglob("*")]
    assert {p.name: mode(p) for p in inside if p.is_dir()} == dict.fromkeys(["CN", folder.name, "db", "files"], 0o700)
    files = {p.name: mode(p) for p in inside if p.is_file()}
    assert {"manifest.json", "restore-journal.json", "ft_db.orders.sql.gz", "000_application.yml.gz"} <= set(files)
    assert set(files.values()) == {0o600}, files

    manifest = Manifest.load(folder)  # a backup made before modes were recorded
    Manifest.from_json({**manifest.to_json(), "files": [{**f.__dict__, "mode": None} for f in manifest.files]}).save(
        folder)
    restore(tmp_path, mariadb_database)
    assert mode(conf) == 0o600, "owner only when the backup does not say"
    engine.dispose()


def test_with_a_group_files_are_0640_and_folders_0750_owned_by_it(tmp_path: Path, umask_000: None):
    group = str(os.getgid())
    private = Private(group)
    folder = private.mkdir(tmp_path / "a" / "b")
    with private.open(folder / "f.gz") as handle:
        handle.write(b"x")
    assert [mode(tmp_path / "a"), mode(folder), mode(folder / "f.gz")] == [0o750, 0o750, 0o640]
    assert (folder / "f.gz").stat().st_gid == int(group)
    with pytest.raises(ValueError, match="unknown group 'no-such-group-ft'"):
        Private("no-such-group-ft").mkdir(tmp_path / "c")
    assert not (tmp_path / "c").exists(), "refused before anything is made"


def related_backup(tmp_path: Path, url: str):
    params = BackupParams(databases=[{"database": "ft_db", "tables": ["accounts", "payments"]}])
    with step_context(tmp_path, databases={"ft_db": url}, execution_id="EXEC_R", cutpoint="pre_upgrade_process") as ctx:
        return BackupStep(params, ctx).run()


def schema_objects(engine: Engine) -> dict[str, object]:
    with engine.connect() as conn:
        return {
            "foreign_keys": conn.execute(text(
                "SELECT CONSTRAINT_NAME, TABLE_NAME, REFERENCED_TABLE_NAME "
                "FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()")).all(),
            "triggers": conn.execute(text("SELECT TRIGGER_NAME, ACTION_STATEMENT FROM information_schema.TRIGGERS "
                                          "WHERE TRIGGER_SCHEMA = DATABASE()")).all(),
            "view": conn.execute(text("SHOW CREATE VIEW account_totals")).one()[1],
            "payments": re.sub(r" AUTO_INCREMENT=\d+", "", conn.execute(text("SHOW CREATE TABLE payments")).one()[1]),
            "tables": sorted(conn.execute(text("SHOW FULL TABLES")).all()),
        }


def test_restore_keeps_foreign_keys_constraint_names_triggers_and_views(tmp_path: Path, mariadb_database: str):
    engine = create_engine(mariadb_database)
    fill_related(engine, 20_000)
    before, objects = checksums(engine, ("accounts", "payments")), schema_objects(engine)
    related_backup(tmp_path, mariadb_database)
    with engine.begin() as conn:  # what an upgrade does to them
        conn.execute(text("ALTER TABLE payments ADD COLUMN memo VARCHAR(10) NULL"))
        conn.execute(text("UPDATE accounts SET balance = 0, name = UPPER(name)"))
        conn.execute(text("DROP TRIGGER payments_add_to_balance"))
        conn.execute(text("CREATE TRIGGER payments_audit BEFORE INSERT ON payments FOR EACH ROW SET NEW.amount = 0"))
        conn.execute(text("CREATE OR REPLACE VIEW account_totals AS SELECT 1 AS id"))
        conn.execute(text("DELETE FROM payments WHERE id % 2 = 0"))

    done = restore(tmp_path, mariadb_database, execution_id="EXEC_R")
    assert done.status == "SUCCESS"
    assert checksums(engine, ("accounts", "payments")) == before
    assert schema_objects(engine) == objects, "foreign keys, triggers, the view and no staging leftovers"
    with engine.begin() as conn:
        balance = conn.execute(text("SELECT balance FROM accounts WHERE id = 7")).scalar()
        conn.execute(text("INSERT INTO payments (account_id, amount) VALUES (7, 5)"))
        assert conn.execute(text("SELECT balance FROM accounts WHERE id = 7")).scalar() == balance + 5, "trigger"
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("INSERT INTO payments (account_id, amount) VALUES (100000, 1)"))
    engine.dispose()


KILLED_RESTORE = """
import sys
from pathlib import Path
from sqlalchemy import create_engine
from tasks.backup.catalog import find_backup
from tasks.backup.restore import restore_backup
engine = create_engine(sys.argv[2])
restore_backup(find_backup(Path(sys.argv[1]), sys.argv[3]), lambda name: engine)
"""


def test_a_restore_killed_midway_is_resumed_by_the_next_try(tmp_path: Path, mariadb_database: str):
    """kill -9 once the first table is back: the next try finishes from the journal, not from scratch."""
    engine = create_engine(mariadb_database)
    fill(engine, 100_000)
    fill_related(engine, 100_000)
    tables = ("accounts", "orders", "payments", "users")
    before, objects = checksums(engine, tables), schema_objects(engine)
    params = BackupParams(databases=[{"database": "ft_db"}])
    with step_context(tmp_path, databases={"ft_db": mariadb_database}, execution_id="EXEC_K",
                      cutpoint="pre_upgrade_process") as ctx:
        made = BackupStep(params, ctx).run()
    with engine.begin() as conn:
        conn.execute(text("UPDATE orders SET status = 9"))
        conn.execute(text("DELETE FROM payments WHERE id % 3 = 0"))
        conn.execute(text("UPDATE accounts SET balance = -1"))
    root = tmp_path / "home" / "backup_dir"
    journal = Path(made.details["path"]) / "restore-journal.json"
    child = subprocess.Popen([sys.executable, "-c", KILLED_RESTORE, str(root), mariadb_database,
                              made.details["backup_id"]], cwd=PROJECT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if journal.exists() and '"done"' in journal.read_text(encoding="utf-8"):
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    first = json.loads(journal.read_text(encoding="utf-8"))
    assert first["finished"] is False and "done" in first["tables"].values(), first
    assert checksums(engine, tables) != before, "killed midway: not everything was restored"

    with step_context(tmp_path, databases={"ft_db": mariadb_database}, execution_id="EXEC_K") as ctx:
        done = RestoreBackupStep(RestoreParams(), ctx).run()
    restored = done.details["restored"][0]
    assert restored["resumed"] == sorted(k for k, v in first["tables"].items() if v == "done")
    assert checksums(engine, tables) == before
    assert schema_objects(engine) == objects
    assert json.loads(journal.read_text(encoding="utf-8"))["finished"] is True
    engine.dispose()


def test_the_backup_and_config_history_roots_are_created_private(tmp_path: Path, umask_000: None) -> None:
    from tasks.site.resources import SiteResources

    resources = SiteResources(site_id="CN", sql_root=tmp_path, configs_dir=tmp_path, home=tmp_path / "home")
    for name in ("backup_dir", "config_history"):
        assert stat.S_IMODE(resources.path(name).stat().st_mode) == 0o700, name
    assert stat.S_IMODE(resources.path("staging_dir").stat().st_mode) == 0o777, "others keep the umask's mode"
