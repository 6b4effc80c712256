"""One upgrade per site at a time: a busy site refuses a second run, other sites go on, a dead holder frees it."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from flows.cli import app
from tasks.core.clock import utcnow
from tasks.core.errors import SiteBusy
from tasks.store import schema
from tasks.store.schema import site_lock as site_lock_table
from tasks.store.site_lock import site_lock
from tests.conftest import MARIADB_ROOT
from tests.helpers import open_store

pytestmark = pytest.mark.usefixtures("prefect_api")


def run(isolated_env: Path, site: str, url: str) -> tuple[int, str]:
    configs = isolated_env / "configs"
    configs.mkdir(exist_ok=True)
    (configs / "317500.json").write_text(json.dumps({"version": "317500", "upgrade_steps": {"pre_business_check": [
        {"id": "ping", "class_name": "ServiceHealthCheckStep", "databases": ["ft_db"]}]}}), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "pre_business_check", "--from", "3.17.0", "--to", "3.17.5", "--site", site,
                                      "--configs", str(configs), "--db", f"ft_db={url}"])
    return result.exit_code, " ".join(result.output.split())


def test_a_second_run_for_a_busy_site_is_refused_naming_the_holder(isolated_env: Path, mariadb_database: str) -> None:
    store = open_store(None)
    try:
        with site_lock(store.engine, "CN", holder="startup_pre_process 3.17.0→3.17.5 (flow run X)"):
            code, output = run(isolated_env, "CN", mariadb_database)
            assert code == 2, "refused: nothing ran"
            assert "site CN is being upgraded by startup_pre_process 3.17.0→3.17.5 (flow run X)" in output
            other, _ = run(isolated_env, "US", mariadb_database)
            assert other == 0, "a different site is not held up"
        code, _ = run(isolated_env, "CN", mariadb_database)
        assert code == 0, "the lock is free once its holder is done"
    finally:
        store.close()


def test_a_lock_whose_holder_died_is_taken_over(isolated_env: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    store = open_store(None)
    try:
        import socket

        with store.engine.begin() as conn:
            conn.execute(insert(site_lock_table).values(
                site_id="JP", holder="a killed worker", host=socket.gethostname(), pid=int(dead.stdout),
                acquired_time=utcnow(), heartbeat_time=utcnow()))
        with site_lock(store.engine, "JP", holder="me"), pytest.raises(SiteBusy, match="being upgraded by me"), \
                site_lock(store.engine, "JP", holder="someone else"):
            pass
    finally:
        store.close()


# --- a lock that cannot be lost silently (issue 18) ---------------------------------------------------------

HOLDER = """
import sys
from tasks.store.metadata_store import MetadataStore
from tasks.store.site_lock import site_lock
store = MetadataStore.open(sys.argv[1])
with site_lock(store.engine, "SLOW", holder="a slow run", check_seconds=3600):
    print("held", flush=True)
    sys.stdin.readline()
