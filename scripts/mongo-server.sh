#!/usr/bin/env bash
# Throwaway MongoDB-wire-protocol test server for the MongoDB adapter's tests.
#
# MongoDB itself is not installable here, so this runs SecantusDB (a
# MongoDB-compatible server on WiredTiger, from PyPI) in its own virtualenv,
# bound to 127.0.0.1 with in-memory storage (nothing survives a stop).
# SecantusDB is GPL-2.0: it is installed into a separate venv at run time and
# must never be vendored into or committed to this repository.
#
# Usage: scripts/mongo-server.sh start|stop|restart|status
#
# Environment overrides:
#   DIASPORA_MONGO_PORT           port to listen on           (default 27018)
#   DIASPORA_MONGO_VENV           virtualenv for the server   (default /opt/diaspora-mongo-venv)
#   DIASPORA_MONGO_STATE_DIR      pid file, log, scratch dir  (default /tmp/diaspora-mongo-$PORT)
#   DIASPORA_MONGO_START_TIMEOUT  seconds to wait for startup (default 30)
#
# Connect with: mongodb://127.0.0.1:27018  (it advertises itself as the primary of
# a single-node replica set named "secantus", so sessions/transactions work).
set -euo pipefail

SECANTUS_VERSION="0.7.0b3"
HOST="127.0.0.1"
PORT="${DIASPORA_MONGO_PORT:-27018}"
VENV="${DIASPORA_MONGO_VENV:-/opt/diaspora-mongo-venv}"
STATE_DIR="${DIASPORA_MONGO_STATE_DIR:-/tmp/diaspora-mongo-${PORT}}"
START_TIMEOUT="${DIASPORA_MONGO_START_TIMEOUT:-30}"
PID_FILE="${STATE_DIR}/server.pid"
LOG_FILE="${STATE_DIR}/server.log"
CONFIG_FILE="${STATE_DIR}/secantusd.toml"
LOCK_FILE="${STATE_DIR}/lock"

log() { echo "mongo-server: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

case "${PORT}" in
    '' | *[!0-9]*) die "DIASPORA_MONGO_PORT must be a number, got '${PORT}'" ;;
esac
if [ "${#PORT}" -gt 5 ] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
    die "DIASPORA_MONGO_PORT must be in 1..65535, got '${PORT}'"
fi

# True if something accepts TCP connections on HOST:PORT. Uses the system
# python3 so that it works before the venv exists.
port_open() {
    python3 - "$HOST" "$PORT" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(1.0)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

# True if a MongoDB-wire server on HOST:PORT answers {ping: 1}. Prints the
# server's reported version on success. Needs the venv (pymongo comes with
# SecantusDB).
mongo_ping() {
    "${VENV}/bin/python" - "$HOST" "$PORT" <<'PY' 2>/dev/null
import sys
import pymongo
c = pymongo.MongoClient(sys.argv[1], int(sys.argv[2]), directConnection=True,
                        serverSelectionTimeoutMS=1000, connectTimeoutMS=1000)
try:
    c.admin.command("ping")
    info = c.admin.command("buildInfo")
    print("mongodb-compatible %s (secantus %s)" % (info.get("version"), info.get("secantusVersion", "?")))
finally:
    c.close()
PY
}

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# PID of the server this script started on PORT: from the pid file, or (if the
# pid file is gone) by looking for a secantusd-py process with our --port.
server_pid() {
    local pid=""
    if [ -f "$PID_FILE" ]; then
        pid="$(cat "$PID_FILE" 2>/dev/null || true)"
        if pid_alive "$pid" && tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -q 'secantusd-py'; then
            echo "$pid"
            return 0
        fi
    fi
    local d cmd
    for d in /proc/[0-9]*; do
        cmd="$(tr '\0' ' ' <"${d}/cmdline" 2>/dev/null || true)"
        case "$cmd" in
            *secantusd-py*"--port ${PORT} "*)
                echo "${d#/proc/}"
                return 0
                ;;
        esac
    done
    return 1
}

venv_ready() {
    [ -x "${VENV}/bin/secantusd-py" ] || return 1
    local have
    have="$("${VENV}/bin/python" -c 'import importlib.metadata as m; print(m.version("SecantusDB"))' 2>/dev/null || true)"
    [ "$have" = "$SECANTUS_VERSION" ]
}

ensure_venv() {
    if venv_ready; then
        return 0
    fi
    log "installing SecantusDB==${SECANTUS_VERSION} into ${VENV}"
    if [ ! -x "${VENV}/bin/python" ]; then
        python3 -m venv "$VENV" || die "could not create virtualenv ${VENV} (python3 -m venv failed)"
    fi
    "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check \
        "SecantusDB==${SECANTUS_VERSION}" ||
        die "pip install SecantusDB==${SECANTUS_VERSION} into ${VENV} failed"
    venv_ready || die "SecantusDB ${SECANTUS_VERSION} not importable from ${VENV} after install"
}

