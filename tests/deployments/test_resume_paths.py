"""The three ways to resume a failed startup_pre_process, through a real Prefect server and worker; then the
completed deployment run again sends nothing (MariaDB's general log is the witness).

Each site fails at the same statement (a table it needs is missing), the "operator" fixes the cause,
and the run continues at the failed statement without repeating anything that succeeded:
the Prefect UI's Retry (the flow run is set to Scheduled named AwaitingRetry), ``prefect deployment
run`` again with the same parameters, and ``ft-upgrade resume``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import MARIADB_ROOT, PROJECT
from tests.general_log import general_log
from tests.prefect_server import PrefectServer, prefect_server

pytestmark = pytest.mark.prefect_server

SCRIPT = """CREATE TABLE side (n INT NOT NULL);
INSERT INTO side VALUES (1);
INSERT INTO side SELECT 2 FROM prerequisite;
INSERT INTO side VALUES (3);
"""
CONFIG = {
    "version": "317500",
    "upgrade_steps": {"startup_pre_process": [
        {"id": "sql_001", "class_name": "StartupPreProcessStep", "sql_scripts": ["s.sql"], "timeout": 120}]},
}
_RUN = uuid.uuid4().hex[:6]  # two checkouts testing at once must not drop each other's databases
SITES = {"CN": f"ft_rp_cn_{_RUN}", "US": f"ft_rp_us_{_RUN}", "EU": f"ft_rp_eu_{_RUN}"}


def sql(database: str, statement: str) -> list[tuple[object, ...]]:
    engine = create_engine(f"{MARIADB_ROOT}/{database}")
    with engine.begin() as conn:
        result = conn.execute(text(statement))
        rows = [tuple(r) for r in result] if result.returns_rows else []
    engine.dispose()
    return rows


def run_deployment(server: PrefectServer, site: str) -> subprocess.CompletedProcess[str]:
    return server.cli("deployment", "run", "startup_pre_process/startup-pre-process", "-p", "source_version=3.17.0",
                      "-p", "target_version=3.17.5", "-p", f"site_id={site}", "-p", 'waive=["pre_upgrade_process"]',
                      "-p", "reason=test: this cutpoint alone", "--watch", check=False)


def flow_run_id(output: str) -> str:
    for line in output.splitlines():
        if "UUID:" in line:
            return line.split("UUID:")[1].strip()
    raise AssertionError(output)


def wait_for_final_state(server: PrefectServer, run_id: str, timeout: float = 180) -> str:
    """Poll the API until the (retried) flow run is in a final state; returns its type."""
    out = server.python(f"""
import asyncio, time
from prefect.client.orchestration import get_client
async def main():
    async with get_client() as client:
        deadline = time.monotonic() + {timeout}
        while time.monotonic() < deadline:
            run = await client.read_flow_run('{run_id}')
            if run.state is not None and run.state.is_final() and run.state.name != 'AwaitingRetry':
                print(run.state.type.value)
                return
            await asyncio.sleep(1)
        print('TIMEOUT')
asyncio.run(main())
""", timeout=timeout + 30)
    return out.strip().splitlines()[-1]


def test_ui_retry_redeploy_and_cli_each_resume_at_the_failed_statement(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "317500.json").write_text(json.dumps(CONFIG), encoding="utf-8")
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "s.sql").write_text(SCRIPT, encoding="utf-8")
    home = tmp_path / "ft-home"
    env = {"FT_UPGRADE_CONFIGS": str(tmp_path / "configs"), "FT_UPGRADE_SQL_ROOT": str(tmp_path / "sql"),
           "FT_UPGRADE_HOME": str(home), "FT_UPGRADE_DB_METADATA": f"sqlite:///{home / 'metadata.db'}",
           "FT_UPGRADE_DECIDE_IN_UI": "false"}  # the run ends Failed (test_decide_in_ui.py: the form instead)
    for database in SITES.values():
        sql("test", f"DROP DATABASE IF EXISTS `{database}`")
        sql("test", f"CREATE DATABASE `{database}`")
    try:
        with prefect_server(tmp_path / "prefect") as server:
            server.cli("work-pool", "create", "ft-upgrade", "--type", "process")
            server.cli("deploy", "--all", "--prefect-file", "deployments/prefect.yaml")
            for site, database in SITES.items():  # per-site database blocks on the shared server
                server.cli_ft("blocks", "apply", "--site", site, "--db", f"ft_db={MARIADB_ROOT}/{database}")
            with server.worker("ft-upgrade", extra_env=env):
                first = {site: run_deployment(server, site) for site in SITES}
                for site, result in first.items():
                    assert result.returncode != 0, f"{site}: {result.stdout}"
                    assert sql(SITES[site], "SELECT n FROM side") == [(1,)]
                for database in SITES.values():  # the operator fixes the cause
                    sql(database, "CREATE TABLE prerequisite (x INT)")
                    sql(database, "INSERT INTO prerequisite VALUES (0)")

                # 1. Prefect UI: Retry sets the failed run to Scheduled named AwaitingRetry; the worker reruns it
                cn_run = flow_run_id(first["CN"].stdout)
                server.python(f"""
import asyncio
from prefect.client.orchestration import get_client
from prefect.states import AwaitingRetry
async def main():
    async with get_client() as client:
        await client.set_flow_run_state('{cn_run}', AwaitingRetry(), force=True)
asyncio.run(main())
""")
                assert wait_for_final_state(server, cn_run) == "COMPLETED"

                # 2. CICD: the same deployment run again
                again = run_deployment(server, "US")
                assert again.returncode == 0, again.stdout + again.stderr

                # 3. the CLI
                store = create_engine(env["FT_UPGRADE_DB_METADATA"])
                with store.connect() as conn:
                    eu_execution = conn.execute(text(
                        "SELECT execution_id FROM upgrade_execution WHERE site_id = 'EU'")).scalar_one()
                resumed = subprocess.run([str(Path(sys.executable).parent / "ft-upgrade"), "resume", eu_execution,
                                          "--by", "ops", "--notes", "created prerequisite", "--json"],
                                         cwd=PROJECT, env={**server.env, **env}, capture_output=True, text=True,
                                         timeout=300)
                assert resumed.returncode == 0, resumed.stdout + resumed.stderr

                # 4. CICD runs the completed deployment again (a retried job): Completed, nothing sent again
                with general_log() as log:
                    repeat = run_deployment(server, "US")
                    assert repeat.returncode == 0, repeat.stdout + repeat.stderr
                    assert log.queries("INSERT INTO side") == [] and log.queries("CREATE TABLE side") == []
                reports = server.python("""
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
with get_client(sync_client=True) as client:
    for artifact in client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=['ft-us-startup-pre-process']))):
        print(artifact.data)
""")
                assert "already completed by EXEC_" in reports and "nothing executed" in reports

            for site, database in SITES.items():
                assert sql(database, "SELECT n FROM side ORDER BY n") == [(1,), (2,), (3,)], site
            with store.connect() as conn:
                rows = conn.execute(text("SELECT site_id, status, resume_count FROM upgrade_execution "
                                         "ORDER BY site_id")).all()
                resolved = conn.execute(text("SELECT resolved_by, resolve_notes FROM upgrade_breakpoint "
                                             "WHERE execution_id = :e"), {"e": eu_execution}).one()
            store.dispose()
            assert [tuple(r) for r in rows] == [("CN", "SUCCESS", 1), ("EU", "SUCCESS", 1), ("US", "SUCCESS", 1)]
            assert tuple(resolved) == ("ops", "created prerequisite")
    finally:
        for database in SITES.values():
            sql("test", f"DROP DATABASE IF EXISTS `{database}`")
