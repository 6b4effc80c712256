"""Hundreds-of-sites topology, shown with two: one Prefect server on PostgreSQL, a pool and a worker per site.

Both sites upgrade at once; a second trigger for a site that is busy is refused with the site lock's
message while the first run goes on to complete.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import MARIADB_ROOT, PROJECT
from tests.deployments.sites_helpers import cicd, cicd_args, deploy_sites, site_env, wait_for_lock, write_tree
from tests.prefect_server import postgres_database, prefect_server, psql, tuned_settings

pytestmark = pytest.mark.prefect_server

SLEEP = 20  # long enough for the second trigger to be picked up while the first holds the lock
STEPS = {"startup_pre_process": [
    {"id": "sql_001", "class_name": "StartupPreProcessStep", "sql_scripts": ["slow.sql"], "timeout": 120}]}
WAIVE = ("--waive", "pre_upgrade_process", "--reason", "test: this cutpoint alone")
SCRIPT = f"CREATE TABLE marker (n INT);\nDO SLEEP({SLEEP});\nINSERT INTO marker VALUES (1);\n"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL for the Prefect server."""
    with postgres_database() as url:
        yield url


@pytest.fixture
def site_databases() -> Iterator[dict[str, str]]:
    names = {site: f"ft_topo_{site.lower()}_{uuid.uuid4().hex[:6]}" for site in ("CN", "US")}
    admin = create_engine(MARIADB_ROOT + "/test")
    with admin.begin() as conn:
        for name in names.values():
            conn.execute(text(f"CREATE DATABASE `{name}`"))
    try:
        yield {site: f"{MARIADB_ROOT}/{name}" for site, name in names.items()}
    finally:
        with admin.begin() as conn:
            for name in names.values():
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


def test_the_documented_server_settings_are_valid_prefect_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.settings.models.root import Settings

    for key, value in tuned_settings().items():
        monkeypatch.setenv(key, value)
    server = Settings().server
    assert server.services.task_run_recorder.batch_size == 200
    assert server.services.event_persister.batch_size == 500
    assert server.events.retention_period.days == 3
    assert server.services.db_vacuum.enabled == {"events", "flow_runs"}
    assert server.events.related_resource_cache_ttl.total_seconds() == 0  # a run's own site tag reaches alerts


def test_two_sites_upgrade_at_once_and_a_second_trigger_for_a_busy_site_is_refused(
        tmp_path: Path, postgres_url: str, site_databases: dict[str, str]) -> None:
    tree = write_tree(tmp_path, STEPS, {"slow.sql": SCRIPT})
    envs = {site: {**tree, **site_env(tmp_path, site, url)} for site, url in site_databases.items()}
    # the server (and its workers and CLI calls) run with the documented settings for many task runs
    with prefect_server(tmp_path / "prefect", database_url=postgres_url, extra_env=tuned_settings()) as server:
        deployed = deploy_sites(server, "CN", "US")
        assert "site CN: pool ft-upgrade-cn" in deployed and "site US: pool ft-upgrade-us" in deployed
        with server.worker("ft-upgrade-cn", extra_env=envs["CN"], name="cn"), \
                server.worker("ft-upgrade-us", extra_env=envs["US"], name="us"):
            started = time.monotonic()
            first = {site: subprocess.Popen(cicd_args("startup_pre_process", site, *WAIVE), cwd=PROJECT,
                                            env=server.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                            text=True)
                     for site in ("CN", "US")}
            holder = wait_for_lock(Path(envs["CN"]["FT_UPGRADE_HOME"]), "CN")
            assert "startup_pre_process 3.17.0→3.17.5" in holder

            code, out = cicd(server.env, "startup_pre_process", "CN", *WAIVE)
            assert code == 2 and "REFUSED" in out, out
            assert f"site CN is being upgraded by {holder}" in " ".join(out.split())

            results = {site: (proc.wait(timeout=120), proc.stdout.read() if proc.stdout else "")
                       for site, proc in first.items()}
            elapsed = time.monotonic() - started
        runs = psql("SELECT count(*) FROM flow_run", postgres_url.rsplit("/", 1)[1])
        assert runs.strip() == "3", "the server keeps its runs in PostgreSQL"
        assert server.env["PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"] == "200", "started tuned"
    for site, (code, out) in results.items():
        assert code == 0, f"{site}: {out}"
        assert "startup_pre_process at site " + site + ": Completed" in out
    assert elapsed < 2 * SLEEP + 15, f"the two sites ran one after the other ({elapsed:.0f}s)"
    for url in site_databases.values():
        engine = create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT n FROM marker")).scalars().all() == [1], "the first run was not disturbed"
        engine.dispose()
