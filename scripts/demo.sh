#!/usr/bin/env bash
# demo.sh - build archrouter and run its main job on a model.
#
# Usage: scripts/demo.sh [MODEL]
#
# Installs the build dependencies (scripts/install-deps.sh --build-only), builds the
# Release program in build/, and runs `archrouter info` on MODEL (default: the tiny test
# model with the real Qwen2.5 tokenizer from the reference data,
# ../shared/testdata/models/qwen2-tiny-a/gguf/F16.gguf).
set -euo pipefail
cd "$(dirname "$0")/.."

data=${ARCHROUTER_TESTDATA:-../shared/testdata}
model=${1:-$data/models/qwen2-tiny-a/gguf/F16.gguf}

scripts/install-deps.sh --build-only
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DAR_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target archrouter
echo
exec build/archrouter info "$model"
