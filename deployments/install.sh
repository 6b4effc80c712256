#!/usr/bin/env bash
# Installs everything ft-auto-upgrade needs on a fresh machine of this kind (Debian, Python 3.11):
# the local services it uses if they are down, Debian's zookeeper (for the pre-business checks),
# and a virtualenv in .venv with the project and its test tools, at the versions of requirements.lock.
# Safe to run again.
# Offline (a site without internet): FT_WHEELHOUSE=DIR (or --wheelhouse DIR), DIR built by
# deployments/wheelhouse.sh, installs only .venv: the project with the extras the wheelhouse was built for
# (FT_EXTRAS=LIST to choose others), from DIR alone, with no package index and no pip upgrade; the
# local services and Debian packages (for tests and the demo) are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
source deployments/lockfile.sh

log() { printf '\033[1m[install]\033[0m %s\n' "$*"; }
die() { printf '\033[1m[install]\033[0m %s\n' "$*" >&2; exit 2; }

wheelhouse="${FT_WHEELHOUSE:-}"
while [ $# -gt 0 ]; do
    case "$1" in
        --wheelhouse) [ $# -ge 2 ] || die "usage: bash deployments/install.sh [--wheelhouse DIR]"; wheelhouse="$2"; shift 2 ;;
        --wheelhouse=*) wheelhouse="${1#--wheelhouse=}"; shift ;;
        *) die "usage: bash deployments/install.sh [--wheelhouse DIR]" ;;
    esac
done
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
lock_constraints > "$constraints"

start_services() {
    if ! mysqladmin -h127.0.0.1 -uroot ping >/dev/null 2>&1; then
        log "starting MariaDB"
        start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
        for _ in $(seq 60); do mysqladmin -h127.0.0.1 -uroot ping >/dev/null 2>&1 && break; sleep 1; done
    fi
    if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
        log "starting Redis"
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
            --dir /var/lib/redis --logfile /var/log/redis/ci.log
    fi
    if command -v pg_ctlcluster >/dev/null && ! pg_isready -h 127.0.0.1 >/dev/null 2>&1; then
        log "starting PostgreSQL"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
    fi
}

install_debian_packages() {
    local missing=()
    dpkg -s zookeeper >/dev/null 2>&1 || missing+=(zookeeper)
    dpkg -s openssh-server >/dev/null 2>&1 || missing+=(openssh-server)
    dpkg -s chromium >/dev/null 2>&1 || missing+=(chromium)
    dpkg -s fonts-wqy-zenhei >/dev/null 2>&1 || missing+=(fonts-wqy-zenhei)  # Chinese text in UI screenshots
    dpkg -s mariadb-client >/dev/null 2>&1 || missing+=(mariadb-client)
    if [ ${#missing[@]} -gt 0 ]; then
        log "apt-get install ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

install_python() {
    if [ ! -x .venv/bin/python ]; then
        log "creating .venv"
        python3 -m venv .venv
    fi
    log "pip install -e .[test] -c $LOCK_FILE"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[test]" -c "$constraints"
}

install_python_offline() {
    local dir info extras python spec
    dir="$(cd "$wheelhouse" 2>/dev/null && pwd)" || die "no wheelhouse at $wheelhouse"
    info="$dir/ft-wheelhouse.txt"
    [ -f "$info" ] || die "$dir has no ft-wheelhouse.txt: build it with bash deployments/wheelhouse.sh"
    [ "$(sed -n 's/^lock_sha256=//p' "$info")" = "$(sha256sum "$LOCK_FILE" | cut -d' ' -f1)" ] \
        || die "$dir was built from another $LOCK_FILE than this checkout's: build it again from this checkout"
    python="$(sed -n 's/^python=//p' "$info")"
    [ "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "$python" ] \
        || die "$dir holds wheels for Python $python; python3 here is $(python3 --version 2>&1)"
    log "checking the wheels of $dir (SHA256SUMS)"
    (cd "$dir" && sha256sum --quiet --strict -c SHA256SUMS) || die "$dir: damaged or incomplete copy"
    extras="${FT_EXTRAS-$(sed -n 's/^extras=//p' "$info")}"
    spec="."
    if [ -n "$extras" ]; then spec=".[$extras]"; fi
    if [ ! -x .venv/bin/python ]; then
        log "creating .venv"
        python3 -m venv .venv
    fi
    log "pip install -e $spec from $dir (no package index)"
    PIP_NO_INDEX=1 .venv/bin/python -m pip install -q --disable-pip-version-check --no-index --find-links "$dir" \
        -c "$constraints" -e "$spec"
}

if [ -n "$wheelhouse" ]; then
    install_python_offline
    log "done: .venv/bin/ft-upgrade --help"
    exit 0
fi
start_services
install_debian_packages
if [ -z "${FT_SKIP_PYTHON:-}" ]; then install_python; fi
log "done: .venv/bin/ft-upgrade --help"
