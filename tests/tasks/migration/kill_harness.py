"""SIGKILL a migration at random points, again and again, then let it finish (test and benchmark share this).

Each trial starts ``migrate_once`` in a subprocess, waits until its checkpoint passes a random row
count, sleeps a random fraction of a chunk and sends SIGKILL (kill -9): no handler, no cleanup, the
server sees the connection drop in the middle of whatever it was doing.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import ProgrammingError

from tasks.migration.checkpoint import CheckpointTable

PROJECT = Path(__file__).resolve().parents[3]


@dataclass
class Trial:
    number: int
    point: int
    delay: float
    rows_before: int
    rows_after: int
    killed: bool

    def describe(self) -> str:
        what = "SIGKILLed" if self.killed else "finished before the kill"
        return (f"trial {self.number}: {what} {self.delay * 1000:.0f} ms after passing row {self.point:,}; "
                f"checkpoint {max(self.rows_before, 0):,} → {self.rows_after:,} rows")


def _rows_done(engine: Engine, name: str) -> int:
    """Rows the checkpoint says are done; -1 before the migration created its checkpoint."""
    try:
        with engine.connect() as conn:
            found = CheckpointTable(engine.url.database or "").read(conn, name)
    except ProgrammingError:  # the checkpoint table does not exist yet
        return -1
    return found.rows_done if found else -1


def start(url: str, params: dict[str, Any]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "PREFECT_LOGGING_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "tests.tasks.migration.migrate_once", url, json.dumps(params)],
                            cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_trials(url: str, engine: Engine, params: dict[str, Any], *, trials: int, total_rows: int,
                rng: random.Random, task_name: str, jitter: float = 0.05, timeout: float = 120.0) -> list[Trial]:
    """Run ``trials`` SIGKILLed attempts spread over the copy.

    Each trial draws a kill point: a row count somewhere in its share of what is left to copy; once
    the checkpoint passes it, it waits ``uniform(0, jitter)`` s more (so the kill lands at a random
    moment of the next chunk's transaction) and sends SIGKILL.
    """
    done: list[Trial] = []
    for number in range(1, trials + 1):
        before = _rows_done(engine, task_name)
        remaining = total_rows - max(before, 0)
        point = max(before, 0) + int(rng.uniform(0.2, 1.8) * remaining / (trials - number + 2))
        delay = rng.uniform(0.0, jitter)
        proc = start(url, params)
        deadline = time.monotonic() + timeout
        while _rows_done(engine, task_name) < point and proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"trial {number}: checkpoint did not reach {point} within {timeout}s")
            time.sleep(0.005)
        time.sleep(delay)
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        _out, err = proc.communicate()
        if not killed and proc.returncode != 0:
            raise AssertionError(f"trial {number}: migration failed on its own:\n{err}")
        if killed:
            assert proc.returncode == -signal.SIGKILL
        done.append(Trial(number, point, delay, before, _rows_done(engine, task_name), killed))
    return done


def finish(url: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run the migration to the end; its step details (the last JSON line it prints)."""
    proc = start(url, params)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise AssertionError(f"final run failed ({proc.returncode}):\n{err}")
    return json.loads(out.strip().splitlines()[-1])
