"""Rollback by site on the real MariaDB through a real Prefect API (issue 25, items 1, 2, 4).

A chain of 21 patch versions (DELIMITER procedures, triggers, views, foreign keys, tables created by the
upgrade) fails midway in startup_pre_process; ``ft-upgrade rollback --site`` puts the database back exactly
as before the upgrade (catalog and every table's CHECKSUM TABLE), the site's memory follows (version,
ROLLED_BACK), the failed execution can be neither resumed nor retried, and a new attempt sends every statement
again and ends as the plain client does. Then the same after a completed startup_pre_process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from flows.cli import app
from tests.client_compare import Snapshot, assert_same, client_database
from tests.conftest import MARIADB_ROOT
from tests.general_log import general_log
from tests.helpers import open_store
from tests.support.rollback_chain import (
    BEFORE,
    SOURCE,
    fix_script,
        plain_client,
    run_sql,
    snapshot,
    version,
    write_chain,
)

pytestmark = pytest.mark.usefixtures("prefect_api")

SITE = "I25A"
VERSIONS = 21
TARGET = version(VERSIONS)
WAIVE = ["--waive", "services_stopped", "--reason", "test: the site lists no services"]


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def cutpoint(name: str, *extra: str) -> tuple[int, str]:
    return cli("run", name, "--from", SOURCE, "--to", TARGET, "--site", SITE, *extra)


def upgrade_to_startup_pre_process() -> tuple[int, str]:
    for name in ("pre_business_check", "pre_upgrade_process"):
        code, output = cutpoint(name)
        assert code == 0, output
    return cutpoint("startup_pre_process", *WAIVE)


def first_json(output: str) -> Any:
    return json.JSONDecoder().raw_decode(output[output.index("{"):])[0]


def not_sent(log: Any) -> list[str]:
    """Statements of the chain that the general log does not show (each version's table, procedure call, view)."""
    sent = "\n".join(log.queries(""))
    wanted = [w for i in range(1, VERSIONS + 1)
              for w in (f"CREATE TABLE up_{i} ", f"CALL proc_{i}()", f"VIEW v_up_{i} ", f"ADD COLUMN c_{i} ")]
    return [w for w in wanted if w not in sent]


def info() -> dict[str, Any]:
    code, output = cli("info", "--site", SITE, "--json")
    assert code == 0, output
    return first_json(output)


def retry_flow_run(flow_run_id: str) -> Any:
    """What the Prefect UI's Retry does: the same flow run, set AwaitingRetry, run again under its own id."""
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow
    from prefect.states import AwaitingRetry

    from flows.startup_pre_process import startup_pre_process

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, AwaitingRetry(), force=True)
        run = client.read_flow_run(flow_run_id)
    return run_flow(startup_pre_process, flow_run=run, parameters=run.parameters, return_type="state")


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[Snapshot]:
    """The chain as the plain client leaves a database that starts as the site's."""
    with client_database("i25a_client") as name:
        yield plain_client(tmp_path / "client", name, VERSIONS)


