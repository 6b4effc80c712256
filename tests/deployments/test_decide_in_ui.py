"""Deciding in the Prefect UI, on a real server and process workers: a breakpoint asks instead of ending the run.

Every decision is submitted the way the UI's form does (``POST /flow_runs/{id}/resume`` with ``run_input``);
MariaDB's general log shows which statements reached the server again. One server for the module; each
test has its own site (pool, worker, metadata store and database).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from flows.decision import CHOICES
from tests.conftest import PROJECT
from tests.deployments.sites_helpers import PYTHON, cicd, site_env, write_tree
from tests.deployments.test_alerts import receiving, wait_for_message
from tests.general_log import general_log
from tests.prefect_server import PrefectServer, prefect_server

pytestmark = pytest.mark.prefect_server
RETRY, APPLIED, SKIP, STOP = (CHOICES["zh"][k] for k in ("retry", "applied", "skip", "stop"))  # no profile: zh

WAIVE = ("--waive", "pre_upgrade_process", "--reason", "test: this cutpoint alone")
STEPS = {"startup_pre_process": [
    {"id": "sql_001", "class_name": "StartupPreProcessStep", "sql_scripts": ["s.sql"], "timeout": 120}]}


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    with receiving() as url:
        yield url


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, receiver: str) -> Iterator[PrefectServer]:
    """One server (expired suspensions failed within a second) with sites CN (alerting to ``receiver``), US, EU."""
    root = tmp_path_factory.mktemp("decide")
    with prefect_server(root / "prefect",
                        extra_env={"PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_LOOP_SECONDS": "1"}) as started:
        sites = root / "sites"
        sites.mkdir()
        (sites / "cn.json").write_text(json.dumps({
            "site_id": "CN", "notifications": {"cn-dingtalk": {"type": "dingtalk", "token": "0123abcdcn",
                                                               "endpoint": f"{receiver}/robot/send"}},
            "alerts": {"notify": ["cn-dingtalk"]}}), encoding="utf-8")
        started.cli_ft("blocks", "apply", "--file", str(sites / "cn.json"))
        result = started.python(f"""
import subprocess, sys
sys.exit(subprocess.run([{PYTHON!r}, 'deployments/deploy_sites.py', '--site', 'CN', '--site', 'US', '--site', 'EU',
                         '--sites-dir', {str(sites)!r}]).returncode)""")
        assert "automations ft-upgrade alert CN: ended badly" in result, result
        yield started


def api(server: PrefectServer, method: str, path: str, **kwargs: Any) -> Any:
    for attempt in range(6):  # 503: the server's SQLite was busy; Prefect's own client retries it too
        response = httpx.request(method, server.api_url + path, timeout=30, **kwargs)
        if response.status_code != 503:
            break
        time.sleep(0.5 * (attempt + 1))
    response.raise_for_status()
    return response.json() if response.content else None


def wait_for_state(server: PrefectServer, run_id: str, name: str, *, other_than: str | None = None,
                   timeout: float = 180) -> dict[str, Any]:
    """Poll the flow run until it is in state ``name`` (a state other than ``other_than``, by id)."""
    deadline = time.monotonic() + timeout
    while True:
        state = api(server, "GET", f"/flow_runs/{run_id}")["state"]
        if state["name"] == name and state["id"] != other_than:
            return dict(state)
        assert time.monotonic() < deadline, f"flow run {run_id} is {state['name']} ({state['message']}), not {name}"
        time.sleep(0.5)


def read_form(server: PrefectServer, run_id: str, state: dict[str, Any]) -> tuple[str, list[str]]:
    """What the flow-run page shows: the form's markdown and its decision choices."""
    keys = state["state_details"]["run_input_keyset"]
    description = json.loads(httpx.get(f"{server.api_url}/flow_runs/{run_id}/input/{keys['description']}").text)
    schema = json.loads(httpx.get(f"{server.api_url}/flow_runs/{run_id}/input/{keys['schema']}").text)
    assert "properties" in schema, schema
    return description, schema["properties"]["decision"]["anyOf"][0]["enum"]  # the list shown: the site's labels


