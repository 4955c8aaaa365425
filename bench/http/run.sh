#!/usr/bin/env bash
# HTTP load benchmark: reqctx (Release, full middleware, access log on) beside nginx (one worker,
# `return 200`, access_log off) in the same run. wrk is pinned to CPU 0, the server under test to
# CPU 1. Both servers run for the whole benchmark and are measured in interleaved rounds (nginx,
# /healthz, /v1/whoami, then again), so that a slow phase of a shared machine falls on all three
# alike; each round prints req/s, p50/p99 latency and the server's CPU time per request
# (utime+stime from /proc/PID/stat over the run / completed requests) at 64 connections, then
# the medians over the rounds with their ratios to nginx's, then an error check at 256.
#
# Usage: bench/http/run.sh [--duration SECONDS] [--rounds N] [--binary PATH] [--build-dir DIR]
#   default 10 s per measured run and 3 rounds; the binary defaults to a Release build made in
#   build/bench-release (configured and built if missing).
set -euo pipefail

DURATION=10
ROUNDS=3
ERR_DURATION=3
CONNS=64
ERR_CONNS=256
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD_DIR="$ROOT/build/bench-release"
BINARY=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --binary) BINARY="$2"; shift 2 ;;
        --build-dir) BUILD_DIR="$2"; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

if ! [[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]]; then echo "bench: --rounds must be a positive integer" >&2; exit 2; fi
for tool in wrk nginx taskset python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is required (scripts/install-deps)" >&2; exit 1; }
done
NGINX="$(command -v nginx)"
if [[ "$(nproc)" -lt 2 ]]; then echo "bench: needs 2 CPUs (wrk and server pinned apart)" >&2; exit 1; fi

if [[ -z "$BINARY" ]]; then
    if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
        cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
            -DREQCTX_BUILD_TESTS=OFF -DREQCTX_BUILD_BENCH=OFF >/dev/null
    fi
    cmake --build "$BUILD_DIR" --target reqctx -j2 >/dev/null
    BINARY="$BUILD_DIR/service/reqctx"
fi

WORK="$(mktemp -d /tmp/reqctx-bench.XXXXXX)"
PIDS=()
stop_server() {
    local pid="$1"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    for pid in "${PIDS[@]}"; do stop_server "$pid"; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() {
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "bench: nothing listens on port $1" >&2
    return 1
}

cpu_ticks() {  # utime + stime of a process, in clock ticks
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

TICK=$(getconf CLK_TCK)
ROW='%-22s %10s %10s %10s %14s\n'

# measure NAME PID URL [wrk header args...]: one measured run; prints its row and appends
# "name rps p50_us p99_us cpu_us" to $WORK/results.
measure() {
    local name="$1" pid="$2" url="$3"; shift 3
    taskset -c 0 wrk -t1 -c"$CONNS" -d1s "$@" "$url" >/dev/null 2>&1 || true  # warm-up
    local before after out requests rps p50 p99 cpu_us
    before=$(cpu_ticks "$pid")
    out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$@" "$url")
    after=$(cpu_ticks "$pid")
    requests=$(awk '/requests in/ { print $1 }' <<<"$out")
    rps=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' <<<"$out")
    p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    cpu_us=$(awk -v t=$((after - before)) -v hz="$TICK" -v n="$requests" \
        'BEGIN { printf "%.2f", (t / hz) * 1e6 / n }')
    printf "$ROW" "$name" "$rps" "$p50" "$p99" "$cpu_us"
    echo "$name $rps $(to_us "$p50") $(to_us "$p99") $cpu_us" >>"$WORK/results"
}

log_lines() {  # counts the access lines written so far, then empties the log
    LOG_LINES=$((LOG_LINES + $(grep -c '"msg":"request"' "$LOG" || true)))
    : >"$LOG"
}

to_us() {  # wrk's latency ("812.00us", "1.05ms", "2.00s") in microseconds
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else print n * 1e6 }'
}

errors_at_256() {  # URL [wrk header args...]: non-2xx responses and socket errors, or "none"
    local url="$1"; shift
    taskset -c 0 wrk -t1 -c"$ERR_CONNS" -d"${ERR_DURATION}s" "$@" "$url" |
        awk '/Non-2xx|Socket errors/ { bad = bad $0 "; " } END { print (bad == "" ? "none" : bad) }'
}

# nginx: one worker process, no master (so its PID is the process doing the work).
NGINX_PORT=$(free_port)
cat >"$WORK/nginx.conf" <<CONF
worker_processes 1;
master_process off;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/body;
    proxy_temp_path $WORK/proxy;
    fastcgi_temp_path $WORK/fastcgi;
    uwsgi_temp_path $WORK/uwsgi;
    scgi_temp_path $WORK/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / { default_type application/json; return 200 '{"status":"ok"}'; }
    }
}
CONF
taskset -c 1 "$NGINX" -c "$WORK/nginx.conf" -p "$WORK" >/dev/null 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_port "$NGINX_PORT"

