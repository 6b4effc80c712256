"""Shared fixtures: offline Prefect with an isolated home, real MariaDB databases, config folders."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="ft-upgrade-tests-"))
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_HOME"] = str(_HOME / "prefect")
os.environ["FT_UPGRADE_HOME"] = str(_HOME / "ft-upgrade")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
# the FT services every test site lists: a port where nothing listens (a refused connection: stopped), so
# startup_pre_process's services_stopped holds; a site profile's services are probed beside it
os.environ.setdefault("FT_UPGRADE_SERVICES", '{"ft-test-stopped": "http://127.0.0.1:1/actuator/health"}')
os.environ.setdefault("FT_UPGRADE_SERVICE_PROBE_SECONDS", "0.5")
# an embedded log store's engine process (blocks.clickhouse_process) ends soon after its last client
os.environ.setdefault("FT_UPGRADE_CLICKHOUSE_IDLE_SECONDS", "2")

MARIADB_ROOT = os.environ.get("FT_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")
KEPT = ("FT_UPGRADE_HOME", "FT_UPGRADE_SERVICES", "FT_UPGRADE_SERVICE_PROBE_SECONDS")
PROJECT = Path(__file__).resolve().parents[1]
# fixtures that serve several capability folders (Redis namespaces, fresh databases)
pytest_plugins = ["tests.support.fixtures"]


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A real, isolated Prefect API for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def mariadb_database() -> Iterator[str]:
    """A fresh database on the local MariaDB; yields its SQLAlchemy URL and drops it after."""
    from sqlalchemy import create_engine, text

    name = f"ft_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(MARIADB_ROOT + "/test")
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        yield f"{MARIADB_ROOT}/{name}?charset=utf8mb4"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture
def isolated_env(tmp_path: Path) -> Iterator[Path]:
    """A private FT_UPGRADE_HOME (SQLite store); FT_UPGRADE_* set by the CLI in-process are undone after."""
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith("FT_UPGRADE_") and key not in KEPT:
            del os.environ[key]
    os.environ["FT_UPGRADE_HOME"] = str(tmp_path / "home")
    try:
        yield tmp_path
    finally:
        os.environ.clear()
        os.environ.update(saved)
