"""Benchmark: load 200 generated configs and plan across all of them.

Run on its own: ``python tests/bench/bench_plan.py``. Writes its configs to a temp folder, removes
them after, and prints ``plan_seconds_200_configs: <value>`` (load + plan, best of 5). Then the commands
as an operator runs them, whole process, on the project's sample configs (best of 5):
``cli_validate_seconds`` and ``cli_plan_seconds`` (``plan`` reads the site's applied scripts from the
metadata store too, to mark changed ones).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tasks.core.versions import Version
from tasks.planning.config_loader import load_configs
from tasks.planning.plan import build_plan


def generate(folder: Path, count: int = 200) -> list[Version]:
    """Baselines 3.x.y with 3 patches each, 5 cutpoints × 2 steps per config, some site-specific."""
    versions: list[Version] = []
    minor, patch = 10, 0
    while len(versions) < count:
        for p in range(0, 4):
            if len(versions) == count:
                break
            versions.append(Version(3, minor, patch, p))
        patch += 1
        if patch > 9:
            minor, patch = minor + 1, 0
    for v in versions:
        steps = {}
        for cp in ("pre_business_check", "pre_upgrade_process", "startup_pre_process", "startup_post_process",
                   "post_upgrade"):
            steps[cp] = [
                {"id": f"{cp}_{v.code}_1", "class_name": "com.ft.upgrade.steps.ServiceHealthCheckStep",
                 "databases": ["ft_db"], "timeout": 60, "retry_count": 1, "estimated_duration": 5},
                {"id": f"{cp}_{v.code}_2", "class_name": "ServiceHealthCheckStep", "databases": ["middle_db"],
                 "is_common": v.code % 2 == 0, "site_ids": ["US"], "dependencies": [f"{cp}_{v.code}_1"]},
            ]
        data = {"version": str(v.code), "upgrade_steps": steps}
        if v.is_patch:
            data["dependencies"] = {"required_base_version": str(v.baseline.code)}
        (folder / f"{v.code}.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    return versions


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="ft-bench-plan-"))
    try:
        versions = generate(folder)
        source = Version(3, 9, 9)
        target = versions[-1]
        best_load = best_plan = float("inf")
        steps = 0
        for _ in range(5):
            t0 = time.perf_counter()
            configs = load_configs(folder)
            t1 = time.perf_counter()
            plan = build_plan(configs, source, target, "US")
            t2 = time.perf_counter()
            best_load, best_plan = min(best_load, t1 - t0), min(best_plan, t2 - t1)
            steps = len(plan.steps)
        print(f"configs: {len(versions)} ({versions[0]} … {target}), planned steps: {steps}")
        print(f"load_seconds: {best_load:.4f}")
        print(f"build_plan_seconds: {best_plan:.4f}")
        print(f"plan_seconds_200_configs: {best_load + best_plan:.4f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    command_seconds()


def command_seconds(runs: int = 5) -> None:
    """`ft-upgrade validate` and `plan` as processes: interpreter start, imports, configs, the store."""
    cli = str(Path(sys.executable).parent / "ft-upgrade")
    home = Path(tempfile.mkdtemp(prefix="ft-bench-plan-home-"))
    env = {**os.environ, "FT_UPGRADE_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
    commands = {"validate": [cli, "validate"],
                "plan": [cli, "plan", "--from", "3.17.0", "--to", "3.17.5-P1", "--site", "CN"]}
    try:
        subprocess.run([cli, "executions", "--site", "CN"], env=env, check=True, capture_output=True)  # a site's store
        for name, argv in commands.items():
            best = float("inf")
            for _ in range(runs):
                started = time.perf_counter()
                subprocess.run(argv, env=env, check=True, capture_output=True)
                best = min(best, time.perf_counter() - started)
            print(f"cli_{name}_seconds: {best:.3f}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
