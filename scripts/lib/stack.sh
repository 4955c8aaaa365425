# shellcheck shell=bash disable=SC2034  # STACK_* variables are read by the sourcing scripts
# Local stack for scripts/demo and scripts/load: two memcached and one reqctx on free loopback
# ports, every process recorded so that stack_stop (run from an EXIT trap) stops and reaps them.
# Source it from bash; it defines functions and STACK_* variables only.

STACK_PIDS=()          # every process we started, stopped in reverse order by stack_stop
STACK_DIR=""           # logs of the processes (a temporary directory unless STACK_DIR is set)
STACK_MC_PIDS=()       # memcached pids, in the order of STACK_MC_PORTS
STACK_MC_PORTS=()
STACK_REQCTX_PID=""
STACK_REQCTX_PORT=""
STACK_REQCTX_LOG=""

log() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# True when nothing accepts connections on 127.0.0.1:$1 (bash's /dev/tcp, no extra tools).
port_is_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints a loopback port that was free a moment ago (the caller still checks that its server
# came up: another process may take the port in between).
pick_port() {
    local i p
    for ((i = 0; i < 100; i++)); do
        p=$((20000 + RANDOM % 30000))
        if port_is_free "$p"; then
            printf '%s\n' "$p"
            return 0
        fi
    done
    return 1
}

# Polls "$@" every 0.1 s until it succeeds; gives up after $1 tenths of a second.
poll() {
    local tenths=$1 i
    shift
    for ((i = 0; i < tenths; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

# The reqctx binary: $REQCTX_BINARY, else the first build that exists (release preset first).
find_binary() {
    local root=$1 candidate
    if [[ -n ${REQCTX_BINARY:-} ]]; then
        [[ -x $REQCTX_BINARY ]] || die "REQCTX_BINARY=$REQCTX_BINARY is not an executable"
        printf '%s\n' "$REQCTX_BINARY"
        return 0
    fi
    for candidate in "$root/build/release/service/reqctx" "$root/build/dev/service/reqctx" \
        "$root/build/debug/service/reqctx" "$root/build/dx/service/reqctx"; do
        if [[ -x $candidate ]]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    die "no reqctx binary found: 'make demo', 'make load' or 'make run' build one (or set REQCTX_BINARY)"
}

stack_init() {
    if [[ -z $STACK_DIR ]]; then
        STACK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/reqctx-stack.XXXXXX")
    fi
    mkdir -p "$STACK_DIR"
}

pid_alive() { kill -0 "$1" 2>/dev/null; }

# Starts one memcached on a free loopback port (three tries); appends to STACK_MC_*.
stack_start_memcached() {
    command -v memcached >/dev/null || die "memcached is not installed (scripts/install-deps)"
    local try port pid user_args=()
    # memcached refuses to run as root unless told which user to be.
    if [[ $(id -u) -eq 0 ]]; then user_args=(-u root); fi
    for ((try = 0; try < 3; try++)); do
        port=$(pick_port) || die "no free loopback port"
        memcached -l 127.0.0.1 -p "$port" -U 0 -m 64 -c 1024 "${user_args[@]}" \
            >>"$STACK_DIR/memcached-$port.log" 2>&1 &
        pid=$!
        STACK_PIDS+=("$pid")
        if poll 50 port_accepts "$port" "$pid"; then
            STACK_MC_PIDS+=("$pid")
            STACK_MC_PORTS+=("$port")
            return 0
        fi
        stop_pid "$pid"
    done
    die "memcached did not start (see $STACK_DIR/memcached-*.log)"
}

port_accepts() {
    pid_alive "$2" && (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

healthz_ok() {
    pid_alive "$2" && curl -fsS --max-time 1 -o /dev/null "http://127.0.0.1:$1/healthz" 2>/dev/null
}

# Starts reqctx against every memcached started so far; extra arguments go to reqctx.
stack_start_reqctx() {
    local bin=$1 try port pid servers
    shift
    servers=$(printf '127.0.0.1:%s,' "${STACK_MC_PORTS[@]}")
    servers=${servers%,}
    for ((try = 0; try < 3; try++)); do
        if [[ -n ${REQCTX_PORT:-} ]]; then
            # A fixed port (e.g. 8080, to match the README): one try, it must be free.
            port_is_free "$REQCTX_PORT" || die "127.0.0.1:$REQCTX_PORT is in use (REQCTX_PORT)"
            port=$REQCTX_PORT
            try=2
        else
            port=$(pick_port) || die "no free loopback port"
        fi
        STACK_REQCTX_LOG="$STACK_DIR/reqctx-$port.log"
        "$bin" --listen "127.0.0.1:$port" --memcache "$servers" "$@" \
            >>"$STACK_REQCTX_LOG" 2>&1 &
        pid=$!
        STACK_PIDS+=("$pid")
        if poll 100 healthz_ok "$port" "$pid"; then
            STACK_REQCTX_PID=$pid
            STACK_REQCTX_PORT=$port
            return 0
        fi
        stop_pid "$pid"
    done
    log "--- last lines of $STACK_REQCTX_LOG"
    tail -n 20 "$STACK_REQCTX_LOG" >&2 || true
    die "reqctx did not answer /healthz"
}

# SIGTERM, up to 5 s to exit, then SIGKILL; always reaps. Prints nothing.
stop_pid() {
    local pid=$1
    pid_alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    if ! poll 50 pid_gone "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

pid_gone() { ! pid_alive "$1"; }

# Stops everything stack_start_* started, newest first. Safe to call twice.
stack_stop() {
    local i
    for ((i = ${#STACK_PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${STACK_PIDS[i]}"
    done
    STACK_PIDS=()
}

# Drops a pid that the caller has reaped itself, so that stack_stop never signals a reused pid.
stack_forget() {
    local i kept=()
    for i in "${STACK_PIDS[@]}"; do [[ $i == "$1" ]] || kept+=("$i"); done
    STACK_PIDS=("${kept[@]}")
}
