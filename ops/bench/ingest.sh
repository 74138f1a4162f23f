#!/usr/bin/env bash
# Sustained OTLP/HTTP ingest into all-in-one, with CPU, RSS, bytes on disk per span,
# and fetch latency of a 1,000-span trace. A benchmark: it prints numbers, it asserts
# nothing. Usage: ops/bench/ingest.sh [process|fsync] [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
sync_mode="${1:-process}"
seconds="${2:-20}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${TRACEKEEPER_CACHE:-$HOME/.cache/tracekeeper}/target}"
cargo build --release -q -p tracekeeper
bin="$CARGO_TARGET_DIR/release/tracekeeper"
data=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
http=$(port); grpc=$(port); zipkin=$(port); query=$(port)
RUST_LOG=warn "$bin" all-in-one --data-dir "$data" --sync "$sync_mode" \
  --otlp-http-addr 127.0.0.1:$http --otlp-grpc-addr 127.0.0.1:$grpc \
  --zipkin-addr 127.0.0.1:$zipkin --query-addr 127.0.0.1:$query &
pid=$!
until curl -sf "http://127.0.0.1:$query/ready" >/dev/null; do sleep 0.1; done

ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks); s0=$(date +%s.%N)
"$bin" loadgen --endpoint "http://127.0.0.1:$http/v1/traces" --seconds "$seconds" --total-spans $((seconds * 90000)) | tee /tmp/tracekeeper-loadgen.out
t1=$(ticks); s1=$(date +%s.%N)
spans=$(sed -n 's/.*spans=\([0-9]*\) .*/\1/p' /tmp/tracekeeper-loadgen.out)
cpu=$(python3 -c "print(f'{($t1-$t0)/$hz/($s1-$s0)*100:.0f}')")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
sleep 2
disk=$(du -sb "$data" | cut -f1)
echo "sync=$sync_mode server_cpu_percent=$cpu (of one core; 200 = both cores) peak_rss_mib=$((hwm / 1024)) disk_bytes=$disk bytes_per_span=$((disk / spans))"
"$bin" loadgen --endpoint "http://127.0.0.1:$http/v1/traces" --query "http://127.0.0.1:$query" --fetch-trace-spans 1000 --fetches 200
