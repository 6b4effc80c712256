"""The shared deployments of ``prefect.yaml`` (the site a parameter) alert like a site's own: a run tags itself
``site:<id>`` when it starts, and ``deploy_sites.py --alerts-only`` makes the site's automations. A run that
fails before its plan exists (a broken config on the worker) is reported twice at a local receiver: by the
site's "ended badly" automation and by the run's own message. Real Prefect server and process worker."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PROJECT
from tests.deployments.sites_helpers import PYTHON
from tests.deployments.test_alerts import receiver, wait_for_message  # noqa: F401 - the fixture
from tests.prefect_server import prefect_server

pytestmark = pytest.mark.prefect_server


def test_a_shared_deployment_run_that_fails_before_its_plan_alerts_the_site_and_tells_its_blocks(
        tmp_path: Path, receiver: str) -> None:  # noqa: F811 - the fixture
    sites, configs = tmp_path / "sites", tmp_path / "configs"
    sites.mkdir()
    configs.mkdir()
    (configs / "317500.json").write_text('{"version": "317500",\n  "upgrade_steps": [}', encoding="utf-8")
    (sites / "sh.json").write_text(json.dumps({
        "site_id": "SH",
        "notifications": {"sh-dingtalk": {"type": "dingtalk", "token": "0123abcdsh", "endpoint": f"{receiver}/robot"}},
        "alerts": {"notify": ["sh-dingtalk"]}}), encoding="utf-8")
    # as deployments/server.env.example: the tag a run sets when it starts is in its later state events
    with prefect_server(tmp_path / "prefect", extra_env={"PREFECT_SERVER_EVENTS_RELATED_RESOURCE_CACHE_TTL": "PT0S"}) \
            as server:
        server.cli("work-pool", "create", "ft-upgrade", "--type", "process")
        server.cli("deploy", "--all", "--prefect-file", "deployments/prefect.yaml")
        server.cli_ft("blocks", "apply", "--file", str(sites / "sh.json"))
        alerts = subprocess.run([PYTHON, "deployments/deploy_sites.py", "--alerts-only", "--site", "SH",
                                 "--sites-dir", str(sites)], cwd=PROJECT, env=server.env, capture_output=True,
                                text=True, timeout=120)
        assert alerts.returncode == 0, alerts.stdout + alerts.stderr
        assert "site SH: automations ft-upgrade alert SH: ended badly" in alerts.stdout, alerts.stdout
        worker_env = {"FT_UPGRADE_CONFIGS": str(configs), "FT_UPGRADE_HOME": str(tmp_path / "home"),
                      "PREFECT_WORKER_QUERY_SECONDS": "1"}
        with server.worker("ft-upgrade", extra_env=worker_env):
            run = server.cli("deployment", "run", "pre_business_check/pre-business-check", "-p",
                             "source_version=3.17.0", "-p", "target_version=3.17.5", "-p", "site_id=SH", "--watch",
                             check=False, timeout=180)
            assert run.returncode != 0, run.stdout + run.stderr
            _, alert = wait_for_message("【FT 升级告警】站点 SH")  # the site's automation: the run is Failed
            _, own = wait_for_message("【FT 升级】站点 SH pre_business_check")  # the run's own message
        tags = server.python("""
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as client:
    print(sorted(client.read_flow_runs()[0].tags))
""")
    assert "'site:SH'" in tags, tags
    assert alert["markdown"]["title"].endswith("Failed"), alert
    text = own["markdown"]["text"]
    assert "317500.json:2:" in text and "以相同参数再次触发该切点" in text, text
