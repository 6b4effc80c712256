"""Cutpoint 2 end to end through the CLI: backup + config preprocessing, then the backup commands' functions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from flows.cli import app
from tasks.backup.commands import list_backups, restore_backup
from tasks.site.resources import SiteResources
from tests.tasks.backup.data import checksums, fill

pytestmark = pytest.mark.usefixtures("prefect_api")


def write_config(folder: Path, steps: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = {"version": "317500", "dependencies": {"min_source_version": "3.17.0"},
            "upgrade_steps": {"pre_upgrade_process": steps},
            "rollback_steps": {"pre_rollback": [{"id": "restore_backup", "class_name":
                                                 "com.ft.upgrade.steps.RestoreBackupStep"}]}}
    (folder / "317500.json").write_text(json.dumps(data), encoding="utf-8")
    return folder


def test_pre_upgrade_process_backs_up_and_preprocesses_through_the_cli(
        isolated_env: Path, mariadb_database: str) -> None:
    engine = create_engine(mariadb_database)
    fill(engine, 2000)
    before = checksums(engine)
    config_dir = isolated_env / "home" / "config_dir"
    config_dir.mkdir(parents=True)
    (config_dir / "application.properties").write_text("db.host=${DB_HOST}\n")
    configs = write_config(isolated_env / "configs", [
        {"id": "backup", "class_name": "BackupStep", "retry_count": 0,
         "databases": [{"database": "ft_db", "tables": ["orders", "users"]}],
         "config_files": ["application.properties"]},
        {"id": "config", "class_name": "com.ft.upgrade.patch.PatchConfigUpdaterStep", "dependencies": ["backup"],
         "config_files": ["application.properties"]},
    ])
    result = CliRunner().invoke(app, ["run", "pre_upgrade_process", "--from", "3.17.0", "--to", "3.17.5",
                                      "--site", "CN", "--json", "--configs", str(configs),
                                      "--db", f"ft_db={mariadb_database}", "--env", "DB_HOST=10.1.1.1",
                                      "--waive", "pre_business_check", "--reason", "test: this cutpoint alone"])
    lines = [line for line in result.output.splitlines() if line.startswith("{")]
    assert result.exit_code == 0, result.output
    report = json.loads(lines[-1])
    assert report["steps"]["success"] == 2
    assert (config_dir / "application.properties").read_text() == "db.host=10.1.1.1\n"

    resources = SiteResources(site_id="CN", sql_root=isolated_env, configs_dir=configs, home=isolated_env / "home")
    try:
        rows = list_backups(resources.path("backup_dir"), "CN")
        assert len(rows) == 1 and rows[0]["execution_id"] == report["execution_id"]
        assert rows[0]["rows"] == 2100
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM orders WHERE id < 500"))
        import os

        os.environ["FT_UPGRADE_DB_FT_DB"] = mariadb_database
        done = restore_backup(rows[0]["backup_id"], resources.path("backup_dir"), resources.engine, tables=["orders"],
                              include_files=True)
        assert [t["table"] for t in done.tables] == ["ft_db.orders"]
        assert checksums(engine) == before
        assert (config_dir / "application.properties").read_text() == "db.host=${DB_HOST}\n"
    finally:
        resources.close()
        engine.dispose()


def test_backup_list_restore_and_rollback_commands(isolated_env: Path, mariadb_database: str) -> None:
    engine = create_engine(mariadb_database)
    fill(engine, 500)
    before = checksums(engine)
    configs = write_config(isolated_env / "configs", [
        {"id": "backup", "class_name": "BackupStep", "retry_count": 0,
         "databases": [{"database": "ft_db", "tables": ["orders", "users"]}]}])
    db = ["--db", f"ft_db={mariadb_database}"]
    result = CliRunner().invoke(app, ["run", "pre_upgrade_process", "--from", "3.17.0", "--to", "3.17.5", "--site",
                                      "CN", "--json", "--configs", str(configs), *db, "--waive", "pre_business_check",
                                      "--reason", "test: this cutpoint alone"])
    assert result.exit_code == 0, result.output
    execution = json.loads([x for x in result.output.splitlines() if x.startswith("{")][-1])["execution_id"]
    listed = CliRunner().invoke(app, ["backup", "list", "--site", "CN", "--json"])
    backups = json.loads(listed.output)
    assert [b["execution_id"] for b in backups] == [execution]
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM orders"))
        unconfirmed = CliRunner().invoke(app, ["rollback", execution, *db, "--json"])
        assert unconfirmed.exit_code == 2 and "--yes" in unconfirmed.output, unconfirmed.output
        rolled = CliRunner().invoke(app, ["rollback", execution, *db, "--json", "--yes"])
        assert rolled.exit_code == 0, rolled.output
        report = json.loads([x for x in rolled.output.splitlines() if x.startswith("{")][-1])
        assert report["steps"][0]["status"] == "SUCCESS"
        assert checksums(engine) == before

        with engine.begin() as conn:
            conn.execute(text("UPDATE users SET name = 'changed'"))
        restored = CliRunner().invoke(app, ["backup", "restore", backups[0]["backup_id"], "--site", "CN",
                                            "--tables", "users", *db, "--yes"])
        assert restored.exit_code == 0, restored.output
        assert checksums(engine) == before

        data_file = next((Path(backups[0]["path"]) / "db").glob("*users*"))
        data_file.write_bytes(data_file.read_bytes()[:-10])
        corrupted = CliRunner().invoke(app, ["backup", "restore", backups[0]["backup_id"], "--site", "CN", *db,
                                             "--yes"])
        assert corrupted.exit_code == 1
        assert "sha256" in corrupted.output.lower() or "corrupt" in corrupted.output.lower()
        missing = CliRunner().invoke(app, ["backup", "restore", "NO-SUCH-BACKUP", "--site", "CN", *db, "--yes"])
        assert missing.exit_code == 2
    finally:
        engine.dispose()
