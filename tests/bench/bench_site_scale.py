"""Benchmark: a whole FT site at the seed's scale through all five cutpoints on a real Prefect server.

Run on its own: ``.venv/bin/python tests/bench/bench_site_scale.py [--rows N]`` (default 1,000,000, or
``FT_BENCH_ROWS``). It generates a site's three databases on the local MariaDB (``INSERT … SELECT`` from the
SEQUENCE engine): ``orders`` and ``order_items`` of N rows, ``customers`` of N/10, the wide ``audit_log``
and ``order_sync`` (middle_db) of N/4 and N, the wide ``daily_report`` (report_db) of N/10; realistic types,
secondary indexes and foreign keys. The release's configs use every built-in step: data-quality rules over
the big tables (pre_business_check), a backup, config preprocessing and a health check (pre_upgrade_process),
SQL with ``ADD COLUMN`` / ``ADD INDEX`` / ``MODIFY`` on the big tables and DML over them (startup_pre_process),
resource packages, a cache rebuild of N/10 keys, index optimization, a health check and smoke tests
(startup_post_process), an async migration of N rows, log cleanup and resource release (post_upgrade).
Each cutpoint is a deployment run by a process worker (flow run PENDING → final state).

The site runs twice (the data regenerated in between, the site's metadata store kept): the second run's
forecast of startup_pre_process uses the throughput the first one taught. The plain alternatives, on the
same data: ``mariadb-dump --single-transaction | gzip`` for the backup, the ``mariadb`` client for the SQL
files, one ``INSERT … SELECT`` for the migration (the SQL's ratio: best of two against best of two).
Printed: ``<cutpoint>_seconds`` (the slower run) / ``<cutpoint>_limit_seconds`` (the seed's limits),
``<step>_ratio_vs_plain`` and ``forecast_error_ratio_run<1|2>``. Everything it creates (databases, Redis
keys, the temporary folder) is removed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

import redis  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from tests.prefect_server import prefect_server  # noqa: E402
from tests.support.builders import write_zip  # noqa: E402
from tests.support.files import aged  # noqa: E402

MARIADB = os.environ.get("FT_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")
REDIS_URL = os.environ.get("FT_TEST_REDIS", "redis://127.0.0.1:6379/9")
TAG = uuid.uuid4().hex[:6]
SITE = f"SCALE{TAG.upper()}"
DATABASES = {"ft_db": f"i29_scale_{TAG}_ft", "middle_db": f"i29_scale_{TAG}_mid", "report_db": f"i29_scale_{TAG}_rep"}
NAMESPACE = f"i29-scale-{TAG}"
CUTPOINTS = {"pre_business_check": 120, "pre_upgrade_process": 600, "startup_pre_process": 1800,
             "startup_post_process": 900, "post_upgrade": 86400}  # the seed's limits (post_upgrade: 24 h)
DEPLOYMENTS = {c: f"{c}/{c.replace('_', '-')}" for c in CUTPOINTS}


def url(logical: str) -> str:
    return f"{MARIADB}/{DATABASES[logical]}?charset=utf8mb4"


def run_sql(logical: str | None, *statements: str) -> None:
    engine = create_engine(url(logical) if logical else MARIADB + "/test")
    raw = engine.raw_connection()  # no parameters: a '%' in the SQL is the SQL's
    try:
        with raw.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
        raw.commit()
    finally:
        raw.close()
        engine.dispose()


def generate(rows: int) -> None:
    """The site's three databases from nothing; N-row core tables, wide ones, indexes, foreign keys."""
    n10, n4 = max(rows // 10, 1), max(rows // 4, 1)
    for name in DATABASES.values():
        run_sql(None, f"DROP DATABASE IF EXISTS `{name}`", f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    wide = ", ".join(f"attr{i} VARCHAR(64) NULL" for i in range(16))
    wide_values = ", ".join(f"IF(seq % {i + 3} = 0, NULL, CONCAT('value-{i}-', seq))" for i in range(16))
    run_sql("ft_db",
            "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, email VARCHAR(128) NOT NULL, "
            "region CHAR(2) NOT NULL, balance DECIMAL(12,2) NOT NULL, created_at DATETIME NOT NULL, "
            "KEY ix_customers_region (region), UNIQUE KEY ux_customers_email (email)) ENGINE=InnoDB",
            "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(12,2) NULL, "
            "status VARCHAR(16) NOT NULL, note VARCHAR(64) NULL, created_at DATETIME(3) NOT NULL, "
            "KEY ix_orders_customer (customer_id), KEY ix_orders_status (status, created_at), "
            "CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)) ENGINE=InnoDB",
            "CREATE TABLE order_items (id BIGINT PRIMARY KEY, order_id BIGINT NOT NULL, sku VARCHAR(32) NOT NULL, "
            "qty INT NOT NULL, price DECIMAL(10,2) NOT NULL, KEY ix_items_sku (sku), "
            "CONSTRAINT fk_items_order FOREIGN KEY (order_id) REFERENCES orders (id)) ENGINE=InnoDB",
            f"CREATE TABLE audit_log (id BIGINT PRIMARY KEY, actor INT NOT NULL, action VARCHAR(32) NOT NULL, "
            f"at DATETIME NOT NULL, {wide}, body TEXT NULL, KEY ix_audit_at (at)) ENGINE=InnoDB",
            "CREATE TABLE orders_v2 (id BIGINT NOT NULL, customer_id INT NOT NULL, amount_cents BIGINT NOT NULL, "
            "status VARCHAR(16) NOT NULL, note VARCHAR(80) NULL, created_day DATE NOT NULL, KEY k_id (id)) "
            "ENGINE=InnoDB",
            "CREATE TABLE region (id INT PRIMARY KEY, name VARCHAR(20))",
            f"INSERT INTO customers SELECT seq, CONCAT('customer ', seq), CONCAT('c', seq, '@example.com'), "
            f"ELT(1 + seq % 5, 'CN', 'US', 'JP', 'DE', 'BR'), (seq % 100000) / 10, "
            f"TIMESTAMP'2020-01-01 00:00:00' + INTERVAL seq MINUTE FROM seq_1_to_{n10}")
    for low in range(1, rows + 1, 500_000):
        high = min(low + 499_999, rows)
        run_sql("ft_db",
                f"INSERT INTO orders SELECT seq, 1 + seq % {n10}, (seq % 100000) / 100, "
                f"ELT(1 + seq % 4, 'NEW', 'PAID', 'SHIPPED', 'DONE'), IF(seq % 7 = 0, NULL, CONCAT('note-', seq)), "
                f"TIMESTAMP'2024-01-01 00:00:00' + INTERVAL (seq % 86400) MINUTE FROM seq_{low}_to_{high}",
                f"INSERT INTO order_items SELECT seq, seq, CONCAT('SKU-', seq % 5000), 1 + seq % 9, (seq % 9999) / 100 "
                f"FROM seq_{low}_to_{high}")
    run_sql("ft_db", f"INSERT INTO audit_log SELECT seq, seq % 1000, ELT(1 + seq % 3, 'login', 'order', 'refund'), "
                     f"TIMESTAMP'2023-01-01 00:00:00' + INTERVAL seq SECOND, {wide_values}, REPEAT('x', 200) "
                     f"FROM seq_1_to_{n4}")
    run_sql("middle_db",
            "CREATE TABLE order_sync (order_id BIGINT PRIMARY KEY, status_code INT NOT NULL, amount DECIMAL(12,2) "
            "NOT NULL, synced_at DATETIME NOT NULL, payload VARCHAR(255) NULL, KEY ix_sync_at (synced_at)) "
            "ENGINE=InnoDB",
            f"INSERT INTO order_sync SELECT seq, seq % 3, (seq % 5000) / 10, TIMESTAMP'2024-01-01 00:00:00' + "
            f"INTERVAL seq SECOND, CONCAT('{{\"order\": ', seq, '}}') FROM seq_1_to_{rows}")
    run_sql("report_db",
            f"CREATE TABLE daily_report (id INT PRIMARY KEY, day DATE NOT NULL, region CHAR(2) NOT NULL, "
            f"orders INT NOT NULL, revenue DECIMAL(14,2) NOT NULL, {wide}, KEY ix_report_day (day)) ENGINE=InnoDB",
            f"INSERT INTO daily_report SELECT seq, DATE'2020-01-01' + INTERVAL (seq % 3650) DAY, "
            f"ELT(1 + seq % 5, 'CN', 'US', 'JP', 'DE', 'BR'), seq % 1000, seq / 10, {wide_values} "
            f"FROM seq_1_to_{n10}")


SQL_FILES = {  # startup_pre_process: the release's schema and data changes on the big tables
    "001_orders.sql": "-- @database: ft_db\n"
                      "ALTER TABLE orders ADD COLUMN channel VARCHAR(16) NOT NULL DEFAULT 'web';\n"
                      "ALTER TABLE orders ADD INDEX ix_orders_created (created_at);\n"
                      "UPDATE orders SET channel = 'app' WHERE id % 10 = 0;\n"
                      "ALTER TABLE order_items MODIFY qty BIGINT NOT NULL;\n"
                      "DELETE FROM audit_log WHERE action = 'refund' AND at < '2023-01-02';\n",
    "002_order_sync.sql": "-- @database: middle_db\n"
                          "ALTER TABLE order_sync ADD COLUMN retries INT NOT NULL DEFAULT 0;\n"
                          "UPDATE order_sync SET status_code = 9 WHERE status_code = 2;\n",
    "003_report.sql": "-- @database: report_db\n"
                      "ALTER TABLE daily_report ADD INDEX ix_report_region (region, day);\n"
                      "ALTER TABLE daily_report MODIFY revenue DECIMAL(16,2) NOT NULL;\n",
}

MIGRATION_COLUMNS = {"customer_id": "customer_id", "amount_cents": "CAST(amount * 100 AS SIGNED)",
                     "status": "LOWER(status)", "note": "CONCAT('100%: ', note)", "created_day": "DATE(created_at)"}


def configs(rows: int, work: Path) -> dict[str, Any]:
    """The release 3.17.5 at this site: every built-in step, the timeouts the seed's limits give."""
    rules = [
        {"id": "mw_mariadb", "title": "中间件版本检查", "type": "middleware_version", "component": "mariadb",
         "target": "ft_db", "min_version": "10.5.0", "severity": "fail"},
        {"id": "dq_no_pk", "title": "无主键表检测", "type": "missing_primary_key", "target": "ft_db",
         "severity": "warn"},
        {"id": "dq_items_dup", "title": "主键冲突检测", "type": "duplicate_keys", "target": "ft_db",
         "table": "order_items", "columns": ["id"], "severity": "fail"},
        {"id": "dq_customer_chars", "title": "非法字符检测", "type": "illegal_characters", "target": "ft_db",
         "table": "customers", "columns": ["name"], "checks": ["control"], "severity": "warn"},
        {"id": "dq_orders_status", "title": "数据兼容性检查：订单状态", "type": "column_fit", "target": "ft_db",
         "table": "orders", "column": "status", "allowed_values": ["NEW", "PAID", "SHIPPED", "DONE"],
         "severity": "fail"},
        {"id": "dq_orders_note_fit", "title": "数据兼容性检查：备注长度", "type": "column_fit", "target": "ft_db",
         "table": "orders", "column": "note", "max_length": 80, "severity": "warn"},
        {"id": "dq_sync_amount", "title": "中台订单金额", "type": "custom_sql", "target": "middle_db",
         "sql": "SELECT COUNT(*) FROM order_sync WHERE amount < 0",
         "detail_sql": "SELECT * FROM order_sync WHERE amount < 0", "severity": "fail"},
    ]
    migration = {"tasks": [{"name": "orders_v2", "source_database": "ft_db", "source_table": "orders",
                            "target_database": "ft_db", "target_table": "orders_v2", "key": "id",
                            "columns": MIGRATION_COLUMNS}], "max_rows_per_second": None}
    steps = {
        "pre_business_check": [{"id": "pre_business_check_001", "class_name": "PreBusinessCheckStep",
                                "timeout": 120, "rules": rules}],
        "pre_upgrade_process": [
            {"id": "backup_001", "class_name": "BackupStep", "timeout": 600, "site_config_dir": True,
             "databases": [{"database": "ft_db", "tables": ["customers", "orders", "order_items", "audit_log"]},
                           {"database": "middle_db", "tables": ["order_sync"]},
                           {"database": "report_db", "tables": ["daily_report"]}]},
            {"id": "config_001", "class_name": "ConfigPreprocessStep", "site_templates": True,
             "config_files": ["application.yaml"]},
            {"id": "services_001", "class_name": "ServiceHealthCheckStep", "databases": list(DATABASES)},
        ],
        "startup_pre_process": [{"id": "sql_001", "class_name": "StartupPreProcessStep", "timeout": 1800,
                                 "statement_timeout": 1800, "sql_scripts": list(SQL_FILES)}],
        "startup_post_process": [
            {"id": "packages_001", "class_name": "ResourcePackageImportStep", "retry_wait_seconds": 0,
             "packages": [{"file": "ft-res-{target_version}.zip", "target_dir": "static_dir", "subdir": "ft",
                           "tables": [{"file": "data/regions.csv", "database": "ft_db", "table": "region"}]}]},
            {"id": "cache_001", "class_name": "CacheRebuildStep", "timeout": 900, "namespace": NAMESPACE,
             "drain_seconds": 0.1, "datasets": [{"name": "customers", "database": "ft_db", "key": "customer:{id}",
                                                 "query": "SELECT id, name, email, region, balance FROM customers"}]},
            {"id": "indexes_001", "class_name": "IndexOptimizationStep", "timeout": 300, "database": "ft_db",
             "tables": [{"table": "order_items", "indexes": [{"name": "ix_items_order_sku",
                                                              "columns": ["order_id", "sku"]}]}],
             "probes": [{"name": "items of an order", "sql": "SELECT COUNT(*) FROM order_items WHERE order_id = 7"}]},
            {"id": "health_001", "class_name": "ServiceHealthCheckStep", "databases": list(DATABASES)},
            {"id": "smoke_001", "class_name": "SmokeTestStep", "sql": [
                {"name": "orders", "database": "ft_db", "query": "SELECT COUNT(*) FROM orders", "expect": rows}]},
        ],
        "post_upgrade": [
            {"id": "migration_001", "class_name": "AsyncDataMigrationStep", "timeout": 86400, **migration},
            {"id": "logs_001", "class_name": "LogCleanupStep", "rules": [{"folder": str(work / "site" / "logs"),
                                                                          "after_days": 7}]},
            {"id": "release_001", "class_name": "ResourceReleaseStep",
             "paths": [f"{work / 'site' / 'staging'}/ft-{{target_version}}-*"]},
        ],
    }
    return {"version": "317500", "dependencies": {"min_source_version": "3.17.0"}, "upgrade_steps": steps}


def prepare_site(work: Path, rows: int, server: Any) -> dict[str, str]:
    """Config folder, SQL, package, site folders and the site profile block; the worker's environment."""
    (work / "configs").mkdir()
    (work / "configs" / "317500.json").write_text(json.dumps(configs(rows, work), ensure_ascii=False),
                                                  encoding="utf-8")
    (work / "sql").mkdir()
    for name, body in SQL_FILES.items():
        (work / "sql" / name).write_text(body, encoding="utf-8")
    home = work / "home"
    (home / "package_dir").mkdir(parents=True)
    write_zip(home / "package_dir" / "ft-res-3.17.5.zip",
              {"images/logo.png": b"\x89PNG" + b"x" * 4096, "data/regions.csv": b"id,name\n1,north\n2,south\n"})
    site = work / "site"
    (site / "conf").mkdir(parents=True)
    (site / "conf" / "application.yaml").write_text("region: ${REGION}\nsite: ${SITE_ID}\n", encoding="utf-8")
    (site / "conf" / "logback.xml.tpl").write_text("<configuration site=\"${SITE_ID}\"/>\n", encoding="utf-8")
    (site / "staging").mkdir()
    profile = {"site_id": SITE, "environment": {"REGION": "ap-east"},
               "paths": {"config_dir": str(site / "conf"), "log_dir": str(site / "logs"),
                         "staging_dir": str(site / "staging")}}
    subprocess.run([sys.executable, "-c", "import json, sys\nfrom blocks.site_profile import SiteProfile\n"
                    "p = SiteProfile(**json.loads(sys.argv[1]))\np.save(SiteProfile.block_name(p.site_id))",
                    json.dumps(profile)], cwd=PROJECT, env=server.env, check=True, timeout=120)
    return {"FT_UPGRADE_CONFIGS": str(work / "configs"), "FT_UPGRADE_SQL_ROOT": str(work / "sql"),
            "FT_UPGRADE_HOME": str(home), "FT_UPGRADE_REDIS_URL": REDIS_URL,
            "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1",
            **{f"FT_UPGRADE_DB_{name.upper()}": url(name) for name in DATABASES}}


def reset_files(work: Path) -> None:
    """What each run finds at the site: old and new logs, an unpacked release in staging."""
    site = work / "site"
    shutil.rmtree(site / "logs", ignore_errors=True)
    for day in range(1, 31):
        aged(site / "logs" / f"ft-manager.2024-01-{day:02d}.log", 40 - day, b"2024-01-01 INFO x\n" * 2000)
    aged(site / "logs" / "ft-manager.log", 1)
    (site / "staging" / "ft-3.17.5-unpacked").mkdir(parents=True, exist_ok=True)
    (site / "staging" / "ft-3.17.5-unpacked" / "ft-manager.jar").write_bytes(b"j" * 100_000)


TRIGGER = """
import json, sys, time
from prefect.client.orchestration import get_client
name, parameters = sys.argv[1], json.loads(sys.argv[2])
with get_client(sync_client=True) as client:
    deployment = client.read_deployment_by_name(name)
    run = client.create_flow_run_from_deployment(deployment.id, parameters=parameters)
    while True:
        run = client.read_flow_run(run.id)
        if run.state is not None and run.state.is_final():
            break
        time.sleep(0.5)
    states = client.read_flow_run_states(run.id)
    pending = min(s.timestamp for s in states if s.type.value == "PENDING")
    print(json.dumps({"state": run.state.type.value, "message": run.state.message,
                      "seconds": (run.state.timestamp - pending).total_seconds(), "id": str(run.id)}))
"""


def run_cutpoint(server: Any, cutpoint: str, rerun: bool) -> dict[str, Any]:
    parameters: dict[str, Any] = {"source_version": "3.17.0", "target_version": "3.17.5", "site_id": SITE}
    if rerun:
        parameters.update(rerun=True, reason="benchmark: the site's second run")
    done = subprocess.run([sys.executable, "-c", TRIGGER, DEPLOYMENTS[cutpoint], json.dumps(parameters)],
                          cwd=PROJECT, env=server.env, capture_output=True, text=True, timeout=7200)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["state"] == "COMPLETED", (cutpoint, result)
    return result


def store_steps(home: Path, flow_run_id: str) -> dict[str, dict[str, Any]]:
    """The steps of the flow run's execution: seconds and result, by step id."""
    engine = create_engine(f"sqlite:///{home / 'metadata.db'}")
    with engine.connect() as conn:
        execution = conn.execute(text("SELECT execution_id FROM upgrade_execution WHERE flow_run_id = :f"),
                                 {"f": flow_run_id}).scalar_one()
        rows = conn.execute(text("SELECT step_id, start_time, end_time, result FROM step_execution "
                                 "WHERE execution_id = :e"), {"e": execution}).all()
    engine.dispose()
    out = {}
    for step_id, start, end, result in rows:
        seconds = (datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))).total_seconds()
        out[step_id] = {"seconds": seconds, "result": json.loads(result) if result else {}}
    return out


