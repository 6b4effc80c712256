#!/usr/bin/env bash
# Regenerates requirements.lock after a change of pyproject.toml's dependencies: exact versions, with
# hashes, of the whole dependency tree with every extra (and the build backend), for CPython 3.11 on
# Linux x86_64. Versions already locked are kept when they still fit; --upgrade moves every package to
# the newest allowed, --upgrade PKG... only those. Needs the package index (uv is fetched if missing).
#   bash deployments/lock.sh [--upgrade [PKG...]]
set -euo pipefail
cd "$(dirname "$0")/.."
source deployments/lockfile.sh

upgrade=()
if [ "${1:-}" = --upgrade ]; then
    shift
    if [ $# -eq 0 ]; then upgrade=(--upgrade); else for p in "$@"; do upgrade+=(--upgrade-package "$p"); done; fi
elif [ $# -gt 0 ]; then
    echo "usage: bash deployments/lock.sh [--upgrade [PKG...]]" >&2
    exit 2
fi

build_requirements | uv pip compile --quiet pyproject.toml - --all-extras "${upgrade[@]}" \
    --python-version "$LOCK_PYTHON" --python-platform "$LOCK_PLATFORM" --generate-hashes \
    --custom-compile-command "bash deployments/lock.sh" -o "$LOCK_FILE"
echo "$LOCK_FILE: $(lock_constraints | wc -l) packages"
