#!/usr/bin/env bash
# fuzz.sh - build archrouter's libFuzzer targets (clang, ASan + UBSan) and run them.
#
# usage: scripts/fuzz.sh [--seconds N] [--jobs J] [--max-len BYTES] [target...]
#
#   target         gguf, safetensors, tokenize, tokenizer_json, config, messages, prompt,
#                  request
#                  (or with the fuzz_ prefix); default: all eight
#   --seconds N    fuzz each target for N seconds (default 30)
#   --jobs J       parallel fuzzing processes per target, libFuzzer's -fork=J (default 1:
#                  one in-process fuzzer, whose final stats are exact)
#   --max-len B    largest input, in bytes (default 128 KiB; longer seeds are cut)
#
# The long run (nightly, or before a release), one hour per target on two cores:
#
#   scripts/fuzz.sh --seconds 3600 --jobs 2
#
# Needs clang and its libFuzzer runtime (Debian 12: clang-14 and libclang-rt-14-dev),
# cmake, and the library's own -dev packages (scripts/install-deps.sh). No network.
#
# Layout (fuzz-corpus/ is git-ignored):
#   build-fuzz/                    the clang build (-DAR_FUZZ=ON -DAR_TESTS=OFF)
#   fuzz-corpus/TARGET/seed/       rewritten every run: gen_seeds' tiny models, plus the
#                                  reference models of ${ARCHROUTER_TESTDATA:-../shared/testdata}
#                                  (models/qwen2-tiny-q) when that folder exists
#   fuzz-corpus/TARGET/corpus/     the working corpus; it grows from run to run, keep it
#   fuzz-corpus/TARGET/artifacts/  crash-*, leak-*, timeout-*, oom-*, slow-unit-* inputs
#   fuzz-corpus/TARGET/fuzz.log    libFuzzer's output of the last run
#
# Reproduce a finding by running the target on the file:
#   build-fuzz/tests/fuzz/fuzz_gguf fuzz-corpus/gguf/artifacts/crash-...
# Shrink the working corpus after long runs:
#   build-fuzz/tests/fuzz/fuzz_gguf -merge=1 NEW_DIR fuzz-corpus/gguf/corpus
#
# Exit status: 0 every target ran clean; 1 a target crashed, leaked, timed out or ran out
# of memory (the reproducer's path is printed), or the build failed; 2 misuse.
set -euo pipefail

usage() {
    sed -n '4,12s/^# \{0,1\}//p' "$0"
}

die() {
    echo "fuzz.sh: $*" >&2
    exit 1
}

seconds=30
jobs=1
max_len=$((128 << 10))
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds | --jobs | --max-len)
        if [ $# -lt 2 ] || ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then
            echo "fuzz.sh: $1 needs a positive integer" >&2
            usage >&2
            exit 2
        fi
        case "$1" in
        --seconds) seconds=$2 ;;
        --jobs) jobs=$2 ;;
        --max-len) max_len=$2 ;;
        esac
        shift 2
        ;;
    -h | --help) usage; exit 0 ;;
    gguf | fuzz_gguf) targets+=(gguf); shift ;;
    safetensors | fuzz_safetensors) targets+=(safetensors); shift ;;
    tokenize | fuzz_tokenize) targets+=(tokenize); shift ;;
    tokenizer_json | fuzz_tokenizer_json) targets+=(tokenizer_json); shift ;;
    config | fuzz_config) targets+=(config); shift ;;
    messages | fuzz_messages) targets+=(messages); shift ;;
    prompt | fuzz_prompt) targets+=(prompt); shift ;;
    request | fuzz_request) targets+=(request); shift ;;
    *) echo "fuzz.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
all_targets=(gguf safetensors tokenize tokenizer_json config messages prompt request)
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build="build-fuzz"
corpus_root=fuzz-corpus
testdata=${ARCHROUTER_TESTDATA:-../shared/testdata}
mkdir -p "$corpus_root"

# ---- build -------------------------------------------------------------------------------
command -v "${FUZZ_CC:-clang}" >/dev/null || die "clang not found (Debian: apt-get install clang)"
echo "fuzz.sh: building $build (CC=${FUZZ_CC:-clang}, ASan + UBSan + libFuzzer)"
if ! CC=${FUZZ_CC:-clang} cmake -S . -B "$build" -DAR_FUZZ=ON -DAR_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$corpus_root/build.log" 2>&1 ||
    ! cmake --build "$build" --target fuzz_gguf fuzz_safetensors fuzz_tokenize fuzz_tokenizer_json fuzz_config \
        fuzz_messages fuzz_prompt fuzz_request gen_seeds \
        -j "$(nproc 2>/dev/null || echo 2)" >>"$corpus_root/build.log" 2>&1; then
    tail -n 30 "$corpus_root/build.log" >&2
    die "build failed (full log: $corpus_root/build.log)"
fi
bin=$build/tests/fuzz

# ---- seeds -------------------------------------------------------------------------------
for t in "${all_targets[@]}"; do
    rm -rf "${corpus_root:?}/$t/seed"
    mkdir -p "$corpus_root/$t/seed" "$corpus_root/$t/corpus" "$corpus_root/$t/artifacts"
done
"$bin/gen_seeds" "$corpus_root/gguf/seed" "$corpus_root/safetensors/seed" \
    "$corpus_root/tokenize/seed" "$corpus_root/tokenizer_json/seed" >/dev/null ||
    die "gen_seeds failed: a seed model no longer opens (see the message above)"