def plain_sql_seconds() -> float:
    """The ``mariadb`` client on the same files, in order, one process per file (as a DBA runs them)."""
    started = time.perf_counter()
    for body in SQL_FILES.values():
        logical = body.split("@database: ", 1)[1].split("\n", 1)[0]
        subprocess.run(["mariadb", "-h127.0.0.1", "-uroot", DATABASES[logical]], input=body.encode(), check=True)
    return time.perf_counter() - started


def plain_backup_seconds(work: Path) -> float:
    """``mariadb-dump --single-transaction`` of the same tables, gzip-compressed, one database after another."""
    started = time.perf_counter()
    tables = {"ft_db": ["customers", "orders", "order_items", "audit_log"], "middle_db": ["order_sync"],
              "report_db": ["daily_report"]}
    for logical, names in tables.items():
        with open(work / f"plain-{logical}.sql.gz", "wb") as out:
            dump = subprocess.Popen(["mariadb-dump", "-h127.0.0.1", "-uroot", "--single-transaction", "--quick",
                                     DATABASES[logical], *names], stdout=subprocess.PIPE)
            subprocess.run(["gzip", "-1"], stdin=dump.stdout, stdout=out, check=True)
            assert dump.wait() == 0
        (work / f"plain-{logical}.sql.gz").unlink()
    return time.perf_counter() - started


