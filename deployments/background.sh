# Processes a script starts in the background (the demo's Prefect server and worker), and how it stops them.
# Sourced by deployments/demo.sh:
#
#     start_background PIDFILE LOGFILE COMMAND...   # detached; its pid in PIDFILE
#     stop_started PIDFILE...                       # each one the way Prefect expects, then what it left
#
# Why: bash starts a background job of a non-interactive shell with SIGINT ignored, and a Prefect worker
# stops on SIGTERM by sending itself SIGINT (a second SIGTERM is SIGKILL). So a worker started plainly with
# `&` that has run flows ignores the first SIGTERM and dies only of the second, leaving its flow-run
# processes behind. Under job control (`set -m`) SIGINT keeps its default and the process leads its own
# process group: one SIGTERM stops the worker (it polls no more and ends its flow runs) within seconds, and
# whatever is left of the group can be found and ended.

start_background() {
    local pidfile="$1" log="$2"
    shift 2
    set -m
    nohup "$@" >"$log" 2>&1 &
    echo $! >"$pidfile"
    set +m
}

_alive_prefect() {  # PID: alive and a Prefect process (a pid file may outlive its process, its pid reused)
    kill -0 "$1" 2>/dev/null && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q prefect
}

_wait_gone() {  # PID SECONDS: 0 once PID is gone, 1 if it is still there after SECONDS
    local deadline=$((SECONDS + $2))
    while kill -0 "$1" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

_end_left_behind() {  # NAME PID: the Prefect processes still in PID's process group (flow runs it started)
    local left p
    left=$(for p in $(pgrep -g "$2" 2>/dev/null); do _alive_prefect "$p" && echo "$p"; done)
    [ -n "$left" ] || return 0
    echo "  $1: ending the processes it left behind: $(echo $left)"
    kill -TERM $left 2>/dev/null || true
    sleep 2
    kill -KILL $left 2>/dev/null || true
}

stop_started() {
    local pidfile pid name wait="${STOP_WAIT_SECONDS:-30}"
    for pidfile in "$@"; do
        [ -f "$pidfile" ] || continue
        name=$(basename "$pidfile" .pid)
        pid=$(cat "$pidfile")
        if ! _alive_prefect "$pid"; then
            echo "  $name: not running"
        else
            kill -TERM "$pid"  # Prefect's way: stop, end what it runs; a second signal kills
            if _wait_gone "$pid" "$wait"; then
                echo "  $name ($pid): stopped"
            else
                echo "  $name ($pid): still running after ${wait}s, signalling again (Prefect then kills it)"
                kill -TERM "$pid" 2>/dev/null || true
                _wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
        _end_left_behind "$name" "$pid"
        rm -f "$pidfile"
    done
}