# reqctx: one I/O thread on CPU 1 (its async log thread shares that CPU), access log to a file
# opened for appending, so that it can be emptied between runs (log_lines): a file growing by
# gigabytes over the rounds would be flushed to disk while later rounds run (dirty pages expire
# after 30 s), and that writeback is the machine's work, not the server's.
PORT=$(free_port)
DEAD_MEMCACHE=$(free_port)
LOG="$WORK/reqctx.log"
LOG_LINES=0
taskset -c 1 "$BINARY" --listen "127.0.0.1:$PORT" --threads 1 \
    --memcache "127.0.0.1:$DEAD_MEMCACHE" >>"$LOG" 2>&1 &
REQCTX_PID=$!
PIDS+=("$REQCTX_PID")
wait_port "$PORT"

NGINX_URL="http://127.0.0.1:$NGINX_PORT/healthz"
HEALTHZ_URL="http://127.0.0.1:$PORT/healthz"
WHOAMI_URL="http://127.0.0.1:$PORT/v1/whoami"
WHOAMI_HEADERS=(-H "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    -H "X-Request-ID: bench-request-1" -H "X-User-ID: bench_user")

: >"$WORK/results"
for round in $(seq 1 "$ROUNDS"); do
    printf '%s\n' "-- round $round of $ROUNDS (wrk -t1 -c$CONNS -d${DURATION}s)"
    printf "$ROW" target "req/s" p50 p99 "cpu_us/req"
    measure "nginx return 200" "$NGINX_PID" "$NGINX_URL"
    measure "reqctx /healthz" "$REQCTX_PID" "$HEALTHZ_URL"
    log_lines
    measure "reqctx /v1/whoami" "$REQCTX_PID" "$WHOAMI_URL" "${WHOAMI_HEADERS[@]}"
    log_lines
done

printf '%s\n' "-- medians over $ROUNDS rounds; x nginx: req/s ratio and CPU-per-request ratio to nginx's medians"
printf '%-22s %10s %10s %10s %14s %9s %9s %s\n' target "req/s" p50_us p99_us "cpu_us/req" "x_req/s" "x_cpu" "errors_at_256"
for name in "nginx return 200" "reqctx /healthz" "reqctx /v1/whoami"; do
    case "$name" in
        nginx*) errs=$(errors_at_256 "$NGINX_URL") ;;
        *healthz) errs=$(errors_at_256 "$HEALTHZ_URL") ;;
        *) errs=$(errors_at_256 "$WHOAMI_URL" "${WHOAMI_HEADERS[@]}") ;;
    esac
    log_lines
    python3 - "$WORK/results" "$name" "$errs" <<'PY'
import statistics, sys
rows = [line.rsplit(maxsplit=4) for line in open(sys.argv[1])]
def med(name, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == name)
name, errs = sys.argv[2], sys.argv[3]
rps, cpu = med(name, 1), med(name, 4)
print(f"{name:<22} {rps:10.0f} {med(name, 2):10.0f} {med(name, 3):10.0f} {cpu:14.2f}"
      f" {rps / med('nginx return 200', 1):8.2f}x {cpu / med('nginx return 200', 4):8.2f}x {errs}")
PY
done

stop_server "$REQCTX_PID"
log_lines
echo "access log lines written: $LOG_LINES"
