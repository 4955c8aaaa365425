#!/usr/bin/env bash
# Memcache client load beside memcaslap, same memcached, same run (docs/performance.md,
# "Memcache client"). memcached is pinned to CPU 0 (one worker thread), each load generator to
# CPU 1, one at a time. Usage: bench/memcache/run.sh [release-build-dir]
# Env: BENCH_SECONDS (default 10) per run, CALLERS (default 16).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
secs=${BENCH_SECONDS:-10}
callers=${CALLERS:-16}
load=$build/bench/memcache/memcache_load
if [[ ! -x $load ]]; then
    echo "missing $load: build the release preset first (cmake --preset release && cmake --build --preset release --target memcache_load)" >&2
    exit 2
fi
command -v memcaslap >/dev/null || { echo "memcaslap missing (apt-get install libmemcached-tools)" >&2; exit 2; }
command -v memcached >/dev/null || { echo "memcached missing" >&2; exit 2; }

tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
user_args=()
[[ $(id -u) == 0 ]] && user_args=(-u nobody)
taskset -c 0 memcached -l 127.0.0.1 -p "$port" -U 0 -t 1 -m 256 "${user_args[@]}" &
mc_pid=$!
trap 'kill "$mc_pid" 2>/dev/null; wait "$mc_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    sleep 0.05
done

# memcaslap workloads: 32-byte values; default key sizes; 9:1 get:set or set only.
printf 'key\n64 64 1\nvalue\n32 32 1\ncmd\n0 0.1\n1 0.9\n' >"$tmp/mixed.cfg"
printf 'key\n64 64 1\nvalue\n32 32 1\ncmd\n0 1.0\n1 0.0\n' >"$tmp/set.cfg"

# Prints "ops_per_s p99_us" from memcaslap's output: TPS, and the Log2 latency histogram's
# bucket holding the 99th percentile of the global totals (an upper bound: 2^(k+1) us).
memcaslap_run() {
    local cfg=$1 division=$2
    taskset -c 1 memcaslap -s "127.0.0.1:$port" -T 1 -c "$callers" -t "${secs}s" -F "$cfg" \
        -d "$division" -S "${secs}s" >"$tmp/ms.out" 2>&1 || true
    python3 - "$tmp/ms.out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
tps = re.findall(r"TPS:\s*(\d+)", text)
blocks = text.split("Total Statistics")
p99 = "n/a"
if len(blocks) > 1:
    dist = blocks[-1].split("Log2 Dist:")[1]
    counts = {}
    for line in dist.splitlines()[1:]:
        m = re.match(r"\s*(\d+):\s+([\d\s]+)$", line)
        if not m:
            break
        base = int(m.group(1))
        for i, c in enumerate(m.group(2).split()):
            counts[base + i] = int(c)
    total = sum(counts.values())
    acc = 0
    for k in sorted(counts):
        acc += counts[k]
        if total and acc >= 0.99 * total:
            p99 = "<=%d" % (2 ** (k + 1))
            break
print(tps[-1] if tps else "0", p99)
PY
}

reqctx_run() {
    local mode=$1
    taskset -c 1 "$load" --server "127.0.0.1:$port" --mode "$mode" --callers "$callers" \
        --seconds "$secs" --value-size 32 --keys 10000 --pool-size 2 --window 128 | tee -a "$tmp/reqctx.out" |
        python3 -c 'import re,sys; l=sys.stdin.read(); print(re.search(r"ops_per_s=(\S+)",l).group(1), re.search(r"p99_us=(\S+)",l).group(1), re.search(r"errors=(\S+)",l).group(1))'
}

printf '%-22s %14s %12s %14s %12s %8s %6s\n' workload memcaslap_ops/s p99_us reqctx_ops/s p99_us ratio errors
for spec in "mixed:mixed.cfg:1:90/10 get/set" "set:set.cfg:1:set only" "multiget:mixed.cfg:10:10-key multiget 90/10"; do
    IFS=: read -r mode cfg division label <<<"$spec"
    read -r ms_ops ms_p99 < <(memcaslap_run "$tmp/$cfg" "$division")
    read -r rq_ops rq_p99 rq_err < <(reqctx_run "$mode")
    ratio=$(python3 -c "print('%.2fx' % ($rq_ops / max(1.0, $ms_ops)))")
    printf '%-22s %14s %12s %14s %12s %8s %6s\n' "$label" "$ms_ops" "$ms_p99" "$rq_ops" "$rq_p99" "$ratio" "$rq_err"
done
echo "(callers/connections: $callers; ${secs}s per run; memcached -t 1 on CPU 0, load on CPU 1;"
echo " multiget ops are keys/s: 10 per multi-get + 1 per set, as memcaslap -d 10 counts TPS;"
echo " memcaslap p99 is the upper bound of its log2 latency bucket)"
