"""Kill -9 at random points of a 500-statement mixed DDL/DML run; every resume ends where an uninterrupted run does.

The run happens in a subprocess (``tests.tasks.sql.harness``) that is SIGKILLed at random moments,
then started again with the same execution id until it completes. The final schema and data must
equal those of an uninterrupted run, and a side-effect table proves that no DML ran twice.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import MARIADB_ROOT
from tests.tasks.sql.harness import launch

pytestmark = pytest.mark.mariadb

TRIALS = 7
KILLS_PER_TRIAL = 3


def mixed_script(statements: int = 500) -> str:
    """DDL (tables, columns, indexes) between DML that would show any double execution."""
    lines = ["-- @database: ft_db", "CREATE TABLE side_effect (n INT NOT NULL, KEY (n));",
             "CREATE TABLE counters (k INT PRIMARY KEY, c INT NOT NULL DEFAULT 0);"]
    n = 2
    table = 0
    while n < statements:
        if n % 25 == 2:
            table += 1
            lines.append(f"CREATE TABLE t{table} (id INT PRIMARY KEY, v INT NOT NULL DEFAULT 0);")
        elif n % 25 == 12:
            lines.append(f"ALTER TABLE t{table} ADD COLUMN extra_{n} VARCHAR(16) NOT NULL DEFAULT 'x';")
        elif n % 25 == 20:
            lines.append(f"CREATE INDEX idx_{n} ON t{table} (v);")
        elif n % 3 == 0:
            lines.append(f"INSERT INTO side_effect VALUES ({n});")
        elif n % 3 == 1:
            lines.append(f"INSERT INTO counters (k, c) VALUES ({n % 40}, 1) ON DUPLICATE KEY UPDATE c = c + 1;")
        else:
            lines.append(f"INSERT INTO t{table} (id, v) VALUES ({n}, {n}) ON DUPLICATE KEY UPDATE v = v + 1;")
        n += 1
    return "\n".join(lines) + "\n"


def snapshot(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        tables = [r[0] for r in conn.execute(text("SHOW TABLES"))]
        for t in sorted(tables):
            create = conn.execute(text(f"SHOW CREATE TABLE `{t}`")).one()[1]
            rows = sorted(tuple(r) for r in conn.execute(text(f"SELECT * FROM `{t}`")))
            out[t] = (create, rows)
    engine.dispose()
    return out


def harness(tmp_path: Path, url: str, execution: str) -> subprocess.Popen[str]:
    return launch(tmp_path / "sql", tmp_path / "home", execution, ["mixed.sql"], {"ft_db": url})


def fresh_database(name: str) -> str:
    admin = create_engine(MARIADB_ROOT + "/test")
    with admin.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        conn.execute(text(f"CREATE DATABASE `{name}`"))
    admin.dispose()
    return f"{MARIADB_ROOT}/{name}?charset=utf8mb4"


def drop_database(name: str) -> None:
    admin = create_engine(MARIADB_ROOT + "/test")
    with admin.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    admin.dispose()


def run_to_completion(tmp_path: Path, url: str, execution: str) -> None:
    proc = harness(tmp_path, url, execution)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out


def test_kill_9_at_random_points_then_resume_ends_in_the_same_schema_and_data(tmp_path: Path) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "mixed.sql").write_text(mixed_script(), encoding="utf-8")
    suffix = uuid.uuid4().hex[:8]  # unique: markers outlive the databases (retention)
    names = [f"ft_k9_ref_{suffix}"] + [f"ft_k9_{i}_{suffix}" for i in range(TRIALS)]
    rng = random.Random(20261128)
    try:
        started = time.monotonic()
        run_to_completion(tmp_path, fresh_database(names[0]), "EXEC_REF")
        full = time.monotonic() - started
        expected = snapshot(f"{MARIADB_ROOT}/{names[0]}")
        assert len(expected["side_effect"][1]) == len([n for n in range(2, 500) if n % 3 == 0 and n % 25 not in
                                                       (2, 12, 20)])
        kills = 0
        for trial in range(TRIALS):
            url = fresh_database(names[trial + 1])
            execution = f"EXEC_K9_{trial}"
            for _ in range(KILLS_PER_TRIAL):
                proc = harness(tmp_path, url, execution)
                assert proc.stdout is not None
                assert proc.stdout.readline().strip() == "START"
                time.sleep(rng.uniform(0.0, max(full - 1.5, 0.5)))
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
            run_to_completion(tmp_path, url, execution)
            got = snapshot(f"{MARIADB_ROOT}/{names[trial + 1]}")
            assert got == expected, f"trial {trial}: state differs from the uninterrupted run"
            counts: dict[int, int] = {}
            for (n,) in got["side_effect"][1]:
                counts[n] = counts.get(n, 0) + 1
            assert set(counts.values()) == {1}, "a DML statement ran twice"
        assert kills >= 20
    finally:
        for name in names:
            drop_database(name)
