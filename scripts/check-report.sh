#!/usr/bin/env bash
# check-report.sh - render an `archrouter eval --report` page in headless Chromium and check
# that it drew something.
#
# Usage: scripts/check-report.sh REPORT.html [OUT.png]
#
# Takes a 1200x1800 screenshot with Debian's `chromium` (no network is needed: the page is
# self-contained) and checks that the PNG exists, has the PNG signature, and is larger
# than a blank page would compress to (8 KB). Exit 0 when it passes, 1 when it does not,
# 2 for usage errors or when chromium is not installed.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 || "$1" == -h || "$1" == --help ]]; then
  sed -n '4,10p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
html=$(realpath "$1")
png=${2:-${html%.html}.png}
browser=$(command -v chromium || command -v chromium-browser || true)
if [[ -z "$browser" ]]; then
  echo "check-report.sh: chromium is not installed (apt-get install chromium)" >&2
  exit 2
fi
[[ -r "$html" ]] || { echo "check-report.sh: cannot read $html" >&2; exit 1; }
rm -f "$png"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --user-data-dir="$profile" --window-size=1200,1800 --screenshot="$png" \
  "file://$html" >/dev/null 2>&1 || true
if [[ ! -s "$png" ]]; then
  echo "check-report.sh: chromium wrote no screenshot for $html" >&2
  exit 1
fi
sig=$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')
if [[ "$sig" != "89504e470d0a1a0a" ]]; then
  echo "check-report.sh: $png is not a PNG" >&2
  exit 1
fi
size=$(stat -c %s "$png")
if (( size < 8192 )); then
  echo "check-report.sh: $png is only $size bytes: the page looks blank" >&2
  exit 1
fi
echo "check-report.sh: $png ($size bytes) rendered from $html"
