"""kill -9 a running migration at random points; after it resumes, the target is the transformed source, row for row.

The big proof (2,000,000 rows, 10+ kills) is ``tests/bench/bench_migration.py``; this is the same
harness on 50,000 rows with 3 kills, so every default test run checks it.
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy import Engine

from tests.support.orders import assert_identical, create_tables, task
from tests.tasks.migration.kill_harness import finish, kill_trials

pytestmark = pytest.mark.mariadb


def test_a_migration_killed_three_times_at_random_points_resumes_to_an_exact_copy_without_duplicates(
        mariadb_database: str, engine: Engine) -> None:
    create_tables(engine, 50_000)
    params = {"tasks": [task()], "max_rows_per_second": None, "initial_chunk_rows": 500, "max_chunk_rows": 2_000,
              "retry_wait_seconds": 0.05}
    seed = random.randrange(1_000_000)
    trials = kill_trials(mariadb_database, engine, params, trials=3, total_rows=37_500, rng=random.Random(seed),
                         task_name="orders_v2", jitter=0.02)
    report = [t.describe() for t in trials]
    assert all(t.killed for t in trials), report
    assert sum(t.rows_after < 37_500 for t in trials) >= 2, f"most kills land during the copy: {report}"

    details = finish(mariadb_database, params)
    migration = details["migrations"][0]
    assert migration["status"] == "DONE"
    assert migration["runs"] == 4
    assert migration["verification"]["mismatches"] == []
    found = assert_identical(engine)
    assert found["target"] == 37_500, f"seed {seed}"
