"""One report for the whole upgrade: after a failed statement, an operator's decision (``resume --inflight``) and
the resume, then a rollback, the artifact ``ft-<site>-upgrade-<source>-<target>`` shows the cutpoints, the
executions, the failed statement with its error, the decision and who made it, the resume and the waiver.
Real Prefect API and the real MariaDB, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from flows.cli import app

pytestmark = pytest.mark.usefixtures("prefect_api")


def latest_artifact(key: str) -> str:
    from prefect.artifacts import Artifact

    found = Artifact.get(key)
    assert found is not None, f"no artifact {key}"
    return str(found.data)


def test_the_whole_upgrade_report_after_a_failure_a_decision_a_resume_and_a_rollback(
        isolated_env: Path, mariadb_database: str) -> None:
    sql, configs = isolated_env / "sql", isolated_env / "configs"
    sql.mkdir()
    configs.mkdir()
    (sql / "f.sql").write_text("CREATE TABLE t (id INT PRIMARY KEY);\nINSERT INTO t VALUES (1);\n"
                               "INSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);\n", encoding="utf-8")
    (configs / "317500.json").write_text(json.dumps({
        "version": "317500",
        "upgrade_steps": {"startup_pre_process": [{"id": "sql_001", "class_name": "StartupPreProcessStep",
                                                   "sql_scripts": ["f.sql"]}]},
        "rollback_steps": {"pre_rollback": [{"id": "db_reachable", "class_name": "ServiceHealthCheckStep",
                                             "databases": ["ft_db"]}]}}), encoding="utf-8")
    db = ["--db", f"ft_db={mariadb_database}"]
    failed = CliRunner().invoke(app, [
        "run", "startup_pre_process", "--from", "3.17.0", "--to", "3.17.5", "--site", "UP", "--json", *db,
        "--configs", str(configs), "--sql-root", str(sql), "--waive", "pre_upgrade_process",
        "--reason", "backup taken by hand", "--by", "alice"])
    assert failed.exit_code == 1, failed.output
    execution = json.loads([line for line in failed.output.splitlines() if line.startswith("{")][-1])["execution_id"]
    key = "ft-up-upgrade-3-17-0-3-17-5"
    after_failure = latest_artifact(key)
    assert "`f.sql:3`" in after_failure and "尚无决定" in after_failure and "等待处理（ACTIVE）" in after_failure

    engine = create_engine(mariadb_database)
    with engine.begin() as conn:  # the operator removes the conflicting row
        conn.execute(text("DELETE FROM t WHERE id = 1"))
    engine.dispose()
    resumed = CliRunner().invoke(app, ["resume", execution, "--inflight", "retry", "--by", "bob",
                                       "--notes", "removed the conflicting row 1", *db])
    assert resumed.exit_code == 0, resumed.output

    report = latest_artifact(key)
    assert report.startswith("# [FT升级总报告] 局点 UP：3.17.0 → 3.17.5"), report
    assert f"| 3 | `startup_pre_process` | ✅ 已完成 | `{execution}` SUCCESS | 1 |" in report, report
    assert "| 1 | `pre_business_check` | 未开始 | - | 0 |" in report, report
    assert f"`{execution}` (startup_pre_process), step `sql_001` — 失败位置 `f.sql:3` (ft_db)" in report, report
    assert "  - 失败语句: `INSERT INTO t VALUES (1)`" in report, report
    assert "Duplicate entry '1' for key 'PRIMARY'" in report, report
    assert "  - 决定: **retry** — 决定人: bob (" in report and "说明: removed the conflicting row 1" in report, report
    assert "  - 结果: 已解决：bob，" in report, report
    assert f"`{execution}`（startup_pre_process）由 " in report, report  # the resume, in ## 续执行
    assert f"- `{execution}`（startup_pre_process）：**pre_upgrade_process** 由 alice 豁免：backup taken by hand" \
           in report, report
    assert "| CUTPOINT_FAILED | startup_pre_process |" in report and "| CUTPOINT_COMPLETED |" in report, report

    own = CliRunner().invoke(app, ["report", execution, "--format", "md"])  # the cutpoint's own report says it too
    assert "## 断点与操作员决定" in own.output and "决定人: bob" in own.output, own.output
    data = json.loads(CliRunner().invoke(app, ["report", execution, "--format", "json"]).output)
    [bp] = data["breakpoints"]
    assert (bp["where"], bp["statement"], bp["decision"]["inflight"], bp["decision"]["by"]) == (
        "f.sql:3", "INSERT INTO t VALUES (1)", "retry", "bob")

    rollback = ["rollback", execution, "--reason", "customer asked", "--by", "carol", "--yes", *db]
    refused = CliRunner().invoke(app, rollback)  # pre_upgrade_process was waived: no backup to go back to
    assert refused.exit_code == 2 and "no verified backup" in " ".join(refused.output.split()), refused.output


def test_report_rows_are_generated_then_archived_after_the_retention(isolated_env: Path) -> None:
    from datetime import timedelta

    from tasks.core.clock import utcnow
    from tasks.core.statuses import ReportStatus
    from tasks.store.records import Execution
    from tests.helpers import open_store

    store = open_store("AR")
    try:
        execution = Execution(execution_id="EXEC_AR", site_id="AR", cutpoint="pre_business_check",
                              source_version="3.17.0", target_version="3.17.5", status="SUCCESS")
        report_id = store.save_report(execution=execution, counts={}, total_duration_ms=0, content={}, summary="",
                                      recommendations="")
        assert store.latest_report("EXEC_AR").status == ReportStatus.GENERATED
        assert store.archive_reports(utcnow() - timedelta(days=90)) == 0  # younger than the retention
        assert store.archive_reports(utcnow() + timedelta(seconds=1)) == 1
        stored = store.latest_report("EXEC_AR")
        assert (stored.id, stored.status) == (report_id, ReportStatus.ARCHIVED)
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["sqlite", "mariadb"])
def test_migration_7_makes_older_report_rows_generated_and_adds_the_archive_index(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import inspect

    from tasks.store import schema
    from tasks.store.migrations import CURRENT_VERSION, migrate

    url = f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite" else request.getfixturevalue("mariadb_database")
    engine = create_engine(url)
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as conn:  # a store as version 6 left it: outcome statuses, no archive index
        schema.metadata.create_all(conn)
        conn.execute(text("DROP INDEX idx_report_status_time ON upgrade_report") if backend == "mariadb"
                     else text("DROP INDEX idx_report_status_time"))
        conn.execute(schema.schema_version.insert(), [{"version": v, "applied_time": now} for v in range(1, 7)])
        conn.execute(schema.upgrade_report.insert().values(
            id="R1", execution_id="E1", report_type="SUMMARY", source_version="3.17.0", target_version="3.17.5",
            site_id="CN", step_type="pre_business_check", status="FAILED", generated_time=now, created_time=now,
            updated_time=now))
    assert migrate(engine) == CURRENT_VERSION - 6  # 7 and every later one
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM upgrade_report")).scalar_one() == "GENERATED"
    assert "idx_report_status_time" in {i["name"] for i in inspect(engine).get_indexes("upgrade_report")}
    engine.dispose()
