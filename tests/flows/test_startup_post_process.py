"""startup_post_process end to end through the CLI: real Prefect API, MariaDB, Redis and an HTTP service."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

import tasks.composite.post_process  # noqa: F401  (registers the steps)
from flows.cli import app
from tasks.cache.rebuild import read
from tests.support.builders import Route, http_service, manifest_for, run_sql, write_zip
from tests.support.fixtures import REDIS_URL

pytestmark = pytest.mark.usefixtures("prefect_api")

FILES = {"images/logo.png": b"\x89PNG\r\n\x1a\nlogo", "data/regions.csv": b"id,name\n1,East\n2,West\n"}


def write_config(folder: Path, steps: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = {"version": "317500", "dependencies": {"min_source_version": "3.17.0"},
            "upgrade_steps": {"startup_post_process": steps}}
    (folder / "317500.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return folder


def run_cli(configs: Path, db: str, service_url: str) -> tuple[int, dict[str, Any]]:
    os.environ["FT_UPGRADE_SERVICES"] = json.dumps({"ft-manager": service_url + "/health"})  # started and healthy
    result = CliRunner().invoke(app, ["run", "startup_post_process", "--from", "3.17.0", "--to", "3.17.5", "--site",
                                      "CN", "--json", "--configs", str(configs), "--db", f"ft_db={db}",
                                      "--waive", "startup_pre_process", "--reason", "test: this cutpoint alone"])
    lines = [line for line in result.output.splitlines() if line.startswith("{")]
    assert lines, result.output
    return result.exit_code, json.loads(lines[-1])


@pytest.fixture
def site_db(mariadb_database: str) -> str:
    run_sql(mariadb_database,
            "CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(40))",
            "INSERT INTO users SELECT seq, CONCAT('user', seq) FROM seq_1_to_2000",
            "CREATE TABLE orders (id INT PRIMARY KEY, customer INT, status VARCHAR(10))",
            "INSERT INTO orders SELECT seq, seq % 100, 'PAID' FROM seq_1_to_5000",
            "CREATE TABLE region (id INT PRIMARY KEY, name VARCHAR(20))")
    return mariadb_database


def post_process_step(namespace: str, service_url: str) -> dict[str, Any]:
    """The seed's single step, with every part configured."""
    return {
        "id": "startup_post_process_001", "name": "启动后处理", "is_common": True, "timeout": 900, "retry_count": 0,
        "class_name": "com.ft.upgrade.steps.StartupPostProcessStep",
        "resource_packages": {"packages": [{"file": "ft-res-{target_version}.zip", "target_dir": "static_dir",
                                            "subdir": "ft", "tables": [{"file": "data/regions.csv",
                                                                        "database": "ft_db", "table": "region"}]}],
                              "retry_wait_seconds": 0},
        "cache": {"namespace": namespace, "drain_seconds": 0.1,
                  "datasets": [{"name": "users", "database": "ft_db", "query": "SELECT id, name FROM users",
                                "key": "user:{id}", "type": "hash"}]},
        "indexes": {"database": "ft_db", "tables": [{"table": "orders", "indexes": [
            {"name": "ix_customer", "columns": ["customer"]}]}],
                    "probes": [{"name": "customer orders", "sql": "SELECT COUNT(*) FROM orders WHERE customer = 7"}]},
        "health": {"databases": ["ft_db"], "endpoints": [{"name": "ft-manager", "url": service_url + "/health"}]},
        "smoke": {"http": [{"name": "health", "url": service_url + "/health", "expect_json": {"status": "UP"}}],
                  "sql": [{"name": "regions loaded", "database": "ft_db", "query": "SELECT COUNT(*) FROM region",
                           "expect": 2}]},
    }


def test_the_seeds_startup_post_process_step_runs_every_part_through_the_cli(
        isolated_env: Path, site_db: str, namespace: str, redis_client: redis.Redis) -> None:
    os.environ["FT_UPGRADE_REDIS_URL"] = REDIS_URL
    (isolated_env / "home" / "package_dir").mkdir(parents=True)
    write_zip(isolated_env / "home" / "package_dir" / "ft-res-3.17.5.zip", FILES)
    with http_service({"GET /health": Route(200, {"status": "UP"})}) as service:
        configs = write_config(isolated_env / "configs", [
            post_process_step(namespace, service.url),
            {"id": "smoke_again", "class_name": "SmokeTestStep", "dependencies": ["startup_post_process_001"],
             "sql": [{"name": "users", "database": "ft_db", "query": "SELECT COUNT(*) FROM users", "expect": 2000}]},
        ])
        code, report = run_cli(configs, site_db, service.url)
    assert code == 0, report
    assert report["status"] == "SUCCESS"
    steps = {s["step_id"]: s for s in report["step_results"]}
    assert steps["smoke_again"]["status"] == "SUCCESS"
    assert (isolated_env / "home" / "static_dir" / "ft" / "images" / "logo.png").read_bytes() == FILES[
        "images/logo.png"]
    assert redis_client.hgetall(_key(redis_client, namespace, "user:7")) == {b"id": b"7", b"name": b"user7"}
    assert read(redis_client, namespace, "missing") is None
    markdown = CliRunner().invoke(app, ["report", report["execution_id"], "--format", "md"]).output
    for title in ("资源包导入 — SUCCESS", "缓存重建 — SUCCESS", "索引优化 — SUCCESS", "服务健康检查 — SUCCESS",
                  "冒烟测试 — SUCCESS"):
        assert title in markdown


def _key(client: redis.Redis, namespace: str, key: str) -> str:
    return f"{namespace}:{client.get(namespace + ':current').decode()}:{key}"


def test_a_rejected_package_fails_the_run_and_a_fixed_package_resumes_it(
        isolated_env: Path, site_db: str, namespace: str, redis_client: redis.Redis) -> None:
    os.environ["FT_UPGRADE_REDIS_URL"] = REDIS_URL
    packages = isolated_env / "home" / "package_dir"
    packages.mkdir(parents=True)
    write_zip(packages / "ft-res-3.17.5.zip", FILES, manifest=manifest_for(FILES, version="3.17.4"))
    with http_service({"GET /health": Route(200, {"status": "UP"})}) as service:
        configs = write_config(isolated_env / "configs", [post_process_step(namespace, service.url)])
        code, failed = run_cli(configs, site_db, service.url)
        assert code == 1
        assert failed["status"] == "FAILED"
        assert "package is for version 3.17.4, the target is 3.17.5" in json.dumps(failed, ensure_ascii=False)
        assert redis_client.get(namespace + ":current") is None, "later parts did not run"
        write_zip(packages / "ft-res-3.17.5.zip", FILES)
        code, resumed = run_cli(configs, site_db, service.url)
    assert code == 0, resumed
    assert resumed["execution_id"] == failed["execution_id"]
    assert redis_client.get(namespace + ":current") is not None
