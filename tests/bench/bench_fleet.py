"""Benchmark: a fleet of sites upgrading at once through one Prefect server on PostgreSQL.

Run on its own (it cleans up after itself: databases, server, workers, engine processes, temp dirs):

    .venv/bin/python tests/bench/bench_fleet.py [--sites 50] [--chain 10] [--statements 20]
        [--sites-per-host 10] [--fleet-concurrency 10] [--worker-poll 10]

The path a release wave takes: a Prefect server on a fresh database of the local PostgreSQL with
``deployments/server.env.example``'s settings; ``deploy_sites.py`` for N sites (a pool per site, the fleet's
global concurrency limit); per site a business database and a metadata database on the local MariaDB
(blocks ``<site>-ft-db`` and ``<site>-metadata``); the sites' workers grouped on worker hosts of
``--sites-per-host`` sites, each host one ``FT_UPGRADE_HOME`` (so its runs share one metadata folder and
one embedded ClickHouse log store); a chain of ``--chain`` patch versions with one SQL file of
``--statements`` statements each. Then ``cicd.py`` (its ``execute``, one thread per site, as N CICD jobs)
triggers all N startup_pre_process runs at once, then startup_post_process and post_upgrade.

Printed: runs completed / triggered, ``fleet_cutpoints_per_minute``, p50/p95 of trigger → first statement
(waiting for a slot of the fleet limit included; also from the run's start, without it),
p95 of statement end → visible in the API (its task run's final state stored), the server's peak RSS and
CPU, ``events_dropped`` (statements in the ledgers missing from ClickHouse: must be 0), site-lock
refusals (must be 0 across different sites) and the doctor's answer on a worker host during the wave.
``tests/deployments/test_fleet.py`` runs the same fleet small.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from sqlalchemy import create_engine, text  # noqa: E402

from deployments.deploy_sites import FLEET_CONCURRENCY, RUN_ENV  # noqa: E402
from tests.prefect_server import (  # noqa: E402
    PrefectServer,
    postgres_database,
    prefect_server,
    stop_process,
    tuned_settings,
)

MARIADB = os.environ.get("FT_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")
SOURCE = "3.17.0"
WAVES = ("startup_pre_process", "startup_post_process", "post_upgrade")
WAIVE = {"startup_pre_process": ("pre_upgrade_process",), "startup_post_process": ("services_started",)}
# the sites' FT services (for the services preconditions): a port where nothing listens, so they are stopped for
# startup_pre_process; the fleet has none to start, so startup_post_process waives services_started
os.environ.setdefault("FT_UPGRADE_SERVICES", '{"ft-bench-stopped": "http://127.0.0.1:1/actuator/health"}')
GATE_TABLE = "gate"


@dataclass
class FleetOptions:
    """What the fleet looks like; the defaults are the issue's (50 sites, chains of 10 versions)."""

    sites: int = 50
    chain: int = 10
    statements: int = 20
    sites_per_host: int = 10
    fleet_concurrency: int = FLEET_CONCURRENCY
    pool_concurrency: int | None = None
    worker_poll: float = 10.0  # Prefect's default
    cicd_poll: float = 5.0
    run_timeout: float = 3600.0
    gate: bool = False  # the first statement of every chain waits until open_gate(): to act during the runs

    @property
    def target(self) -> str:
        return f"{SOURCE}-P{self.chain}"


@dataclass
class WaveRun:
    site: str
    cutpoint: str
    code: int = -1
    output: list[str] = field(default_factory=list)


# ---- the fleet's pieces --------------------------------------------------------------------------------

def site_ids(n: int) -> list[str]:
    return [f"S{i:03d}" for i in range(1, n + 1)]