def decide(server: PrefectServer, run_id: str, **run_input: str) -> dict[str, Any]:
    """The UI's Resume with the form filled in."""
    return dict(api(server, "POST", f"/flow_runs/{run_id}/resume", json={"run_input": run_input}))


def retry(server: PrefectServer, run_id: str) -> None:
    """The UI's Retry on a finished run."""
    api(server, "POST", f"/flow_runs/{run_id}/set_state",
        json={"state": {"type": "SCHEDULED", "name": "AwaitingRetry"}, "force": True})


def sql(url: str, *statements: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    with engine.begin() as conn:
        rows: list[tuple[Any, ...]] = []
        for statement in statements:
            result = conn.execute(text(statement))
            rows = [tuple(r) for r in result] if result.returns_rows else []
    engine.dispose()
    return rows


def store(tmp_path: Path, site: str) -> str:
    return f"sqlite:///{tmp_path / f'home-{site.lower()}' / 'metadata.db'}"


def run_id_of(output: str) -> str:
    found = re.search(r"flow run ([0-9a-f-]{36})", output)
    assert found, output
    return found.group(1)


def test_a_failed_statement_asks_the_operator_who_stops_then_runs_it_again_then_skips_it(
        server: PrefectServer, tmp_path: Path, mariadb_database: str) -> None:
    script = ("CREATE TABLE side (n INT NOT NULL);\nINSERT INTO side SELECT 1 FROM prerequisite;\n"
              "INSERT INTO side SELECT 2 FROM by_hand;\nINSERT INTO side VALUES (3);\n")
    env = {**write_tree(tmp_path, STEPS, {"s.sql": script}), **site_env(tmp_path, "CN", mariadb_database)}
    with server.worker("ft-upgrade-cn", extra_env=env, name="cn"):
        code, out = cicd(server.env, "startup_pre_process", "CN", *WAIVE)
        assert code == 4, out
        run_id = run_id_of(out)
        assert "WAITING: startup_pre_process at site CN" in out and f"/runs/flow-run/{run_id}" in out, out
        assert "s.sql:2" in out and "prerequisite" in out, "the report printed says where and why"
        _, alert = wait_for_message("FT 升级待决定")  # the automation: the run entered Suspended
        assert "startup_pre_process CN 3.17.0→3.17.5" in alert["markdown"]["text"] and "Resume" in str(alert), alert
        _, own = wait_for_message("：等待操作员决定")  # the run's own message: waiting, and where to decide
        assert f"/runs/flow-run/{run_id}" in own["markdown"]["text"] and "Retry" not in str(own), own

        first = wait_for_state(server, run_id, "Suspended")
        description, choices = read_form(server, run_id, first)
        assert "语句执行失败 `s.sql:2`" in description and "数据库 `ft_db`" in description
        assert "INSERT INTO side SELECT 1 FROM prerequisite" in description and "错误 1146" in description
        assert choices == [RETRY, SKIP, STOP], "no 'mark applied': the server refused the statement"
        assert decide(server, run_id, decision=SKIP, by="ops")["status"] == "REJECT", "skip needs a reason"

        with general_log() as log:  # stop: the run ends Failed with the breakpoint, nothing is sent
            assert decide(server, run_id, decision=STOP, by="ops", reason="waiting for the DBA")["status"] == "ACCEPT"
            stopped = wait_for_state(server, run_id, "Failed")
            assert "stopped here by ops in the Prefect UI (waiting for the DBA)" in stopped["message"], stopped
            assert log.queries("INSERT INTO side") == []

        retry(server, run_id)  # the UI's Retry, cause not fixed yet: the statement fails again and asks again
        second = wait_for_state(server, run_id, "Suspended", other_than=first["id"])
        sql(mariadb_database, "CREATE TABLE prerequisite (x INT)", "INSERT INTO prerequisite VALUES (0)")
        with general_log() as log:  # run it again: sent once more, then the next statement asks
            decide(server, run_id, decision=RETRY, by="ops", reason="created prerequisite")
            third = wait_for_state(server, run_id, "Suspended", other_than=second["id"])
            assert log.queries("INSERT INTO side SELECT 1 FROM prerequisite") != []
        assert "语句执行失败 `s.sql:3`" in read_form(server, run_id, third)[0]

        sql(mariadb_database, "INSERT INTO side VALUES (2)")
        with general_log() as log:  # skip: applied by hand, never sent; the run completes
            decide(server, run_id, decision=SKIP, by="ops", reason="inserted row 2 by hand")
            wait_for_state(server, run_id, "Completed")
            assert log.queries("INSERT INTO side SELECT 2") == [] and log.queries("INSERT INTO side VALUES (3)")
    assert sql(mariadb_database, "SELECT n FROM side ORDER BY n") == [(1,), (2,), (3,)]
    ledger = sql(store(tmp_path, "CN"), "SELECT sql_line_number, status, execution_result FROM sql_execution_record "
                 "WHERE sql_line_number IN (2, 3) ORDER BY sql_line_number")
    assert [(line, status, result.split(" (statement sha256")[0]) for line, status, result in ledger] == [
        (2, "SUCCESS", "run again by ops: created prerequisite"),
        (3, "SKIPPED", "skipped by ops: inserted row 2 by hand")]
    history = sql(store(tmp_path, "CN"), "SELECT actor FROM upgrade_site_history WHERE event = 'OPERATOR_STOPPED'")
    resolved = sql(store(tmp_path, "CN"), "SELECT resolved_by, resolve_notes FROM upgrade_breakpoint "
                   "WHERE status = 'RESOLVED' AND resolved_by = 'ops' ORDER BY resolved_time")
    assert history == [("ops",)] and resolved == [("ops", "created prerequisite"), ("ops", "inserted row 2 by hand")]
    newest = {"artifacts": {"key": {"any_": ["ft-cn-startup-pre-process"]}}, "sort": "CREATED_DESC", "limit": 1}
    report = api(server, "POST", "/artifacts/filter", json=newest)[0]["data"]
    assert "操作员决定" in report and "skipped by ops: inserted row 2 by hand" in report, report  # the last resume's


def flow_process(run_id: str) -> int:
    """The pid of the flow-run process (the process worker gives it the run's id in its environment)."""
    needle = f"PREFECT__FLOW_RUN_ID={run_id}".encode()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and needle in (entry / "environ").read_bytes().split(b"\0"):
                return int(entry.name)
        except OSError:
            continue
    raise AssertionError(f"no process of flow run {run_id}")


def test_a_statement_cut_off_by_kill_9_asks_whether_it_took_effect_and_is_marked_applied(
        server: PrefectServer, tmp_path: Path, mariadb_database: str) -> None:
    script = ("CREATE TABLE side (n INT NOT NULL) ENGINE=MyISAM;\nINSERT INTO side SELECT SLEEP(4) + 1;\n"
              "INSERT INTO side VALUES (2);\n")
    env = {**write_tree(tmp_path, STEPS, {"s.sql": script}), **site_env(tmp_path, "US", mariadb_database)}
    with server.worker("ft-upgrade-us", extra_env=env, name="us"):
        started = server.cli("deployment", "run", "startup_pre_process/startup-pre-process-us",
                             "-p", "source_version=3.17.0", "-p", "target_version=3.17.5",
                             "-p", 'waive=["pre_upgrade_process"]', "-p", "reason=test: this cutpoint alone")
        run_id = re.search(r"UUID: ([0-9a-f-]{36})", started.stdout).group(1)  # type: ignore[union-attr]
        deadline = time.monotonic() + 120
        while not sql(mariadb_database, "SELECT 1 FROM information_schema.PROCESSLIST "
                      "WHERE INFO LIKE 'INSERT INTO side SELECT SLEEP%'"):
            assert time.monotonic() < deadline, "the statement never started"
            time.sleep(0.2)
        os.kill(flow_process(run_id), signal.SIGKILL)  # in flight: the server finishes it, nobody records it
        wait_for_state(server, run_id, "Crashed")
        while sql(mariadb_database, "SELECT n FROM side") != [(1,)]:  # the operator looks: it took effect
            assert time.monotonic() < deadline, "the cut-off statement never completed on the server"
            time.sleep(0.2)

        with general_log() as log:
            retry(server, run_id)
            waiting = wait_for_state(server, run_id, "Suspended")
            description, choices = read_form(server, run_id, waiting)
            assert "存疑语句 `s.sql:2`" in description and "请先检查数据库" in description
            assert choices == [RETRY, APPLIED, SKIP, STOP]
            decide(server, run_id, decision=APPLIED, by="dba", reason="row 1 is there")
            wait_for_state(server, run_id, "Completed")
            assert log.queries("INSERT INTO side SELECT SLEEP") == [], "marked applied: never sent again"
    assert sql(mariadb_database, "SELECT n FROM side ORDER BY n") == [(1,), (2,)]
    assert sql(store(tmp_path, "US"), "SELECT decision_inflight, decision_by FROM upgrade_breakpoint "
               "WHERE decision_by IS NOT NULL") == [("applied", "dba")]


def test_a_decision_nobody_makes_in_time_ends_the_run_failed_with_its_breakpoint_and_retry_still_works(
        server: PrefectServer, tmp_path: Path, mariadb_database: str) -> None:
    script = "CREATE TABLE side (n INT NOT NULL);\nINSERT INTO side SELECT 1 FROM prerequisite;\n"
    env = {**write_tree(tmp_path, STEPS, {"s.sql": script}), **site_env(tmp_path, "EU", mariadb_database),
           "FT_UPGRADE_DECISION_TIMEOUT_SECONDS": "2"}
    with server.worker("ft-upgrade-eu", extra_env=env, name="eu"):
        code, out = cicd(server.env, "startup_pre_process", "EU", *WAIVE)
        assert code == 4, out
        run_id = run_id_of(out)
        failed = wait_for_state(server, run_id, "Failed", timeout=60)
        assert "never resumed" in failed["message"], failed
        # the execution still waits at its breakpoint (issue 27: PAUSED, not FAILED); Retry or resume continue it
        assert sql(store(tmp_path, "EU"), "SELECT e.status, b.status, b.sql_line_number FROM upgrade_execution e "
                   "JOIN upgrade_breakpoint b ON b.execution_id = e.execution_id") == [("PAUSED", "ACTIVE", 2)]
        sql(mariadb_database, "CREATE TABLE prerequisite (x INT)", "INSERT INTO prerequisite VALUES (0)")
        retry(server, run_id)  # today's path: fixed, Retry in the UI, continues at the failed statement
        wait_for_state(server, run_id, "Completed")
    assert sql(mariadb_database, "SELECT n FROM side") == [(1,)]


def input_exists(server: PrefectServer, run_id: str, key: str) -> bool:
    return httpx.get(f"{server.api_url}/flow_runs/{run_id}/input/{key}", timeout=30).status_code == 200


def suspended_by_an_older_version(server: PrefectServer, run_id: str, state: dict[str, Any]) -> None:
    """What a run suspended before this version of the form saved: the reason of a skip checked by length
    only (``minLength: 3``, no pattern). The server checks a submission against the schema saved then."""
    key = state["state_details"]["run_input_keyset"]["schema"]
    schema = json.loads(httpx.get(f"{server.api_url}/flow_runs/{run_id}/input/{key}").text)
    del schema["then"]["properties"]["reason"]["pattern"]
    api(server, "DELETE", f"/flow_runs/{run_id}/input/{key}")
    api(server, "POST", f"/flow_runs/{run_id}/input", json={"key": key, "value": json.dumps(schema)})


PROCEDURE = ("CREATE PROCEDURE fill_side() BEGIN INSERT INTO side VALUES (1, 'a'); "
             "INSERT INTO side VALUES (2, 'long'); END")


def test_a_refused_answer_asks_again_the_first_error_survives_a_retry_and_the_key_decides_on_a_chinese_site(
        server: PrefectServer, tmp_path: Path, mariadb_database: str) -> None:
    """A CALL that commits part of its work and fails (1406): whatever the operator sends, the run never ends
    in a state Retry cannot leave, and the server's error stays in the breakpoint and the form."""
    script = ("CREATE TABLE side (n INT NOT NULL, tag VARCHAR(3) NOT NULL);\nCALL fill_side();\n"
              "INSERT INTO side VALUES (3, 'c');\n")
    sql(mariadb_database, PROCEDURE)
    env = {**write_tree(tmp_path, STEPS, {"s.sql": script}), **site_env(tmp_path, "CN", mariadb_database)}
    cli_env = {**server.env, **env}
    with server.worker("ft-upgrade-cn", extra_env=env, name="cn-refused"):
        code, out = cicd(server.env, "startup_pre_process", "CN", *WAIVE)
        assert code == 4, out
        run_id = run_id_of(out)
        # the report printed while waiting says so, with the page to decide at; no Retry on a Suspended run
        assert "执行状态: ⏸️ PAUSED (等待操作员决定)" in out and "执行状态: ❌" not in out, out
        assert f"/runs/flow-run/{run_id}，点击 **Resume**" in out and "点击 **Retry**" not in out, out
        assert sql(store(tmp_path, "CN"), "SELECT status FROM upgrade_execution") == [("PAUSED",)]
        assert sql(store(tmp_path, "CN"), "SELECT state FROM upgrade_site_cutpoint "
                   "WHERE cutpoint = 'startup_pre_process'") == [("PAUSED",)]
        execution = sql(store(tmp_path, "CN"), "SELECT execution_id FROM upgrade_execution")[0][0]
        status = subprocess.run([str(Path(sys.executable).parent / "ft-upgrade"), "status", execution], cwd=PROJECT,
                                env=cli_env, capture_output=True, text=True, timeout=120)
        assert status.returncode == 4 and f"/runs/flow-run/{run_id}" in status.stdout, status.stdout + status.stderr

        first = wait_for_state(server, run_id, "Suspended")
        description, choices = read_form(server, run_id, first)
        assert "存疑语句 `s.sql:2`" in description and "错误 1406：Data too long for column 'tag'" in description
        assert choices == [RETRY, APPLIED, SKIP, STOP], "the CALL may have done part of its work"
        for reason in ("   ", "1.2", ""):  # the schema refuses a skip whose reason has no letters
            assert decide(server, run_id, decision=SKIP, by="ops", reason=reason)["status"] == "REJECT", reason
        assert decide(server, run_id, decision="applied: no such label", by="ops")["status"] == "REJECT"

        # a run suspended by the older form: the server takes the blank reason, the run refuses it and asks again
        suspended_by_an_older_version(server, run_id, first)
        assert decide(server, run_id, decision=SKIP, by="ops", reason="   ")["status"] == "ACCEPT"
        again = wait_for_state(server, run_id, "Suspended", other_than=first["id"])
        description, _ = read_form(server, run_id, again)
        assert "上一次提交未被接受" in description and "选择 skip 时必须填写原因" in description, description
        assert "错误 1406：Data too long for column 'tag'" in description, "the error is still there"
        assert not input_exists(server, run_id, first["state_details"]["run_input_keyset"]["response"]), \
            "the refused answer is deleted: no Retry can replay it"
        assert sql(store(tmp_path, "CN"), "SELECT status FROM upgrade_execution") == [("PAUSED",)]

        assert decide(server, run_id, decision="stop", by="ops", reason="asking the DBA")["status"] == "ACCEPT"
        stopped = wait_for_state(server, run_id, "Failed")
        assert "stopped here by ops in the Prefect UI (asking the DBA)" in stopped["message"], stopped
        assert sql(store(tmp_path, "CN"), "SELECT status FROM upgrade_execution") == [("FAILED",)]
        info = subprocess.run([str(Path(sys.executable).parent / "ft-upgrade"), "info", "--site", "CN"], cwd=PROJECT,
                              env=cli_env, capture_output=True, text=True, timeout=120)
        assert "prefect deployment run 'startup_pre_process/startup-pre-process-cn'" in info.stdout, info.stdout

        retry(server, run_id)  # UI Retry after the refused answer: the CALL is in doubt now, the run asks again
        third = wait_for_state(server, run_id, "Suspended", other_than=again["id"])
        description, choices = read_form(server, run_id, third)
        assert "its effects are not visible" in description and choices == [RETRY, APPLIED, SKIP, STOP]
        assert "**首次错误**" in description and "Data too long for column 'tag'" in description, description
        active = sql(store(tmp_path, "CN"), "SELECT context_data FROM upgrade_breakpoint WHERE status = 'ACTIVE'")
        assert "Data too long for column 'tag'" in json.loads(active[0][0])["original_error"]["message"]
        closed = sql(store(tmp_path, "CN"), "SELECT resolve_notes FROM upgrade_breakpoint WHERE status = 'RESOLVED'")
        assert [n.split(" (")[0] for (n,) in closed] == ["closed by attempt 2"], closed
        assert "without an operator's decision" in closed[0][0] and run_id in closed[0][0]

        sql(mariadb_database, "ALTER TABLE side MODIFY tag VARCHAR(10) NOT NULL", "DELETE FROM side")
        with general_log() as log:  # `retry`, the key, on a Chinese site's form: the CALL is sent again
            assert decide(server, run_id, decision="retry", by="dba", reason="widened tag, removed row 1")[
                "status"] == "ACCEPT"
            wait_for_state(server, run_id, "Completed")
            assert log.queries("CALL fill_side") != []
    assert sql(mariadb_database, "SELECT n, tag FROM side ORDER BY n") == [(1, "a"), (2, "long"), (3, "c")]
    assert sql(store(tmp_path, "CN"), "SELECT status, resume_count FROM upgrade_execution") == [("SUCCESS", 2)]
    assert sql(store(tmp_path, "CN"), "SELECT status, execution_result FROM sql_execution_record "
               "WHERE sql_line_number = 2")[0][1].startswith("run again by dba: widened tag, removed row 1")


def test_resume_finds_the_databases_the_worker_had_or_refuses_naming_them(
        server: PrefectServer, tmp_path: Path, mariadb_database: str) -> None:
    script = "CREATE TABLE resumed_rows (n INT NOT NULL);\nINSERT INTO resumed_rows SELECT 1 FROM prerequisite;\n"
    env = {**write_tree(tmp_path, STEPS, {"s.sql": script}), **site_env(tmp_path, "US", mariadb_database),
           "FT_UPGRADE_DECIDE_IN_UI": "false"}  # ft_db only in the worker's environment (FT_UPGRADE_DB_FT_DB)
    with server.worker("ft-upgrade-us", extra_env=env, name="us-resume"):
        code, out = cicd(server.env, "startup_pre_process", "US", *WAIVE)
        assert code == 1, out
    execution = sql(store(tmp_path, "US"), "SELECT execution_id, db_overrides FROM upgrade_execution")
    assert execution[0][1] == "ft_db:env", "the origin is recorded, never the URL"
    sql(mariadb_database, "CREATE TABLE prerequisite (x INT)", "INSERT INTO prerequisite VALUES (0)")
    shell = {k: v for k, v in {**server.env, **env}.items() if k != "FT_UPGRADE_DB_FT_DB"}
    resume = [str(Path(sys.executable).parent / "ft-upgrade"), "resume", execution[0][0], "--by", "ops",
              "--notes", "created prerequisite"]
    with general_log() as log:
        refused = subprocess.run(resume, cwd=PROJECT, env=shell, capture_output=True, text=True, timeout=300)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        said = " ".join((refused.stdout + refused.stderr).split())
        assert "ft_db (from the environment of the process that ran it: FT_UPGRADE_DB_FT_DB)" in said, said
        assert "--db ft_db=URL" in said and "nothing was executed" in said
        assert log.queries("INSERT INTO resumed_rows") == [], "nothing was sent"
    resumed = subprocess.run(resume, cwd=PROJECT, env={**shell, "FT_UPGRADE_DB_FT_DB": mariadb_database},
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert sql(mariadb_database, "SELECT n FROM resumed_rows") == [(1,)]
