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
  curl                # the curl program: a real client of the gateway (test_cli_serve)
  prometheus          # promtool check metrics: the gateway's /metrics text (test_gateway)
  wrk                 # HTTP load generator: bench/gateway.sh
)
# Node.js and npm run the openai SDK as a gateway client (tests/e2e/node). A node already
# on the PATH (Debian's or another distribution's, which may bundle npm) is used as is;
# otherwise Debian's nodejs and npm packages are installed (Debian ships npm separately).

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
if [[ "${1:-}" != "--build-only" ]]; then
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi

# The openai npm package for tests/e2e/node (pinned by its package-lock.json).
node_sdk() {
  if [[ "${1:-}" != "--build-only" ]] && command -v npm >/dev/null 2>&1; then
    dir="$(cd "$(dirname "$0")/.." && pwd)/tests/e2e/node"
    if [[ ! -f "$dir/node_modules/openai/package.json" ]]; then
      echo "install-deps: npm ci in tests/e2e/node"
      npm ci --prefix "$dir" --no-audit --no-fund
    fi
  fi
}

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#pkgs[@]} packages already installed"
  node_sdk "${1:-}"
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
node_sdk "${1:-}"
echo "install-deps: done"
