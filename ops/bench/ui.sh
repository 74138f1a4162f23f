#!/usr/bin/env bash
# The web UI benchmark: a release all-in-one, optionally loaded with SPANS spans by
# loadgen (for the search page figure), then ui/bench/ui-bench.mjs in headless
# Chromium: first rows, scroll and expand-all frame times and JS heap for traces of
# 1,000, 10,000 and 100,000 spans, and submit-to-results on the search page. It
# prints numbers and asserts nothing. Needs chromium (apt) and Node.
#
# Usage: ops/bench/ui.sh [SPANS]   (default 0: no background load)
set -euo pipefail
cd "$(dirname "$0")/../.."
spans="${1:-0}"
cache="${TRACEKEEPER_CACHE:-$HOME/.cache/tracekeeper}"
export TRACEKEEPER_NODE_DIR="$(ops/ui-deps.sh "$cache")"
ALL_IN_ONE_FLAGS=()
. ops/bench/all-in-one.sh
if [ "$spans" -gt 0 ]; then
  echo "loading $spans spans..."
  "$bench" loadgen --endpoint "http://127.0.0.1:$http/v1/traces" --seconds 100000 --total-spans "$spans"
fi
BENCH_QUERY="http://127.0.0.1:$query" BENCH_OTLP="http://127.0.0.1:$http" \
  BENCH_MACHINE="$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(chromium --version 2>/dev/null)" \
  TRACEKEEPER_BIN="$bin" node ui/bench/ui-bench.mjs
# ui-bench.mjs ends with the summary line unterminated: the server's figure completes it.
echo " server_peak_rss_mib=$(awk '/VmHWM/ {print int($2/1024)}' /proc/$pid/status)"
