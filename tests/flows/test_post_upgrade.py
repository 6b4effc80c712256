"""The post_upgrade cutpoint end to end through the CLI, on a real Prefect API, MariaDB, Redis and files.

The seed's ``com.ft.upgrade.steps.PostUpgradeProcessStep`` runs the migration, the log cleanup and
the resource release. The first run stops on a row the transform cannot store; after the operator
fixes it, running the same command again continues the same execution from the migration's
checkpoint and finishes the other parts.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine
from typer.testing import CliRunner

import tasks.composite.post_upgrade  # noqa: F401  (registers the steps)
from flows.cli import app
from tasks.steps.registry import resolve_step_class
from tests.support.files import aged
from tests.support.orders import assert_identical, compare, create_tables, task

pytestmark = [pytest.mark.usefixtures("prefect_api"), pytest.mark.mariadb]
REDIS_URL = "redis://127.0.0.1:6379/0"


def write_config(folder: Path, step: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = {"version": "317500", "dependencies": {"min_source_version": "3.17.0"},
            "upgrade_steps": {"post_upgrade": [step]}}
    (folder / "317500.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return folder


def run_cli(configs: Path, url: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, ["run", "post_upgrade", "--from", "3.17.0", "--to", "3.17.5", "--site", "CN",
                                      "--json", "--configs", str(configs), "--db", f"ft_db={url}",
                                      "--waive", "startup_post_process", "--reason", "test: this cutpoint alone"])
    lines = [line for line in result.output.splitlines() if line.startswith("{")]
    assert lines, result.output
    return result.exit_code, json.loads(lines[-1])


def test_the_seed_step_name_resolves_to_the_composite() -> None:
    found = resolve_step_class("com.ft.upgrade.steps.PostUpgradeProcessStep")
    assert found.qualified_name == "tasks.composite.post_upgrade.PostUpgradeStep"


def test_post_upgrade_stopped_by_a_bad_row_continues_from_its_checkpoint_when_run_again(
        isolated_env: Path, mariadb_database: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FT_UPGRADE_REDIS_URL", REDIS_URL)
    create_tables(engine, 20_000)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE orders SET amount = NULL WHERE id = 12001")
    logs, work = isolated_env / "logs", isolated_env / "work"
    aged(logs / "ft-manager.2024-01-01.log", 20)
    aged(logs / "ft-manager.log", 2)
    aged(work / "ft-upgrade-3.17.5-unpack" / "ft-manager.jar", 0, b"j" * 4096)
    namespace = f"ft-test-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(REDIS_URL)
    client.set(f"{namespace}:cache:3.17.0:order:1", "old")
    client.set(f"{namespace}:cache:3.17.5:order:1", "new")
    configs = write_config(isolated_env / "configs", {
        "id": "post_upgrade_process_001", "name": "升级后处理", "retry_count": 0, "timeout": 600,
        "class_name": "com.ft.upgrade.steps.PostUpgradeProcessStep",
        "data_migration": {"tasks": [task()], "max_rows_per_second": None, "initial_chunk_rows": 1_000,
                           "max_chunk_rows": 1_000, "min_chunk_rows": 1_000, "retries": 1, "retry_wait_seconds": 0.05},
        "log_cleanup": {"rules": [{"folder": str(logs), "after_days": 7}], "event_log_retention_days": 30},
        "resource_release": {"paths": [f"{work}/ft-upgrade-{{target_version}}-*"],
                             "redis_patterns": [f"{namespace}:cache:{{source_version}}:*"]},
    })
    try:
        code, failed = run_cli(configs, mariadb_database)
        assert code == 1 and failed["status"] == "FAILED"
        error = failed["step_results"][0]["error"]
        assert "data_migration: migration orders_v2: chunk after key 12000 failed 2 times" in error
        assert compare(engine)["target"] == 9_000
        assert (logs / "ft-manager.2024-01-01.log").exists(), "later parts wait until the migration succeeds"

        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE orders SET amount = 3.25 WHERE id = 12001")
        code, done = run_cli(configs, mariadb_database)
        assert code == 0 and done["status"] == "SUCCESS"
        assert done["execution_id"] == failed["execution_id"] and done["resume_count"] == 1
        assert_identical(engine)
        summary = done["step_results"][0]["summary"]
        assert "数据异步迁移：完成 1 个迁移任务，本次复制 6,000 行" in summary
        assert "日志清理：已归档或删除 1 个文件" in summary
        assert "资源释放：释放 1 个文件，4,096 字节，1 个 Redis 键" in summary
        assert sorted(p.name for p in logs.rglob("*.log*")) == ["ft-manager.2024-01-01.log.gz", "ft-manager.log"]
        assert not (work / "ft-upgrade-3.17.5-unpack").exists()
        assert [k.decode() for k in client.scan_iter(match=f"{namespace}:*")] == [f"{namespace}:cache:3.17.5:order:1"]

        md = CliRunner().invoke(app, ["report", done["execution_id"], "--format", "md"])
        assert "### 数据异步迁移" in md.output
        assert "| orders_v2 | insert_select | DONE | 15,000 / 15,000 | 6,000 |" in md.output
        assert "键 12000（第 2 次运行）" in md.output
        assert "### 资源释放" in md.output
    finally:
        for key in client.scan_iter(match=f"{namespace}:*"):
            client.delete(key)
        client.close()
