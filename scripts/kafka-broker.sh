#!/usr/bin/env bash
# A local Apache-Kafka-compatible test broker (tansu, in-memory storage) on 127.0.0.1 for the observer tests.
#
# Usage: scripts/kafka-broker.sh COMMAND [ARGS]
#   install                      install tansu (cargo install tansu --locked --features dynostore) if missing
#   start [TOPIC...]             start a broker on a free port (or reuse the running one), create the default
#                                topics plus TOPIC..., print KAFKA_BOOTSTRAP_SERVERS=... and KAFKA_BROKER_PID=...
#   start-at PORT [TOPIC...]     the same on a given port, with its own state dir (several may run at once)
#   create-topic NAME [PARTITIONS [PORT]]
#                                create a topic (default 4 partitions) on the running broker (or the one at PORT)
#   env [PORT]                   print the two lines for the running broker; exit 1 if none runs
#   pause [PORT] / resume [PORT] kill -STOP / kill -CONT the broker (an outage that keeps the in-memory data)
#   stop / stop-at PORT          stop the broker (TERM, bounded wait, then KILL) and remove its state files
#   stop-all                     stop the default broker and every start-at broker
#
# Only the two KEY=VALUE lines go to stdout, so `eval "$(scripts/kafka-broker.sh start)"` works; progress goes to
# stderr. State (pid, port, log) lives in ${OBSERVER_BROKER_DIR:-<repo>/target/kafka-broker} (start-at: port-PORT/).
# The script only ever signals a process whose pid it recorded and whose command line is a tansu broker
# listening on the recorded port. Memory storage forgets everything when the broker process ends.
#
# Environment: OBSERVER_BROKER_DIR (state dir), TANSU_BIN (tansu binary), TANSU_VERSION (default 0.6.0),
# BROKER_READY_TIMEOUT (seconds, default 60), BROKER_PARTITIONS (default 4).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_ROOT="${OBSERVER_BROKER_DIR:-target/kafka-broker}"
case "$STATE_ROOT" in
    /*) ;;
    *) STATE_ROOT="$REPO_ROOT/$STATE_ROOT" ;;
esac
TANSU_VERSION="${TANSU_VERSION:-0.6.0}"
READY_TIMEOUT="${BROKER_READY_TIMEOUT:-60}"
DEFAULT_PARTITIONS="${BROKER_PARTITIONS:-4}"
DEFAULT_TOPICS=(
    genesis-audit-events genesis-traces-streaming workflow-traces genesis-otel
    custom-events audit-events observer-test-audit observer-test-custom observer-test-bulk
)
HOST=127.0.0.1
TANSU=""

log() { printf 'kafka-broker: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
}

# Milliseconds since the epoch (bash >= 5 has EPOCHREALTIME; otherwise whole seconds).
now_ms() {
    if [ -n "${EPOCHREALTIME:-}" ]; then
        local t="${EPOCHREALTIME/,/.}"
        echo $((${t%.*} * 1000 + 10#$(printf '%.3s' "${t#*.}")))
    else
        echo $(($(date +%s) * 1000))
    fi
}

is_port() { [[ "$1" =~ ^[0-9]+$ ]] && ((10#$1 >= 1 && 10#$1 <= 65535)); }
is_topic() { [[ "$1" =~ ^[A-Za-z0-9._-]{1,249}$ ]] && [ "$1" != . ] && [ "$1" != .. ]; }

# ---------------------------------------------------------------------------------------------------------------
# Installation

find_tansu() {
    local cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin/tansu"
    if [ -n "${TANSU_BIN:-}" ]; then
        [ -x "$TANSU_BIN" ] && TANSU="$TANSU_BIN" && return 0
        return 1
    fi
    if command -v tansu >/dev/null 2>&1; then
        TANSU="$(command -v tansu)"
    elif [ -x "$cargo_bin" ]; then
        TANSU="$cargo_bin"
    else
        return 1
    fi
}

# The memory:// storage engine needs the `dynostore` feature; `tansu --help` lists the compiled-in engines.
has_dynostore() {
    local help
    help="$("$TANSU" --help 2>&1)" || return 1
    [[ "$help" == *"Storage engines:"*dynostore* ]]
}

cmd_install() {
    local force=()
    if find_tansu; then
        if has_dynostore; then
            log "tansu already installed: $TANSU"
            return 0
        fi
        [ -z "${TANSU_BIN:-}" ] || die "TANSU_BIN=$TANSU_BIN was built without the dynostore feature"
        log "$TANSU lacks the dynostore feature (needed for memory:// storage); reinstalling"
        force=(--force)
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo not found; install Rust (https://rustup.rs) first"
    log "installing tansu $TANSU_VERSION with cargo (takes ~20 min on 2 cores; cached afterwards)"
    local t0=$SECONDS
    cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore "${force[@]}" >&2 ||
        die "cargo install tansu failed"
    log "tansu installed in $((SECONDS - t0)) s"
    TANSU_BIN="" find_tansu || die "tansu installed but not found on PATH or in ${CARGO_HOME:-$HOME/.cargo}/bin"
    has_dynostore || die "$TANSU was built without the dynostore feature"
}

ensure_tansu() {
    if find_tansu && has_dynostore; then return 0; fi
    cmd_install
}

# ---------------------------------------------------------------------------------------------------------------
# State and process checks

# Sets DIR, PID_FILE, PORT_FILE, LOG_FILE for the default instance (no argument) or the start-at instance at PORT.
select_instance() {
    if [ -n "${1:-}" ]; then
        is_port "$1" || die "invalid port: $1"
        DIR="$STATE_ROOT/port-$((10#$1))"
    else
        DIR="$STATE_ROOT"
    fi
    PID_FILE="$DIR/broker.pid"
    PORT_FILE="$DIR/broker.port"
    LOG_FILE="$DIR/broker.log"
}

# One start/stop at a time per state root (parallel tests may call start concurrently). Bounded wait.
take_lock() {
    mkdir -p "$STATE_ROOT"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$STATE_ROOT/.start-stop.lock"
        flock -w 120 9 || die "timed out waiting for the lock $STATE_ROOT/.start-stop.lock"
    fi
}

proc_state() { ps -o stat= -p "$1" 2>/dev/null | tr -d ' ' || true; }

# True when PID is alive (not a zombie) and is a tansu broker listening on 127.0.0.1:PORT — i.e. ours.
is_our_broker() {
    local pid="$1" port="$2" state args
    [[ "$pid" =~ ^[0-9]+$ ]] && [ "$pid" -gt 1 ] || return 1
    state="$(proc_state "$pid")"
    [ -n "$state" ] && [[ "$state" != Z* ]] || return 1
    args="$(ps -o args= -p "$pid" 2>/dev/null || true)"
    [[ "$args" == *tansu* && "$args" == *"--listener-url tcp://$HOST:$port"* ]]
}

# Sets PID and PORT from the selected instance's state files when its broker is running; cleans stale files.
running_broker() {
    PID="" PORT=""
    [ -f "$PID_FILE" ] && [ -f "$PORT_FILE" ] || return 1
    PID="$(cat "$PID_FILE" 2>/dev/null || true)"
    PORT="$(cat "$PORT_FILE" 2>/dev/null || true)"
    if is_port "$PORT" && is_our_broker "$PID" "$PORT"; then
        return 0
    fi
    log "removing stale state in $DIR (pid ${PID:-?} is not a running broker)"
    rm -f "$PID_FILE" "$PORT_FILE"
    PID="" PORT=""
    return 1
}

is_paused() {
    local state
    state="$(proc_state "$1")"
    [[ "$state" == T* ]]
}

print_env() {
    printf 'KAFKA_BOOTSTRAP_SERVERS=%s:%s\n' "$HOST" "$1"
    printf 'KAFKA_BROKER_PID=%s\n' "$2"
}

# shellcheck disable=SC2016 # $0/$1 expand in the inner bash
tcp_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null; }

free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
        return
    fi
    local i p
    for ((i = 0; i < 50; i++)); do
        p=$((20000 + RANDOM % 40000))
        if ! tcp_open "$p"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# tansu's client retries a refused connection for ~18 s, so every call is wrapped in a timeout.
tansu_topic() { timeout 15 "$TANSU" topic "$@"; }

# ---------------------------------------------------------------------------------------------------------------
# Broker lifecycle

# Starts a broker on PORT in the selected instance; sets PID. Returns 2 if the process died (e.g. port taken).
launch() {
    local port="$1" t0 deadline out="" state
    t0="$(now_ms)"
    mkdir -p "$DIR"
    : >"$LOG_FILE"
    log "starting tansu broker on $HOST:$port (log: $LOG_FILE)"
    # The broker outlives this script: it must not hold the lock (fd 9) or any pipe inherited from the caller
    # (a caller reading such a pipe to EOF would hang), so every descriptor above 2 is closed before the exec.
    (
        for fd in /dev/fd/*; do
            fd="${fd##*/}"
            if [[ "$fd" =~ ^[0-9]+$ ]] && ((fd > 2)); then exec {fd}>&-; fi
        done
        exec nohup "$TANSU" broker \
            --listener-url "tcp://$HOST:$port" \
            --advertised-listener-url "tcp://$HOST:$port" \
            --storage-engine memory://tansu/
    ) </dev/null >>"$LOG_FILE" 2>&1 &
    PID=$!
    echo "$PID" >"$PID_FILE"
    echo "$port" >"$PORT_FILE"
    deadline=$((SECONDS + READY_TIMEOUT))
    while ((SECONDS < deadline)); do
        # Not is_our_broker: right after the fork the child may not have exec'd tansu yet.
        state="$(proc_state "$PID")"
        if [ -z "$state" ] || [[ "$state" == Z* ]]; then
            log "broker exited during start-up; log:"
            tail -n 20 "$LOG_FILE" >&2 || true
            rm -f "$PID_FILE" "$PORT_FILE"
            return 2
        fi
        if tcp_open "$port" && out="$(tansu_topic list --broker "tcp://$HOST:$port" 2>&1)"; then
            # tansu exits within ~0.1 s when the port is taken; make sure it was ours that answered.
            sleep 0.3
            if is_our_broker "$PID" "$port"; then
                log "broker ready (pid $PID) after $(($(now_ms) - t0)) ms"
                return 0
            fi
            continue
        fi
        sleep 0.2
    done
    log "broker not ready after ${READY_TIMEOUT} s; stopping it. Last output: ${out:-none}"
    stop_pid "$PID" "$port"
    rm -f "$PID_FILE" "$PORT_FILE"
    return 1
}

