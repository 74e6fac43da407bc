#!/usr/bin/env bash
# models.sh - the engine benchmark on Arch-Router-1.5B-shaped random-weight models.
#
# Usage: bench/models.sh [--types "F16 Q8_0 Q4_K_M"] [--dir DIR] [bench options...]
#
# Builds the Release program and tools/gen_model if needed, writes each model type once
# into DIR (default /tmp/archrouter-bench-models; 986 MB for Q4_K_M, 1.6 GB for Q8_0,
# 3.1 GB for F16; reused on later runs), then runs
#   archrouter bench [bench options] MODEL
# for each: prefill tokens/s at 64/256/512, decode tokens/s, peak RSS, logits hash.
# Pass e.g. --json, --runs 5, --threads 2, --precision fast through to the benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
types="F16 Q8_0 Q4_K_M"
dir=/tmp/archrouter-bench-models
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --types) types=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ ! -x build/archrouter ] || [ ! -x build/gen_model ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target archrouter gen_model
fi
mkdir -p "$dir"
for t in $types; do
  f=$dir/arch-router-shape-$t.gguf
  [ -f "$f" ] || build/gen_model --type "$t" "$f"
  echo "== $t"
  build/archrouter bench "${args[@]}" "$f"
done
