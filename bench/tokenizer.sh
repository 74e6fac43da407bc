#!/usr/bin/env bash
# tokenizer.sh - the tokenizer benchmark on the reference corpus.
#
# Usage: bench/tokenizer.sh [MODEL] [extra archrouter bench options, e.g. --json]
#
# Builds the Release program if needed and runs
#   archrouter bench --tokenizer --corpus $TESTDATA/tokenizer-golden.jsonl MODEL
# MODEL defaults to the vocabulary-only Qwen2.5 GGUF of the reference data. Prints load
# time, single-thread MB/s cold (no word cache) and warm, and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${ARCHROUTER_TESTDATA:-../shared/testdata}
model=${1:-$data/qwen2-tokenizer/ggml-vocab-qwen2.5.gguf}
shift || true
[ -x build/archrouter ] || {
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target archrouter
}
exec build/archrouter bench --tokenizer --corpus "$data/tokenizer-golden.jsonl" "$@" "$model"
