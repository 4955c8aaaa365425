#!/usr/bin/env bash
# The curl walkthrough of README.md, run against a live reqctx at $REQCTX_URL: prints each
# command and its answer, checks every status, exits non-zero when a step fails.
# Used by the compose `demo` service and by scripts/demo (which adds start-up and shutdown).
#
# Environment:
#   REQCTX_URL          base URL (default http://127.0.0.1:8080)
#   DEMO_STALL_CMD      optional command run before the hang-up step to make memcache slow
#   DEMO_RESUME_CMD     optional command run after it (scripts/demo pauses one memcached)
#   DEMO_ALLOW_MISSING  1: a section whose route answers 404 is reported SKIPPED, not FAILED
#                       (for development while routes are still being written)
#   DEMO_ONLY           optional space-separated list of sections to run (default: all)
set -euo pipefail

URL=${REQCTX_URL:-http://127.0.0.1:8080}
URL=${URL%/}
ALLOW_MISSING=${DEMO_ALLOW_MISSING:-0}
MAX_TIME=10          # seconds, for every curl of the walkthrough
TMP=$(mktemp -d "${TMPDIR:-/tmp}/reqctx-demo.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

LAST_STATUS=""       # status code of the last `call`
LAST_BODY=""         # body of the last `call`
RESULTS=()           # "section: PASSED|FAILED|SKIPPED"

if [[ -t 1 ]]; then BOLD=$'\e[1m' DIM=$'\e[2m' RED=$'\e[31m' OFF=$'\e[0m'; else BOLD="" DIM="" RED="" OFF=""; fi

heading() { printf '\n%s== %s ==%s\n' "$BOLD" "$*" "$OFF"; }
note() { printf '%s# %s%s\n' "$DIM" "$*" "$OFF"; }

# Shell-quotes an argument only when it needs it, so the printed command can be pasted.
quote() {
    if [[ $1 =~ ^[A-Za-z0-9_./:=@%+,?-]+$ ]]; then
        printf '%s' "$1"
    else
        printf "'%s'" "${1//\'/\'\\\'\'}"
    fi
}

show_cmd() {
    local out="\$ curl" a
    for a in "$@"; do out+=" $(quote "$a")"; done
    printf '%s%s%s\n' "$BOLD" "$out" "$OFF"
}

# call EXPECTED_STATUS CURL_ARGS...: prints the command, runs it with -si, prints the answer and
# checks the status. Fails (returns 1) on a transport error or another status.
call() {
    local expected=$1 rc=0
    shift
    show_cmd -si "$@"
    curl -sS -i --max-time "$MAX_TIME" "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
    tr -d '\r' <"$TMP/out" | grep -v -i -E '^(date|content-length|connection|keep-alive):' || true
    printf '\n'
    if ((rc != 0)); then
        LAST_STATUS=""
        printf '%sFAILED: curl exit %s: %s%s\n' "$RED" "$rc" "$(cat "$TMP/err")" "$OFF"
        return 1
    fi
    LAST_STATUS=$(head -n1 "$TMP/out" | awk '{print $2}')
    LAST_BODY=$(tr -d '\r' <"$TMP/out" | awk 'body {print} /^$/ {body=1}')
    if [[ $LAST_STATUS != "$expected" ]]; then
        printf '%sFAILED: expected HTTP %s, got %s%s\n' "$RED" "$expected" "$LAST_STATUS" "$OFF"
        return 1
    fi
}

# A JSON string field of LAST_BODY (first occurrence), without jq: "name":"value".
field() {
    printf '%s' "$LAST_BODY" | grep -o "\"$1\":[[:space:]]*\"[^\"]*\"" | head -n1 | cut -d'"' -f4
}

# A JSON number field of LAST_BODY (first occurrence).
number() {
    printf '%s' "$LAST_BODY" | grep -o "\"$1\":[[:space:]]*[0-9.]*" | head -n1 | cut -d: -f2 |
        tr -d '[:space:]'
}

# Sum of the samples of one metric in the current /metrics text, optionally filtered by a
# label substring such as 'reason="client_disconnect"'.
metric_sum() {
    local name=$1 filter=${2:-}
    curl -fsS --max-time "$MAX_TIME" "$URL/metrics" |
        awk -v name="$name" -v filter="$filter" '
            $0 !~ /^#/ && (index($1, name "{") == 1 || $1 == name) &&
                (filter == "" || index($1, filter) > 0) { sum += $NF }
            END { printf "%g\n", sum + 0 }'
}

show_metrics() {
    show_cmd -s "$URL/metrics" ; printf '  | grep -E %s\n' "$(quote "$1")"
    curl -fsS --max-time "$MAX_TIME" "$URL/metrics" | grep -E "$1" || true
    printf '\n'
}

# ---------------------------------------------------------------------------------------------

section_health() {
    heading "Liveness and readiness"
    note "healthz touches no dependency; readyz pings every memcached"
    call 200 "$URL/healthz" || return 1
    call 200 "$URL/readyz" || return 1
}

section_whoami() {
    heading "Request context: whoami"
    note "the request ID, trace and user below are typed values on the request context;"
    note "the trace continues the caller's (same trace-id, its span becomes our parent)"
    call 200 -H 'X-Request-ID: demo-whoami-1' \
        -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' \
        -H 'tracestate: vendor=opaque' -H 'X-User-ID: alice' -H 'X-Request-Timeout-Ms: 1500' \
        "$URL/v1/whoami" || return 1
    [[ $(field trace_id) == 4bf92f3577b34da6a3ce929d0e0e4736 ]] ||
        { echo "FAILED: trace_id not continued"; return 1; }
    note "an invalid request ID is never echoed: a fresh one is generated"
    call 200 -H 'X-Request-ID: not valid!' "$URL/v1/whoami" || return 1
    note "a deadline that is not an integer in 1..--max-request-timeout-ms is refused"
    call 400 -H 'X-Request-Timeout-Ms: soon' "$URL/v1/whoami" || return 1
}

section_cache() {
    heading "Cache (two memcached, ketama)"
    call 204 -X PUT --data-binary 'hello from reqctx' "$URL/v1/cache/greeting?ttl=300" || return 1
    call 200 "$URL/v1/cache/greeting" || return 1
    [[ $LAST_BODY == 'hello from reqctx' ]] || { echo "FAILED: unexpected value"; return 1; }
    call 204 -X DELETE "$URL/v1/cache/greeting" || return 1
    call 404 "$URL/v1/cache/greeting" || return 1
    note "keys are validated: a space is not allowed"
    call 400 "$URL/v1/cache/bad%20key" || return 1
}

section_bulk() {
    heading "Bulk sync under the shared semaphore"
    note "one bad entry fails alone; results are in request order"
    call 200 -H 'Content-Type: application/json' --data-binary \
        '{"entries":[{"key":"k1","value":"v1","ttl":60},{"key":"bad key","value":"x"},{"key":"k2","value":"v2"}],"concurrency":2}' \
        "$URL/v1/bulk-sync" || return 1
    [[ $(number synced) == 2 && $(number failed) == 1 ]] ||
        { echo "FAILED: expected synced 2, failed 1"; return 1; }
}

section_subscriptions() {
    heading "Background work that outlives its request"
    note "each consumer runs on without_cancel(request context): it keeps the request's IDs"
    note "(origin_request_id) but not its deadline or cancellation"
    call 201 -H 'Content-Type: application/json' -H 'X-Request-ID: demo-subscribe-1' \
        --data-binary '{"consumers":[{"name":"alerts-eu","topic":"alerts"},{"name":"alerts-us","topic":"alerts"}]}' \
        "$URL/v1/subscriptions" || return 1
    local ids id1 id2 i
    ids=$(printf '%s' "$LAST_BODY" | grep -o '"id":[[:space:]]*"[^"]*"' | cut -d'"' -f4)
    id1=$(sed -n 1p <<<"$ids")
    id2=$(sed -n 2p <<<"$ids")
    [[ -n $id1 && -n $id2 ]] || { echo "FAILED: no subscription ids"; return 1; }
    note "the POST has returned; its subscribers are still running"
    call 200 "$URL/v1/subscriptions/$id1" || return 1

    heading "Events"
    call 202 -H 'Content-Type: application/json' -H 'X-Request-ID: demo-publish-1' \
        --data-binary '{"topic":"alerts","payload":{"level":"warn","text":"disk 91% full"}}' \
        "$URL/v1/events" || return 1
    note "each subscriber writes the payload to sub:<id>:last and counts in sub:<id>:count"
    for ((i = 0; i < 50; i++)); do
        curl -fsS --max-time 2 "$URL/v1/subscriptions/$id1" 2>/dev/null |
            grep -q '"processed":[[:space:]]*[1-9]' && break
        sleep 0.1
    done
    call 200 "$URL/v1/subscriptions/$id1" || return 1
    call 200 "$URL/v1/cache/sub:$id1:last" || return 1
    call 200 "$URL/v1/cache/sub:$id1:count" || return 1

    note "DELETE cancels one subscriber and waits until it has stopped"
    call 204 -X DELETE "$URL/v1/subscriptions/$id1" || return 1
    call 200 "$URL/v1/subscriptions" || return 1
    note "subscription $id2 is left running: shutdown cancels and awaits it"
}

section_hangup() {
    heading "A client that hangs up mid bulk-sync"
    # With a stall hook one paused memcached keeps the request busy: 2000 entries and 1 s are
    # plenty. Without one (compose) 10000 sequential writes outlast a 0.2 s client.
    local entries=10000 max_time=0.2 i body before_req before_ent after_req after_ent rc=0
    if [[ -n ${DEMO_STALL_CMD:-} ]]; then entries=2000 max_time=1; fi
    {
        printf '{"concurrency":1,"entries":['
        for ((i = 0; i < entries; i++)); do
            ((i > 0)) && printf ','
            printf '{"key":"demo:bulk:%05d","value":"value-%05d"}' "$i" "$i"
        done
        printf ']}'
    } >"$TMP/bulk.json"
    body=$(wc -c <"$TMP/bulk.json")
    before_req=$(metric_sum http_requests_cancelled_total 'reason="client_disconnect"')
    before_ent=$(metric_sum bulk_sync_entries_total 'result="cancelled"')
    show_metrics '^(http_requests_cancelled_total|bulk_sync_entries_total)'
    if [[ -n ${DEMO_STALL_CMD:-} ]]; then
        note "making one memcached slow (SIGSTOP) so that the bulk-sync is still running"
        eval "$DEMO_STALL_CMD"
    fi
    note "$entries entries ($body bytes), concurrency 1; curl gives up after $max_time s"
    show_cmd -s --max-time "$max_time" -H 'Content-Type: application/json' --data-binary @bulk.json \
        "$URL/v1/bulk-sync"
    curl -sS --max-time "$max_time" -H 'Content-Type: application/json' \
        --data-binary "@$TMP/bulk.json" \
        "$URL/v1/bulk-sync" -o /dev/null 2>&1 || rc=$?
    printf '(curl exit %s: it hung up)\n\n' "$rc"
    if [[ -n ${DEMO_RESUME_CMD:-} ]]; then eval "$DEMO_RESUME_CMD"; fi
    ((rc == 28)) || { echo "FAILED: the bulk-sync finished before curl hung up"; return 1; }
    note "the server saw the disconnect, cancelled the request context, started no more writes"
    for ((i = 0; i < 50; i++)); do
        after_req=$(metric_sum http_requests_cancelled_total 'reason="client_disconnect"')
        after_ent=$(metric_sum bulk_sync_entries_total 'result="cancelled"')
        awk -v a="$after_req" -v b="$before_req" -v c="$after_ent" -v d="$before_ent" \
            'BEGIN { exit !(a > b && c > d) }' && break
        sleep 0.1
    done
    show_metrics '^(http_requests_cancelled_total|bulk_sync_entries_total)'
    printf 'cancelled requests (client_disconnect): %s -> %s; cancelled entries: %s -> %s\n' \
        "$before_req" "$after_req" "$before_ent" "$after_ent"
    awk -v a="$after_req" -v b="$before_req" -v c="$after_ent" -v d="$before_ent" \
        'BEGIN { exit !(a > b && c > d) }' ||
        { echo "FAILED: the cancellation does not show in /metrics"; return 1; }
}

# ---------------------------------------------------------------------------------------------

run_section() {
    local name=$1
    if [[ -n ${DEMO_ONLY:-} && " $DEMO_ONLY " != *" $name "* ]]; then return 0; fi
    if "section_$name"; then
        RESULTS+=("$name: PASSED")
    elif [[ $ALLOW_MISSING == 1 && $LAST_STATUS == 404 ]]; then
        RESULTS+=("$name: SKIPPED (route answered 404: not implemented yet?)")
    else
        RESULTS+=("$name: FAILED")
    fi
}

main() {
    note "reqctx at $URL"
    local s
    for s in health whoami cache bulk subscriptions hangup; do run_section "$s"; done
    heading "Summary"
    printf '%s\n' "${RESULTS[@]}"
    if printf '%s\n' "${RESULTS[@]}" | grep -q FAILED; then return 1; fi
}

main "$@"
