"""MariaDB stopped for 10 s in the middle of a run: retries, a clean breakpoint, and resume after restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tasks.store.breakpoints import active_breakpoint
from tests.conftest import PROJECT
from tests.services.private_mariadb import private_mariadb

pytestmark = pytest.mark.mariadb


def script(n: int = 120) -> str:
    lines = ["CREATE TABLE side (n INT NOT NULL);"]
    lines += [f"INSERT INTO side SELECT {i} FROM (SELECT SLEEP(0.05)) AS pause;" for i in range(n)]
    return "\n".join(lines) + "\n"


def test_a_database_outage_mid_run_ends_in_a_clean_breakpoint_and_resume_completes(tmp_path: Path) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "long.sql").write_text(script(), encoding="utf-8")
    with private_mariadb(tmp_path / "mariadb") as db:
        engine = create_engine(db.url + "/mysql")
        with engine.begin() as conn:
            conn.execute(text("CREATE DATABASE ft"))
        engine.dispose()
        env = {**os.environ, "FT_UPGRADE_DB_FT_DB": db.url + "/ft", "FT_UPGRADE_HOME": str(tmp_path / "home")}
        command = [sys.executable, "-m", "tests.tasks.sql.harness", "--quiet", "--sql-root", str(tmp_path / "sql"),
                   "--execution", "EXEC_OUTAGE", "--home", str(tmp_path / "home"), "long.sql"]
        proc = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "START"
        time.sleep(2.0)
        down_at = time.monotonic()
        db.stop()
        out, err = proc.communicate(timeout=60)
        failed_after = time.monotonic() - down_at
        assert proc.returncode == 1, out + err
        assert failed_after < 10, "gave up (after retrying) while the database was still down"
        report = json.loads(out.strip().splitlines()[-1])
        assert "database 'ft_db'" in report["error"] and "unreachable after 4 attempts" in report["error"]
        store = create_engine(f"sqlite:///{tmp_path / 'home' / 'metadata.db'}")
        bp = active_breakpoint(store, "EXEC_OUTAGE")
        assert bp is not None and bp.sql_file_name == "long.sql"
        time.sleep(max(0.0, 10 - (time.monotonic() - down_at)))

        db.start()
        again = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stdout + again.stderr
        engine = create_engine(db.url + "/ft")
        with engine.connect() as conn:
            counts = conn.execute(text("SELECT n, COUNT(*) FROM side GROUP BY n")).all()
        engine.dispose()
        assert sorted(n for n, _ in counts) == list(range(120))
        assert {c for _, c in counts} == {1}, "no statement ran twice across the outage"
        assert active_breakpoint(store, "EXEC_OUTAGE") is None
        store.dispose()
