"""Helpers of the per-site topology tests: site configs, deploy_sites.py and cicd.py as CICD runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.exc import OperationalError

from tasks.store.schema import site_lock
from tests.conftest import PROJECT
from tests.prefect_server import PrefectServer

PYTHON = sys.executable


def write_tree(root: Path, upgrade_steps: dict[str, list[dict[str, object]]],
               scripts: Mapping[str, str]) -> dict[str, str]:
    """A configs folder and SQL root under ``root``; returns the FT_UPGRADE_* variables pointing at them."""
    (root / "configs").mkdir(parents=True, exist_ok=True)
    (root / "sql").mkdir(exist_ok=True)
    (root / "configs" / "317500.json").write_text(
        json.dumps({"version": "317500", "upgrade_steps": upgrade_steps}), encoding="utf-8")
    for name, body in scripts.items():
        (root / "sql" / name).write_text(body, encoding="utf-8")
    return {"FT_UPGRADE_CONFIGS": str(root / "configs"), "FT_UPGRADE_SQL_ROOT": str(root / "sql")}


def site_env(root: Path, site: str, ft_db: str) -> dict[str, str]:
    """What the site's worker host has: its own home (metadata store), its database; polls every second."""
    home = root / f"home-{site.lower()}"
    return {"FT_UPGRADE_HOME": str(home), "FT_UPGRADE_DB_FT_DB": ft_db, "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1"}


def deploy_sites(server: PrefectServer, *sites: str) -> str:
    args = [a for site in sites for a in ("--site", site)]
    result = subprocess.run([PYTHON, "deployments/deploy_sites.py", *args], cwd=PROJECT, env=server.env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def cicd_args(cutpoint: str, site: str, *extra: str, source: str = "3.17.0", target: str = "3.17.5") -> list[str]:
    return [PYTHON, "deployments/cicd.py", "--cutpoint", cutpoint, "--from", source, "--to", target, "--site", site,
            f"--deployment-suffix=-{site.lower()}", "--poll", "1", "--timeout", "100", *extra]


def cicd(env: Mapping[str, str], cutpoint: str, site: str, *extra: str, **versions: str) -> tuple[int, str]:
    """Run the CICD script to its end; returns (exit code, stdout + stderr)."""
    result = subprocess.run(cicd_args(cutpoint, site, *extra, **versions), cwd=PROJECT, env=dict(env),
                            capture_output=True, text=True, timeout=150)
    return result.returncode, result.stdout + result.stderr


def wait_for_lock(home: Path, site: str, timeout: float = 60) -> str:
    """The holder of the site's lock in its metadata store, once the first run has taken it."""
    engine = create_engine(f"sqlite:///{home / 'metadata.db'}")
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if (home / "metadata.db").exists():
                try:
                    with engine.connect() as conn:
                        holder = conn.execute(select(site_lock.c.holder).where(site_lock.c.site_id == site)).scalar()
                except OperationalError:  # the first run creates the schema
                    holder = None
                if holder:
                    return str(holder)
            time.sleep(0.3)
    finally:
        engine.dispose()
    raise AssertionError(f"site {site} was never locked")
