#!/usr/bin/env bash
# gateway.sh - what the gateway adds to a request: the mock upstream called directly, then
# `archrouter serve` in front of it (routing off), same load, in the same run; then, with a
# router model (--model, default the tiny test model of the reference data when present),
# the same requests routed (2 routes).
#
# usage: bench/gateway.sh [--build DIR] [--seconds N] [--rates "1000 5000"] [--repeat K]
#                         [--connections C] [--threads T] [--model GGUF|none] [--no-wrk]
#
# Two kinds of load, POST /v1/chat/completions (non-streamed), keep-alive connections:
#  - paced (the latency numbers): build/loadgen (bench/loadgen.c), open-loop. Request i is
#    due at i/R seconds whatever the server does, and its latency counts from that due time,
#    so a stall shows in every request it delayed (no coordinated omission, which a paced
#    closed-loop wrk has). For each rate, K rounds of: mock direct, then gateway; 1 s warmup
#    then N seconds measured per run. Each run prints achieved req/s, p50/p90/p99/p99.9 (ms),
#    errors, the loadgen's own send lag (p99) and its largest backlog (due requests waiting
#    for a free connection: large means the target is over capacity at that rate); then the
#    median over the rounds of p50 and p99 for each target and of the per-round differences
#    (gateway minus direct).
#  - unpaced (throughput): wrk -tT -cC for N seconds (closed-loop: as fast as answers come),
#    direct and through the gateway; skipped with --no-wrk or when wrk is missing.
# On a shared machine single runs are noisy: compare direct and gateway within a round, and
# read the medians and the spread, not one number.
#
# Needs a build with the tests (build/: archrouter, loadgen, tests/ar_mock_upstream).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
seconds=5
rates="1000 5000"
repeat=3
conns=16
threads=2
use_wrk=1
model=${ARCHROUTER_TESTDATA:-../shared/testdata}/models/qwen2-tiny-a/gguf/F16.gguf
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --rates) rates=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --connections) conns=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --no-wrk) use_wrk=0; shift ;;
    -h | --help) sed -n '2,24s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "gateway.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
for p in archrouter loadgen tests/ar_mock_upstream; do
    [ -x "$build/$p" ] || { echo "gateway.sh: build $build first (cmake --build $build)" >&2; exit 1; }
done
command -v wrk >/dev/null || { [ $use_wrk = 0 ] || echo "gateway.sh: wrk not found: no unpaced runs" >&2; use_wrk=0; }

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# Start `archrouter serve` on a free port (port 0 in the config); sets served_port to the
# port it took (empty if it did not start). Not in a $(...) subshell: the server must stay
# this shell's child.
serve() {
    local cfg=$1 err=$2
    shift 2
    "$build/archrouter" serve -c "$cfg" --access-log off "$@" >/dev/null 2>"$err" &
    pids+=($!)
    for _ in $(seq 300); do grep -q 'serving on port' "$err" && break; sleep 0.1; done
    served_port=$(sed -n 's/.*serving on port \([0-9]*\).*/\1/p' "$err" | head -n 1)
}

"$build/tests/ar_mock_upstream" 0 >"$tmp/mock.port" &
pids+=($!)
for _ in $(seq 50); do [ -s "$tmp/mock.port" ] && break; sleep 0.1; done
mport=$(cat "$tmp/mock.port")
cat >"$tmp/gw.yaml" <<YAML
providers:
  - model: mock/json
    base_url: http://127.0.0.1:$mport/v1
    default: true
archrouter:
  server: {address: 127.0.0.1, port: 0, max_concurrent: 4096}
YAML
serve "$tmp/gw.yaml" "$tmp/gw.err"
gport=$served_port
[ -n "$gport" ] || { cat "$tmp/gw.err" >&2; exit 1; }

body='{"model":"mock/json","messages":[{"role":"user","content":"Book me a flight to Tokyo next week"}]}'
path=/v1/chat/completions

# paced NAME PORT RATE: one loadgen run; appends "p50 p99" to $tmp/NAME.RATE.
paced() {
    local name=$1 port=$2 rate=$3 r
    r=$("$build/loadgen" -r "$rate" -d "$seconds" -w 1 -c "$conns" -b "$body" \
        "http://127.0.0.1:$port$path" 2>/dev/null | sed -n 's/^RESULT //p')
    read -r rps p50 p90 p99 p999 _ errs lag backlog <<<"$r"
    printf '  %-12s %6s req/s  p50 %6s  p90 %6s  p99 %6s  p99.9 %7s ms  errors %s  send-lag p99 %s ms  backlog %s\n' \
        "$name" "$rps" "$p50" "$p90" "$p99" "$p999" "$errs" "$lag" "$backlog"
    echo "$p50 $p99" >>"$tmp/$name.$rate"
}

