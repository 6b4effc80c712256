"""Runs one SqlScriptStep outside Prefect, in its own process: the subject of kill -9 tests and benchmarks.

    python -m tests.tasks.sql.harness --sql-root DIR --execution EXEC --home DIR [--database ft_db] FILE...

Logical databases come from ``FT_UPGRADE_DB_<NAME>``. Prints one JSON line; exit 0 success, 1 failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tasks.core.errors import StepFailed
from tasks.site.resources import SiteResources
from tasks.sql.step import SqlScriptParams, SqlScriptStep
from tasks.steps.context import StepContext

PROJECT = Path(__file__).resolve().parents[3]  # not tests.conftest: importing it would reset this process's home


def launch(sql_root: Path, home: Path, execution: str, files: Sequence[str], databases: Mapping[str, str],
           *options: str, stderr: int = subprocess.DEVNULL) -> subprocess.Popen[str]:
    """This harness in a process of its own (what a kill -9 test kills); ``databases``: logical name → URL."""
    env = {**os.environ, "FT_UPGRADE_HOME": str(home),
           **{f"FT_UPGRADE_DB_{name.upper()}": url for name, url in databases.items()}}
    return subprocess.Popen([sys.executable, "-m", "tests.tasks.sql.harness", "--quiet", "--sql-root", str(sql_root),
                             "--execution", execution, "--home", str(home), *options, *files],
                            cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sql-root", required=True, type=Path)
    parser.add_argument("--execution", required=True)
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--database", default="ft_db")
    parser.add_argument("--step", default="sql_step")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--transaction", default=None)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    logger = logging.getLogger("sql_harness")
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, stream=sys.stderr)
    resources = SiteResources(site_id="CN", sql_root=args.sql_root, configs_dir=args.sql_root, home=args.home,
                          retry_wait=0.2)
    context = StepContext(execution_id=args.execution, cutpoint="startup_pre_process", step_id=args.step,
                          step_key=f"317500:{args.step}", step_name=args.step, version="3.17.5",
                          source_version="3.17.0", target_version="3.17.5", site_id="CN", environment={},
                          resources=resources, logger=logger)
    params = SqlScriptParams(sql_scripts=args.files, database=args.database, statement_timeout=args.timeout,
                             transaction=args.transaction)
    print("START", flush=True)
    try:
        result = SqlScriptStep(params, context).run()
    except StepFailed as exc:
        print(json.dumps({"status": "FAILED", "error": str(exc)}), flush=True)
        return 1
    finally:
        resources.close()
    print(json.dumps({"status": "SUCCESS", "details": {k: v for k, v in result.details.items() if k != "slowest"}}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
