#!/usr/bin/env bash
# Builds a wheelhouse: a folder with a wheel of every package the project needs, at the versions of
# requirements.lock (each checked against the lock's hashes), for CPython 3.11 on Linux x86_64. Copy it
# with the checkout to a site without internet and install there with no package index:
#   bash deployments/wheelhouse.sh [DIR] [--extras LIST]       # on a machine with the package index
#   FT_WHEELHOUSE=DIR bash deployments/install.sh              # at the site
# DIR defaults to dist/wheelhouse. LIST: the project's extras, comma-separated, default
# embedded-clickhouse (the embedded log store, ~300 MB of wheels); --extras '' for a site whose log store
# is its own ClickHouse server. Wheels of other versions or packages already in DIR are removed, wheels
# already there are kept (checked again), so building again is quick. DIR also gets SHA256SUMS and
# ft-wheelhouse.txt (extras, target, lock digest), which install.sh reads.
set -euo pipefail
cd "$(dirname "$0")/.."
source deployments/lockfile.sh

log() { printf '\033[1m[wheelhouse]\033[0m %s\n' "$*"; }
usage() { echo "usage: bash deployments/wheelhouse.sh [DIR] [--extras LIST]" >&2; exit 2; }

dir=dist/wheelhouse
extras=embedded-clickhouse
while [ $# -gt 0 ]; do
    case "$1" in
        --extras) [ $# -ge 2 ] || usage; extras="$2"; shift 2 ;;
        --extras=*) extras="${1#--extras=}"; shift ;;
        -h|--help) usage ;;
        -*) usage ;;
        *) dir="$1"; shift ;;
    esac
done
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
pip=(python3 -m pip)
if [ -x .venv/bin/python ]; then pip=(.venv/bin/python -m pip); fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
lock_constraints > "$work/constraints.txt"
extra_args=()
IFS=, read -r -a extra_list <<< "$extras"
for e in "${extra_list[@]}"; do extra_args+=(--extra "$e"); done

log "resolving the project with extras [${extras}] within $LOCK_FILE"
build_requirements | uv pip compile --quiet --no-header --no-annotate pyproject.toml - "${extra_args[@]}" \
    -c "$work/constraints.txt" --python-version "$LOCK_PYTHON" --python-platform "$LOCK_PLATFORM" \
    -o "$work/needed.txt"

# Each needed package's entry of the lock, with its hashes; one the lock lacks means the lock is stale.
python3 - "$LOCK_FILE" "$work/needed.txt" "$work/download.txt" <<'PY'
import re
import sys

def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()

lock_path, needed_path, out_path = sys.argv[1:]
entries: dict[str, tuple[str, str]] = {}
for block in re.split(r"\n(?=[A-Za-z0-9])", open(lock_path).read()):
    m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^ \\;\n]+)", block)
    if m:
        lines = [ln for ln in block.splitlines() if not ln.strip().startswith("#")]
        entries[canonical(m[1])] = (m[2], "\n".join(lines).rstrip(" \\"))
out, stale = [], []
for line in open(needed_path):
    m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^ ;\n]+)", line)
    if not m:
        continue
    name, version = canonical(m[1]), m[2]
    if entries.get(name, ("",))[0] != version:
        stale.append(f"{name}=={version}")
    else:
        out.append(entries[name][1])
if stale:
    sys.exit(f"{lock_path} is stale (not locked: {', '.join(stale)}): run bash deployments/lock.sh")
open(out_path, "w").write("\n".join(out) + "\n")
PY

platforms=()
for p in "${PIP_PLATFORMS[@]}"; do platforms+=(--platform "$p"); done
log "downloading $(grep -c '==' "$work/download.txt") wheels into $dir"
"${pip[@]}" download -q --disable-pip-version-check --no-deps --require-hashes --only-binary=:all: \
    --python-version "$LOCK_PYTHON" --implementation cp --abi "cp${LOCK_PYTHON/./}" "${platforms[@]}" \
    -r "$work/download.txt" -d "$dir"

# Keep only the wheels of the locked versions needed; record what the wheelhouse is for.
python3 - "$work/download.txt" "$dir" <<'PY'
import re
import sys
from pathlib import Path

def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()

wanted = {(canonical(m[1]), m[2]) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ \\;\n]+)",
                                                       open(sys.argv[1]).read(), re.M)}
for wheel in Path(sys.argv[2]).glob("*.whl"):
    name, version = wheel.name.split("-")[:2]
    if (canonical(name), version) not in wanted:
        wheel.unlink()
        print(f"removed {wheel.name} (not in this wheelhouse's lock)")
PY
(cd "$dir" && sha256sum -- *.whl > SHA256SUMS)
cat > "$dir/ft-wheelhouse.txt" <<INFO
extras=$extras
python=$LOCK_PYTHON
platform=$LOCK_PLATFORM
lock_sha256=$(sha256sum "$LOCK_FILE" | cut -d' ' -f1)
INFO
log "$dir: $(ls "$dir"/*.whl | wc -l) wheels, $(du -sh "$dir" | cut -f1); at the site: FT_WHEELHOUSE=<copy of it> bash deployments/install.sh"
