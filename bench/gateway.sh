#!/usr/bin/env bash
# gateway.sh - what the gateway adds to a request: wrk against the mock upstream directly,
# then against `archrouter serve` in front of it (routing off), same load; then, with a
# router model (--model, default the tiny test model of the reference data when present),
# the same requests routed (2 routes): decisions/s and latency with routing on.
#
# usage: bench/gateway.sh [--build DIR] [--seconds N] [--connections C] [--threads T]
#                         [--rate R] [--model GGUF|none]
#
# Needs wrk (Debian package wrk) and a build with the tests (build/: the archrouter program
# and tests/ar_mock_upstream). wrk is closed-loop (no fixed rate: wrk2 is not in Debian),
# so without --rate the script reports the throughput reached and the latency percentiles
# at it; with --rate R each connection waits C*1000/R ms (wrk's delay() hook) between
# requests, pacing the load near R requests/s. For the mock alone and through the gateway;
# the difference is the gateway's overhead at that load. Prints one line per run:
# requests/s, p50, p90, p99 (ms).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
seconds=10
conns=16
threads=2
rate=0
model=${ARCHROUTER_TESTDATA:-../shared/testdata}/models/qwen2-tiny-a/gguf/F16.gguf
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --connections) conns=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    -h | --help) sed -n '2,15s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "gateway.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
command -v wrk >/dev/null || { echo "gateway.sh: wrk not found (apt-get install wrk)" >&2; exit 1; }
[ -x "$build/archrouter" ] && [ -x "$build/tests/ar_mock_upstream" ] ||
    { echo "gateway.sh: build $build first (cmake --build $build)" >&2; exit 1; }

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

cat >"$tmp/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"mock/json","messages":[{"role":"user","content":"Book me a flight to Tokyo next week"}]}'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.0f %.3f %.3f %.3f\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000))
end
LUA
if [ "$rate" -gt 0 ]; then
    echo "delay = function() return $((conns * 1000 / rate)) end" >>"$tmp/post.lua"
fi

run() {
    local name=$1 port=$2
    wrk -t"$threads" -c"$conns" -d2s -s "$tmp/post.lua" "http://127.0.0.1:$port/v1/chat/completions" >/dev/null
    local r
    r=$(wrk -t"$threads" -c"$conns" -d"${seconds}s" -s "$tmp/post.lua" \
        "http://127.0.0.1:$port/v1/chat/completions" | sed -n 's/^RESULT //p')
    read -r rps p50 p90 p99 <<<"$r"
    printf '%-22s %8s req/s   p50 %6s ms   p90 %6s ms   p99 %6s ms\n' "$name" "$rps" "$p50" "$p90" "$p99"
    echo "$p50 $p99" >"$tmp/$name.lat"
}
echo "wrk -t$threads -c$conns$([ "$rate" -gt 0 ] && echo ", paced to ~$rate req/s"), ${seconds}s per run, POST /v1/chat/completions (non-streamed), $(nproc) CPUs"
run mock-direct "$mport"
run gateway "$gport"
read -r d50 d99 <"$tmp/mock-direct.lat"
read -r g50 g99 <"$tmp/gateway.lat"
awk -v a="$d50" -v b="$g50" -v c="$d99" -v d="$g99" \
    'BEGIN { printf "added by the gateway:  p50 %+.3f ms   p99 %+.3f ms\n", b - a, d - c }'

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
    run gateway+routing "$rport"
fi