# Median of column COL of FILE.
median() { sort -g -k"$2,$2" "$1" | awk -v c="$2" '{ v[NR] = $c } END { print v[int((NR + 1) / 2)] }'; }

# summary RATE NAME...: medians of each target and of (target - first target) per round.
summary() {
    local rate=$1 base=$2
    shift
    for name in "$@"; do
        printf '  median %-9s p50 %6s ms  p99 %6s ms' "$name" "$(median "$tmp/$name.$rate" 1)" \
            "$(median "$tmp/$name.$rate" 2)"
        if [ "$name" != "$base" ]; then
            paste -d' ' "$tmp/$base.$rate" "$tmp/$name.$rate" |
                awk '{ print $3 - $1, $4 - $2 }' >"$tmp/$name.$rate.diff"
            printf '   added: p50 %+.3f ms  p99 %+.3f ms (median of rounds; p99 range %s..%s)' \
                "$(median "$tmp/$name.$rate.diff" 1)" "$(median "$tmp/$name.$rate.diff" 2)" \
                "$(sort -g -k2,2 "$tmp/$name.$rate.diff" | head -n1 | cut -d' ' -f2)" \
                "$(sort -g -k2,2 "$tmp/$name.$rate.diff" | tail -n1 | cut -d' ' -f2)"
        fi
        echo
    done
}

cat >"$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$body'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.0f %.3f %.3f\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
unpaced() {
    local name=$1 port=$2 r
    wrk -t"$threads" -c"$conns" -d1s -s "$tmp/post.lua" "http://127.0.0.1:$port$path" >/dev/null
    r=$(wrk -t"$threads" -c"$conns" -d"${seconds}s" -s "$tmp/post.lua" \
        "http://127.0.0.1:$port$path" | sed -n 's/^RESULT //p')
    read -r rps p50 p99 <<<"$r"
    printf '  %-16s %6s req/s  (closed-loop p50 %s ms, p99 %s ms)\n' "$name" "$rps" "$p50" "$p99"
}

echo "$(nproc) CPUs; $conns keep-alive connections; ${seconds}s measured per run; POST $path (non-streamed)"
for rate in $rates; do
    echo "paced (loadgen, open-loop) at $rate req/s, $repeat rounds:"
    for _ in $(seq "$repeat"); do
        paced mock-direct "$mport" "$rate"
        paced gateway "$gport" "$rate"
    done
    summary "$rate" mock-direct gateway
done
if [ $use_wrk = 1 ]; then
    echo "unpaced (wrk -t$threads -c$conns, closed-loop):"
    unpaced mock-direct "$mport"
    unpaced gateway "$gport"
fi

if [ "$model" != none ] && [ -f "$model" ]; then
    cat >"$tmp/route.yaml" <<YAML
providers:
  - model: mock/json
    base_url: http://127.0.0.1:$mport/v1
    default: true
    routing_preferences:
      - {name: travel_booking, description: booking flights and hotels}
  - model: mock/code
    base_url: http://127.0.0.1:$mport/v1
    routing_preferences:
      - {name: code_generation, description: writing new code}
archrouter:
  router: {timeout_ms: 60000}
  server: {address: 127.0.0.1, port: 0, max_concurrent: 4096, max_queue: 4096}
YAML
    serve "$tmp/route.yaml" "$tmp/route.err" -m "$model"
    rport=$served_port
    [ -n "$rport" ] || { cat "$tmp/route.err" >&2; exit 1; }
    echo "routing on: $model (every request routed: one decision at a time)"
    for rate in $rates; do
        echo "paced at $rate req/s, $repeat rounds:"
        rm -f "$tmp/mock-direct.$rate"
        for _ in $(seq "$repeat"); do
            paced mock-direct "$mport" "$rate"
            paced gw+routing "$rport" "$rate"
        done
        summary "$rate" mock-direct gw+routing
    done
    [ $use_wrk = 0 ] || { echo "unpaced:"; unpaced gw+routing "$rport"; }
fi
