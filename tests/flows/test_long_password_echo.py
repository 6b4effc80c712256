"""A long password cut short by the server's error echo leaks nowhere (issue 23, item 6).

MariaDB quotes at most 80 characters of a failing statement and ends the cut with ``...``: a 96-character
password then appears only in part, where the full-value masking cannot see it.
"""

from __future__ import annotations

import json
import random
import sqlite3
import string
import uuid
from pathlib import Path

import pymysql
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogWorker
from typer.testing import CliRunner

from blocks.clickhouse import ClickHouseLogStore
from flows.cli import app
from tasks.events.logstore import ClickHouseEventLog

pytestmark = [pytest.mark.mariadb, pytest.mark.usefixtures("prefect_api")]


def leaks(secret: str, text: str) -> list[str]:
    """Every piece of ``secret`` longer than three characters found in ``text``."""
    return sorted({secret[i:i + 4] for i in range(len(secret) - 3) if secret[i:i + 4] in text})


def test_a_96_character_password_echoed_in_part_by_the_server_is_masked_everywhere(
        isolated_env: Path, mariadb_database: str) -> None:
    secret = "".join(random.Random().choice(string.ascii_letters + string.digits) for _ in range(96))
    user = f"i23b_{uuid.uuid4().hex[:8]}"
    sql = isolated_env / "sql"
    sql.mkdir()
    (sql / "u.sql").write_text(f"CREATE USER '{user}'@'localhost' IDENTIFIED WITH mysql_native_password "
                               f"BY '{secret}';\n", encoding="utf-8")
    configs = isolated_env / "configs"
    configs.mkdir()
    (configs / "317500.json").write_text(json.dumps({"version": "317500", "upgrade_steps": {"startup_pre_process": [
        {"id": "sql_001", "class_name": "SqlScriptStep", "sql_scripts": ["u.sql"]}]}}), encoding="utf-8")
    try:
        result = CliRunner().invoke(app, [
            "run", "startup_pre_process", "--from", "3.17.0", "--to", "3.17.5", "--site", "CN", "--json",
            "--configs", str(configs), "--sql-root", str(sql), "--db", f"ft_db={mariadb_database}",
            "--waive", "pre_upgrade_process", "--reason", "test: this cutpoint alone"])
    finally:
        with pymysql.connect(host="127.0.0.1", user="root", autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'localhost'")
    output = result.output
    assert result.exit_code != 0 and "1064" in output, output
    assert "BY '***" in output, "the server's echo is there, masked"
    report = json.loads([line for line in output.splitlines() if line.startswith("{")][-1])
    flow_run_id = report["flow_run_id"]
    home = isolated_env / "home"
    store = sqlite3.connect(home / "metadata.db")  # ledger, breakpoints, executions, reports, history
    dump = "\n".join(store.iterdump())
    store.close()
    APILogWorker.drain_all(timeout=10)
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    prefect = json.dumps([flow_run.model_dump(mode="json"), [t.model_dump(mode="json") for t in task_runs],
                          [entry.model_dump(mode="json") for entry in logs],
                          [a.model_dump(mode="json") for a in artifacts]])
    events = ClickHouseEventLog(ClickHouseLogStore(dsn=f"chdb://{(home / 'clickhouse').resolve()}")).events(
        report["execution_id"])
    assert artifacts and logs and events, "every place is there to search"
    logged = json.dumps([[e.message, e.sql_text] for e in events])
    for place, text in {"stdout": output, "metadata store": dump, "prefect": prefect, "log store": logged}.items():
        assert leaks(secret, text) == [], place