tail_log() {
    if [ -f "$LOG_FILE" ]; then
        log "last lines of ${LOG_FILE}:"
        tail -n 30 "$LOG_FILE" >&2 || true
    fi
}

do_start() {
    mkdir -p "$STATE_DIR"
    # Serialise concurrent `start`s (parallel test jobs) on the same port.
    exec 9>"$LOCK_FILE"
    flock -w 300 9 || die "timed out waiting for lock ${LOCK_FILE}"
    # (fd 9 is closed for the server below so that it does not keep the lock.)

    if port_open; then
        local ver
        if ver="$(mongo_ping)"; then
            log "already running on ${HOST}:${PORT}: ${ver}"
        else
            log "something already listens on ${HOST}:${PORT}; leaving it alone"
        fi
        return 0
    fi

    ensure_venv

    # An empty config file disables secantusd's auto-discovery of
    # ./secantusd.toml, ~/.secantus/secantusd.toml and /etc/secantus/.
    : >"$CONFIG_FILE"
    # ':memory:' storage still makes an (empty) temp dir; keep it in STATE_DIR
    # and drop those left behind by a killed server.
    rm -rf "${STATE_DIR}"/secantus_wt_* 2>/dev/null || true
    rm -f "$PID_FILE"

    local start_ts
    start_ts="$(date +%s)"
    (
        cd "$STATE_DIR"
        export TMPDIR="$STATE_DIR"
        # bash -c writes its own pid, then execs the server in place of itself.
        # shellcheck disable=SC2016
        setsid bash -c 'echo $$ >"$1"; shift; exec nohup "$@"' _ "$PID_FILE" \
            "${VENV}/bin/secantusd-py" --config "$CONFIG_FILE" \
            --host "$HOST" --port "$PORT" --storage-path ":memory:" --log-level INFO \
            </dev/null >"$LOG_FILE" 2>&1 9>&- &
    )

    local pid="" ver=""
    local deadline=$((start_ts + START_TIMEOUT))
    while :; do
        [ -n "$pid" ] || pid="$(cat "$PID_FILE" 2>/dev/null || true)"
        if [ -n "$pid" ] && ! pid_alive "$pid"; then
            tail_log
            rm -f "$PID_FILE"
            die "server process ${pid} exited during startup (port ${PORT})"
        fi
        if ver="$(mongo_ping)"; then
            break
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            tail_log
            if [ -n "$pid" ] && pid_alive "$pid"; then
                kill -TERM "$pid" 2>/dev/null || true
            fi
            rm -f "$PID_FILE"
            die "server did not accept connections on ${HOST}:${PORT} within ${START_TIMEOUT}s"
        fi
        sleep 0.3
    done
    [ -n "$pid" ] || pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    log "started pid ${pid} on ${HOST}:${PORT} in $(($(date +%s) - start_ts))s: ${ver} (log: ${LOG_FILE})"
}

do_stop() {
    local pid
    if ! pid="$(server_pid)"; then
        rm -f "$PID_FILE"
        if port_open; then
            log "port ${PORT} is in use by a process this script did not start; not touching it"
            return 1
        fi
        log "not running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do
        pid_alive "$pid" || break
        sleep 0.2
    done
    if pid_alive "$pid"; then
        log "pid ${pid} ignored SIGTERM for 10s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    rm -f "$PID_FILE"
    rm -rf "${STATE_DIR}"/secantus_wt_* 2>/dev/null || true
    log "stopped pid ${pid}"
}

do_status() {
    local pid ver
    pid="$(server_pid || true)"
    if port_open; then
        if [ -x "${VENV}/bin/python" ] && ver="$(mongo_ping)"; then
            echo "running on ${HOST}:${PORT}${pid:+ (pid ${pid})}: ${ver}"
        else
            echo "port ${HOST}:${PORT} is open${pid:+ (pid ${pid})} but does not answer a MongoDB ping"
        fi
        return 0
    fi
    if [ -n "$pid" ]; then
        echo "pid ${pid} exists but ${HOST}:${PORT} does not accept connections (starting up or hung?)"
        return 1
    fi
    echo "not running on ${HOST}:${PORT}"
    return 3
}

case "${1:-}" in
    start) do_start ;;
    stop) do_stop ;;
    restart)
        do_stop
        do_start
        ;;
    status) do_status ;;
    *)
        echo "usage: $0 start|stop|restart|status" >&2
        exit 2
        ;;
esac