# Text seeds: the example configurations, and a few chat requests.
cp examples/*.yaml "$corpus_root/config/seed/"
printf 'routes:\n  - {name: a, description: d, model: m}\narchrouter: {router: {threads: 2}, server: {port: 0, api_keys: [$K]}}\n' \
    >"$corpus_root/config/seed/native-min.yaml"
printf 'listeners: [{type: model, name: m, port: 1, timeout: 5s}]\nmodel_providers: [{model: a/b, endpoint: h, protocol: https}]\nrouting_preferences: [{name: r, description: d, models: [b]}]\nmodel_aliases: {x: {target: b}}\n' \
    >"$corpus_root/config/seed/archgw-list.yaml"
printf '\000\000hello\000\001Sure?\000\000Book a flight, caf\303\251 \342\230\203 <|im_end|>' \
    >"$corpus_root/prompt/seed/conversation.bin"
printf '[{"role":"system","content":"s"},{"role":"user","content":"hi"}]' \
    >"$corpus_root/messages/seed/plain.json"
printf '{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"u"}}]},{"role":"assistant","content":null,"tool_calls":[]},{"role":"tool","content":"x"}]}' \
    >"$corpus_root/messages/seed/request.json"
cp "$corpus_root/messages/seed/"*.json "$corpus_root/request/seed/"
printf '{ "temperature": 1.50, "model" : "gpt-4o",\n "stream": true, "messages": [{"role": "user", "content": "hi"}], "n": 1e0 }' \
    >"$corpus_root/request/seed/spaced.json"
printf '{"mod\\u0065l":"x","messages":[{"role":"user","content":"hi"}]}' \
    >"$corpus_root/request/seed/escaped-key.json"
# Reference models: real llama.cpp / Hugging Face headers. Inputs are cut to max_len, so the
# large ones keep their header and metadata but lose tensor data (raise --max-len to fuzz
# them whole, at a fraction of the speed).
tiny_q=$testdata/models/qwen2-tiny-q
if [ -d "$tiny_q" ]; then
    for f in "$tiny_q"/gguf/*.gguf; do
        if [ -f "$f" ]; then
            head -c "$max_len" "$f" >"$corpus_root/gguf/seed/ref-$(basename "$f")"
        fi
    done
    # fuzz_safetensors input = selector byte + image; config 2 has this checkpoint's shape.
    if [ -f "$tiny_q/model.safetensors" ]; then
        { printf '\002'; head -c "$((max_len - 1))" "$tiny_q/model.safetensors"; } \
            >"$corpus_root/safetensors/seed/ref-qwen2-tiny-q.st"
    fi
else
    echo "fuzz.sh: no reference data at $testdata; seeding with generated models only"
fi

# ---- run ---------------------------------------------------------------------------------
# Prints "execs/s, cov" of a finished run from its log.
summarize() {
    local log=$1
    if [ "$jobs" -eq 1 ]; then
        local execs rate cov
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2 || true)
        echo "execs: ${execs:-?}  execs/s: ${rate:-?}  cov: ${cov:-?}"
    else
        # Fork mode: "#N: cov: C ft: F corp: K exec/s E ... time: Ts ..." per merge.
        local last
        last=$(grep -E '^#[0-9]+: cov: ' "$log" | tail -n 1 || true)
        [ -n "$last" ] || { echo "execs: ?  execs/s: ?  cov: ?"; return; }
        local n cov t
        n=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")
        cov=$(sed -E 's/.* cov: ([0-9]+).*/\1/' <<<"$last")
        t=$(sed -E 's/.* time: ([0-9]+)s.*/\1/' <<<"$last")
        echo "execs: $n  execs/s: $((n / (t > 0 ? t : 1)))  cov: $cov  (fork=$jobs)"
    fi
}

# The first lines of a sanitizer or harness report.
report='ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|fuzz check failed'
report+='|ALARM|out-of-memory'

failed=0
for t in "${targets[@]}"; do
    dir=$corpus_root/$t
    log=$dir/fuzz.log
    args=(-max_total_time="$seconds" -max_len="$max_len" -dict="tests/fuzz/dict/$t.dict"
        -print_final_stats=1 -timeout=30 -artifact_prefix="$dir/artifacts/")
    [ "$jobs" -gt 1 ] && args+=(-fork="$jobs")
    echo "fuzz.sh: fuzz_$t for ${seconds}s (log: $log)"
    touch "$dir/.started"
    rc=0
    "$bin/fuzz_$t" "${args[@]}" "$dir/corpus" "$dir/seed" >"$log" 2>&1 || rc=$?
    echo "fuzz.sh: fuzz_$t: $(summarize "$log")"
    # Fork mode sets aside inputs that time out or run out of memory, and its corpus merge
    # skips crashing seeds, exiting 0 either way: the new files in artifacts/ tell.
    found=$(find "$dir/artifacts" -type f -newer "$dir/.started" \
        \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
    slow=$(find "$dir/artifacts" -type f -newer "$dir/.started" -name 'slow-unit-*' | sort)
    [ -z "$slow" ] || echo "fuzz.sh: fuzz_$t: slow inputs (over 10 s): ${slow//$'\n'/ }"
    if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
        failed=1
        echo "fuzz.sh: fuzz_$t FAILED (exit status $rc):" >&2
        grep -m 3 -E "$report" "$log" >&2 || true
        for f in $found; do echo "  reproducer: $f" >&2; done
        echo "  reproduce: $bin/fuzz_$t <reproducer>; full report in $log" >&2
    fi
done
exit "$failed"
