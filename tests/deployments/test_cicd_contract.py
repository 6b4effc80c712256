"""The CICD script's exit codes 0-3, each provoked for real against a Prefect server and a site worker (exit 4, a run
waiting for a decision in the UI: test_decide_in_ui.py).

A completed cutpoint called again exits 0 (nothing executed); a refused one (precondition missing) exits 2.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deployments.sites_helpers import cicd, deploy_sites, site_env, write_tree
from tests.prefect_server import free_port, prefect_server

pytestmark = pytest.mark.prefect_server

STEPS = {
    "pre_business_check": [{"id": "ping_ft", "class_name": "ServiceHealthCheckStep", "databases": ["ft_db"]}],
    "startup_pre_process": [{"id": "sql_001", "class_name": "StartupPreProcessStep", "sql_scripts": ["bad.sql"]}],
}


def test_cicd_exits_0_on_success_1_on_a_failed_step_2_on_bad_input_and_3_when_the_server_is_unreachable(
        tmp_path: Path, mariadb_database: str) -> None:
    env = write_tree(tmp_path, STEPS, {"bad.sql": "CREATE TABLE t1 (n INT);\nINSERT INTO missing_table VALUES (1);\n"})
    env.update(site_env(tmp_path, "CN", mariadb_database))
    env["FT_UPGRADE_DECIDE_IN_UI"] = "false"  # a failed statement ends the run (exit 4, the form: test_decide_in_ui)
    with prefect_server(tmp_path / "prefect") as server:
        deployed = deploy_sites(server, "CN")
        assert "pool ft-upgrade-cn" in deployed and "startup-pre-process-cn" in deployed
        with server.worker("ft-upgrade-cn", extra_env=env, name="cn"):
            code, out = cicd(server.env, "pre_business_check", "CN")
            assert code == 0, out
            assert "[FT升级报告] 前置业务检查" in out
            assert "pre_business_check at site CN: Completed" in out

            code, out = cicd(server.env, "pre_business_check", "CN")  # CICD retried the job: nothing runs again
            assert code == 0 and "already completed by EXEC_" in out and "nothing executed" in out, out

            code, out = cicd(server.env, "startup_pre_process", "CN")  # pre_upgrade_process never ran
            assert code == 2 and "REFUSED" in out and "pre_upgrade_process has not completed" in out, out

            code, out = cicd(server.env, "startup_pre_process", "CN", "--waive", "pre_upgrade_process", "--reason",
                             "test: no backup needed")
            assert code == 1, out
            assert "missing_table" in out
            execution = re.search(r"execution id: (\S+)", out)
            assert execution and execution.group(1) != "-", out
            assert f"ft-upgrade resume {execution.group(1)}" in out
            assert "press Retry" in out

        code, out = cicd(server.env, "startup_pre_process", "CN", target="3.17.x")
        assert code == 2 and "invalid version '3.17.x'" in out, out
        code, out = cicd(server.env, "startup_pre_process", "CN", source="3.17.5", target="3.17.0")
        assert code == 2 and "not newer" in out, out
        code, out = cicd(server.env, "startup_pre_process", "XX")
        assert code == 2 and "deployment 'startup_pre_process/startup-pre-process-xx' not found" in out, out

    closed = {**server.env, "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}
    code, out = cicd(closed, "startup_pre_process", "CN", "--api-attempts", "2", "--api-wait", "0.1")
    assert code == 3, out
    assert "Prefect API unreachable" in out
