"""``run_doctor()`` against a real Prefect server: all green on a healthy setup; a broken part is named."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import MARIADB_ROOT, PROJECT
from tests.deployments.sites_helpers import write_tree
from tests.prefect_server import free_port, prefect_server

pytestmark = pytest.mark.prefect_server

STEPS = {"pre_business_check": [{"id": "ping", "class_name": "ServiceHealthCheckStep", "databases": ["ft_db"]}]}
# run in its own process: the embedded ClickHouse (chdb) allows one path per process
DOCTOR = """
import json, sys
from tasks.execution.doctor import run_doctor
checks = run_doctor(min_free_bytes=int(sys.argv[1]))
print(json.dumps({c.name: [c.ok, c.detail] for c in checks}))
"""


def doctor(env: Mapping[str, str], min_free_bytes: int = 1 << 30) -> dict[str, tuple[bool, str]]:
    result = subprocess.run([sys.executable, "-c", DOCTOR, str(min_free_bytes)], cwd=PROJECT, env=dict(env),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return {name: (ok, detail) for name, (ok, detail) in json.loads(result.stdout.strip().splitlines()[-1]).items()}


def failing(checks: Mapping[str, tuple[bool, str]]) -> list[str]:
    return [name for name, (ok, _) in checks.items() if not ok]


@contextmanager
def limited_account(url: str) -> Iterator[str]:
    """An account with rights on one business database only."""
    database = url.rsplit("/", 1)[1].split("?")[0]
    user = f"doc_{database[-8:]}"
    admin = create_engine(MARIADB_ROOT + "/test")
    with admin.begin() as conn:
        conn.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'doctor-pw'"))
        conn.execute(text(f"GRANT ALL ON `{database}`.* TO '{user}'@'%'"))
    try:
        yield f"mysql+pymysql://{user}:doctor-pw@127.0.0.1:3306/{database}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP USER '{user}'@'%'"))
        admin.dispose()


def test_the_doctor_passes_on_a_healthy_setup_and_names_each_broken_part(tmp_path: Path,
                                                                          mariadb_database: str) -> None:
    tree = write_tree(tmp_path, STEPS, {})
    with prefect_server(tmp_path / "prefect") as server:
        env = {**server.env, **tree, "FT_UPGRADE_HOME": str(tmp_path / "home"),
               "FT_UPGRADE_REDIS_URL": "redis://127.0.0.1:6379/0", "FT_UPGRADE_DB_FT_DB": mariadb_database}
        healthy = doctor(env)
        assert failing(healthy) == [], healthy
        assert list(healthy) == ["prefect_api", "metadata_db", "log_store", "redis", "marker_schema", "configs",
                                 "disk"]
        assert "healthy" in healthy["prefect_api"][1] and "PING answered" in healthy["redis"][1]
        assert healthy["marker_schema"][1] == "statement markers in schema 'ft_upgrade' on ft_db"

        with limited_account(mariadb_database) as limited:  # may not create the tool's own schema
            denied = doctor({**env, "FT_UPGRADE_DB_FT_DB": limited, "FT_UPGRADE_MARKER_SCHEMA": "ft_upgrade_doctor"})
        assert failing(denied) == ["marker_schema"], denied
        assert "cannot use schema 'ft_upgrade_doctor'" in denied["marker_schema"][1]

        broken_redis = doctor({**env, "FT_UPGRADE_REDIS_URL": "redis://:hunter22@127.0.0.1:1/0"})
        assert failing(broken_redis) == ["redis"], broken_redis
        assert "hunter22" not in broken_redis["redis"][1]

        (tmp_path / "configs" / "317600.json").write_text(json.dumps({"version": "317600", "upgrade_steps": {
            "pre_business_check": [{"id": "x", "class_name": "NoSuchStep"}]}}), encoding="utf-8")
        broken_config = doctor(env)
        assert failing(broken_config) == ["configs"], broken_config
        assert "NoSuchStep" in broken_config["configs"][1]
        (tmp_path / "configs" / "317600.json").unlink()

        full_disk = doctor(env, min_free_bytes=1 << 60)
        assert failing(full_disk) == ["disk"] and "GiB needed" in full_disk["disk"][1], full_disk

        no_redis = doctor({k: v for k, v in env.items() if k != "FT_UPGRADE_REDIS_URL"})
        assert failing(no_redis) == [] and no_redis["redis"][1].startswith("skipped: "), no_redis

    server_gone = doctor({**env, "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"})
    assert "prefect_api" in failing(server_gone), server_gone
