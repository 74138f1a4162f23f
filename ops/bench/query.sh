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
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${TRACEKEEPER_CACHE:-$HOME/.cache/tracekeeper}/target}"
cargo build --release -q -p tracekeeper
bin="$CARGO_TARGET_DIR/release/tracekeeper"
data=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
http=$(port); grpc=$(port); zipkin=$(port); query=$(port)
RUST_LOG=warn "$bin" all-in-one --data-dir "$data" \
  --otlp-http-addr 127.0.0.1:$http --otlp-grpc-addr 127.0.0.1:$grpc \
  --zipkin-addr 127.0.0.1:$zipkin --query-addr 127.0.0.1:$query &
pid=$!
until curl -sf "http://127.0.0.1:$query/ready" >/dev/null; do sleep 0.1; done

echo "loading $spans spans..."
"$bin" loadgen --endpoint "http://127.0.0.1:$http/v1/traces" --seconds 100000 --total-spans "$spans"
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
"$bin" loadgen --endpoint "http://127.0.0.1:$http/v1/traces" --query "http://127.0.0.1:$query" --query-bench "$iterations"

# Peak RSS of answering reads only: the trace is stored (and fetched once) first, the
# server left to go idle, the peak reset, then the trace fetched again.
stored=$("$bin" loadgen --endpoint "http://127.0.0.1:$http/v1/traces" --query "http://127.0.0.1:$query" \
  --fetch-trace-spans 50000 --fetches 1)
echo "$stored"
trace_id=$(sed -n 's/.*trace_id=\([0-9a-f]*\).*/\1/p' <<<"$stored")
wait_idle  # the flush and compaction of the stored trace are not the fetch's memory
before=$(awk '/VmRSS/ {print int($2/1024)}' /proc/$pid/status)
echo 5 > "/proc/$pid/clear_refs"  # resets the peak (VmHWM) to the current RSS
"$bin" loadgen --query "http://127.0.0.1:$query" --fetch-trace-spans 50000 --trace-id "$trace_id" --fetches 5
echo "50,000-span trace: server RSS before ${before} MiB, peak while fetching it $(awk '/VmHWM/ {print int($2/1024)}' /proc/$pid/status) MiB"