def test_a_rollback_by_site_puts_the_database_and_the_memory_back_and_a_new_attempt_runs_everything(
        isolated_env: Path, reference: Snapshot) -> None:
    admin = create_engine(MARIADB_ROOT + "/test")
    database = f"i25a_rb_{os.getpid()}"
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4"))
    url = f"{MARIADB_ROOT}/{database}?charset=utf8mb4"
    try:
        run_sql(url, BEFORE)
        before = snapshot(url)
        os.environ.update(write_chain(isolated_env / "tree", VERSIONS, fail_at=12, unsupported=[7],
                                      undo_at=[5, 20]), FT_UPGRADE_DB_FT_DB=url)

        code, output = cli("rollback", "--site", SITE, "--yes")
        assert code == 2 and "no upgrade in progress" in output, output  # nothing to roll back yet

        code, output = upgrade_to_startup_pre_process()
        assert code == 1 and "sql_12" in output, output
        store = open_store(SITE)
        failed = store.latest_execution(site_id=SITE, cutpoint="startup_pre_process", source_version=SOURCE,
                                        target_version=TARGET)
        store.close()
        assert failed is not None and failed.status == "FAILED"

        code, output = cli("rollback", "--site", SITE, "--yes")
        assert code == 2 and "317507.json: step 'sql_7'" in output and "--force --reason" in output, output
        code, output = cli("rollback", failed.execution_id, "--force", "--reason", "customer asked", "--by", "carol",
                           "--yes", "--json")
        assert code == 0, output
        outcome = first_json(output)
        assert [s["step_id"] for s in outcome["steps"]] == ["undo_20", "undo_5", "restore"], "newest version first"
        assert outcome["forced"] and "sql_7" in outcome["forced"][0]
        assert_same(snapshot(url), before)  # exactly as before the upgrade

        shown = info()
        assert (shown["current_version"], shown["schema_version"]) == (SOURCE, SOURCE)
        assert shown["upgrade"]["status"] == "ROLLED_BACK", shown["upgrade"]
        assert shown["applied_scripts"] == 0
        event = next(h for h in shown["history"] if h["event"] == "UPGRADE_ROLLED_BACK")
        assert event["actor"] == "carol" and event["detail"]["reason"] == "customer asked"
        assert event["detail"]["backup_id"] == outcome["backup_id"]
        assert failed.execution_id in event["detail"]["executions_closed"]

        code, output = cli("resume", failed.execution_id)
        assert code == 2 and "rollback" in output and "cannot be resumed" in output, output
        retried = retry_flow_run(str(failed.flow_run_id))
        assert retried.is_failed() and "closed by the rollback" in str(retried.message or retried.result(
            raise_on_failure=False)), retried
        code, output = cutpoint("startup_pre_process", *WAIVE)  # redeployed with the same parameters
        assert code == 2 and "pre_upgrade_process has not completed" in output and "rollback" in output, output

        fix_script(isolated_env / "tree", 12)
        with general_log() as log:
            code, output = upgrade_to_startup_pre_process()
            assert code == 0, output
            assert not_sent(log) == [], "every version's statements are sent again"
        assert_same(snapshot(url), reference)  # as the plain client leaves it

        # the same after a completed startup_pre_process
        code, output = cli("rollback", "--site", SITE, "--force", "--reason", "again", "--yes")
        assert code == 0, output
        assert_same(snapshot(url), before)
        assert info()["upgrade"]["status"] == "ROLLED_BACK"
        code, output = cutpoint("startup_pre_process", *WAIVE)
        assert code == 2 and "pre_upgrade_process has not completed" in output, output
        with general_log() as log:
            code, output = upgrade_to_startup_pre_process()
            assert code == 0, output
            assert not_sent(log) == []
        assert_same(snapshot(url), reference)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{database}`"))
        admin.dispose()


def test_a_rollback_without_a_backup_is_refused_before_anything_runs(isolated_env: Path,
                                                                     mariadb_database: str) -> None:
    os.environ.update(write_chain(isolated_env / "tree", VERSIONS), FT_UPGRADE_DB_FT_DB=mariadb_database)
    run_sql(mariadb_database, BEFORE)
    code, output = cutpoint("pre_business_check")
    assert code == 0, output
    code, output = cli("rollback", "--site", SITE, "--yes")
    assert code == 2 and "no verified backup of this upgrade's pre_upgrade_process" in output, output
    code, output = cli("rollback", "--site", SITE, "--upgrade", f"{SOURCE}->{TARGET}", "--yes")
    assert code == 2 and "no verified backup" in output, output
    store = open_store(SITE)
    assert store.latest_execution(site_id=SITE, cutpoint="rollback", source_version=SOURCE,
                                  target_version=TARGET) is None, "nothing ran"
    store.close()
