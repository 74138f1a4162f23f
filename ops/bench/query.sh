#!/usr/bin/env bash
# Query latency on the embedded store: all-in-one loaded with SPANS spans by loadgen
# (as fast as it takes them), then the common queries timed ITERATIONS times each
# (trace by id of 1,000 spans, search by service, tag, duration, TraceQL), then the
# peak RSS of fetching one 50,000-span trace. A benchmark: it prints numbers, it
# asserts nothing. For the CQL backend: ops/bench/pipeline.sh ... QUERY_ITERATIONS.
#
# Usage: ops/bench/query.sh [SPANS] [ITERATIONS]   (defaults: 1000000 100)
set -euo pipefail
cd "$(dirname "$0")/../.."
spans="${1:-1000000}"; iterations="${2:-100}"
ALL_IN_ONE_FLAGS=()
. ops/bench/all-in-one.sh

echo "loading $spans spans..."
"$bench" loadgen --endpoint "http://127.0.0.1:$http/v1/traces" --seconds 100000 --total-spans "$spans"
# Background compaction after a bulk load takes both cores for a while: measure once
# the server is idle (under 5% of a core over 2 s).
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
wait_idle() {
  while :; do
    a=$(ticks); sleep 2; b=$(ticks)
    [ $(( (b - a) * 100 / (2 * hz) )) -lt 5 ] && break
  done
}
wait_idle
echo "on disk: $(du -sb "$data" | cut -f1) bytes; server RSS $(awk '/VmRSS/ {print int($2/1024)}' /proc/$pid/status) MiB"
"$bench" loadgen --endpoint "http://127.0.0.1:$http/v1/traces" --query "http://127.0.0.1:$query" --query-bench "$iterations"

# Peak RSS of answering reads only: the trace is stored (and fetched once) first, the
# server left to go idle, the peak reset, then the trace fetched again.
stored=$("$bench" loadgen --endpoint "http://127.0.0.1:$http/v1/traces" --query "http://127.0.0.1:$query" \
  --fetch-trace-spans 50000 --fetches 1)
echo "$stored"
trace_id=$(sed -n 's/.*trace_id=\([0-9a-f]*\).*/\1/p' <<<"$stored")
wait_idle  # the flush and compaction of the stored trace are not the fetch's memory
before=$(awk '/VmRSS/ {print int($2/1024)}' /proc/$pid/status)
echo 5 > "/proc/$pid/clear_refs"  # resets the peak (VmHWM) to the current RSS
"$bench" loadgen --query "http://127.0.0.1:$query" --fetch-trace-spans 50000 --trace-id "$trace_id" --fetches 5
echo "50,000-span trace: server RSS before ${before} MiB, peak while fetching it $(awk '/VmHWM/ {print int($2/1024)}' /proc/$pid/status) MiB"
