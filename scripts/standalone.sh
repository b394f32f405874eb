#!/usr/bin/env bash
# Start, stop or inspect a one-machine Spark standalone cluster (one master,
# WORKERS workers) on loopback, using the pip-installed pyspark of the project venv.
#
#   scripts/standalone.sh start|stop|status|env
#
# The cluster requires Spark's authentication: without it any user of this
# machine could run code as you on it. `start` takes a new random secret (or
# SPARK_AUTH_SECRET) and keeps it in 0600 files in STANDALONE_DIR: one for the
# daemons, and a client conf dir that also binds the driver to 127.0.0.1.
# Clients use that dir:
#
#   eval "$(scripts/standalone.sh env)"     # exports SPARK_CONF_DIR
#   PATH=$PWD/.venv/bin:$PATH spark-submit jobs/curate.py ...
#
# Environment (all optional):
#   PYTHON             interpreter with pyspark installed (default: <repo>/.venv/bin/python)
#   STANDALONE_DIR     pid files, logs, worker dir, secrets (default: <repo>/.standalone)
#   WORKERS            number of workers (default 1)
#   WORKER_CORES       cores each worker offers (default 2)
#   WORKER_MEMORY      memory each worker offers (default 4g)
#   MASTER_PORT        master RPC port (default 7077)
#   MASTER_WEBUI_PORT  master web UI port (default 8080)
#   WORKER_WEBUI_PORT  first worker's web UI port (default 8081; worker i uses +i-1)
#   START_TIMEOUT      seconds to wait for the worker to register (default 60)
#   SPARK_AUTH_SECRET  the shared secret (default: a new random one whenever the master
#                      starts); "none" turns authentication off, for a machine no one
#                      else uses. It goes into files, never onto a command line.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
STATE="${STANDALONE_DIR:-$ROOT/.standalone}"
WORKERS="${WORKERS:-1}"
WORKER_CORES="${WORKER_CORES:-2}"
WORKER_MEMORY="${WORKER_MEMORY:-4g}"
MASTER_PORT="${MASTER_PORT:-7077}"
MASTER_WEBUI_PORT="${MASTER_WEBUI_PORT:-8080}"
WORKER_WEBUI_PORT="${WORKER_WEBUI_PORT:-8081}"
START_TIMEOUT="${START_TIMEOUT:-60}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"

HOST=127.0.0.1
MASTER_URL="spark://$HOST:$MASTER_PORT"
MASTER_JSON="http://$HOST:$MASTER_WEBUI_PORT/json/"
MASTER_CLASS=org.apache.spark.deploy.master.Master
WORKER_CLASS=org.apache.spark.deploy.worker.Worker

say() { echo "standalone: $*"; }
die() { echo "standalone: error: $*" >&2; exit 1; }

usage() {
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
}

# --- processes ---------------------------------------------------------------

pid_file() { echo "$STATE/$1.pid"; }
log_file() { echo "$STATE/$1.log"; }
class_of() { if [[ $1 == master ]]; then echo "$MASTER_CLASS"; else echo "$WORKER_CLASS"; fi; }
worker_names() { local i; for ((i = 1; i <= WORKERS; i++)); do echo "worker-$i"; done; }

# Prints the pid of the running daemon $1 (master|worker); fails if not running.
# A pid file whose process is gone, or is now some other program, is stale.
running_pid() {
    local file pid
    file="$(pid_file "$1")"
    [[ -f $file ]] || return 1
    pid="$(cat "$file" 2>/dev/null || true)"
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    ps -o args= -p "$pid" 2>/dev/null | grep -q -- "$(class_of "$1")" || return 1
    echo "$pid"
}

# All descendants of pid $1 (children, grandchildren, ...).
descendants() {
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null || true); do
        echo "$child"
        descendants "$child"
    done
}

alive_any() {
    local pid
    for pid in "$@"; do
        if kill -0 "$pid" 2>/dev/null; then return 0; fi
    done
    return 1
}

# Stop daemon $1: TERM its process group (it was started with setsid, so the
# group holds it and the executors it launched) and every descendant, wait,
# then KILL whatever is left.
stop_one() {
    local name="$1" pid pids waited=0
    if ! pid="$(running_pid "$name")"; then
        rm -f "$(pid_file "$name")"
        say "$name not running"
        return 0
    fi
    # shellcheck disable=SC2207
    pids=("$pid" $(descendants "$pid"))
    say "stopping $name (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || true
    kill -TERM "${pids[@]}" 2>/dev/null || true
    while alive_any "${pids[@]}"; do
        if (( waited >= STOP_TIMEOUT * 2 )); then
            say "$name did not exit after ${STOP_TIMEOUT}s; killing it"
            kill -KILL -- "-$pid" 2>/dev/null || true
            kill -KILL "${pids[@]}" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.5
        waited=$((waited + 1))
    done
    if alive_any "${pids[@]}"; then
        die "could not stop $name (pids ${pids[*]})"
    fi
    rm -f "$(pid_file "$name")"
    say "$name stopped"
}

