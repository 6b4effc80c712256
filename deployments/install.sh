#!/usr/bin/env bash
# Installs everything ft-auto-upgrade needs on a fresh machine of this kind (Debian, Python 3.11):
# the local services it uses if they are down, Debian's zookeeper (for the pre-business checks),
# and a virtualenv in .venv with the project and its test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[install]\033[0m %s\n' "$*"; }

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
    log "pip install -e .[test]"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[test]"
}

start_services
install_debian_packages
if [ -z "${FT_SKIP_PYTHON:-}" ]; then install_python; fi
log "done: .venv/bin/ft-upgrade --help"
