"""The operator's view: the cutpoint report renders in the Prefect UI (Debian's headless Chromium)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import PROJECT
from tests.prefect_server import prefect_server

pytestmark = pytest.mark.prefect_server

CHROMIUM = shutil.which("chromium")
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1200",
                "--virtual-time-budget=20000"]


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run([CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (deployments/install.sh installs it)")
def test_the_markdown_report_renders_in_the_prefect_ui(tmp_path: Path, mariadb_database: str) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "317500.json").write_text(json.dumps({"version": "317500", "upgrade_steps": {"pre_business_check": [
        {"id": "ping_ft", "name": "数据库连通性", "class_name": "ServiceHealthCheckStep", "databases": ["ft_db"]}]}}),
        encoding="utf-8")
    with prefect_server(tmp_path / "prefect", extra_env={"PREFECT_UI_ENABLED": "true"}) as server:
        env = {**server.env, "FT_UPGRADE_HOME": str(tmp_path / "home")}
        run = subprocess.run([str(Path(sys.executable).parent / "ft-upgrade"), "run", "pre_business_check", "--from",
                              "3.17.0", "--to", "3.17.5", "--site", "CN", "--configs", str(configs), "--db",
                              f"ft_db={mariadb_database}"], cwd=PROJECT, env=env, capture_output=True, text=True,
                             timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
        found = httpx.post(f"{server.api_url}/artifacts/filter",
                           json={"artifacts": {"key": {"any_": ["ft-cn-pre-business-check"]}}}, timeout=30).json()
        url = server.api_url.removesuffix("/api") + f"/artifacts/artifact/{found[0]['id']}"
        dom = chromium("--dump-dom", url, profile=tmp_path / "chrome").stdout
        assert "[FT升级报告] 前置业务检查" in dom
        assert "ping_ft" in dom and "SUCCESS" in dom
        shot = tmp_path / "operator-view.png"
        chromium(f"--screenshot={shot}", url, profile=tmp_path / "chrome")
        assert shot.exists() and shot.stat().st_size > 20_000
        keep = PROJECT / ".ft-upgrade" / "operator-view.png"  # for a person to look at after the run
        keep.parent.mkdir(exist_ok=True)
        shutil.copy(shot, keep)
