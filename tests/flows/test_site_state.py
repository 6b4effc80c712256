"""A site knows where it stands: a completed cutpoint is not applied again, cutpoints keep their order,
the version is checked, scripts applied at the site are guarded, and every command finds the execution.

All through the real CLI, the real MariaDB (its general log as the witness of what was sent) and a
real Prefect API; the site profile and metadata blocks are real blocks on that API.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect.settings import PREFECT_API_URL
from sqlalchemy import create_engine, select, text, update
from typer.testing import CliRunner

from blocks.database import connector_from_url
from blocks.site_profile import SiteProfile
from flows.cli import app
from tasks.core.clock import utcnow
from tasks.store import schema
from tests.general_log import general_log
from tests.helpers import answering_service, open_store

pytestmark = pytest.mark.usefixtures("prefect_api")

HEALTH = {"id": "ping", "class_name": "ServiceHealthCheckStep", "databases": ["ft_db"]}
SCRIPT = ("CREATE TABLE IF NOT EXISTS side (n INT NOT NULL);\n"
          "INSERT INTO side VALUES (1);\nINSERT INTO side VALUES (2);\n")
CUTPOINTS = ["pre_business_check", "pre_upgrade_process", "startup_pre_process", "startup_post_process",
             "post_upgrade"]


class Site:
    """A configs folder, a SQL folder and a MariaDB database, run through the CLI as CICD would."""

    def __init__(self, root: Path, database: str, site: str = "CN") -> None:
        self.root, self.database, self.site = root, database, site
        (root / "configs").mkdir(exist_ok=True)
        (root / "sql").mkdir(exist_ok=True)
        steps = {c: [{**HEALTH, "id": f"ping_{i}"}] for i, c in enumerate(CUTPOINTS)}
        steps["startup_pre_process"] = [{"id": "sql_001", "class_name": "StartupPreProcessStep",
                                         "sql_scripts": ["s.sql"]}]
        (root / "configs" / "317500.json").write_text(json.dumps({"version": "317500", "upgrade_steps": steps}),
                                                      encoding="utf-8")
        self.script = root / "sql" / "s.sql"
        self.script.write_text(SCRIPT, encoding="utf-8")

    def cli(self, *args: str) -> tuple[int, str]:
        """One command, as its own process would see the environment (the CLI sets FT_UPGRADE_* for its flows)."""
        saved = dict(os.environ)
        try:
            result = CliRunner().invoke(app, list(args))
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return result.exit_code, " ".join(result.output.split())

    def run(self, cutpoint: str, *extra: str, source: str = "3.17.0") -> tuple[int, str]:
        return self.cli("run", cutpoint, "--from", source, "--to", "3.17.5", "--site", self.site, "--configs",
                        str(self.root / "configs"), "--sql-root", str(self.root / "sql"), "--db",
                        f"ft_db={self.database}", *extra)

    def rows_exist(self) -> bool:
        engine = create_engine(self.database)
        with engine.connect() as conn:
            found = conn.execute(text("SHOW TABLES LIKE 'side'")).first() is not None
        engine.dispose()
        return found

    def rows(self) -> list[int]:
        engine = create_engine(self.database)
        with engine.connect() as conn:
            found = [r[0] for r in conn.execute(text("SELECT n FROM side ORDER BY n"))]
        engine.dispose()
        return found


def report_of(output: str) -> dict[str, Any]:
    """The JSON object printed by ``--json`` (log lines may follow it)."""
    return json.JSONDecoder().raw_decode(output[output.index('{"'):])[0]


@pytest.fixture
def site(isolated_env: Path, mariadb_database: str) -> Site:
    return Site(isolated_env, mariadb_database)


def test_a_completed_cutpoint_triggered_again_sends_nothing_and_the_version_moves_at_the_end(site: Site) -> None:
    for cutpoint in CUTPOINTS[:3]:
        code, out = site.run(cutpoint)
        assert code == 0, (cutpoint, out)
    code, out = site.cli("info", "--site", "CN", "--json", "--configs", str(site.root / "configs"))
    info = json.loads(out)
    assert (info["current_version"], info["schema_version"]) == (None, "3.17.5"), "schema moves after startup_pre"
    assert [c["state"] for c in info["upgrade"]["cutpoints"]] == ["COMPLETED"] * 3 + ["NOT_STARTED"] * 2

    with general_log() as log:
        code, out = site.run("startup_pre_process", "--json")
        assert code == 0, out
        again = report_of(out)
        assert again["noop"] is True and "already completed by EXEC_" in again["notice"]
        assert "nothing executed" in again["notice"]
        assert log.queries("INSERT INTO side") == [] and log.queries("CREATE TABLE IF NOT EXISTS side") == []
    assert site.rows() == [1, 2]

    with answering_service() as up:  # the FT services started again (the `site` fixture restores the environment)
        os.environ["FT_UPGRADE_SERVICES"] = json.dumps({"ft-manager": up.url()})
        for cutpoint in CUTPOINTS[3:]:
            code, out = site.run(cutpoint)
            assert code == 0, (cutpoint, out)
    code, out = site.cli("info", "--site", "CN", "--configs", str(site.root / "configs"))
    assert "site CN: version 3.17.5 (upgrade), schema 3.17.5" in out and "upgrade 3.17.0 → 3.17.5: COMPLETED" in out
    assert "pending configs: none" in out
    store = open_store()
    with store.engine.connect() as conn:
        events = [r[0] for r in conn.execute(text(
            "SELECT event FROM upgrade_site_history WHERE site_id = 'CN' ORDER BY created_time, id"))]
        report = conn.execute(text("SELECT total_sql_count, success_sql_count, failed_sql_count FROM upgrade_report "
                                   "r JOIN upgrade_execution e ON e.execution_id = r.execution_id WHERE "
                                   "e.step_type = 'startup_pre_process' AND r.report_type = 'SUMMARY'")).one()
        results = [r[0] for r in conn.execute(text("SELECT execution_result FROM sql_execution_record"))]
    store.close()
    assert events[0] == "UPGRADE_STARTED" and "TRIGGER_NOOP" in events and events[-1] == "UPGRADE_COMPLETED"
    assert events.count("VERSION_MOVED") == 2  # the schema after startup_pre_process, the release after post_upgrade
    assert tuple(report) == (3, 3, 0)
    assert sorted(results) == ["OK, 0 rows affected", "OK, 1 row affected", "OK, 1 row affected"]


def test_a_deliberate_rerun_runs_again_lists_what_was_applied_and_records_who_and_why(site: Site) -> None:
    waive = ("--waive", "pre_upgrade_process", "--reason", "test: this cutpoint alone")
    code, out = site.run("startup_pre_process", *waive, "--json")
    assert code == 0, out
    first = report_of(out)["execution_id"]
    code, out = site.run("startup_pre_process", "--rerun")
    assert code == 2 and "a reason is required" in out
    with general_log() as log:
        code, out = site.run("startup_pre_process", "--rerun", "--reason", "vendor asked for it", "--by", "ann",
                             "--json", *waive[:2])
        assert code == 0, out
        assert len(log.queries("INSERT INTO side VALUES (1)")) == 1, "sent again, on purpose"
    report = report_of(out)
    assert report["rerun_of"] == first and report["requested_by"] == "ann"
    assert report["rerun"]["reason"] == "vendor asked for it"
    assert [line.split(" ")[0] for line in report["rerun"]["scripts_applied_at_site"]] == ["s.sql"]
    assert site.rows() == [1, 1, 2, 2]
    code, out = site.cli("report", report["execution_id"])
    assert "## 有意重新执行" in out and f"重新执行 `{first}`，由 ann 发起：vendor asked for it" in out


def test_a_wrong_from_and_another_upgrade_in_progress_are_refused(site: Site) -> None:
    code, out = site.cli("baseline", "--site", "CN", "--version", "3.16.5", "--by", "ann", "--notes", "installed 2024")
    assert code == 0 and "site CN is on 3.16.5" in out
    code, out = site.run("pre_business_check")
    assert code == 2
    assert "site CN is on version 3.16.5 (recorded by baseline), but the trigger says --from 3.17.0" in out
    code, out = site.run("pre_business_check", source="3.16.5")
    assert code == 0, out
    code, out = site.run("pre_business_check")
    assert code == 2 and "site CN is in the upgrade 3.16.5 → 3.17.5" in out
    store = open_store()
    with store.engine.connect() as conn:
        executions = conn.execute(text("SELECT source_version FROM upgrade_execution")).scalars().all()
        history = conn.execute(text("SELECT event, actor, detail FROM upgrade_site_history WHERE event IN "
                                    "('BASELINE', 'TRIGGER_REFUSED') ORDER BY created_time")).all()
    store.close()
    assert executions == ["3.16.5"], "a refused trigger starts no execution"
    assert [h[0] for h in history] == ["BASELINE", "TRIGGER_REFUSED", "TRIGGER_REFUSED"]
    assert history[0][1] == "ann" and json.loads(history[0][2])["notes"] == "installed 2024"


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"status": "UP"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def running_service() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_each_missing_precondition_is_refused_with_its_message_and_a_waiver_is_recorded(
        isolated_env: Path, mariadb_database: str, running_service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    site = Site(isolated_env, mariadb_database, site="SVC")
    SiteProfile(site_id="SVC", services={"ft-manager": running_service}).save("site-svc", overwrite=True)
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    try:
        expected = {"pre_upgrade_process": "pre_business_check has not completed for site SVC 3.17.0 → 3.17.5",
                    "startup_pre_process": "pre_upgrade_process has not completed for site SVC",
                    "startup_post_process": "startup_pre_process has not completed for site SVC",
                    "post_upgrade": "startup_post_process has not completed for site SVC"}
        for cutpoint, message in expected.items():
            code, out = site.run(cutpoint)
            assert code == 2 and message in out and "nothing was executed" in out, (cutpoint, out)
        assert site.run("pre_business_check")[0] == 0
        store = open_store()
        with store.engine.begin() as conn:  # the check passed 25 hours ago
            conn.execute(update(schema.site_cutpoint).values(finished_time=utcnow() - timedelta(hours=25)))
        code, out = site.run("pre_upgrade_process")
        assert code == 2 and "older than the 24 h allowed" in out
        code, out = site.run("pre_upgrade_process", "--waive", "pre_business_check", "--reason", "ran it by hand",
                             "--by", "ann", "--json")
        assert code == 0, out
        waivers = report_of(out)["waivers"]
        assert [(w["precondition"], w["by"], w["reason"]) for w in waivers] == [
            ("pre_business_check", "ann", "ran it by hand")]
        code, out = site.run("startup_pre_process")
        assert code == 2 and "precondition services_stopped: the FT services are still running at site SVC " \
                             f"(ft-manager ({running_service}: HTTP 200)): stop them first" in out
        with socket.socket() as silent:  # a port that accepts and never answers; a name that does not resolve
            silent.bind(("127.0.0.1", 0))
            silent.listen(4)
            port = silent.getsockname()[1]
            SiteProfile(site_id="SVC", services={"ft-manager": f"http://127.0.0.1:{port}/health",
                                                 "ft-report": "http://ft-report.invalid:8080/health"}
                        ).save("site-svc", overwrite=True)
            code, out = site.run("startup_pre_process")
        assert code == 2 and "precondition services_stopped: cannot tell whether ft-manager (http://127.0.0.1:" \
            f"{port}/health: port {port} accepts connections but no answer came within 0.5 s), ft-report (" \
            "http://ft-report.invalid:8080/health: the name ft-report.invalid does not resolve" in out, out
        assert "stopped at site SVC (only a refused connection proves a service stopped)" in out
        SiteProfile(site_id="SVC").save("site-svc", overwrite=True)
        monkeypatch.delenv("FT_UPGRADE_SERVICES")
        code, out = site.run("startup_pre_process")
        assert code == 2 and "precondition services_stopped: site SVC lists no FT services, so nothing proves them " \
                             "stopped: list them in the site profile" in out, out
        assert not site.rows_exist()
        code, out = site.run("startup_pre_process", "--waive", "services_stopped", "--reason", "read-only mode",
                             "--by", "ann")
        assert code == 0, out
        with store.engine.connect() as conn:
            recorded = conn.execute(text("SELECT waivers FROM upgrade_execution WHERE step_type = "
                                         "'startup_pre_process'")).scalar_one()
            history = conn.execute(select(schema.site_history.c.detail).where(
                schema.site_history.c.site_id == "SVC", schema.site_history.c.cutpoint == "startup_pre_process",
                schema.site_history.c.detail.contains("waivers"))).scalars().all()
        store.close()
        (waiver,) = json.loads(recorded)
        assert (waiver["precondition"], waiver["by"], waiver["reason"]) == ("services_stopped", "ann", "read-only mode")
        assert "lists no FT services" in waiver["missing"]
        assert len(history) == 1 and "read-only mode" in str(history[0])
        code, out = site.cli("report", report_of(site.run("startup_pre_process", "--json")[1])["execution_id"])
        assert "## 豁免的前置条件" in out and "**services_stopped** 由" in out
        code, out = site.run("startup_post_process")  # the same rule for the services started and healthy
        assert code == 2 and "precondition services_started: site SVC lists no FT services, so nothing proves " \
                             "them started and healthy" in out, out
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(4)
            port = silent.getsockname()[1]
            SiteProfile(site_id="SVC", services={"ft-manager": f"http://127.0.0.1:{port}/health"}
                        ).save("site-svc", overwrite=True)
            code, out = site.run("startup_post_process")
        assert code == 2 and "precondition services_started: cannot tell whether ft-manager (http://127.0.0.1:" \
            f"{port}/health: port {port} accepts connections but no answer came within 0.5 s) started and healthy " \
            "at site SVC" in out, out
        SiteProfile(site_id="SVC", services={"ft-manager": running_service}).save("site-svc", overwrite=True)
        code, out = site.run("startup_post_process")
        assert code == 0, out
    finally:
        SiteProfile.delete("site-svc")


def test_a_script_changed_after_it_was_applied_is_reported_and_run_refuses_unless_told(site: Site) -> None:
    code, out = site.run("startup_pre_process", "--waive", "pre_upgrade_process", "--reason", "test", "--json")
    assert code == 0, out
    applied_by = report_of(out)["execution_id"]
    site.script.write_text(SCRIPT + "-- a comment added later\n", encoding="utf-8")
    paths = ("--configs", str(site.root / "configs"), "--sql-root", str(site.root / "sql"))
    code, out = site.cli("validate", "--site", "CN", *paths)
    assert code == 2 and f"s.sql: applied by {applied_by}" in out and "with SHA-256" in out and ", now " in out
    code, out = site.cli("plan", "--from", "3.17.0", "--to", "3.17.5", "--site", "CN", *paths)
    assert code == 0 and f"changed since applied: s.sql: applied by {applied_by}" in out
    code, out = site.run("startup_post_process", "--waive", "startup_pre_process", "--reason", "x")
    assert code == 2 and "scripts applied at this site have changed on disk" in out
    code, out = site.run("startup_post_process", "--accept-changed-scripts", "--waive", "services_started",
                         "--reason", "comment only; no FT services in this test")
    assert code == 0, out
    code, out = site.cli("validate", "--site", "CN", *paths)
    assert code == 0 and "scripts applied at site CN unchanged" in out


def test_info_shows_the_active_breakpoint_in_the_requirements_format(site: Site) -> None:
    site.script.write_text("CREATE TABLE side (n INT);\nINSERT INTO side SELECT n FROM missing;\n", encoding="utf-8")
    code, out = site.run("startup_pre_process", "--waive", "pre_upgrade_process", "--reason", "test", "--json")
    assert code == 1
    execution = report_of(out)["execution_id"]
    code, out = site.cli("info", "--site", "CN", "--configs", str(site.root / "configs"))
    assert code == 0
    for label in ("断点ID: BP_", f"执行ID: {execution}", "失败位置: s.sql:2", "失败SQL: INSERT INTO side SELECT n",
                  "失败原因: [1146] ", "断点时间: ", "恢复方式:", f"ft-upgrade resume {execution}"):
        assert label in out, label
    assert "upgrade 3.17.0 → 3.17.5: IN_PROGRESS" in out and "startup_pre_process │ FAILED" in out


def test_resume_status_and_report_find_a_run_started_with_db_metadata(site: Site, tmp_path: Path) -> None:
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    site.script.write_text("CREATE TABLE side (n INT);\nINSERT INTO side SELECT 2 FROM missing;\n", encoding="utf-8")
    code, out = site.run("startup_pre_process", "--waive", "pre_upgrade_process", "--reason", "test", "--json",
                         "--db", f"metadata={elsewhere}")
    assert code == 1
    execution = report_of(out)["execution_id"]
    code, out = site.cli("status", execution)
    assert code == 2 and f"no execution '{execution}'" in out
    for command in (("status", execution), ("report", execution)):
        code, out = site.cli(*command, "--db", f"metadata={elsewhere}")
        assert execution in out, (command, out)
    engine = create_engine(site.database)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE missing (x INT)"))
        conn.execute(text("INSERT INTO missing VALUES (0)"))
    engine.dispose()
    code, out = site.cli("resume", execution, "--db", f"metadata={elsewhere}", "--db", f"ft_db={site.database}",
                         "--by", "ann", "--notes", "created missing")
    assert code == 0, out
    assert site.rows() == [2]


def test_resume_status_and_report_of_a_site_with_its_own_metadata_block(
        site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = tmp_path / "own-metadata.db"
    connector_from_url(f"sqlite:///{own}").save("own-metadata", overwrite=True)
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    try:
        own_site = Site(site.root, site.database, site="OWN")
        site.script.write_text("CREATE TABLE side (n INT);\nINSERT INTO side SELECT 3 FROM missing;\n",
                               encoding="utf-8")
        code, out = own_site.run("startup_pre_process", "--waive", "pre_upgrade_process", "--reason", "t", "--json")
        assert code == 1
        execution = report_of(out)["execution_id"]
        assert own.exists(), "the run used the site's own metadata block"
        for command in (("status", execution), ("report", execution), ("status", execution, "--site", "OWN")):
            code, out = site.cli(*command)
            assert execution in out, (command, out)
        engine = create_engine(site.database)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE missing (x INT)"))
            conn.execute(text("INSERT INTO missing VALUES (0)"))
        engine.dispose()
        code, out = site.cli("resume", execution, "--db", f"ft_db={site.database}")
        assert code == 0, out
        assert site.rows() == [3]
        code, out = site.cli("info", "--site", "OWN", "--configs", str(site.root / "configs"))
        assert "startup_pre_process │ COMPLETED" in out
    finally:
        from prefect_sqlalchemy import SqlAlchemyConnector

        SqlAlchemyConnector.delete("own-metadata")
