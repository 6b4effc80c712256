"""``plan --sql``: every statement per database, with file:line, kind, guarantee and whether it ran at the site.

Against the real MariaDB: a site runs startup_pre_process through the CLI, then ``plan --sql`` marks that
script's statements applied and a new script's pending; the general log shows that it sent the business
database nothing but catalog reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.flows.test_site_state import Site
from tests.general_log import GeneralLog, general_log

pytestmark = pytest.mark.usefixtures("prefect_api")

NEW_SCRIPT = "-- @database: middle_db\nSET NAMES utf8mb4;\nCREATE INDEX ix_side ON side (n);\n"


def sent_to(log: GeneralLog, database: str) -> list[str]:
    """Statements of the connections opened on ``database`` since the log's mark, and any naming it."""
    with log.conn.cursor() as cur:
        cur.execute("SELECT DISTINCT thread_id FROM mysql.general_log WHERE event_time >= %s AND "
                    "command_type IN ('Connect', 'Init DB') AND CONVERT(argument USING utf8mb4) LIKE %s",
                    (log.since, f"%{database}%"))
        threads = [row[0] for row in cur.fetchall()] or [-1]
        cur.execute("SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log WHERE event_time >= %s AND "
                    "command_type IN ('Query', 'Execute') AND (thread_id IN %s OR CONVERT(argument USING utf8mb4) "
                    "LIKE %s) AND thread_id <> CONNECTION_ID()", (log.since, threads, f"%{database}%"))
        return [row[0] for row in cur.fetchall()]


def plan_sql(site: Site, database: str) -> tuple[str, ...]:
    return ("plan", "--from", "3.17.0", "--to", "3.17.5", "--site", "CN", "--cutpoint", "startup_pre_process",
            "--sql", "--configs", str(site.root / "configs"), "--sql-root", str(site.root / "sql"),
            "--db", f"ft_db={database}")


def json_and_text(site: Site, plan: tuple[str, ...], database: str) -> tuple[str, str, list[str]]:
    """``plan`` with ``--json`` and without, and what the two sent to the business database."""
    with general_log() as log:
        code, out = site.cli(*plan, "--json")
        assert code == 0, out
        code, table = site.cli(*plan)
        assert code == 0, table
        return out, table, sent_to(log, make_url(database).database or "")


def test_plan_sql_lists_each_statement_applied_or_pending_and_only_reads_the_business_database(
        isolated_env: Path, mariadb_database: str) -> None:
    site = Site(isolated_env, mariadb_database)
    code, out = site.run("startup_pre_process", "--waive", "pre_upgrade_process", "--reason", "test: alone")
    assert code == 0, out
    config = site.root / "configs" / "317500.json"
    data = json.loads(config.read_text(encoding="utf-8"))
    data["upgrade_steps"]["startup_pre_process"][0]["sql_scripts"].append("t.sql")
    config.write_text(json.dumps(data), encoding="utf-8")
    (site.root / "sql" / "t.sql").write_text(NEW_SCRIPT, encoding="utf-8")
    plan = plan_sql(site, mariadb_database)

    out, table, sent = json_and_text(site, plan, mariadb_database)
    assert [q for q in sent if not q.lstrip().upper().startswith(("SELECT", "SHOW", "SET"))] == []

    databases = json.loads(out)["sql"]["databases"]
    assert [(s["file"], s["line"], s["kind"], s["verb"], s["status"]) for s in databases["ft_db"]] == [
        ("s.sql", 1, "DDL", "CREATE", "applied"), ("s.sql", 2, "DML", "INSERT", "applied"),
        ("s.sql", 3, "DML", "INSERT", "applied")]
    assert [(s["file"], s["line"], s["kind"], s["status"], s["guarantee"]) for s in databases["middle_db"]] == [
        ("t.sql", 2, "SESSION", "pending", "replayed on resume and reconnect"),
        ("t.sql", 3, "DDL", "pending", "decided from the catalog")]
    assert databases["ft_db"][1]["guarantee"].startswith("exactly once")
    assert "ft_db: 3 statements (3 applied)" in table and "middle_db: 2 statements (2 pending)" in table
    assert "s.sql:2 │ DML INSERT" in table and "t.sql:3 │ DDL CREATE" in table

    site.script.write_text(site.script.read_text(encoding="utf-8") + "INSERT INTO side VALUES (3);\n",
                           encoding="utf-8")
    code, out = site.cli(*plan, "--json")
    assert code == 0, out
    assert {s["status"] for s in json.loads(out)["sql"]["databases"]["ft_db"]} == {"changed since applied"}


