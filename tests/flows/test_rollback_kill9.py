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
from tasks.store.schema import site_lock
from tests.conftest import PROJECT
from tests.flows.rollback_chain import BEFORE, SOURCE, differences, run_sql, state, version, write_chain

pytestmark = pytest.mark.usefixtures("prefect_api")

SITE = "I25AK"
VERSIONS = 4
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


def lock_taken(home: Path) -> bool:
    engine = create_engine(f"sqlite:///{home / 'metadata.db'}")
    try:
        with engine.connect() as conn:
            holder = conn.execute(select(site_lock.c.holder).where(site_lock.c.site_id == SITE)).scalar()
    finally:
        engine.dispose()
    return bool(holder and holder.startswith("rollback"))


def test_a_rollback_killed_at_random_instants_is_finished_by_the_next_one(isolated_env: Path,
                                                                           mariadb_database: str) -> None:
    from prefect.settings import PREFECT_API_URL

    run_sql(mariadb_database, BEFORE)
    before = state(mariadb_database)
    os.environ.update(write_chain(isolated_env / "tree", VERSIONS, undo_at=[2, 4]),
                      FT_UPGRADE_DB_FT_DB=mariadb_database)
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "DO_NOT_TRACK": "1"}
    home = Path(os.environ["FT_UPGRADE_HOME"])
    rng = random.Random(int(os.environ.get("FT_TEST_SEED", "25")))
    work = 0.0
    refused_meanwhile = 0
    for trial in range(TRIALS + 1):
        upgrade()
        process = start_rollback(env)
        while not lock_taken(home) and process.poll() is None:  # the rollback's work starts with the site's lock
            time.sleep(0.02)
        started = time.monotonic()
        if trial == 0:  # an uncut rollback measures how long the work takes
            assert process.wait(timeout=300) == 0
            work = time.monotonic() - started
            assert differences(state(mariadb_database), before) == {}
            continue
        time.sleep(rng.uniform(0, work))
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        code, output = cli("run", "pre_business_check", "--from", SOURCE, "--to", TARGET, "--site", SITE)
        if code == 2 and "rollback" in output and "unfinished" in output:
            refused_meanwhile += 1
        again = start_rollback(env)
        code = again.wait(timeout=300)
        done, output = cli("info", "--site", SITE, "--json")
        assert code == 0 or '"status": "ROLLED_BACK"' in output, (trial, code, output)  # killed after it finished
        assert differences(state(mariadb_database), before) == {}, f"trial {trial}"
    assert refused_meanwhile >= 1, "a killed rollback keeps cutpoints from starting until it is finished"
