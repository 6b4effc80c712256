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

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
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


def chain(seed: int = 20261202, files_count: int = FILES, low: int = 5, high: int = 50,
          procedures: float = 0.0) -> list[tuple[str, str, str]]:
    """(file name, logical database, body) in run order; ``low``–``high`` statements a file, ``procedures``
    the extra share of DELIMITER procedures with their CALLs."""
    rng = random.Random(seed)
    files = []
    for i in range(files_count):
        database = "middle_db" if i % 3 == 2 else "ft_db"
        n = rng.randint(low, high)
        lines = [f"-- upgrade step {i}: the admin's tenant; a comment with a ; in it"]
        if database == "middle_db":
            lines.append("-- @database: middle_db")
        lines += [f"CREATE TABLE t{i} (id INT PRIMARY KEY, name VARCHAR(64), amount DECIMAL(10,2), "
                  "status VARCHAR(16) NOT NULL DEFAULT 'NEW');", "SET @batch = 100;"]
        count = 2
        row = 0
        while count < n:
            pick = rng.random()
            if procedures and count + 3 <= n and rng.random() < procedures:
                pick = 0.9  # a DELIMITER procedure, its CALL and its DROP
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
        "source_version": "3.17.0", "target_version": sys.argv[2], "site_id": site,
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