FORECAST_SCRIPT = ("ALTER TABLE big ADD COLUMN x INT;\n"
                   "ALTER TABLE big ADD INDEX k_qty (qty);\n"
                   "ALTER TABLE big MODIFY qty BIGINT NOT NULL;\n"
                   "UPDATE big SET qty = qty + 1;\n")
READS = ("SELECT", "SHOW", "SET", "EXPLAIN", "USE", "ROLLBACK")


def test_plan_sql_forecasts_the_downtime_and_a_run_sets_actual_beside_it_and_teaches_the_site(
        isolated_env: Path, mariadb_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import create_engine, text

    from tasks.sql.forecast import site as forecast_site
    from tests.flows.test_site_state import report_of
    from tests.helpers import open_store

    engine = create_engine(mariadb_database)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE big (id INT PRIMARY KEY AUTO_INCREMENT, qty INT NOT NULL, note VARCHAR(20))"))
        conn.execute(text("INSERT INTO big (qty, note) SELECT seq, 'n' FROM seq_1_to_2000"))
        conn.execute(text("ANALYZE TABLE big"))
    engine.dispose()
    site = Site(isolated_env, mariadb_database)
    site.script.write_text(FORECAST_SCRIPT, encoding="utf-8")
    plan = plan_sql(site, mariadb_database)

    out, table, sent = json_and_text(site, plan, mariadb_database)
    assert [q for q in sent if not q.lstrip().upper().startswith(READS)] == [], "the forecast only reads"
    assert any(q.startswith("EXPLAIN UPDATE big") for q in sent)

    found = json.loads(out)["forecast"]
    rows = [(s["where"], s["category"], s["work"], s["rows"] > 1000) for s in found["statements"]]
    assert rows == [("s.sql:1", "INSTANT", "metadata", False), ("s.sql:2", "INPLACE (no lock)", "index", True),
                    ("s.sql:3", "COPY", "copy", True), ("s.sql:4", "DML", "dml", True)]
    assert found["seconds"] > 0 and found["dominating"][0] == "s.sql:3"
    assert found["rates"]["copy"] == {"rows_per_second": 150_000.0, "learned_from": 0}
    assert found["servers"]["ft_db"].startswith("MariaDB 10.") and found["unavailable"] == {}
    assert "downtime forecast of startup_pre_process:" in table and "statements still to run" in table
    assert "│ COPY │ copy │" in table and "INPLACE (no lock) [NOCOPY, LOCK=NONE]" in table and "(default)" in table
    assert "dominating: s.sql:3" in table

    monkeypatch.setattr(forecast_site, "MIN_ROWS", 100)  # a lean table teaches as a big one would
    monkeypatch.setattr(forecast_site, "MIN_SECONDS", 0.0)
    code, out = site.run("startup_pre_process", "--waive", "pre_upgrade_process", "--reason", "test: alone",
                         "--json")
    assert code == 0, out
    report = report_of(out)
    versus = report["step_results"][0]["details"]["forecast"]
    assert versus["statements_run"] == 4 and versus["actual_seconds"] > 0 and versus["error_ratio"] is not None
    copy = next(r for r in versus["by_statement"] if r["where"] == "s.sql:3")
    assert copy["category"] == "COPY" and copy["actual"] > 0 and copy["forecast"] > 0
    assert set(versus["learned"]) == {"copy", "index", "dml"}

    store = open_store()
    with store.engine.connect() as conn:
        learned = dict(conn.execute(text("SELECT work, statements FROM upgrade_site_throughput "
                                         "WHERE site_id = 'CN'")).all())
        markdown = conn.execute(text("SELECT report_content FROM upgrade_report")).scalars().all()
    store.close()
    assert learned == {"copy": 1, "index": 1, "dml": 1}
    assert any("预测与实际" in (m or "") and "s.sql:3 | COPY" in (m or "") for m in markdown)

    (site.root / "sql" / "t.sql").write_text("ALTER TABLE big FORCE;\n", encoding="utf-8")
    config = site.root / "configs" / "317500.json"
    data = json.loads(config.read_text(encoding="utf-8"))
    data["upgrade_steps"]["startup_pre_process"][0]["sql_scripts"].append("t.sql")
    config.write_text(json.dumps(data), encoding="utf-8")
    code, out = site.cli(*plan, "--json")
    assert code == 0, out
    again = json.loads(out)["forecast"]
    assert again["rates"]["copy"]["learned_from"] == 1 and again["rates"]["rebuild"]["learned_from"] == 0
    assert [s["where"] for s in again["statements"]] == ["t.sql:1"], "only what is still to run"