# --- pyspark / ports ---------------------------------------------------------

find_spark_home() {
    [[ -x $PYTHON ]] || command -v "$PYTHON" >/dev/null 2>&1 \
        || die "no Python at $PYTHON (create the venv, or set PYTHON=/path/to/python with pyspark)"
    SPARK_HOME="$("$PYTHON" -c 'import pyspark, os; print(os.path.dirname(pyspark.__file__))')" \
        || die "$PYTHON cannot import pyspark"
    [[ -x $SPARK_HOME/bin/spark-class ]] || die "no bin/spark-class under $SPARK_HOME"
    export SPARK_HOME
}

port_in_use() {
    "$PYTHON" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
EOF
}

# Prints the master's number of alive workers, or fails if the web UI does not answer.
alive_workers() {
    "$PYTHON" - "$MASTER_JSON" <<'EOF'
import json, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        state = json.load(r)
except Exception:
    sys.exit(1)
print(int(state.get("aliveworkers", 0)))
EOF
}

show_log_tail() {
    local log
    log="$(log_file "$1")"
    if [[ -f $log ]]; then
        echo "---- last lines of $log ----" >&2
        tail -n 30 "$log" >&2
        echo "----" >&2
    fi
}

# --- authentication and the clients' settings ---------------------------------

AUTH_FILE="$STATE/auth.properties"
CLIENT_DIR="$STATE/client"
AUTH_PROPS=()

# The secret the daemons about to start must share: the running master's if there
# is one (new workers join it), else SPARK_AUTH_SECRET, else a new random one.
# Prints nothing for "none" (authentication off).
choose_secret() {
    if running_pid master >/dev/null; then
        if [[ -f $AUTH_FILE ]]; then sed -n 's/^spark\.authenticate\.secret=//p' "$AUTH_FILE"; fi
    elif [[ ${SPARK_AUTH_SECRET:-} == none ]]; then
        return 0
    elif [[ -n ${SPARK_AUTH_SECRET:-} ]]; then
        echo "$SPARK_AUTH_SECRET"
    else
        od -An -tx1 -N32 /dev/urandom | tr -d ' \n'
    fi
}

# Writes the daemons' properties (with the secret) and the client conf dir: spark-defaults.conf
# (master, secret, driver RPC and block manager on 127.0.0.1, PYTHON for the Python workers) and
# spark-env.sh (SPARK_LOCAL_IP, which the driver's web UI binds to; unset, it listens on every
# interface). All 0600 in a 0700 dir.
write_auth() {
    local secret="$1"
    (
        umask 077
        mkdir -p "$CLIENT_DIR"
        chmod 700 "$CLIENT_DIR"
        printf 'spark.master=%s\nspark.driver.host=%s\nspark.driver.bindAddress=%s\nspark.pyspark.python=%s\n' \
            "$MASTER_URL" "$HOST" "$HOST" "$("$PYTHON" -c 'import sys; print(sys.executable)')" \
            >"$CLIENT_DIR/spark-defaults.conf"
        printf 'SPARK_LOCAL_IP=%s\n' "$HOST" >"$CLIENT_DIR/spark-env.sh"
        rm -f "$AUTH_FILE"
        if [[ -n $secret ]]; then
            printf 'spark.authenticate=true\nspark.authenticate.secret=%s\n' "$secret" | tee "$AUTH_FILE" \
                >>"$CLIENT_DIR/spark-defaults.conf"
        fi
    )
    if [[ -n $secret ]]; then
        AUTH_PROPS=(--properties-file "$AUTH_FILE")
        say "authentication on (secret in $AUTH_FILE, mode 0600)"
    else
        say "WARNING: authentication OFF (SPARK_AUTH_SECRET=none):" \
            "any user of this machine can run code as $(id -un) on the cluster"
    fi
}

cmd_env() {
    [[ -f $CLIENT_DIR/spark-defaults.conf ]] || die "no client settings in $CLIENT_DIR; run '$0 start' first"
    echo "# spark-submit to the cluster at $MASTER_URL: its master, its secret, a driver on $HOST"
    echo "export SPARK_CONF_DIR=$(printf '%q' "$CLIENT_DIR")"
}

# --- commands ----------------------------------------------------------------

