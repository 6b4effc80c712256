"""Backup → change data → restore on the real MariaDB; retention; corruption detection."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tasks.backup.catalog import expired, list_backups
from tasks.backup.manifest import Manifest
from tasks.backup.step import BackupParams, BackupStep, RestoreBackupStep, RestoreParams
from tasks.core.errors import StepFailed
from tests.helpers import step_context
from tests.tasks.backup.data import checksums, fill

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
    assert "Removed by retention" in result.markdown
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
    engine.dispose()
