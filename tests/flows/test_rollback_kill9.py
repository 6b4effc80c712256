"""A rollback killed (SIGKILL, the whole process group) at 10 random instants, each followed by another rollback:
every trial ends exactly as before the upgrade (issue 25, item 5).

Each trial upgrades the site again (a new attempt: pre_business_check, pre_upgrade_process, a completed
startup_pre_process), starts ``ft-upgrade rollback --site`` in a process of its own against the same Prefect
API, kills it at a random instant of its work, checks that no cutpoint may start meanwhile, then rolls back
again. Small data: the point is the instants, not the volume.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from flows.cli import app
from tasks.store.schema import site_lock, site_state
from tests.client_compare import assert_same
from tests.conftest import PROJECT
from tests.support.rollback_chain import BEFORE, SOURCE, run_sql, snapshot, version, write_chain

pytestmark = pytest.mark.usefixtures("prefect_api")

SITE = "I25AK"
VERSIONS = 3
TARGET = version(VERSIONS)
TRIALS = 10


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def upgrade() -> None:
    for name, extra in (("pre_business_check", ()), ("pre_upgrade_process", ()),
                        ("startup_pre_process", ("--waive", "services_stopped", "--reason", "test: no services"))):
        code, output = cli("run", name, "--from", SOURCE, "--to", TARGET, "--site", SITE, *extra)
        assert code == 0, output


def start_rollback(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "from flows.cli import main; main()", "rollback", "--site", SITE,
                             "--yes", "--by", "kill9"], cwd=PROJECT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def site(home: Path) -> tuple[str | None, str | None]:
    """(the site's upgrade status, the holder of its lock), read from its metadata store."""
    engine = create_engine(f"sqlite:///{home / 'metadata.db'}")
    try:
        with engine.connect() as conn:
            status = conn.execute(select(site_state.c.upgrade_status).where(site_state.c.site_id == SITE)).scalar()
            holder = conn.execute(select(site_lock.c.holder).where(site_lock.c.site_id == SITE)).scalar()
    finally:
        engine.dispose()
    return status, holder


def test_a_rollback_killed_at_random_instants_is_finished_by_the_next_one(isolated_env: Path,
                                                                           mariadb_database: str) -> None:
    from prefect.settings import PREFECT_API_URL

    run_sql(mariadb_database, BEFORE)
    before = snapshot(mariadb_database)
    os.environ.update(write_chain(isolated_env / "tree", VERSIONS, undo_at=[2, 3]),
                      FT_UPGRADE_DB_FT_DB=mariadb_database)
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "DO_NOT_TRACK": "1"}
    home = Path(os.environ["FT_UPGRADE_HOME"])
    print(f"kill -9 trials seed {os.environ.get('FT_TEST_SEED', '25')}")
    rng = random.Random(int(os.environ.get("FT_TEST_SEED", "25")))
    work = 0.0
    refused_meanwhile = 0
    for trial in range(TRIALS + 1):
        upgrade()
        process = start_rollback(env)
        while not str(site(home)[1] or "").startswith("rollback") and process.poll() is None:
            time.sleep(0.02)  # the rollback's work starts with the site's lock
        started = time.monotonic()
        if trial == 0:  # an uncut rollback measures how long its work takes (until the site is ROLLED_BACK)
            while site(home)[0] != "ROLLED_BACK" and process.poll() is None:
                time.sleep(0.02)
            work = time.monotonic() - started
            assert process.wait(timeout=300) == 0
            assert_same(snapshot(mariadb_database), before)
            continue
        time.sleep(rng.uniform(0, work))
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        if site(home)[0] == "ROLLING_BACK":  # killed midway: no cutpoint may start until it is finished
            code, output = cli("run", "pre_business_check", "--from", SOURCE, "--to", TARGET, "--site", SITE)
            assert code == 2 and "rollback" in output and "unfinished" in output, (trial, output)
            refused_meanwhile += 1
        if site(home)[0] != "ROLLED_BACK":  # else it was killed after it finished
            assert start_rollback(env).wait(timeout=300) == 0, trial
        assert site(home)[0] == "ROLLED_BACK", trial
        assert_same(snapshot(mariadb_database), before)  # every trial ends exactly as before the upgrade
    print(f"kill -9: {refused_meanwhile} of {TRIALS} kills left the rollback unfinished (each refused a cutpoint)")
    assert refused_meanwhile >= 1, "a killed rollback keeps cutpoints from starting until it is finished"