stop_pid() {
    local pid="$1" port="$2" i
    is_our_broker "$pid" "$port" || return 0
    log "stopping broker pid $pid (port $port)"
    kill -TERM "$pid" 2>/dev/null || true
    kill -CONT "$pid" 2>/dev/null || true # a paused broker must run to act on TERM
    for ((i = 0; i < 50; i++)); do
        is_our_broker "$pid" "$port" || return 0
        sleep 0.2
    done
    log "broker pid $pid ignored TERM for 10 s; sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 25; i++)); do
        is_our_broker "$pid" "$port" || return 0
        sleep 0.2
    done
    die "broker pid $pid still running after KILL"
}

# Creates NAME with PARTITIONS on PORT unless it exists; retried briefly while the broker settles.
create_topic() {
    local port="$1" name="$2" partitions="$3" attempt out
    local url="tcp://$HOST:$port"
    for ((attempt = 1; attempt <= 5; attempt++)); do
        if out="$(tansu_topic create "$name" --broker "$url" --partitions "$partitions" 2>&1)"; then
            log "created topic $name ($partitions partitions)"
            return 0
        fi
        if [[ "$out" == *"already exists"* ]]; then
            return 0
        fi
        sleep 0.5
    done
    die "could not create topic $name on $url: $out"
}

