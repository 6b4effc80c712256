#!/usr/bin/env bash
# The test command of the README: installs what is missing, starts the local services, runs pytest.
# Benchmarks (tests/bench) are not part of it; run each on its own: .venv/bin/python tests/bench/<file>.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/pytest ] || [ ! -x .venv/bin/ft-upgrade ] || [ -n "${FT_REINSTALL:-}" ]; then
    bash deployments/install.sh
else
    FT_SKIP_PYTHON=1 bash deployments/install.sh >/dev/null
fi
export DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
.venv/bin/ruff check .
exec .venv/bin/pytest "$@"
