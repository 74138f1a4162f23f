#!/usr/bin/env bash
# Sustained OTLP/HTTP ingest into all-in-one, with CPU, RSS, bytes on disk per span,
# and fetch latency of a 1,000-span trace. A benchmark: it prints numbers, it asserts
# nothing. Usage: ops/bench/ingest.sh [process|fsync] [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
sync_mode="${1:-process}"
seconds="${2:-20}"
ALL_IN_ONE_FLAGS=(--sync "$sync_mode")
. ops/bench/all-in-one.sh

ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks); s0=$(date +%s.%N)
"$bench" loadgen --endpoint "http://127.0.0.1:$http/v1/traces" --seconds "$seconds" --total-spans $((seconds * 90000)) | tee /tmp/tracekeeper-loadgen.out
t1=$(ticks); s1=$(date +%s.%N)
spans=$(sed -n 's/.*spans=\([0-9]*\) .*/\1/p' /tmp/tracekeeper-loadgen.out)
cpu=$(python3 -c "print(f'{($t1-$t0)/$hz/($s1-$s0)*100:.0f}')")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
sleep 2
disk=$(du -sb "$data" | cut -f1)
echo "sync=$sync_mode server_cpu_percent=$cpu (of one core; 200 = both cores) peak_rss_mib=$((hwm / 1024)) disk_bytes=$disk bytes_per_span=$((disk / spans))"
"$bench" loadgen --endpoint "http://127.0.0.1:$http/v1/traces" --query "http://127.0.0.1:$query" --fetch-trace-spans 1000 --fetches 200
