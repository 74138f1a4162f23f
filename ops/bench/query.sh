#!/usr/bin/env bash
# Query latency on the embedded store: all-in-one loaded with SPANS spans by loadgen
# (as fast as it takes them), then the common queries timed ITERATIONS times each
# (trace by id of 1,000 spans, search by service, tag, duration, TraceQL), then the
# peak RSS of fetching one 50,000-span trace. A benchmark: it prints numbers, it
# asserts nothing. For the CQL backend: ops/bench/pipeline.sh ... QUERY_ITERATIONS.
# The last line is the machine-readable summary (`SUMMARY bench=query ...`).
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
# all-in-one writes its memtables out 3 s after writes pause: let that happen first.
wait_idle() {
  sleep 5
  while :; do
    a=$(ticks); sleep 2; b=$(ticks)
    [ $(( (b - a) * 100 / (2 * hz) )) -lt 5 ] && break
  done
}
wait_idle
disk=$(du -s -B1 "$data" | cut -f1)
echo "on disk: $disk bytes ($((disk / spans)) per span); server RSS $(awk '/VmRSS/ {print int($2/1024)}' /proc/$pid/status) MiB"
"$bench" loadgen --endpoint "http://127.0.0.1:$http/v1/traces" --query "http://127.0.0.1:$query" --query-bench "$iterations" \
  | tee /tmp/tracekeeper-query-bench.out

# Peak RSS of answering reads only: the trace is stored (and fetched once) first, the
# server left to go idle, the peak reset, then the trace fetched again.
stored=$("$bench" loadgen --endpoint "http://127.0.0.1:$http/v1/traces" --query "http://127.0.0.1:$query" \
  --fetch-trace-spans 50000 --fetches 1)
echo "$stored"
trace_id=$(sed -n 's/.*trace_id=\([0-9a-f]*\).*/\1/p' <<<"$stored")
wait_idle  # the flush and compaction of the stored trace are not the fetch's memory
before=$(awk '/VmRSS/ {print int($2/1024)}' /proc/$pid/status)
echo 5 > "/proc/$pid/clear_refs"  # resets the peak (VmHWM) to the current RSS
"$bench" loadgen --query "http://127.0.0.1:$query" --fetch-trace-spans 50000 --trace-id "$trace_id" --fetches 5 \
  | tee /tmp/tracekeeper-fetch.out
peak=$(awk '/VmHWM/ {print int($2/1024)}' /proc/$pid/status)
echo "50,000-span trace: server RSS before ${before} MiB, peak while fetching it ${peak} MiB"
queries=$(awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
  printf " %s_p50_ms=%s %s_p99_ms=%s", f["query"], f["p50_ms"], f["query"], f["p99_ms"] }' /tmp/tracekeeper-query-bench.out)
echo "SUMMARY bench=query spans=$spans bytes_per_span=$((disk / spans))$queries" \
  "fetch_50000_p50_ms=$(sed -n 's/.*fetch_p50_ms=\([0-9.]*\).*/\1/p' /tmp/tracekeeper-fetch.out)" \
  "fetch_50000_rss_rise_mib=$((peak - before))"
