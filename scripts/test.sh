#!/usr/bin/env bash
# test.sh - the whole archrouter test suite, from a fresh Debian 12 machine to a verdict.
#
# Usage: scripts/test.sh [--no-fuzz] [--no-asan]
#
#   1. installs the build and test dependencies (scripts/install-deps.sh)
#   2. Release build in build/ and every CTest test (unit + golden)
#   3. ASan + UBSan build in build-asan/ and every CTest test again
#   4. libFuzzer smoke run of every fuzz target (FUZZ_SECONDS, default 30 s each)
#   5. clang-format check of every C source and header
#
# Golden tests read the reference data at ../shared/testdata (ARCHROUTER_TESTDATA
# overrides); without it they are skipped, except under CI=true where that is a failure.
# Exits non-zero on the first failing step.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzz=1
asan=1
for a in "$@"; do
  case "$a" in
    --no-fuzz) fuzz=0 ;;
    --no-asan) asan=0 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown option '$a'" >&2; exit 2 ;;
  esac
done

jobs=$(nproc 2>/dev/null || echo 2)
step() { printf '\n==== %s\n' "$*"; }

step "dependencies"
scripts/install-deps.sh

step "release build + tests (build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DAR_TESTS=ON >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"

if [[ $asan -eq 1 ]]; then
  step "ASan + UBSan build + tests (build-asan/)"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAR_SANITIZE=ON -DAR_TESTS=ON >/dev/null
  cmake --build build-asan -j "$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$jobs"
fi

if [[ $fuzz -eq 1 ]]; then
  step "fuzz smoke run (${FUZZ_SECONDS:-30} s per target)"
  scripts/fuzz.sh --seconds "${FUZZ_SECONDS:-30}"
fi

step "format check (clang-format)"
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null || find src include tests bench -name '*.[ch]')
clang-format --dry-run -Werror "${files[@]}"

step "all tests passed"