def plain_migration_seconds() -> float:
    """One ``INSERT … SELECT`` with the migration's transform into a copy of its target."""
    columns = ", ".join(["id", *MIGRATION_COLUMNS])
    values = ", ".join(["id", *MIGRATION_COLUMNS.values()])
    run_sql("ft_db", "CREATE TABLE orders_v2_plain LIKE orders_v2")
    started = time.perf_counter()
    run_sql("ft_db", f"INSERT INTO orders_v2_plain ({columns}) SELECT {values} FROM orders")
    seconds = time.perf_counter() - started
    run_sql("ft_db", "DROP TABLE orders_v2_plain")
    return seconds


def site_run(server: Any, home: Path, work: Path, rows: int, number: int) -> dict[str, Any]:
    """Generate the data, run the five cutpoints; each one's seconds, and the steps to compare."""
    started = time.perf_counter()
    generate(rows)
    reset_files(work)
    print(f"run {number}: data generated in {time.perf_counter() - started:.1f}s", flush=True)
    out: dict[str, Any] = {}
    for cutpoint in CUTPOINTS:
        result = run_cutpoint(server, cutpoint, rerun=number > 1)
        steps = store_steps(home, result["id"])
        out[cutpoint] = {"seconds": result["seconds"], "steps": steps}
        print(f"run {number}: {cutpoint} {result['seconds']:.1f}s; steps "
              + ", ".join(f"{k} {v['seconds']:.1f}s" for k, v in steps.items()), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=int(os.environ.get("FT_BENCH_ROWS", "1000000")))
    rows = parser.parse_args().rows
    work = Path(tempfile.mkdtemp(prefix="ft-bench-scale-"))
    print(f"rows {rows:,}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    runs: list[dict[str, Any]] = []
    plain: dict[str, float] = {}
    try:
        generate(rows)
        plain_sql = [plain_sql_seconds()]
        print(f"plain: mariadb client on the SQL files {plain_sql[-1]:.1f}s", flush=True)
        with prefect_server(work / "prefect") as server:
            server.cli("work-pool", "create", "ft-upgrade", "--type", "process")
            server.cli("deploy", "--all", "--prefect-file", "deployments/prefect.yaml")
            env = prepare_site(work, rows, server)
            with server.worker("ft-upgrade", extra_env=env):
                runs.append(site_run(server, work / "home", work, rows, 1))
                generate(rows)
                plain["backup"] = plain_backup_seconds(work)
                plain["migration"] = plain_migration_seconds()
                plain_sql.append(plain_sql_seconds())  # the data is generated again for run 2
                print(f"plain: mariadb-dump {plain['backup']:.1f}s, INSERT … SELECT {plain['migration']:.1f}s, "
                      f"mariadb client on the SQL files {plain_sql[-1]:.1f}s", flush=True)
                runs.append(site_run(server, work / "home", work, rows, 2))
    finally:
        for name in DATABASES.values():
            run_sql(None, f"DROP DATABASE IF EXISTS `{name}`")
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=f"{NAMESPACE}*", count=10_000):
            client.unlink(key)
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    last = runs[-1]
    for cutpoint, limit in CUTPOINTS.items():
        each = [r[cutpoint]["seconds"] for r in runs]
        print(f"{cutpoint}_seconds: {max(each):.1f} (the slower run; runs: {', '.join(f'{s:.1f}' for s in each)})")
        print(f"{cutpoint}_limit_seconds: {limit}")
    steps = {s: v for r in (last[c]["steps"] for c in CUTPOINTS) for s, v in r.items()}
    print(f"backup_ratio_vs_plain: {steps['backup_001']['seconds'] / plain['backup']:.2f}")
    tool_sql = [r["startup_pre_process"]["steps"]["sql_001"]["seconds"] for r in runs]
    print(f"startup_pre_sql_ratio_vs_plain: {min(tool_sql) / min(plain_sql):.2f} (best of two each: tool "
          f"{', '.join(f'{s:.1f}' for s in tool_sql)}s, client {', '.join(f'{s:.1f}' for s in plain_sql)}s)")
    print(f"migration_ratio_vs_plain: {steps['migration_001']['seconds'] / plain['migration']:.2f}")
    print(f"cache_keys_per_second: {max(rows // 10, 1) / steps['cache_001']['seconds']:.0f}")
    print(f"index_optimization_seconds: {steps['indexes_001']['seconds']:.1f}")
    print(f"migration_rows_per_second: {rows / steps['migration_001']['seconds']:.0f}")
    for number, run in enumerate(runs, 1):
        forecast = run["startup_pre_process"]["steps"]["sql_001"]["result"].get("details", {}).get("forecast", {})
        print(f"forecast_error_ratio_run{number}: {forecast.get('error_ratio')} (forecast "
              f"{forecast.get('forecast_seconds_of_statements_run')}s, actual {forecast.get('actual_seconds')}s)")


if __name__ == "__main__":
    main()