ensure_topics() {
    local port="$1" listing t
    shift
    is_paused "$PID" && die "broker pid $PID is paused; run: $0 resume${INSTANCE_PORT:+ $INSTANCE_PORT}"
    listing="$(tansu_topic list --broker "tcp://$HOST:$port" 2>/dev/null || true)"
    for t in "$@"; do
        [[ "$listing" == *"\"name\":\"$t\""* ]] && continue
        create_topic "$port" "$t" "$DEFAULT_PARTITIONS"
    done
}

# start / start-at: $1 = fixed port or "" for a free one; the rest are extra topics.
do_start() {
    local fixed="$1" attempt port rc t
    shift
    for t in "$@"; do is_topic "$t" || die "invalid topic name: $t"; done
    local topics=("${DEFAULT_TOPICS[@]}" "$@")
    ensure_tansu
    take_lock
    select_instance "$fixed"
    INSTANCE_PORT="$fixed"
    if running_broker; then
        log "reusing running broker pid $PID on $HOST:$PORT"
        ensure_topics "$PORT" "${topics[@]}"
        print_env "$PORT" "$PID"
        return 0
    fi
    for ((attempt = 1; attempt <= 3; attempt++)); do
        if [ -n "$fixed" ]; then
            port=$((10#$fixed))
            tcp_open "$port" && die "$HOST:$port is already in use by another process (no start-at broker of this script runs there)"
        else
            port="$(free_port)" || port=""
            is_port "$port" || die "no free port found"
            if tcp_open "$port"; then continue; fi
        fi
        rc=0
        launch "$port" || rc=$?
        if [ "$rc" -eq 0 ]; then
            ensure_topics "$port" "${topics[@]}"
            print_env "$port" "$PID"
            return 0
        fi
        [ "$rc" -eq 2 ] && [ -z "$fixed" ] || break # retry only a lost race for a free port
    done
    die "could not start the broker"
}

do_stop() {
    take_lock
    select_instance "${1:-}"
    if running_broker; then
        stop_pid "$PID" "$PORT"
    else
        log "no broker running${1:+ at port $1}"
    fi
    rm -f "$PID_FILE" "$PORT_FILE" # the log stays for post-mortems; the next start truncates it
}

require_running() {
    select_instance "${1:-}"
    running_broker || die "no broker running${1:+ at port $1} (state: $DIR)"
}

do_signal() {
    local sig="$1"
    require_running "${2:-}"
    kill "-$sig" "$PID"
    log "sent SIG$sig to broker pid $PID (port $PORT)"
}

main() {
    local cmd="${1:-}"
    if [ $# -gt 0 ]; then shift; fi
    case "$cmd" in
    install)
        [ $# -eq 0 ] || die "usage: $0 install"
        cmd_install
        ;;
    start) do_start "" "$@" ;;
    start-at)
        if [ $# -lt 1 ] || ! is_port "$1"; then die "usage: $0 start-at PORT [TOPIC...]"; fi
        do_start "$@"
        ;;
    create-topic)
        [ $# -ge 1 ] && [ $# -le 3 ] || die "usage: $0 create-topic NAME [PARTITIONS [PORT]]"
        is_topic "$1" || die "invalid topic name: $1"
        local partitions="${2:-$DEFAULT_PARTITIONS}"
        [[ "$partitions" =~ ^[1-9][0-9]*$ ]] || die "invalid partition count: $partitions"
        require_running "${3:-}"
        is_paused "$PID" && die "broker pid $PID is paused"
        find_tansu || die "tansu not found"
        create_topic "$PORT" "$1" "$partitions"
        ;;
    env)
        [ $# -le 1 ] || die "usage: $0 env [PORT]"
        select_instance "${1:-}"
        running_broker || exit 1
        print_env "$PORT" "$PID"
        ;;
    pause)
        [ $# -le 1 ] || die "usage: $0 pause [PORT]"
        do_signal STOP "${1:-}"
        ;;
    resume)
        [ $# -le 1 ] || die "usage: $0 resume [PORT]"
        do_signal CONT "${1:-}"
        ;;
    stop)
        [ $# -eq 0 ] || die "usage: $0 stop (use stop-at PORT for a start-at broker)"
        do_stop
        ;;
    stop-at)
        if [ $# -ne 1 ] || ! is_port "$1"; then die "usage: $0 stop-at PORT"; fi
        do_stop "$1"
        ;;
    stop-all)
        local d
        do_stop
        for d in "$STATE_ROOT"/port-*; do
            [ -d "$d" ] || continue
            do_stop "${d##*/port-}"
        done
        ;;
    -h | --help | help) usage ;;
    *)
        usage
        exit 2
        ;;
    esac
}

INSTANCE_PORT=""
main "$@"
