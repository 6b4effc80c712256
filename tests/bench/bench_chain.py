"""Benchmark: a real upgrade chain through a real Prefect server against the plain ``mariadb`` client.

Run on its own: ``python tests/bench/bench_chain.py``. The path users take: CICD triggers the
startup_pre_process deployment on a local Prefect server (started here, SQLite), a process worker
runs it against the local MariaDB. The chain is like the public ones: 64 files of 5–50 statements
(DDL, DML, DELIMITER procedures and their CALLs, session settings), on two databases.

Measured per run, alternating client and tool, best of three:

* client: ``mariadb db < file`` for every file in order (one client process per file, as a DBA runs
  a chain), wall time;
* statement span: first statement start → last statement end, from the tool's ledger;
* fixed cost: flow-run process start (the worker's Pending state) → first statement, plus last
  statement → the run's final state.

Also prints the fixed cost of ``ft-upgrade run`` without a server (ephemeral API), twice: with a new
``PREFECT_HOME`` (its database created and migrated) and again with the same one. The last two lines
are ``fixed_seconds_per_run`` and ``chain_statement_ratio_vs_client``.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from sqlalchemy import create_engine, text  # noqa: E402

from tasks.sql.splitter import split_statements  # noqa: E402
from tests.prefect_server import prefect_server  # noqa: E402

ROOT = "mysql+pymysql://root@127.0.0.1:3306"
FILES, ATTEMPTS = 64, 3
DATABASES = {"ft_db": "ft_bench_chain_ft", "middle_db": "ft_bench_chain_mid"}
# the site's FT services for startup_pre_process's services_stopped: a port where nothing listens (stopped)
os.environ.setdefault("FT_UPGRADE_SERVICES", '{"ft-bench-stopped": "http://127.0.0.1:1/actuator/health"}')


def chain(seed: int = 20261202) -> list[tuple[str, str, str]]:
    """(file name, logical database, body) in run order; ≥ 600 statements, 5–50 a file."""
    rng = random.Random(seed)
    files = []
    for i in range(FILES):
        database = "middle_db" if i % 3 == 2 else "ft_db"
        n = rng.randint(5, 50)
        lines = [f"-- upgrade step {i}: the admin's tenant; a comment with a ; in it"]
        if database == "middle_db":
            lines.append("-- @database: middle_db")
        lines += [f"CREATE TABLE t{i} (id INT PRIMARY KEY, name VARCHAR(64), amount DECIMAL(10,2), "
                  "status VARCHAR(16) NOT NULL DEFAULT 'NEW');", "SET @batch = 100;"]
        count = 2
        row = 0
        while count < n:
            pick = rng.random()
            if pick < 0.45:
                values = ", ".join(f"({row + k}, 'name {row + k}', {(row + k) % 97}.50, 'NEW')" for k in range(3))
                lines.append(f"INSERT INTO t{i} (id, name, amount, status) VALUES {values};")
                row += 3
            elif pick < 0.6:
                lines.append(f"UPDATE t{i} SET status = 'OPEN' WHERE amount > {rng.randint(1, 90)};")
            elif pick < 0.7:
                lines.append(f"ALTER TABLE t{i} ADD COLUMN c{count} INT NOT NULL DEFAULT 0;")
            elif pick < 0.78:
                lines.append(f"CREATE INDEX ix{i}_{count} ON t{i} (amount);")
            elif pick < 0.85:
                lines.append(f"DELETE FROM t{i} WHERE id = {rng.randint(0, max(row, 1))};")
            elif pick < 0.93:
                lines += ["DELIMITER $$", f"CREATE PROCEDURE p{i}_{count}()", "BEGIN",
                          f"  UPDATE t{i} SET amount = amount + 1 WHERE status = 'OPEN';", "END$$", "DELIMITER ;",
                          f"CALL p{i}_{count}();", f"DROP PROCEDURE p{i}_{count};"]
                count += 2
            else:
                lines.append(f"INSERT INTO t{i} (id, name, amount) SELECT id + {100000 * count}, name, amount "
                             f"FROM t{i} WHERE id < 3;")
            count += 1
        files.append((f"{i:03d}_step.sql", database, "\n".join(lines) + "\n"))
    return files


def admin(sql: str) -> None:
    engine = create_engine(ROOT + "/test")
    with engine.begin() as conn:
        conn.execute(text(sql))
    engine.dispose()


def fresh() -> None:
    for name in DATABASES.values():
        admin(f"DROP DATABASE IF EXISTS `{name}`")
        admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")


def client_seconds(work: Path, files: list[tuple[str, str, str]]) -> float:
    fresh()
    start = time.perf_counter()
    for name, database, _ in files:
        with (work / "sql" / name).open("rb") as f:
            subprocess.run(["mariadb", "-h127.0.0.1", "-uroot", DATABASES[database]], stdin=f, check=True)
    return time.perf_counter() - start


def statement_span(home: Path, execution_id: str) -> tuple[datetime, datetime, int]:
    engine = create_engine(f"sqlite:///{home / 'metadata.db'}")
    with engine.connect() as conn:
        first, last, n = conn.execute(text(
            "SELECT MIN(start_time), MAX(end_time), COUNT(*) FROM sql_execution_record WHERE execution_id = :e"),
            {"e": execution_id}).one()
    engine.dispose()
    return datetime.fromisoformat(str(first)), datetime.fromisoformat(str(last)), int(n)


RUN = """
import json, sys, time
from prefect.client.orchestration import get_client
site = sys.argv[1]
with get_client(sync_client=True) as client:
    deployment = client.read_deployment_by_name("startup_pre_process/startup-pre-process")
    run = client.create_flow_run_from_deployment(deployment.id, parameters={
        "source_version": "3.17.0", "target_version": "3.17.5", "site_id": site,
        "waive": ["pre_upgrade_process"], "reason": "benchmark: this cutpoint alone"})
    while True:
        run = client.read_flow_run(run.id)
        if run.state is not None and run.state.is_final():
            break
        time.sleep(0.2)
    states = client.read_flow_run_states(run.id)
    pending = min(s.timestamp for s in states if s.type.value == "PENDING")
    print(json.dumps({"state": run.state.type.value, "pending": pending.isoformat(),
                      "final": run.state.timestamp.isoformat(), "id": str(run.id)}))