def local_run(work: Path, home: Path, env: dict[str, str], target: str) -> tuple[float, float]:
    """``ft-upgrade run`` without a server: its whole time and its statement span, in seconds."""
    started = time.perf_counter()
    site = f"LOCAL_{uuid.uuid4().hex[:6]}"
    local = subprocess.run([str(Path(sys.executable).parent / "ft-upgrade"), "run", "startup_pre_process",
                            "--from", "3.17.0", "--to", target, "--site", site, "--waive", "pre_upgrade_process",
                            "--reason", "benchmark", "--json"], cwd=PROJECT,
                           env={**{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")},
                                **env, "PREFECT_HOME": str(work / "prefect-local")},
                           capture_output=True, text=True, timeout=1800)
    whole = time.perf_counter() - started
    assert local.returncode == 0, local.stdout[-2000:] + local.stderr[-2000:]
    execution = json.loads(local.stdout[local.stdout.index('{"'):].splitlines()[0])["execution_id"]
    first, last, _ = statement_span(home, execution)
    return whole, (last - first).total_seconds()


@dataclass(frozen=True)
class Shape:
    """A chain laid out as configs: all files in one step of one config, or one config (and step) per file."""

    name: str
    files: list[tuple[str, str, str]]
    per_release: bool
    target: str

    def write(self, work: Path) -> None:
        (work / "sql").mkdir(parents=True)
        (work / "configs").mkdir()
        for name, _, body in self.files:
            (work / "sql" / name).write_text(body, encoding="utf-8")
        if not self.per_release:
            (work / "configs" / "317500.json").write_text(json.dumps({"version": "317500", "upgrade_steps": {
                "startup_pre_process": [{"id": "sql_001", "class_name": "StartupPreProcessStep", "timeout": 3600,
                                         "sql_scripts": [name for name, _, _ in self.files]}]}}), encoding="utf-8")
            return
        for i, (name, _, _) in enumerate(self.files):  # 317500 the baseline, then a patch per release
            code = 317500 + i
            config: dict[str, object] = {"version": str(code), "upgrade_steps": {"startup_pre_process": [
                {"id": f"sql_{code}", "class_name": "PatchSqlExecutorStep" if i else "StartupPreProcessStep",
                 "timeout": 600, "sql_scripts": [name]}]}}
            if i:
                config.update(version_type="patch", base_version="317500",
                              dependencies={"required_base_version": "317500"})
            (work / "configs" / f"{code}.json").write_text(json.dumps(config), encoding="utf-8")


SHAPES = {
    "one_step": lambda: Shape("one_step", chain(), per_release=False, target="3.17.5"),
    "per_release": lambda: Shape("per_release", chain(seed=20261207, files_count=70, low=4, high=40, procedures=0.3),
                                 per_release=True, target="3.17.5-P69"),
}


def step_overheads(home: Path, execution_id: str) -> dict[str, float]:
    """Per step after the first, in ms (medians): step start → first statement, last statement → step end,
    step end → next step start, and their sum (last statement of a step → first of the next)."""
    engine = create_engine(f"sqlite:///{home / 'metadata.db'}")
    with engine.connect() as conn:
        steps = conn.execute(text(
            "SELECT s.step_id, s.start_time, s.end_time, MIN(r.start_time), MAX(r.end_time) "
            "FROM step_execution s JOIN sql_execution_record r "
            "ON r.execution_id = s.execution_id AND r.step_id = s.step_id "
            "WHERE s.execution_id = :e GROUP BY s.step_id, s.start_time, s.end_time ORDER BY s.execution_order"),
            {"e": execution_id}).all()
    engine.dispose()
    at = [[datetime.fromisoformat(str(v)) for v in row[1:]] for row in steps]
    ms = lambda a, b: (b - a).total_seconds() * 1000  # noqa: E731
    if len(at) < 2:
        return {}
    return {"start": statistics.median(ms(s, f) for s, _, f, _ in at[1:]),
            "end": statistics.median(ms(last, e) for _, e, _, last in at[:-1]),
            "between": statistics.median(ms(a[1], b[0]) for a, b in zip(at, at[1:], strict=False)),
            "total": statistics.median(ms(a[3], b[2]) for a, b in zip(at, at[1:], strict=False))}


def bench_shape(shape: Shape, attempts: int, local: bool) -> dict[str, float]:
    """One shape through a fresh server and worker: its figures (best of ``attempts``)."""
    files = shape.files
    statements = sum(len(split_statements(body, source=name)) for name, _, body in files)
    work = Path(tempfile.mkdtemp(prefix=f"ft-bench-chain-{shape.name}-"))
    shape.write(work)
    home = work / "home"
    env = {"FT_UPGRADE_CONFIGS": str(work / "configs"), "FT_UPGRADE_SQL_ROOT": str(work / "sql"),
           "FT_UPGRADE_HOME": str(home), "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1",
           **{f"FT_UPGRADE_DB_{name.upper()}": f"{ROOT}/{db}?charset=utf8mb4" for name, db in DATABASES.items()}}
    clients: list[float] = []
    spans: list[float] = []
    fixed: list[float] = []
    per_step: list[dict[str, float]] = []
    figures: dict[str, float] = {}
    print(f"shape {shape.name}: {len(files)} files, {statements} statements, "
          f"{len(files) if shape.per_release else 1} steps", flush=True)
    try:
        with prefect_server(work / "prefect") as server:
            server.cli("work-pool", "create", "ft-upgrade", "--type", "process")
            server.cli("deploy", "--all", "--prefect-file", "deployments/prefect.yaml")
            with server.worker("ft-upgrade", extra_env=env):
                for attempt in range(attempts):
                    clients.append(client_seconds(work, files))
                    fresh()
                    site = f"BENCH{attempt}_{uuid.uuid4().hex[:6]}"
                    triggered = subprocess.run([sys.executable, "-c", RUN, site, shape.target], cwd=PROJECT,
                                               env=server.env, capture_output=True, text=True, timeout=1800)
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
                    per_step.append(step_overheads(home, execution))
                    steps = per_step[-1]
                    print(f"  run {attempt + 1}: client {clients[-1]:.2f}s; tool statements {spans[-1]:.2f}s "
                          f"({n} statements), fixed {fixed[-1]:.2f}s (start {(first - pending).total_seconds():.2f}s, "
                          f"end {(final - last).total_seconds():.2f}s)"
                          + (f"; per step (median ms): start→first statement {steps['start']:.1f}, last→end "
                             f"{steps['end']:.1f}, between {steps['between']:.1f}, last statement → next first "
                             f"{steps['total']:.1f}" if steps else ""), flush=True)
        if local:
            for label in ("first run, new PREFECT_HOME", "second run, same PREFECT_HOME"):
                fresh()
                whole, statements_seconds = local_run(work, home, env, shape.target)
                print(f"  without a server (ft-upgrade run, ephemeral API; {label}): whole {whole:.2f}s, "
                      f"statements {statements_seconds:.2f}s, fixed {whole - statements_seconds:.2f}s", flush=True)
                figures["cli_fixed_seconds"] = whole - statements_seconds
    finally:
        for name in DATABASES.values():
            admin(f"DROP DATABASE IF EXISTS `{name}`")
    figures.update(fixed_seconds_per_run=min(fixed), chain_statement_ratio_vs_client=min(spans) / min(clients))
    if per_step and per_step[0]:
        figures["per_step_overhead_ms"] = min(p["total"] for p in per_step)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=[*SHAPES, "both"], default="both")
    parser.add_argument("--attempts", type=int, default=ATTEMPTS)
    parser.add_argument("--no-local", action="store_true", help="skip ft-upgrade run without a server")
    args = parser.parse_args()
    results = {name: bench_shape(SHAPES[name](), args.attempts, local=not args.no_local and name == "one_step")
               for name in (SHAPES if args.shape == "both" else [args.shape])}
    print(f"reference (this machine, now): `python -c 'import prefect'` best of 3 {import_prefect_seconds():.2f}s; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for name, figures in results.items():
        for key, value in figures.items():
            print(f"{name}.{key}: {value:.2f}")


if __name__ == "__main__":
    main()
