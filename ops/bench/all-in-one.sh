# Sourced by the benchmarks: builds the release binary and starts one all-in-one on
# free loopback ports with a fresh data directory, removed (and the server stopped)
# on exit. Extra all-in-one flags come from the array ALL_IN_ONE_FLAGS.
# Sets: bin (tracekeeper), bench (tracekeeper-bench), data, pid, http, grpc, zipkin, query.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${TRACEKEEPER_CACHE:-$HOME/.cache/tracekeeper}/target}"
# TRACEKEEPER_BENCH_NO_BUILD=1 runs the binaries already built (while the tree is
# being edited, an A/B series must not rebuild half way).
[ -n "${TRACEKEEPER_BENCH_NO_BUILD:-}" ] || cargo build --release -q -p tracekeeper -p tracekeeper-bench
# TRACEKEEPER_BENCH_BIN runs another tracekeeper binary (an older build, for A/B).
bin="${TRACEKEEPER_BENCH_BIN:-$CARGO_TARGET_DIR/release/tracekeeper}"
bench="$CARGO_TARGET_DIR/release/tracekeeper-bench"
data=$(mktemp -d)
trap 'kill $pid 2>/dev/null && wait $pid 2>/dev/null; rm -rf "$data"' EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
http=$(port); grpc=$(port); zipkin=$(port); query=$(port)
# Builds before Jaeger's gRPC query API have no such listener to move off 16685.
jaeger_grpc=()
if "$bin" all-in-one --help | grep -q -- --query-grpc-addr; then jaeger_grpc=(--query-grpc-addr 127.0.0.1:0); fi
RUST_LOG=warn "$bin" all-in-one --data-dir "$data" "${ALL_IN_ONE_FLAGS[@]}" \
  --otlp-http-addr 127.0.0.1:$http --otlp-grpc-addr 127.0.0.1:$grpc \
  --zipkin-addr 127.0.0.1:$zipkin --query-addr 127.0.0.1:$query "${jaeger_grpc[@]}" &
pid=$!
until curl -sf "http://127.0.0.1:$query/ready" >/dev/null; do sleep 0.1; done
