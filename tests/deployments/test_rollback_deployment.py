"""Rollback as a deployment run on a real Prefect server and process worker, killed midway and tried again.

The site's upgrade backs up a schema with a foreign key, a trigger and a view (200,000 rows); the upgrade
then changes them; ``rollback/rollback-rb`` restores the backup. Its worker is killed (SIGKILL) once the
first table is back; the next run of the deployment finishes from the restore journal: CHECKSUM TABLE
equal to the backup's, the foreign key, the trigger and the view as they were.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from tasks.store.schema import site_lock
from tests.deployments.sites_helpers import deploy_sites, site_env
from tests.prefect_server import PrefectServer, prefect_server
from tests.tasks.backup.data import checksums, fill, fill_related
from tests.tasks.backup.test_restore import schema_objects

pytestmark = pytest.mark.prefect_server
TABLES = ("accounts", "orders", "payments", "users")


def write_configs(root: Path) -> dict[str, str]:
    (root / "configs").mkdir(parents=True)
    (root / "sql").mkdir()
    (root / "configs" / "317500.json").write_text(json.dumps({
        "version": "317500",
        "upgrade_steps": {"pre_upgrade_process": [{"id": "backup", "class_name": "BackupStep",
                                                   "databases": [{"database": "ft_db"}]}]},
        "rollback_steps": {"pre_upgrade_process": [{"id": "restore", "class_name": "RestoreBackupStep"}]}}),
        encoding="utf-8")
    return {"FT_UPGRADE_CONFIGS": str(root / "configs"), "FT_UPGRADE_SQL_ROOT": str(root / "sql")}


def run_deployment(server: PrefectServer, name: str, *params: str, watch: bool = True) -> None:
    args = ["deployment", "run", name, *(x for p in params for x in ("-p", p))]
    server.cli(*args, *(["--watch"] if watch else []), timeout=300)


def state_of_last_run(server: PrefectServer, flow_name: str) -> str:
    return server.python(f"""
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.sorting import FlowRunSort
with get_client(sync_client=True) as client:
    runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=['{flow_name}'])),
                                 sort=FlowRunSort.START_TIME_DESC, limit=1)
    print(runs[0].state.name)
""").strip().splitlines()[-1]


def test_a_rollback_deployment_killed_midway_finishes_on_the_next_run(tmp_path: Path, mariadb_database: str) -> None:
    engine = create_engine(mariadb_database)
    fill(engine, 100_000)
    fill_related(engine, 100_000)
    before, objects = checksums(engine, TABLES), schema_objects(engine)
    env = {**write_configs(tmp_path), **site_env(tmp_path, "RB", mariadb_database)}
    home = Path(env["FT_UPGRADE_HOME"])
    with prefect_server(tmp_path / "prefect") as server:
        deploy_sites(server, "RB")
        with server.worker("ft-upgrade-rb", extra_env=env, name="first") as worker:
            run_deployment(server, "pre_upgrade_process/pre-upgrade-process-rb", "source_version=3.17.0",
                           "target_version=3.17.5", 'waive=["pre_business_check"]', "reason=test: backup only")
            store = create_engine(f"sqlite:///{home / 'metadata.db'}")
            with store.connect() as conn:
                execution = conn.execute(text("SELECT execution_id FROM upgrade_execution")).scalar_one()
            with engine.begin() as conn:  # what the upgrade did
                conn.execute(text("ALTER TABLE payments ADD COLUMN memo VARCHAR(10) NULL"))
                conn.execute(text("UPDATE orders SET status = 9"))
                conn.execute(text("UPDATE accounts SET balance = -1"))
                conn.execute(text("DROP TRIGGER payments_add_to_balance"))
                conn.execute(text("CREATE OR REPLACE VIEW account_totals AS SELECT 1 AS id"))
            changed = checksums(engine, TABLES)

            run_deployment(server, "rollback/rollback-rb", "reason=test", watch=False)  # site_id alone
            journal = None
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                journals = list((home / "backup_dir").rglob("restore-journal.json"))
                if journals and '"done"' in journals[0].read_text(encoding="utf-8"):
                    journal = journals[0]
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the rollback never finished a table")
            with store.connect() as conn:
                holder, pid = conn.execute(select(site_lock.c.holder, site_lock.c.pid)
                                           .where(site_lock.c.site_id == "RB")).one()
            assert holder.startswith("rollback at RB"), holder
            os.killpg(worker.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            worker.wait(timeout=10)
        assert journal is not None and json.loads(journal.read_text(encoding="utf-8"))["finished"] is False
        assert checksums(engine, TABLES) not in (before, changed), "killed midway"

        with server.worker("ft-upgrade-rb", extra_env=env, name="again"):
            run_deployment(server, "rollback/rollback-rb", "reason=test: again")  # a UI Retry does the same
        assert state_of_last_run(server, "rollback") == "Completed"
        report = server.python("""
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
with get_client(sync_client=True) as client:
    found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=['ft-rb-rollback'])))
    print("\\n".join(a.data for a in found))
""")
        assert "完成 DONE" in report and "| restore | SUCCESS |" in report, report
        assert "site version now: 3.17.0 (upgrade ROLLED_BACK)" in report, report
    assert checksums(engine, TABLES) == before
    assert schema_objects(engine) == objects
    assert json.loads(journal.read_text(encoding="utf-8"))["finished"] is True
    with store.connect() as conn:  # the upgrade's executions are closed by the rollback
        assert conn.execute(text("SELECT status FROM upgrade_execution WHERE execution_id = :e"),
                            {"e": execution}).scalar_one() == "ROLLED_BACK"
    store.dispose()
    engine.dispose()
