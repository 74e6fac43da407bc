#!/usr/bin/env bash
# install-deps.sh - install archrouter's build and test dependencies on Debian 12 with apt.
#
# Usage: scripts/install-deps.sh [--build-only]
#
# Idempotent: packages already installed are left alone, and when nothing is missing the
# script changes nothing and needs no privileges. Otherwise it runs apt-get as root, or
# through sudo when not root. Prints every package it installs.
set -euo pipefail

# Needed to build the library and the archrouter program.
BUILD_PKGS=(
  build-essential  # gcc, make
  cmake
  pkg-config
  libjansson-dev   # JSON
  libutf8proc-dev  # Unicode (UTF-8 validation, NFC, categories)
  libyaml-dev      # routes / gateway configuration
  libcurl4-openssl-dev  # HTTP client: upstream LLMs, model download
  libmicrohttpd-dev     # HTTP server: the gateway
  libssl-dev            # libcrypto: sha256 of downloaded models (and of golden test data)
)
# Needed to run the test suite: unit tests, sanitizers, fuzzing, format check.
TEST_PKGS=(
  libcmocka-dev       # unit test framework
  clang               # libFuzzer targets
  libclang-rt-14-dev  # libFuzzer and sanitizer runtimes for clang 14
  clang-format        # style check
  chromium            # renders the eval HTML report headless (scripts/check-report.sh)
)

pkgs=("${BUILD_PKGS[@]}")
case "${1:-}" in
  --build-only) ;;
  "") pkgs+=("${TEST_PKGS[@]}") ;;
  -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "install-deps.sh: unknown option '$1'" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#pkgs[@]} packages already installed"
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
