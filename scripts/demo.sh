#!/usr/bin/env bash
# demo.sh - build archrouter and run its main job: route example conversations.
#
# Usage: scripts/demo.sh [MODEL]
#
# Installs the build dependencies (scripts/install-deps.sh --build-only), builds the
# Release program in build/, finds the router model and routes a handful of example
# conversations through examples/routes.yaml (7 routes: code generation, bug fixing,
# travel, image editing, legal summary, math, small talk), printing route, model,
# probability and latency for each.
#
# The model: MODEL if given, else $ARCHROUTER_MODEL, else the official
# Arch-Router-1.5B Q4_K_M GGUF, downloaded once with `archrouter pull` into the cache
# (~/.cache/archrouter; see docs/pull.md). Offline, the script says what to do.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --build-only
# Tests stay configured when their dependencies are there (a checkout that also runs
# scripts/test.sh shares build/); only the program is built here.
tests=$(pkg-config --exists cmocka 2>/dev/null && echo ON || echo OFF)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DAR_TESTS="$tests" >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target archrouter
echo

model=${1:-${ARCHROUTER_MODEL:-}}
if [[ -z "$model" ]]; then
  echo "demo: no MODEL or ARCHROUTER_MODEL given; fetching the router model (cached after the first time)"
  if ! model=$(build/archrouter pull); then
    cat >&2 <<'MSG'

demo: the router model could not be downloaded (see the message above). Either
  - connect to the internet (or set HF_ENDPOINT to a Hugging Face mirror) and run again, or
  - copy Arch-Router-1.5B-Q4_K_M.gguf (huggingface.co/katanemo/Arch-Router-1.5B.gguf) to
    this machine and run:   scripts/demo.sh /path/to/Arch-Router-1.5B-Q4_K_M.gguf
    (or set ARCHROUTER_MODEL to that path).
MSG
    exit 1
  fi
fi

echo "demo: routing example conversations with $model"
echo
build/archrouter route -c examples/routes.yaml -m "$model" \
  "Write a Python function that merges two sorted lists." \
  "My Go server panics with 'nil map assignment' when a request comes in. What is wrong?" \
  "Find me a hotel in Kyoto for three nights starting Friday." \
  "Remove the background from this product photo and make it white." \
  "Summarize the termination clauses of this employment contract." \
  "How do I solve x^2 - 5x + 6 = 0, step by step?"
echo
echo "demo: a multi-turn conversation (examples/conversation.json); the user changes topic:"
build/archrouter route -c examples/routes.yaml -m "$model" -f examples/conversation.json
