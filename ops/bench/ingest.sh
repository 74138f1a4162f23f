#!/usr/bin/env bash
# Sustained OTLP/HTTP ingest into all-in-one: spans/s, server CPU and peak RSS, bytes
# on disk per span 10 s after the load stops and again after `tracekeeper compact`,
# and fetch latency of a 1,000-span trace. A benchmark: it prints numbers, it asserts
# nothing. The last line is the machine-readable summary (`SUMMARY bench=ingest ...`).
#
# Usage: ops/bench/ingest.sh [process|fsync] [SECONDS] [PRELOAD_SPANS] [EVENTS_PER_SPAN]
#   PRELOAD_SPANS    spans loaded (as fast as they are taken) before the measured
#                    SECONDS, to measure ingest into a store that already holds them.
#   EVENTS_PER_SPAN  events (logs, with attributes) on every span; the loadgen shape
#                    has none.
# Bytes on disk are blocks allocated (`du -B1`): fjall preallocates its journal as a
# sparse 64 MiB file, which `du -b` would count whole.
set -euo pipefail
cd "$(dirname "$0")/../.."
sync_mode="${1:-process}"
seconds="${2:-20}"
preload="${3:-0}"
events="${4:-0}"
ALL_IN_ONE_FLAGS=(--sync "$sync_mode")
. ops/bench/all-in-one.sh

disk() { du -s -B1 "$data" | cut -f1; }
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
if [ "$preload" -gt 0 ]; then
  echo "preloading $preload spans, 2M per run so the generated requests fit in memory..."
  left=$preload; seed=1
  while [ "$left" -gt 0 ]; do
    chunk=$(( left < 2000000 ? left : 2000000 ))
    "$bench" loadgen --endpoint "http://127.0.0.1:$http/v1/traces" --seconds 100000 --total-spans "$chunk" --seed "$seed" --events-per-span "$events" 2>/dev/null
    left=$((left - chunk)); seed=$((seed + 1))
  done
fi
t0=$(ticks); s0=$(date +%s.%N)
"$bench" loadgen --endpoint "http://127.0.0.1:$http/v1/traces" --seconds "$seconds" --total-spans $((seconds * 130000)) --events-per-span "$events" | tee /tmp/tracekeeper-loadgen.out
t1=$(ticks); s1=$(date +%s.%N)
spans=$(sed -n 's/.*spans=\([0-9]*\) .*/\1/p' /tmp/tracekeeper-loadgen.out)
rate=$(sed -n 's/.*spans_per_sec=\([0-9]*\) .*/\1/p' /tmp/tracekeeper-loadgen.out)
stored=$((spans + preload))
cpu=$(python3 -c "print(f'{($t1-$t0)/$hz/($s1-$s0)*100:.0f}')")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
sleep 10
idle_bytes=$(disk)
echo "sync=$sync_mode server_cpu_percent=$cpu (of one core; 200 = both cores) peak_rss_mib=$((hwm / 1024)) stored_spans=$stored"
echo "10 s after the load: disk_bytes=$idle_bytes bytes_per_span=$((idle_bytes / stored))"
"$bench" loadgen --endpoint "http://127.0.0.1:$http/v1/traces" --query "http://127.0.0.1:$query" --fetch-trace-spans 1000 --fetches 200 \
  | tee /tmp/tracekeeper-fetch.out
fetch_p50=$(sed -n 's/.*fetch_p50_ms=\([0-9.]*\).*/\1/p' /tmp/tracekeeper-fetch.out)
fetch_p99=$(sed -n 's/.*fetch_p99_ms=\([0-9.]*\).*/\1/p' /tmp/tracekeeper-fetch.out)
kill "$pid"; wait "$pid" || true
"$bin" compact --data-dir "$data" 2>&1 | grep -v ' INFO ' \
  || echo "(tracekeeper compact failed, or this binary has none: the next figure is not compacted)"
compacted_bytes=$(disk)
echo "after tracekeeper compact: disk_bytes=$compacted_bytes bytes_per_span=$((compacted_bytes / stored))"
echo "SUMMARY bench=ingest sync=$sync_mode preloaded_spans=$preload events_per_span=$events spans_per_sec=$rate server_cpu_percent=$cpu" \
  "peak_rss_mib=$((hwm / 1024)) bytes_per_span_idle_10s=$((idle_bytes / stored))" \
  "bytes_per_span_compacted=$((compacted_bytes / stored)) fetch_1000_p50_ms=$fetch_p50 fetch_1000_p99_ms=$fetch_p99"