launch() {
    local name="$1"
    shift
    local log
    log="$(log_file "$name")"
    # setsid: a process group of its own, so stop can take the executors down
    # with it, and a Ctrl-C in this shell does not reach the daemons.
    # spark-class execs java, so $! is the JVM's pid.
    nohup setsid "$SPARK_HOME/bin/spark-class" "$@" >"$log" 2>&1 </dev/null &
    echo $! >"$(pid_file "$name")"
    say "$name started (pid $!, log $log)"
}

cmd_start() {
    find_spark_home
    (umask 077 && mkdir -p "$STATE")  # logs, secrets and the executors' output: yours alone
    export SPARK_LOCAL_IP=$HOST SPARK_MASTER_HOST=$HOST
    unset SPARK_PRINT_LAUNCH_COMMAND
    write_auth "$(choose_secret)"

    local master_pid worker_pid
    if master_pid="$(running_pid master)"; then
        say "master already running (pid $master_pid) at $MASTER_URL"
    else
        local port
        for port in "$MASTER_PORT" "$MASTER_WEBUI_PORT"; do
            if port_in_use "$port"; then
                die "port $port on $HOST is already in use by another program (not a master started from $STATE)"
            fi
        done
        launch master "$MASTER_CLASS" --host "$HOST" --port "$MASTER_PORT" \
            --webui-port "$MASTER_WEBUI_PORT" ${AUTH_PROPS[@]+"${AUTH_PROPS[@]}"}
    fi

    local name index=0
    for name in $(worker_names); do
        index=$((index + 1))
        if worker_pid="$(running_pid "$name")"; then
            say "$name already running (pid $worker_pid)"
            continue
        fi
        local webui=$((WORKER_WEBUI_PORT + index - 1))
        if port_in_use "$webui"; then
            die "port $webui on $HOST is already in use (WORKER_WEBUI_PORT)"
        fi
        mkdir -p "$STATE/work-$index"
        launch "$name" "$WORKER_CLASS" "$MASTER_URL" --host "$HOST" \
            --webui-port "$webui" --cores "$WORKER_CORES" --memory "$WORKER_MEMORY" \
            --work-dir "$STATE/work-$index" ${AUTH_PROPS[@]+"${AUTH_PROPS[@]}"}
    done

    say "waiting up to ${START_TIMEOUT}s for $WORKERS worker(s) to register with the master"
    local deadline=$((SECONDS + START_TIMEOUT)) workers=""
    while (( SECONDS < deadline )); do
        if ! running_pid master >/dev/null; then
            show_log_tail master
            die "the master exited during startup"
        fi
        for name in $(worker_names); do
            if ! running_pid "$name" >/dev/null; then
                show_log_tail "$name"
                die "$name exited during startup"
            fi
        done
        if workers="$(alive_workers)" && (( workers >= WORKERS )); then
            say "up: master $MASTER_URL (web UI http://$HOST:$MASTER_WEBUI_PORT), $workers worker(s) of $WORKER_CORES cores, $WORKER_MEMORY"
            say "clients: eval \"\$($0 env)\" (SPARK_CONF_DIR=$CLIENT_DIR), then spark-submit"
            return 0
        fi
        sleep 1
    done
    show_log_tail master
    for name in $(worker_names); do show_log_tail "$name"; done
    if [[ -z $workers ]]; then
        die "the master web UI at $MASTER_JSON did not answer within ${START_TIMEOUT}s (cluster left running; '$0 stop' to clean up)"
    fi
    die "no worker registered with the master within ${START_TIMEOUT}s (cluster left running; '$0 stop' to clean up)"
}

cmd_stop() {
    local name
    # Every worker-* pid file, not just WORKERS of them: stop what was started.
    for name in $(cd "$STATE" 2>/dev/null && ls worker-*.pid 2>/dev/null | sed 's/\.pid$//'); do
        stop_one "$name"
    done
    stop_one master
    rm -rf "$AUTH_FILE" "$CLIENT_DIR"  # the secret dies with the cluster
}

cmd_status() {
    local name pid up=0
    for name in master $(cd "$STATE" 2>/dev/null && ls worker-*.pid 2>/dev/null | sed 's/\.pid$//'); do
        if pid="$(running_pid "$name")"; then
            say "$name running (pid $pid)"
            up=$((up + 1))
        else
            say "$name not running"
        fi
    done
    if running_pid master >/dev/null; then
        find_spark_home >/dev/null 2>&1 || true
        local workers
        if workers="$(alive_workers 2>/dev/null)"; then
            say "master $MASTER_URL reports $workers alive worker(s)"
        else
            say "master web UI $MASTER_JSON not answering"
        fi
    fi
}

[[ $# -eq 1 ]] || usage
case "$1" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *) usage ;;
esac
