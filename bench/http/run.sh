#!/usr/bin/env bash
# HTTP load benchmark: reqctx (Release, full middleware, access log on) beside nginx (one worker,
# `return 200`, access_log off) in the same run. wrk is pinned to CPU 0, the server under test to
# CPU 1. Prints per target: req/s, p50/p99 latency, server CPU time per request (utime+stime from
# /proc/PID/stat over the run / completed requests) at 64 connections, then an error check at 256.
#
# Usage: bench/http/run.sh [--duration SECONDS] [--binary PATH] [--build-dir DIR]
#   default duration 10 s per measured run; the binary defaults to a Release build made in
#   build/bench-release (configured and built if missing).
set -euo pipefail

DURATION=10
ERR_DURATION=3
CONNS=64
ERR_CONNS=256
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD_DIR="$ROOT/build/bench-release"
BINARY=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        --binary) BINARY="$2"; shift 2 ;;
        --build-dir) BUILD_DIR="$2"; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

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
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
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
printf '%-22s %10s %10s %10s %14s %10s\n' target "req/s" p50 p99 "cpu_us/req" errors

# run_target NAME PID URL [wrk header args...]
run_target() {
    local name="$1" pid="$2" url="$3"; shift 3
    taskset -c 0 wrk -t1 -c"$CONNS" -d1s "$@" "$url" >/dev/null 2>&1 || true  # warm-up
    local before after out requests rps p50 p99 cpu_us errs
    before=$(cpu_ticks "$pid")
    out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$@" "$url")
    after=$(cpu_ticks "$pid")
    requests=$(awk '/requests in/ { print $1 }' <<<"$out")
    rps=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' <<<"$out")
    p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    cpu_us=$(awk -v t=$((after - before)) -v hz="$TICK" -v n="$requests" \
        'BEGIN { printf "%.2f", (t / hz) * 1e6 / n }')
    errs=$(taskset -c 0 wrk -t1 -c"$ERR_CONNS" -d"${ERR_DURATION}s" "$@" "$url" |
        awk '/Non-2xx|Socket errors/ { bad = bad $0 "; " } END { print (bad == "" ? "none" : bad) }')
    printf '%-22s %10s %10s %10s %14s %10s\n' "$name" "$rps" "$p50" "$p99" "$cpu_us" "$errs"
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
SERVER_PID=$!
wait_port "$NGINX_PORT"
run_target "nginx return 200" "$SERVER_PID" "http://127.0.0.1:$NGINX_PORT/healthz"
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""

# reqctx: one I/O thread on CPU 1 (its async log thread shares that CPU), access log to a file.
PORT=$(free_port)
DEAD_MEMCACHE=$(free_port)
taskset -c 1 "$BINARY" --listen "127.0.0.1:$PORT" --threads 1 \
    --memcache "127.0.0.1:$DEAD_MEMCACHE" >"$WORK/reqctx.log" 2>&1 &
SERVER_PID=$!
wait_port "$PORT"
run_target "reqctx /healthz" "$SERVER_PID" "http://127.0.0.1:$PORT/healthz"
run_target "reqctx /v1/whoami" "$SERVER_PID" "http://127.0.0.1:$PORT/v1/whoami" \
    -H "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" \
    -H "X-Request-ID: bench-request-1" -H "X-User-ID: bench_user"
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
echo "access log lines written: $(grep -c '"msg":"request"' "$WORK/reqctx.log" || true)"
