#!/usr/bin/env bash
# Business routes under load (issue 7): cache GET of an existing key under wrk (req/s, p99,
# server CPU per request from /proc/PID/stat), bulk-sync of 10,000 entries at concurrency 32
# (entries/s), events publish-to-processed throughput with 4 subscribers. The server and
# memcached share CPU 0 (taskset); the load runs on CPU 1. Everything started here is stopped
# here (by PID). Usage: bench/business/run.sh [release-build-dir]   (BENCH_SECONDS, default 10;
# BENCH_MEMCACHE_POOL_SIZE overrides the service's --memcache-pool-size)
set -euo pipefail
cd "$(dirname "$0")/../.."
release=${1:-build/release}
binary=${REQCTX_BINARY:-$release/service/reqctx}
seconds=${BENCH_SECONDS:-10}
connections=${BENCH_CONNECTIONS:-32}
work=$(mktemp -d /tmp/reqctx-bench-business.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "port $1 never opened" >&2
    return 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)

mc_port=$(free_port)
taskset -c 0 memcached -l 127.0.0.1 -p "$mc_port" -U 0 -t 1 -m 256 $([ "$(id -u)" = 0 ] && echo -u root) &
pids+=($!)
wait_port "$mc_port"

port=$(free_port)
taskset -c 0 "$binary" --listen "127.0.0.1:$port" --threads 1 --memcache "127.0.0.1:$mc_port" \
    --log-level "${BENCH_LOG_LEVEL:-warn}" --max-request-timeout-ms 60000 \
    ${BENCH_MEMCACHE_POOL_SIZE:+--memcache-pool-size "$BENCH_MEMCACHE_POOL_SIZE"} \
    >"$work/server.log" 2>&1 &
server=$!
pids+=($server)
wait_port "$port"
base="http://127.0.0.1:$port"

printf '%-44s %s\n' "scenario" "result"

# 1. Cache GET of an existing key.
curl -sf -X PUT --data-binary 'bench-value-0123456789' "$base/v1/cache/bench-key" >/dev/null
taskset -c 1 wrk -t1 -c"$connections" -d2s "$base/v1/cache/bench-key" >/dev/null  # warm-up
before=$(cpu_ticks "$server")
taskset -c 1 wrk -t1 -c"$connections" -d"${seconds}s" --latency "$base/v1/cache/bench-key" \
    >"$work/wrk-get.txt"
after=$(cpu_ticks "$server")
requests=$(awk '/requests in/ {print $1}' "$work/wrk-get.txt")
rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk-get.txt")
p99=$(awk '$1 == "99%" {print $2}' "$work/wrk-get.txt")
errors=$(awk '/Non-2xx|Socket errors/ {print}' "$work/wrk-get.txt" | tr '\n' ' ')
cpu_us=$(python3 -c "print(f'{($after-$before)/$ticks_per_second/$requests*1e6:.1f}')")
printf '%-44s %s req/s, p99 %s, server CPU %s us/request %s\n' \
    "cache GET (wrk -c$connections, ${seconds}s)" "$rps" "$p99" "$cpu_us" "$errors"

# 2. Bulk-sync of 10,000 entries at concurrency 32 (best and median of 5 runs).
python3 - "$work/bulk.json" <<'PY'
import json, sys
entries = [{"key": f"bulk-{i}", "value": f"value-{i:06d}-0123456789"} for i in range(10000)]
json.dump({"entries": entries, "concurrency": 32}, open(sys.argv[1], "w"))
PY
rates=()
for run in 1 2 3 4 5; do
    taskset -c 1 curl -sf -H 'X-Request-Timeout-Ms: 60000' -H 'Content-Type: application/json' \
        --data-binary "@$work/bulk.json" -o "$work/bulk-out.json" "$base/v1/bulk-sync"
    rate=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['synced']==10000, d['synced']; print(f\"{10000/(d['duration_ms']/1000):.0f}\")" "$work/bulk-out.json")
    rates+=("$rate")
done
sorted=$(printf '%s\n' "${rates[@]}" | sort -n)
median=$(echo "$sorted" | sed -n 3p)
best=$(echo "$sorted" | tail -1)
printf '%-44s %s entries/s median, %s best (runs: %s)\n' "bulk-sync 10,000 entries, concurrency 32" \
    "$median" "$best" "${rates[*]}"

# 3. Events: 4 subscribers on one topic, publish under wrk, time until all are processed.
curl -sf -H 'Content-Type: application/json' \
    -d '{"consumers":[{"name":"b1","topic":"bench"},{"name":"b2","topic":"bench"},{"name":"b3","topic":"bench"},{"name":"b4","topic":"bench"}]}' \
    "$base/v1/subscriptions" >/dev/null
cat >"$work/publish.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"topic":"bench","payload":{"level":"high","n":42}}'
wrk.headers["Content-Type"] = "application/json"
LUA
processed() { curl -sf "$base/v1/subscriptions" | python3 -c "import json,sys; s=json.load(sys.stdin)['subscriptions']; print(sum(x['processed'] for x in s), sum(x['dropped'] for x in s))"; }
start=$(date +%s.%N)
taskset -c 1 wrk -t1 -c8 -d"${seconds}s" -s "$work/publish.lua" "$base/v1/events" >"$work/wrk-events.txt"
published=$(awk '/requests in/ {print $1}' "$work/wrk-events.txt")
last=-1
for _ in $(seq 1 600); do
    read -r done dropped < <(processed)
    [ "$done" = "$last" ] && break
    last=$done
    end=$(date +%s.%N)
    sleep 0.2
done
rate=$(python3 -c "print(f'{$done/($end-$start):.0f}')")
printf '%-44s %s events processed/s (%s published x 4 subscribers, %s processed, %s dropped)\n' \
    "events publish->processed, 4 subscribers" "$rate" "$published" "$done" "$dropped"

kill -TERM "$server"
wait "$server" || true
grep -o '"leaked_tasks":[0-9]*' "$work/server.log" | tail -1 || true