"""


def import_prefect_seconds() -> float:
    """A fixed workload to read the fixed cost against: most of a run's start is importing."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import prefect"], check=True)
        best = min(best, time.perf_counter() - started)
    return best


def local_run(work: Path, home: Path, env: dict[str, str]) -> tuple[float, float]:
    """``ft-upgrade run`` without a server: its whole time and its statement span, in seconds."""
    started = time.perf_counter()
    site = f"LOCAL_{uuid.uuid4().hex[:6]}"
    local = subprocess.run([str(Path(sys.executable).parent / "ft-upgrade"), "run", "startup_pre_process",
                            "--from", "3.17.0", "--to", "3.17.5", "--site", site, "--waive", "pre_upgrade_process",
                            "--reason", "benchmark", "--json"], cwd=PROJECT,
                           env={**{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")},
                                **env, "PREFECT_HOME": str(work / "prefect-local")},
                           capture_output=True, text=True, timeout=1800)
    whole = time.perf_counter() - started
    assert local.returncode == 0, local.stdout[-2000:] + local.stderr[-2000:]
    execution = json.loads(local.stdout[local.stdout.index('{"'):].splitlines()[0])["execution_id"]
    first, last, _ = statement_span(home, execution)
    return whole, (last - first).total_seconds()


def main() -> None:
    files = chain()
    statements = sum(len(split_statements(body, source=name)) for name, _, body in files)
    work = Path(tempfile.mkdtemp(prefix="ft-bench-chain-"))
    (work / "sql").mkdir()
    (work / "configs").mkdir()
    for name, _, body in files:
        (work / "sql" / name).write_text(body, encoding="utf-8")
    (work / "configs" / "317500.json").write_text(json.dumps({"version": "317500", "upgrade_steps": {
        "startup_pre_process": [{"id": "sql_001", "class_name": "StartupPreProcessStep", "timeout": 3600,
                                 "sql_scripts": [name for name, _, _ in files]}]}}), encoding="utf-8")
    home = work / "home"
    env = {"FT_UPGRADE_CONFIGS": str(work / "configs"), "FT_UPGRADE_SQL_ROOT": str(work / "sql"),
           "FT_UPGRADE_HOME": str(home), "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1",
           **{f"FT_UPGRADE_DB_{name.upper()}": f"{ROOT}/{db}?charset=utf8mb4" for name, db in DATABASES.items()}}
    clients: list[float] = []
    spans: list[float] = []
    fixed: list[float] = []
    try:
        with prefect_server(work / "prefect") as server:
            server.cli("work-pool", "create", "ft-upgrade", "--type", "process")
            server.cli("deploy", "--all", "--prefect-file", "deployments/prefect.yaml")
            with server.worker("ft-upgrade", extra_env=env):
                for attempt in range(ATTEMPTS):
                    clients.append(client_seconds(work, files))
                    fresh()
                    site = f"BENCH{attempt}_{uuid.uuid4().hex[:6]}"
                    triggered = subprocess.run([sys.executable, "-c", RUN, site], cwd=PROJECT, env=server.env,
                                               capture_output=True, text=True, timeout=1800)
                    result = json.loads(triggered.stdout.strip().splitlines()[-1])
                    assert result["state"] == "COMPLETED", result
                    engine = create_engine(f"sqlite:///{home / 'metadata.db'}")
                    with engine.connect() as conn:
                        execution = conn.execute(text("SELECT execution_id FROM upgrade_execution WHERE site_id = :s"),
                                                 {"s": site}).scalar_one()
                    engine.dispose()
                    first, last, n = statement_span(home, execution)
                    pending = datetime.fromisoformat(result["pending"]).replace(tzinfo=None)
                    final = datetime.fromisoformat(result["final"]).replace(tzinfo=None)
                    spans.append((last - first).total_seconds())
                    fixed.append((first - pending).total_seconds() + (final - last).total_seconds())
                    print(f"run {attempt + 1}: client {clients[-1]:.2f}s; tool statements {spans[-1]:.2f}s "
                          f"({n} statements), fixed {fixed[-1]:.2f}s (start {(first - pending).total_seconds():.2f}s, "
                          f"end {(final - last).total_seconds():.2f}s)", flush=True)
        for label in ("first run, new PREFECT_HOME", "second run, same PREFECT_HOME"):
            fresh()
            whole, statements_seconds = local_run(work, home, env)
            print(f"without a server (ft-upgrade run, ephemeral API; {label}): whole {whole:.2f}s, "
                  f"statements {statements_seconds:.2f}s, fixed {whole - statements_seconds:.2f}s", flush=True)
    finally:
        for name in DATABASES.values():
            admin(f"DROP DATABASE IF EXISTS `{name}`")
    print(f"reference (this machine, now): `python -c 'import prefect'` best of 3 {import_prefect_seconds():.2f}s")
    print(f"files: {len(files)}, statements: {statements}")
    print(f"fixed_seconds_per_run: {min(fixed):.2f}")
    print(f"chain_statement_ratio_vs_client: {min(spans) / min(clients):.2f}")


if __name__ == "__main__":
    main()
