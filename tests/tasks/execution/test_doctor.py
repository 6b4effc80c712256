"""``ft-upgrade doctor --site CN`` in a new shell (no PREFECT_API_URL): what it could not check says "skipped"
and why (the site's blocks are on a Prefect server it was not told of), never "ok"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT

FT_UPGRADE = str(Path(sys.executable).parent / "ft-upgrade")


def new_shell(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "FT_UPGRADE_"))}
    return {**env, "FT_UPGRADE_HOME": str(tmp_path / "home"), "PREFECT_HOME": str(tmp_path / "prefect")}


def test_doctor_for_a_site_without_a_prefect_api_says_skipped_and_why(tmp_path: Path) -> None:
    result = subprocess.run([FT_UPGRADE, "doctor", "--site", "CN", "--json"], cwd=PROJECT, env=new_shell(tmp_path),
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout.strip().splitlines()[-1])["checks"]}
    assert {name: c["status"] for name, c in checks.items()} == {
        "prefect_api": "skipped", "metadata_db": "ok", "log_store": "ok", "redis": "skipped",
        "marker_schema": "skipped", "configs": "ok", "disk": "ok"}
    assert checks["prefect_api"]["detail"].startswith("skipped: PREFECT_API_URL is not set, so no server was checked")
    assert checks["redis"]["detail"] == ("skipped: site CN's blocks were not read: PREFECT_API_URL is not set (its "
                                         "'cn-redis' block), and FT_UPGRADE_REDIS_URL is not set")
    assert checks["marker_schema"]["detail"] == (
        "skipped: site CN's blocks were not read: PREFECT_API_URL is not set (its ft_db and middle_db blocks) and "
        "FT_UPGRADE_DB_FT_DB is not set")
    assert "site CN's blocks were not read" in checks["metadata_db"]["detail"]  # checked: the default store

    text = subprocess.run([FT_UPGRADE, "doctor", "--site", "CN"], cwd=PROJECT, env=new_shell(tmp_path),
                          capture_output=True, text=True, timeout=180).stdout
    lines = {line.split()[1].rstrip(":"): line.split()[0] for line in text.splitlines() if line.strip()}
    assert lines == {"prefect_api": "skipped", "metadata_db": "ok", "log_store": "ok", "redis": "skipped",
                     "marker_schema": "skipped", "configs": "ok", "disk": "ok"}, text