"""


def _age_heartbeat(store: object, site: str, hours: float, **values: object) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    with store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(update(site_lock_table).where(site_lock_table.c.site_id == site).values(
            heartbeat_time=utcnow() - timedelta(hours=hours), **values))


def test_a_slow_but_living_holder_keeps_the_lock_and_a_killed_one_is_taken_over(isolated_env: Path) -> None:
    store = open_store(None)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(store.engine.url)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        _age_heartbeat(store, "SLOW", 2)  # silent for two hours, but its process lives on this host
        with pytest.raises(SiteBusy, match="being upgraded by a slow run"), site_lock(store.engine, "SLOW",
                                                                                    holder="run B"):
            pass
        holder.kill()
        holder.wait()
        with site_lock(store.engine, "SLOW", holder="run B") as held:
            with store.engine.connect() as conn:
                row = conn.execute(select(site_lock_table)).mappings().one()
            assert (row["holder"], row["token"]) == ("run B", held.token)
    finally:
        holder.kill()
        store.close()


def test_a_holder_on_another_host_is_taken_over_only_when_long_silent(
        isolated_env: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = open_store(None)
    try:
        with store.engine.begin() as conn:
            conn.execute(insert(site_lock_table).values(
                site_id="FAR", holder="a run elsewhere", host="worker-7", pid=1, acquired_time=utcnow(),
                heartbeat_time=utcnow(), token="t0"))
        with pytest.raises(SiteBusy, match="host worker-7"), site_lock(store.engine, "FAR", holder="B"):
            pass
        _age_heartbeat(store, "FAR", 1)
        with caplog.at_level("WARNING", logger="ft_upgrade.site_lock"), site_lock(store.engine, "FAR", holder="B"):
            pass
        assert "taking over the site lock of a run elsewhere (host worker-7" in caplog.text
    finally:
        store.close()


def test_a_lock_taken_from_its_holder_is_noticed_and_fences_the_ledger(isolated_env: Path) -> None:
    from sqlalchemy import func, update

    from tasks.core.errors import SiteLockLost
    from tasks.sql.ledger import SqlLedger
    from tasks.sql.script import load_script

    store = open_store(None)
    try:
        with site_lock(store.engine, "FENCE", holder="run A", check_seconds=0.05) as held, store.fenced_by(held):
            execution = store.create_execution(source_version="3.17.0", target_version="3.17.5", site_id="FENCE",
                                               cutpoint="startup_pre_process", environment={}, total_steps=1,
                                               flow_run_id=None, plan_fingerprint="x")
            with store.engine.begin() as conn:  # another run takes the site over
                conn.execute(update(site_lock_table).where(site_lock_table.c.site_id == "FENCE").values(
                    holder="run B", token="b" * 32))
            assert held.lost.wait(10), "the heartbeat notices within a few checks"
            assert "taken from this run (run A)" in held.reason
            with pytest.raises(SiteLockLost, match="now held by run B"):
                store.update_execution(execution, status="FAILED")
            ledger = SqlLedger(store.engine, execution, "sql_001", fence=held)
            (isolated_env / "s.sql").write_text("CREATE TABLE t (n INT);\n", encoding="utf-8")
            script = load_script(isolated_env, "s.sql", version="317500", default_database="ft_db")
            ledger.register(script, [script.statements[0].text], {})
            with pytest.raises(SiteLockLost):
                ledger.flush()
            with pytest.raises(SiteLockLost):
                ledger.close()
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(schema.sql_execution_record)).scalar() == 0
            assert conn.execute(select(schema.upgrade_execution.c.status)).scalar() == "RUNNING"
    finally:
        store.close()


def _wait_for(condition: Callable[[], object], what: str, timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.mariadb
def test_a_killed_lock_connection_stops_the_run_with_a_breakpoint_and_nothing_after(
        isolated_env: Path, mariadb_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import create_engine, text

    from tests.flows.test_site_state import Site
    from tests.general_log import general_log

    gate = f"ft-test-gate-{uuid.uuid4().hex[:8]}"
    site = Site(isolated_env, mariadb_database, site="LK")
    site.script.write_text(f"CREATE TABLE side (n INT NOT NULL);\nINSERT INTO side VALUES (1);\n"
                           f"SELECT GET_LOCK('{gate}', 120);\nINSERT INTO side VALUES (2);\n"
                           "CREATE TABLE later (n INT);\n", encoding="utf-8")
    meta_name = f"ft_test_meta_{uuid.uuid4().hex[:8]}"
    admin = create_engine(MARIADB_ROOT + "/test", isolation_level="AUTOCOMMIT")
    noticed = threading.Event()

    class Noticed(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            noticed.set()

    handler = Noticed(level=logging.ERROR)
    logging.getLogger("ft_upgrade.site_lock").addHandler(handler)
    monkeypatch.setenv("FT_UPGRADE_SITE_LOCK_CHECK_SECONDS", "0.2")
    outcome: list[tuple[int, str]] = []
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{meta_name}`"))
        metadata = f"metadata={MARIADB_ROOT}/{meta_name}?charset=utf8mb4"
        try:
            assert conn.execute(text("SELECT GET_LOCK(:g, 0)"), {"g": gate}).scalar() == 1
            with general_log() as log:
                run = threading.Thread(target=lambda: outcome.append(site.run(
                    "startup_pre_process", "--waive", "pre_upgrade_process", "--reason", "test", "--db", metadata)))
                run.start()
                _wait_for(lambda: conn.execute(text(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE :q AND ID <> CONNECTION_ID()"),
                    {"q": f"%GET_LOCK('{gate}'%"}).first(), "the run to wait at the gate")
                holder = conn.execute(text("SELECT IS_USED_LOCK(:n)"), {"n": "ft-upgrade:site:LK"}).scalar()
                conn.execute(text(f"KILL {int(holder)}"))  # the metadata connection that holds the site lock
                assert noticed.wait(30), "the holder notices its lock is gone"
                conn.execute(text("SELECT RELEASE_LOCK(:g)"), {"g": gate})
                run.join(120)
                sent = log.queries("INSERT INTO side")
            code, output = outcome[0]
            assert code == 1 and "lost" in output and "stopped before statement #4" in output, output
            assert site.rows() == [1] and sent == ["INSERT INTO side VALUES (1)"], sent
            meta = create_engine(f"{MARIADB_ROOT}/{meta_name}")
            with meta.connect() as m:
                bp_table = schema.upgrade_breakpoint
                bp = m.execute(select(bp_table.c.sql_line_number, bp_table.c.failure_reason,
                                      bp_table.c.execution_id)).one()
                statuses = dict(m.execute(select(schema.sql_execution_record.c.sql_sequence,
                                                 schema.sql_execution_record.c.status)).all())
            meta.dispose()
            assert bp.sql_line_number == 4 and "connection holding the site lock was lost" in bp.failure_reason
            assert statuses[4] == "PENDING" and statuses[5] == "PENDING", statuses
            code, output = site.cli("resume", bp.execution_id, "--db", metadata, "--db", f"ft_db={mariadb_database}",
                                    "--by", "ann", "--notes", "lock connection killed by the DBA")
            assert code == 0, output
            assert site.rows() == [1, 2]
        finally:
            logging.getLogger("ft_upgrade.site_lock").removeHandler(handler)
            conn.execute(text(f"DROP DATABASE IF EXISTS `{meta_name}`"))
    admin.dispose()


def test_restore_and_rollback_are_refused_while_a_run_holds_the_site(isolated_env: Path) -> None:
    store = open_store(None)
    try:
        execution = store.create_execution(source_version="3.17.0", target_version="3.17.5", site_id="HELD",
                                           cutpoint="startup_pre_process", environment={}, total_steps=1,
                                           flow_run_id=None, plan_fingerprint="x")
        with site_lock(store.engine, "HELD", holder="startup_pre_process 3.17.0→3.17.5 (flow run R)"):
            for command in (["backup", "restore", "BK_20261201_000000_x", "--site", "HELD", "--yes"],
                            ["rollback", execution, "--yes", "--reason", "test"]):
                result = CliRunner().invoke(app, command)
                output = " ".join(result.output.split())
                assert result.exit_code == 2, (command, output)
                assert "site HELD is being upgraded by startup_pre_process 3.17.0→3.17.5 (flow run R)" in output
    finally:
        store.close()
