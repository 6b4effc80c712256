"""The five deployments through a real Prefect server and process worker, as CICD runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.prefect_server import prefect_server

pytestmark = pytest.mark.prefect_server

CONFIG = {
    "version": "317500",
    "dependencies": {"min_source_version": "3.17.0"},
    "upgrade_steps": {
        "pre_business_check": [
            {"id": "ping_ft", "class_name": "ServiceHealthCheckStep", "databases": ["ft_db"], "timeout": 60},
            {"id": "ping_middle_eu", "class_name": "ServiceHealthCheckStep", "databases": ["middle_db"],
             "is_common": False, "site_ids": ["EU"]},
        ],
    },
}


def test_deployment_run_watch_exits_0_on_success_and_non_zero_on_failure_and_the_report_is_an_artifact(
        tmp_path: Path, mariadb_database: str) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "317500.json").write_text(json.dumps(CONFIG), encoding="utf-8")
    worker_env = {"FT_UPGRADE_CONFIGS": str(configs), "FT_UPGRADE_HOME": str(tmp_path / "ft-home"),
                  "FT_UPGRADE_DB_FT_DB": mariadb_database,
                  "FT_UPGRADE_DB_MIDDLE_DB": "mysql+pymysql://root:pw@127.0.0.1:1/unreachable"}
    with prefect_server(tmp_path / "prefect") as server:
        server.cli("work-pool", "create", "ft-upgrade", "--type", "process")
        deployed = server.cli("deploy", "--all", "--prefect-file", "deployments/prefect.yaml")
        for name in ("pre-business-check", "pre-upgrade-process", "startup-pre-process", "startup-post-process",
                     "post-upgrade"):
            assert name in deployed.stdout + deployed.stderr
        with server.worker("ft-upgrade", extra_env=worker_env):
            ok = server.cli("deployment", "run", "pre_business_check/pre-business-check",
                            "-p", "source_version=3.17.0", "-p", "target_version=3.17.5", "-p", "site_id=CN",
                            "--watch", check=False)
            assert ok.returncode == 0, ok.stdout + ok.stderr
            assert "Completed" in ok.stdout + ok.stderr

            artifact = server.cli("artifact", "inspect", "ft-cn-pre-business-check")
            assert "[FT升级报告] 前置业务检查" in artifact.stdout
            assert "SUCCESS" in artifact.stdout

            bad = server.cli("deployment", "run", "pre_business_check/pre-business-check",
                             "-p", "source_version=3.17.0", "-p", "target_version=3.17.5", "-p", "site_id=EU",
                             "--watch", check=False)
            assert bad.returncode != 0, bad.stdout + bad.stderr
            failed = server.cli("artifact", "inspect", "ft-eu-pre-business-check")
            assert "FAILED" in failed.stdout and "ping_middle_eu" in failed.stdout
            assert "pw@" not in failed.stdout