def chain_tree(root: Path, options: FleetOptions, gate_database: str | None) -> dict[str, str]:
    """Configs 3.17.0-P1 … P<chain>, one SQL file each; returns the FT_UPGRADE_* variables pointing at them."""
    configs, sql = root / "configs", root / "sql"
    configs.mkdir(parents=True)
    for k in range(1, options.chain + 1):
        code = 317000 + k
        lines = [f"-- patch {k}: one table, its rows, an index, a column",
                 f"CREATE TABLE t{k} (id INT PRIMARY KEY, name VARCHAR(64), amount INT NOT NULL DEFAULT 0);"]
        if k == 1 and gate_database:
            lines.insert(1, f"SELECT COUNT(*) FROM `{gate_database}`.`{GATE_TABLE}`;")
        row = 0
        while len(lines) - 1 < options.statements:
            kind = len(lines) % 4
            if kind == 0:
                lines.append(f"UPDATE t{k} SET amount = amount + 1 WHERE id <= {row};")
            elif kind == 3 and len(lines) == 3:
                lines.append(f"CREATE INDEX ix{k} ON t{k} (amount);")
            else:
                values = ", ".join(f"({row + j}, 'name {row + j}', {row + j})" for j in range(3))
                lines.append(f"INSERT INTO t{k} (id, name, amount) VALUES {values};")
                row += 3
        (sql / f"{code}").mkdir(parents=True)
        (sql / f"{code}" / "001_patch.sql").write_text("\n".join(lines) + "\n", encoding="utf-8")
        steps: dict[str, list[dict[str, Any]]] = {"startup_pre_process": [
            {"id": f"sql_{code}", "class_name": "StartupPreProcessStep", "sql_scripts": [f"{code}/001_patch.sql"],
             "timeout": 1800}]}
        if k == options.chain:
            steps["startup_post_process"] = [{"id": "ping", "class_name": "ServiceHealthCheckStep",
                                              "databases": ["ft_db"]}]
            steps["post_upgrade"] = [{"id": "trim_event_log", "class_name": "LogCleanupStep",
                                      "clean_event_log": True}]
        (configs / f"{code}.json").write_text(json.dumps({"version": str(code), "upgrade_steps": steps}),
                                              encoding="utf-8")
    return {"FT_UPGRADE_CONFIGS": str(configs), "FT_UPGRADE_SQL_ROOT": str(sql)}


BLOCKS = """
import json, sys
from blocks.apply import SiteSpec, apply_site
for site, databases in json.loads(sys.argv[1]).items():
    apply_site(SiteSpec(site_id=site, databases=databases))
"""


class ProcessSampler:
    """Peak RSS and CPU of a process group (the Prefect server and its API child), read from /proc."""

    def __init__(self, pgid: int, interval: float = 1.0) -> None:
        self.pgid, self.interval = pgid, interval
        self.peak_rss = 0
        self.cpu_start = self.cpu_end = 0.0
        self.peak_cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> tuple[int, float]:
        rss, cpu = 0, 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[2]) != self.pgid:  # field 5: process group
                    continue
                cpu += (int(stat[11]) + int(stat[12])) / tick  # utime + stime
                rss += int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
            except (OSError, IndexError, ValueError):
                continue
        return rss, cpu

    def _run(self) -> None:
        _, last = self._sample()
        self.cpu_start = last
        at = time.monotonic()
        while not self._stop.wait(self.interval):
            rss, cpu = self._sample()
            now = time.monotonic()
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_cpu = max(self.peak_cpu, (cpu - last) / (now - at))
            last, at, self.cpu_end = cpu, now, cpu

    def __enter__(self) -> ProcessSampler:
        self._thread.start()
        return self

    def __exit__(self, *args: object) -> None:
        self._stop.set()
        self._thread.join()


class SupervisedWorkers:
    """The sites' workers, each started again when it exits, as a service manager does on a worker host.

    A Prefect 3.9 worker exits when the API answers an error it does not expect (a 500 from a server whose
    database pool ran dry, seen in this benchmark): production workers run under systemd (``Restart=always``).
    """

    def __init__(self, server: PrefectServer, workers: list[tuple[str, str, dict[str, str]]]) -> None:
        self.server, self.specs = server, workers
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> SupervisedWorkers:
        for pool, name, env in self.specs:
            self.processes[name] = self.server.start_worker(pool, name=name, extra_env=env)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(2):
            for pool, name, env in self.specs:
                if self.processes[name].poll() is not None and not self._stop.is_set():
                    self.restarts[name] += 1
                    self.processes[name] = self.server.start_worker(pool, name=name, extra_env=env)

    def __exit__(self, *args: object) -> None:
        self._stop.set()
        self._thread.join()
        for process in self.processes.values():
            stop_process(process)


