"""Benchmark: the SQL engine against the plain ``mariadb`` client on the same files.

Run on its own: ``python tests/bench/bench_sql.py``. Creates its databases on the local MariaDB and
drops them after. Each side runs five times, alternating, and the best time of each counts.

Tool time is the SqlScriptStep run in this process: connection pool and session set-up, splitting,
the ledger in a SQLite file, markers, the statement log lines (built and emitted through a formatting
handler to a null stream, several statements per record as in a flow run) and ClickHouse events.
Left out, as a flow run does them once before its steps: Python start-up, opening the metadata store,
the boot of the embedded ClickHouse engine (about a second on 2 cores) and its first insert (an
untimed warm-up run of the tool comes first). Prefect's own log handlers cost about 0.25 ms a record
on top in a flow run (stated in the note). Client time is ``mariadb < file``.

Also measures the time to make a breakpoint durable and the ClickHouse event latency. The last two
lines are the ratios.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import create_engine, text  # noqa: E402

from tasks.core.errors import StepFailed
from tasks.events.logstore import LogEvent
from tasks.sql.ledger import SqlLedger  # noqa: E402
from tasks.sql.step import SqlScriptParams, SqlScriptStep
from tests.helpers import step_context  # noqa: E402

ROOT = "mysql+pymysql://root@127.0.0.1:3306"


def mixed(n: int) -> str:
    from tests.tasks.sql.test_executor_kill9 import mixed_script

    return mixed_script(n)


def dml(n: int) -> str:
    lines = ["CREATE TABLE orders_bench (id INT PRIMARY KEY, customer VARCHAR(32), amount DECIMAL(10,2));"]
    lines += [f"INSERT INTO orders_bench VALUES ({i}, 'customer {i}', {i % 997}.25);" for i in range(1, n)]
    return "\n".join(lines) + "\n"


def admin(sql: str) -> None:
    engine = create_engine(ROOT + "/test")
    with engine.begin() as conn:
        conn.execute(text(sql))
    engine.dispose()


def fresh(name: str) -> str:
    admin(f"DROP DATABASE IF EXISTS `{name}`")
    admin(f"CREATE DATABASE `{name}`")
    return name


def client_seconds(path: Path, database: str) -> float:
    start = time.perf_counter()
    with path.open("rb") as f:
        subprocess.run(["mariadb", "-h127.0.0.1", "-uroot", database], stdin=f, check=True)
    return time.perf_counter() - start


def statement_logger() -> logging.Logger:
    """INFO to a formatting handler on a null stream: every statement line is built and emitted."""
    logger = logging.getLogger("bench.statements")
    if not logger.handlers:
        handler = logging.StreamHandler(open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - for the process
        handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)-7s | %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def tool_seconds(work: Path, name: str, database: str) -> float:
    home = work / f"home-{database}"
    with step_context(home, databases={"ft_db": f"{ROOT}/{database}"}, sql_root=work,
                      execution_id=f"BENCH_{uuid.uuid4().hex}") as ctx:  # unique, as a real execution's id
        ctx.logger = statement_logger()
        ctx.resources.event_log().ensure_schema()  # the embedded ClickHouse boots once per process, not per file
        ctx.resources.metadata_store()  # the flow opens its store before any step runs
        step = SqlScriptStep(SqlScriptParams(sql_scripts=[name]), ctx)
        start = time.perf_counter()
        step.run()
        return time.perf_counter() - start


def breakpoint_ms(work: Path) -> float:
    """From the failing statement's error to the breakpoint committed in the ledger."""
    (work / "fail.sql").write_text("CREATE TABLE f (id INT PRIMARY KEY);\nINSERT INTO f VALUES (1), (1);\n")
    database = fresh("ft_bench_bp")
    timings: list[float] = []
    original_failed, original_open = SqlLedger.mark_failed, SqlLedger.open_breakpoint

    def mark_failed(self: SqlLedger, *args: object, **kwargs: object) -> None:
        timings.append(time.perf_counter())
        original_failed(self, *args, **kwargs)  # type: ignore[arg-type]

    def open_bp(self: SqlLedger, *args: object, **kwargs: object) -> str:
        result = original_open(self, *args, **kwargs)  # type: ignore[arg-type]
        timings.append(time.perf_counter())
        return result

    SqlLedger.mark_failed, SqlLedger.open_breakpoint = mark_failed, open_bp  # type: ignore[method-assign]
    try:
        with step_context(work / "home-bp", databases={"ft_db": f"{ROOT}/{database}"}, sql_root=work) as ctx, \
                contextlib.suppress(StepFailed):
            SqlScriptStep(SqlScriptParams(sql_scripts=["fail.sql"]), ctx).run()
    finally:
        SqlLedger.mark_failed, SqlLedger.open_breakpoint = original_failed, original_open  # type: ignore[method-assign]
        admin(f"DROP DATABASE IF EXISTS `{database}`")
    return (timings[1] - timings[0]) * 1000


def clickhouse_latency_ms(work: Path) -> float:
    from blocks.clickhouse import ClickHouseLogStore
    from tasks.events.logstore import ClickHouseEventLog

    store = ClickHouseLogStore(dsn=f"chdb://{work / 'ch'}")
    log = ClickHouseEventLog(store)
    log.ensure_schema()
    worst = 0.0
    with log.writer() as writer:
        for i in range(5):
            start = time.perf_counter()
            writer.put(LogEvent(execution_id=f"LAT_{i}", kind="statement", message="latency probe"))
            while not log.events(f"LAT_{i}"):
                time.sleep(0.01)
            worst = max(worst, time.perf_counter() - start)
    store.close()
    return worst * 1000


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="ft-bench-sql-"))
    names = []
    try:
        # one untimed run first: a process pays once for lazy imports and the embedded ClickHouse's first
        # insert (about 0.25 s of CPU), as a flow run does, not once per file
        (work / "warm.sql").write_text(mixed(100), encoding="utf-8")
        names.append("ft_bench_warm")
        tool_seconds(work, "warm.sql", fresh("ft_bench_warm"))
        time.sleep(0.5)
        results = {}
        for label, body, n in (("1000_mixed", mixed(1000), 1000), ("10000_dml", dml(10000), 10000)):
            path = work / f"{label}.sql"
            path.write_text(body, encoding="utf-8")
            clients, tools = [], []
            for attempt in range(5):  # alternate, best of five each: the server's background work after one run
                c_db, t_db = f"ft_bench_c{attempt}_{label}", f"ft_bench_t{attempt}_{label}"  # must not favour one
                names += [c_db, t_db]
                clients.append(client_seconds(path, fresh(c_db)))
                tools.append(tool_seconds(work, path.name, fresh(t_db)))
                admin(f"DROP DATABASE IF EXISTS `{c_db}`")
                admin(f"DROP DATABASE IF EXISTS `{t_db}`")
            client, tool = min(clients), min(tools)
            results[label] = (client, tool, n)
            print(f"{label}: client {client:.2f}s, tool {tool:.2f}s, ratio {tool / client:.2f}, "
                  f"overhead {(tool - client) * 1000 / n:.3f} ms/statement")
        print(f"breakpoint_durable_ms: {breakpoint_ms(work):.1f}")
        print(f"clickhouse_event_latency_ms: {clickhouse_latency_ms(work):.1f}")
        c, t, _ = results["1000_mixed"]
        print(f"ratio_vs_client_1000_mixed: {t / c:.2f}")
        c, t, _ = results["10000_dml"]
        print(f"ratio_vs_client_10000_dml: {t / c:.2f}")
    finally:
        for name in names:
            admin(f"DROP DATABASE IF EXISTS `{name}`")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
