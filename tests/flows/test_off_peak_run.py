"""Index optimization outside the site's off-peak window: refused with the next window named, run with a
waiver (recorded in the report); the step's description in the plan and the report. Real Prefect API (the
site profile block) and the real MariaDB, through the CLI."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from flows.cli import app
from tests.helpers import AnsweringService

pytestmark = pytest.mark.usefixtures("prefect_api")

DESCRIPTION = "重建订单表索引 [orders]"


def json_line(output: str) -> dict[str, Any]:
    lines = [line for line in output.splitlines() if line.startswith("{")]
    assert lines, output
    return json.loads(lines[-1])


def test_index_optimization_outside_the_window_is_refused_naming_the_next_one_and_runs_with_a_waiver(
        isolated_env: Path, mariadb_database: str) -> None:
    from blocks.site_profile import SiteProfile

    engine = create_engine(mariadb_database)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE orders (id INT PRIMARY KEY, status INT)"))
        conn.execute(text("INSERT INTO orders VALUES (1, 0), (2, 1)"))
    engine.dispose()
    now = datetime.now(UTC)
    opens = (now + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    window = f"{opens:%H:%M}-{opens + timedelta(hours=1):%H:%M}"  # an hour that starts in 1 to 2 hours
    SiteProfile(site_id="OP", off_peak=[window], timezone="UTC").save(SiteProfile.block_name("OP"), overwrite=True)
    configs = isolated_env / "configs"
    configs.mkdir()
    (configs / "317500.json").write_text(json.dumps({"version": "317500", "upgrade_steps": {"startup_post_process": [
        {"id": "idx_orders", "name": "索引优化", "description": DESCRIPTION, "class_name": "IndexOptimizationStep",
         "database": "ft_db", "tables": [{"table": "orders", "indexes": [{"name": "ix_status",
                                                                           "columns": ["status"]}]}]}]}}),
        encoding="utf-8")
    up = AnsweringService()  # the FT service, started and healthy (isolated_env restores the environment)
    os.environ["FT_UPGRADE_SERVICES"] = json.dumps({"ft-manager": up.url()})
    args = ["run", "startup_post_process", "--from", "3.17.0", "--to", "3.17.5", "--site", "OP", "--json",
            "--configs", str(configs), "--db", f"ft_db={mariadb_database}", "--waive", "startup_pre_process"]

    refused = CliRunner().invoke(app, [*args, "--reason", "tested alone"])
    assert refused.exit_code == 2, refused.output
    error = json_line(refused.output)["error"]
    assert "precondition off_peak: heavy work (idx_orders (IndexOptimizationStep)) runs only in site OP's " \
           f"off-peak window {window} (UTC)" in error, error
    assert f"the next window opens {opens:%Y-%m-%d %H:%M} UTC" in error and "--waive off_peak" in error, error

    waived = CliRunner().invoke(app, [*args, "--waive", "off_peak", "--reason", "the customer allows it today"])
    assert waived.exit_code == 0, waived.output
    report = json_line(waived.output)
    assert {w["precondition"]: w["reason"] for w in report["waivers"]} == {
        "startup_pre_process": "the customer allows it today", "off_peak": "the customer allows it today"}
    [step] = report["step_results"]
    assert (step["step_id"], step["description"], step["status"]) == ("idx_orders", DESCRIPTION, "SUCCESS")

    shown = CliRunner().invoke(app, ["report", report["execution_id"], "--format", "md"])
    assert f"| 1 | `idx_orders` 索引优化 — {DESCRIPTION} |" in shown.output, shown.output
    assert "**off_peak** 由 " in shown.output, shown.output
    up.stop()

    plan = CliRunner().invoke(app, ["plan", "--from", "3.17.0", "--to", "3.17.5", "--site", "OP", "--configs",
                                    str(configs)], terminal_width=250)
    assert DESCRIPTION in plan.output, plan.output
    planned = CliRunner().invoke(app, ["plan", "--from", "3.17.0", "--to", "3.17.5", "--site", "OP", "--json",
                                       "--configs", str(configs)])
    assert json.loads(planned.output)["steps"][0]["description"] == DESCRIPTION