def engine_processes(root: Path) -> list[int]:
    """Pids of the embedded ClickHouse engine processes serving a directory under ``root``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            if b"blocks.clickhouse_process" in cmdline and str(root).encode() in Path(f"/proc/{entry}/environ") \
                    .read_bytes():
                found.append(int(entry))
        except OSError:
            continue
    return found


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# ---- the fleet ---------------------------------------------------------------------------------------

class Fleet:
    """A server, N sites deployed, their databases and blocks, workers on hosts; every wave's results."""

    def __init__(self, options: FleetOptions, echo: Callable[[str], None] = print) -> None:
        self.options, self.echo = options, echo
        self.tag = uuid.uuid4().hex[:8]
        self.sites = site_ids(options.sites)
        self.root = Path(tempfile.mkdtemp(prefix="ft-bench-fleet-"))
        self.admin = create_engine(f"{MARIADB}/mysql", pool_size=2)
        self.databases = {site: (f"ft_fleet_{self.tag}_{site.lower()}_ft", f"ft_fleet_{self.tag}_{site.lower()}_meta")
                          for site in self.sites}
        self.marker_schema = f"ft_fleet_{self.tag}_markers"
        self.gate_database = f"ft_fleet_{self.tag}_gate" if options.gate else None
        self.hosts = {site: f"host-{i // options.sites_per_host}" for i, site in enumerate(self.sites)}
        self.waves: dict[str, list[WaveRun]] = {}
        self.wave_seconds: dict[str, float] = {}
        self.doctor: dict[str, Any] | None = None
        self._stack = contextlib.ExitStack()
        self._gate: Any = None
        self.server: PrefectServer
        self.sampler: ProcessSampler
        self.workers: SupervisedWorkers

    # -- setup and teardown ----------------------------------------------------------------------------

    def home(self, host: str) -> Path:
        return self.root / host

    def host_env(self, host: str) -> dict[str, str]:
        poll = str(self.options.worker_poll)
        # a worker host as the README sets one up: the workers retry an API 500 as the runs do (RUN_ENV)
        return {**self.tree, **RUN_ENV, "FT_UPGRADE_HOME": str(self.home(host)),
                "FT_UPGRADE_MARKER_SCHEMA": self.marker_schema,
                "FT_UPGRADE_CLICKHOUSE_IDLE_SECONDS": "5", "PREFECT_WORKER_QUERY_SECONDS": poll,
                "PREFECT_WORKER_PREFETCH_SECONDS": poll}

    def __enter__(self) -> Fleet:
        try:
            self._setup()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _setup(self) -> None:
        started = time.monotonic()
        with self.admin.begin() as conn:
            for names in self.databases.values():
                for name in names:
                    conn.execute(text(f"CREATE DATABASE `{name}`"))
            if self.gate_database:
                conn.execute(text(f"CREATE DATABASE `{self.gate_database}`"))
                conn.execute(text(f"CREATE TABLE `{self.gate_database}`.`{GATE_TABLE}` (n INT)"))
        self.tree = chain_tree(self.root / "tree", self.options, self.gate_database)
        postgres = self._stack.enter_context(postgres_database("ft_fleet"))
        self.server = self._stack.enter_context(prefect_server(self.root / "prefect", database_url=postgres,
                                                               extra_env=tuned_settings()))
        self.sampler = self._stack.enter_context(ProcessSampler(self.server.pid))
        self.echo(f"server up on PostgreSQL in {time.monotonic() - started:.1f}s")
        t = time.monotonic()
        args = [a for site in self.sites for a in ("--site", site)]
        deployed = subprocess.run([sys.executable, "deployments/deploy_sites.py", *args, "--fleet-concurrency",
                                   str(self.options.fleet_concurrency),
                                   *(["--pool-concurrency", str(self.options.pool_concurrency)]
                                     if self.options.pool_concurrency else [])],
                                  cwd=PROJECT, env=self.server.env, capture_output=True, text=True, timeout=1800)
        if deployed.returncode != 0:
            raise RuntimeError(f"deploy_sites.py failed:\n{deployed.stdout}\n{deployed.stderr}")
        self.deploy_seconds = time.monotonic() - t
        t = time.monotonic()
        blocks = {site: {"ft_db": f"{MARIADB}/{ft}", "metadata": f"{MARIADB}/{meta}"}
                  for site, (ft, meta) in self.databases.items()}
        subprocess.run([sys.executable, "-c", BLOCKS, json.dumps(blocks)], cwd=PROJECT, env=self.server.env,
                       check=True, capture_output=True, text=True, timeout=1800)
        self.echo(f"deploy_sites.py for {len(self.sites)} sites: {self.deploy_seconds:.1f}s; "
                  f"blocks: {time.monotonic() - t:.1f}s")
        t = time.monotonic()
        self.workers = self._stack.enter_context(SupervisedWorkers(self.server, [
            (f"ft-upgrade-{site.lower()}", site.lower(), self.host_env(self.hosts[site])) for site in self.sites]))
        self._wait_for_workers()
        self.echo(f"{len(self.sites)} workers on {len(set(self.hosts.values()))} hosts online in "
                  f"{time.monotonic() - t:.1f}s")

    def client(self) -> Any:
        """A sync Prefect client (inside :meth:`api`)."""
        from prefect.client.orchestration import get_client

        return get_client(sync_client=True)

    @contextlib.contextmanager
    def api(self) -> Iterator[None]:
        """Prefect settings pointing at this fleet's server, for the block (threads: copy the context)."""
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: self.server.api_url}):
            yield

    def _wait_for_workers(self, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        waiting = set(self.sites)
        with self.api(), self.client() as client:
            while waiting:
                for site in sorted(waiting):
                    workers = client.read_workers_for_work_pool(f"ft-upgrade-{site.lower()}")
                    if any(str(w.status).upper().endswith("ONLINE") for w in workers):
                        waiting.discard(site)
                if waiting and time.monotonic() > deadline:
                    raise RuntimeError(f"workers never came online: {sorted(waiting)}")
                if waiting:
                    time.sleep(2)

    def __exit__(self, *args: object) -> None:
        with contextlib.suppress(Exception):
            self.open_gate()
        self._stack.close()  # workers, sampler, server, its PostgreSQL database
        for pid in engine_processes(self.root):  # idle ones end by themselves within seconds; do not wait
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        with self.admin.begin() as conn:
            for names in self.databases.values():
                for name in names:
                    conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
            conn.execute(text(f"DROP DATABASE IF EXISTS `{self.marker_schema}`"))
            if self.gate_database:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{self.gate_database}`"))
        self.admin.dispose()
        subprocess.run(["rm", "-rf", str(self.root)], check=False)

    # -- the gate: every run's first statement waits for it ------------------------------------------------

    def close_gate(self) -> None:
        assert self.gate_database, "FleetOptions(gate=True)"
        self._gate = self.admin.connect()
        self._gate.execute(text(f"LOCK TABLES `{self.gate_database}`.`{GATE_TABLE}` WRITE"))

    def waiting_at_gate(self) -> int:
        with self.admin.connect() as conn:
            return int(conn.execute(text(
                "SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE :q AND info NOT LIKE :me"),
                {"q": f"%{self.gate_database}%", "me": "%processlist%"}).scalar() or 0)

    def open_gate(self) -> None:
        if self._gate is not None:
            gate, self._gate = self._gate, None
            gate.execute(text("UNLOCK TABLES"))
            gate.close()

    # -- waves ---------------------------------------------------------------------------------------------

    def wave(self, cutpoint: str, during: Callable[[], None] | None = None,
             waive: Sequence[str] | None = None) -> list[WaveRun]:
        """Trigger the cutpoint for every site at once through cicd.py; wait for every run's end.

        ``during`` runs in this thread once all are triggered; ``waive``: preconditions waived (default: the
        cutpoints before startup_pre_process, which the fleet does not run).
        """
        from deployments import cicd
        from deployments.deploy_sites import deployment_suffix

        runs = [WaveRun(site, cutpoint) for site in self.sites]

        def one(run: WaveRun) -> None:
            request = cicd.validate_request(cutpoint, SOURCE, self.options.target, run.site,
                                            deployment_suffix=deployment_suffix(run.site),
                                            waive=WAIVE.get(cutpoint, ()) if waive is None else waive,
                                            reason="bench: a wave of the fleet",
                                            by="bench_fleet")
            run.code = cicd.execute(request, timeout=self.options.run_timeout, poll=self.options.cicd_poll,
                                    echo=run.output.append)

        started = time.monotonic()
        with self.api():
            # daemon threads: an interrupted benchmark cleans up and ends without waiting for their polls
            threads = [threading.Thread(target=contextvars.copy_context().run, args=(one, run), daemon=True)
                       for run in runs]
            for thread in threads:
                thread.start()
            if during is not None:
                during()
            for thread in threads:
                thread.join()
        self.wave_seconds[cutpoint] = time.monotonic() - started
        self.waves[cutpoint] = runs
        done = sum(r.code == 0 for r in runs)
        self.echo(f"wave {cutpoint}: {done}/{len(runs)} completed in {self.wave_seconds[cutpoint]:.1f}s")
        return runs

    def run_doctor(self, site: str) -> dict[str, Any]:
        """``ft-upgrade doctor --site S --json`` on the site's worker host (its home, its log store)."""
        result = subprocess.run([str(Path(sys.executable).parent / "ft-upgrade"), "doctor", "--site", site, "--json"],
                                cwd=PROJECT, env={**self.server.env, **self.host_env(self.hosts[site])},
                                capture_output=True, text=True, timeout=600)
        lines = result.stdout.strip().splitlines()
        answer = json.loads(lines[-1]) if lines else {"status": "fail", "checks": [], "stderr": result.stderr[-2000:]}
        self.doctor = {"exit": result.returncode, **answer}
        return self.doctor

    # -- figures -------------------------------------------------------------------------------------------

    def ledger(self, site: str) -> list[Any]:
        """The site's SQL ledger rows ([] before its first run created the metadata tables)."""
        from sqlalchemy.exc import ProgrammingError

        engine = create_engine(f"{MARIADB}/{self.databases[site][1]}")
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(
                    "SELECT execution_id, sql_line_number, sql_sequence, status, start_time, end_time "
                    "FROM sql_execution_record")))
        except ProgrammingError:
            return []
        finally:
            engine.dispose()

    def clickhouse_statements(self, host: str) -> list[tuple[Any, ...]]:
        """Statement events of the host's embedded store, read through its engine process (as a client)."""
        from blocks.clickhouse import ClickHouseLogStore

        store = ClickHouseLogStore(dsn=f"chdb://{self.home(host) / 'clickhouse'}")
        try:
            return store.get_client().query(
                "SELECT execution_id, line, sequence, status FROM ft_upgrade_log.upgrade_event "
                "WHERE kind = 'statement'").result_rows
        finally:
            store.close()

    def figures(self) -> dict[str, Any]:
        """Everything the benchmark prints, from the API, the ledgers and the hosts' log stores."""
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        ledgers = {site: self.ledger(site) for site in self.sites}
        events = Counter()
        for host in sorted(set(self.hosts.values())):
            for row in self.clickhouse_statements(host):
                events[(str(row[0]), int(row[1]), int(row[2]), str(row[3]))] += 1
        in_ledger = Counter((str(r[0]), int(r[1]), int(r[2]), str(r[3])) for rows in ledgers.values() for r in rows)
        dropped = sum((in_ledger - events).values())

        with self.api(), self.client() as client:
            flow_runs = []
            offset = 0
            while True:
                page = client.read_flow_runs(limit=200, offset=offset)
                flow_runs += page
                offset += len(page)
                if len(page) < 200:
                    break
            flows = {f.id: f.name for f in client.read_flows()}
            pre_runs = {fr.parameters.get("site_id"): fr for fr in flow_runs
                        if flows.get(fr.flow_id) == "startup_pre_process"}
            task_runs: list[Any] = []
            ids = [fr.id for fr in pre_runs.values()]
            for i in range(0, len(ids), 20):
                offset = 0
                while True:
                    page = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids[i:i + 20])),
                                                 limit=200, offset=offset)
                    task_runs += page
                    offset += len(page)
                    if len(page) < 200:
                        break

        first_statement, started_to_first = [], []  # from the trigger (queueing included), from the run's start
        for site, fr in pre_runs.items():
            starts = [r[4] for r in ledgers.get(site, []) if r[4] is not None]
            if starts:
                first_statement.append((_utc(min(starts)) - fr.created).total_seconds())
                if fr.start_time is not None:
                    started_to_first.append((_utc(min(starts)) - fr.start_time).total_seconds())
        tasks_of: dict[Any, list[tuple[datetime, datetime]]] = {}
        for tr in task_runs:
            if tr.end_time is not None and tr.state is not None and tr.state.is_final():
                tasks_of.setdefault(tr.flow_run_id, []).append((tr.end_time, tr.updated))
        visible = []
        for site, fr in pre_runs.items():
            candidates = sorted(tasks_of.get(fr.id, []))
            for row in ledgers.get(site, []):
                if row[5] is None or row[3] != "SUCCESS":
                    continue
                end = _utc(row[5])
                seen = [updated for task_end, updated in candidates if task_end >= end]
                if seen:
                    visible.append((min(seen) - end).total_seconds())

        triggered = sum(len(runs) for runs in self.waves.values())
        completed = sum(r.code == 0 for runs in self.waves.values() for r in runs)
        refusals = sum(any("REFUSED" in line or "is being upgraded by" in line for line in r.output)
                       for runs in self.waves.values() for r in runs)
        finals = [fr for fr in flow_runs if fr.end_time is not None and fr.state and fr.state.is_completed()]
        minutes = sum(self.wave_seconds.values()) / 60
        cpu_seconds = self.sampler.cpu_end - self.sampler.cpu_start
        return {
            "sites": len(self.sites), "hosts": len(set(self.hosts.values())), "chain_versions": self.options.chain,
            "statements_per_run": self.options.chain * self.options.statements,
            "fleet_concurrency": self.options.fleet_concurrency,
            "runs_completed": completed, "runs_triggered": triggered,
            "flow_runs_completed_in_api": len(finals),
            "wave_seconds": {k: round(v, 1) for k, v in self.wave_seconds.items()},
            "fleet_cutpoints_per_minute": round(completed / minutes, 2) if minutes else 0.0,
            "trigger_to_first_statement_p50_s": round(percentile(first_statement, 0.5), 2),
            "trigger_to_first_statement_p95_s": round(percentile(first_statement, 0.95), 2),
            "run_start_to_first_statement_p50_s": round(percentile(started_to_first, 0.5), 2),
            "run_start_to_first_statement_p95_s": round(percentile(started_to_first, 0.95), 2),
            "statement_end_to_api_p95_s": round(percentile(visible, 0.95), 2),
            "statement_end_to_api_p50_s": round(percentile(visible, 0.5), 2),
            "statements_in_ledgers": sum(in_ledger.values()),
            "statement_events_in_clickhouse": sum(events.values()),
            "events_dropped": dropped,
            "site_lock_refusals": refusals,
            "server_peak_rss_mb": round(self.sampler.peak_rss / 2**20),
            "server_cpu_seconds": round(cpu_seconds, 1),
            "server_cpu_avg_percent": round(100 * cpu_seconds / max(sum(self.wave_seconds.values()), 1e-9), 1),
            "server_cpu_peak_percent": round(100 * self.sampler.peak_cpu, 1),
            "doctor_during_wave": (self.doctor or {}).get("status", "not run"),
            "worker_restarts": sum(self.workers.restarts.values()),
            "api_errors_500": self.server.log.read_text(errors="replace").count("Exception in ASGI application"),
        }


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_args(argv: Sequence[str] | None) -> FleetOptions:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = FleetOptions()
    parser.add_argument("--sites", type=int, default=defaults.sites)
    parser.add_argument("--chain", type=int, default=defaults.chain, help="patch versions in the chain")
    parser.add_argument("--statements", type=int, default=defaults.statements, help="statements per version")
    parser.add_argument("--sites-per-host", type=int, default=defaults.sites_per_host,
                        help="sites whose workers share one worker host (one FT_UPGRADE_HOME, one log store)")
    parser.add_argument("--fleet-concurrency", type=int, default=defaults.fleet_concurrency,
                        help="deploy_sites.py --fleet-concurrency (0: none)")
    parser.add_argument("--pool-concurrency", type=int, default=None)
    parser.add_argument("--worker-poll", type=float, default=defaults.worker_poll,
                        help="PREFECT_WORKER_QUERY_SECONDS of every worker")
    args = parser.parse_args(argv)
    return FleetOptions(sites=args.sites, chain=args.chain, statements=args.statements,
                        sites_per_host=args.sites_per_host, fleet_concurrency=args.fleet_concurrency,
                        pool_concurrency=args.pool_concurrency, worker_poll=args.worker_poll)


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    with Fleet(options, echo=lambda line: print(line, flush=True)) as fleet:
        first = fleet.sites[0]

        def doctor_once_running() -> None:  # the doctor on a worker host while its runs write their events
            deadline = time.monotonic() + 600
            while not fleet.ledger(first) and time.monotonic() < deadline:
                time.sleep(1)
            fleet.run_doctor(first)

        for cutpoint in WAVES:
            fleet.wave(cutpoint, during=doctor_once_running if cutpoint == "startup_pre_process" else None)
        figures = fleet.figures()
    print(json.dumps(figures, indent=2))
    for key in ("runs_completed", "runs_triggered", "fleet_cutpoints_per_minute", "trigger_to_first_statement_p50_s",
                "trigger_to_first_statement_p95_s", "statement_end_to_api_p95_s", "server_peak_rss_mb",
                "server_cpu_avg_percent", "api_errors_500", "worker_restarts", "events_dropped", "site_lock_refusals"):
        print(f"{key}: {figures[key]}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end "
          f"(shared with other work)")


if __name__ == "__main__":
    main()
