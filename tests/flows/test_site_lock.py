"""One upgrade per site at a time: a busy site refuses a second run, other sites go on, a dead holder frees it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import insert
from typer.testing import CliRunner

from flows.cli import app
from tasks.core.clock import utcnow
from tasks.core.errors import SiteBusy
from tasks.store.schema import site_lock as site_lock_table
from tasks.store.site_lock import site_lock
from tests.helpers import open_store

pytestmark = pytest.mark.usefixtures("prefect_api")


def run(isolated_env: Path, site: str, url: str) -> tuple[int, str]:
    configs = isolated_env / "configs"
    configs.mkdir(exist_ok=True)
    (configs / "317500.json").write_text(json.dumps({"version": "317500", "upgrade_steps": {"pre_business_check": [
        {"id": "ping", "class_name": "ServiceHealthCheckStep", "databases": ["ft_db"]}]}}), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "pre_business_check", "--from", "3.17.0", "--to", "3.17.5", "--site", site,
                                      "--configs", str(configs), "--db", f"ft_db={url}"])
    return result.exit_code, " ".join(result.output.split())


def test_a_second_run_for_a_busy_site_is_refused_naming_the_holder(isolated_env: Path, mariadb_database: str) -> None:
    store = open_store(None)
    try:
        with site_lock(store.engine, "CN", holder="startup_pre_process 3.17.0→3.17.5 (flow run X)"):
            code, output = run(isolated_env, "CN", mariadb_database)
            assert code == 1
            assert "site CN is being upgraded by startup_pre_process 3.17.0→3.17.5 (flow run X)" in output
            other, _ = run(isolated_env, "US", mariadb_database)
            assert other == 0, "a different site is not held up"
        code, _ = run(isolated_env, "CN", mariadb_database)
        assert code == 0, "the lock is free once its holder is done"
    finally:
        store.close()


def test_a_lock_whose_holder_died_is_taken_over(isolated_env: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    store = open_store(None)
    try:
        import socket

        with store.engine.begin() as conn:
            conn.execute(insert(site_lock_table).values(
                site_id="JP", holder="a killed worker", host=socket.gethostname(), pid=int(dead.stdout),
                acquired_time=utcnow(), heartbeat_time=utcnow()))
        with site_lock(store.engine, "JP", holder="me"), pytest.raises(SiteBusy, match="being upgraded by me"), \
                site_lock(store.engine, "JP", holder="someone else"):
            pass
    finally:
        store.close()
