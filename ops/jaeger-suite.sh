#!/usr/bin/env bash
# Jaeger's own storage integration suite, unchanged, against tracekeeper (all-in-one on
# the embedded store, or the distributed shape on Kafka and CQL), through Jaeger's
# official remote-storage route: the real Jaeger v2 binary (v1.75.0)
# runs with its `grpc` storage backend, reading through our Jaeger remote storage API
# (--jaeger-storage-grpc-addr) and writing OTLP to our receiver, and the suite
# (cmd/jaeger/internal/integration, TestGRPCStorage with STORAGE=grpc and
# CUSTOM_STORAGE=true) writes and reads through that Jaeger, emptying the store between
# cases through our purge endpoint (--test-purge-endpoint).
#
# Usage: ops/jaeger-suite.sh TRACEKEEPER_BINARY [TOOLS_CACHE] [embedded|cql]
#   cql: a collector, an indexer and a query node on the Kafka broker and CQL node of
#   TRACEKEEPER_TEST_KAFKA and TRACEKEEPER_TEST_CQL, with a topic and keyspace of their
#   own.
# Jaeger binds its usual fixed ports (4317, 4318, 16685, 16686, 8888, 13133): run it
# when nothing else does. Prints the suite's verdict per case; exits non-zero if any
# case fails.
set -euo pipefail
tracekeeper="$1"
cache="${2:-${TRACEKEEPER_CACHE:-$HOME/.cache/tracekeeper}}"
backend="${3:-embedded}"
cd "$(dirname "$0")/.."
ops/tools.sh "$cache" > /dev/null
suite="$cache/tools/jaeger-v1.75.0"
# Jaeger's ports are fixed: a process left on one (a Jaeger from an interrupted run)
# would answer in the new one's place.
for port in 4317 4318 8888 13133 16685 16686; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is taken (by: $(ss -tlnpH "sport = :$port" 2>/dev/null | sed 's/.*users://')); Jaeger's suite needs it" >&2
    exit 1
  fi
done

data=$(mktemp -d)
# The logs of the last run stay for reading: tracekeeper's and the suite's.
logs="${TMPDIR:-/tmp}/tracekeeper-jaeger-suite-$backend"
rm -rf "$logs" && mkdir -p "$logs"
log="$logs/tracekeeper.log"
# Ports the suite's Jaeger does not take: the writer and reader endpoints it is given.
writer=127.0.0.1:4316
reader=127.0.0.1:17271
query=127.0.0.1:17686
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$data"' EXIT
start() { "$tracekeeper" "$@" >> "$log" 2>&1 & pids+=($!); }
if [ "$backend" = cql ]; then
  : "${TRACEKEEPER_TEST_KAFKA:?the cql backend needs TRACEKEEPER_TEST_KAFKA}" "${TRACEKEEPER_TEST_CQL:?and TRACEKEEPER_TEST_CQL}"
  run="jaeger_suite_$$_$(date +%s)"
  "$tracekeeper" schema apply --keyspace "tk_$run" --cql-nodes "$TRACEKEEPER_TEST_CQL" \
    --replication "{'class': 'SimpleStrategy', 'replication_factor': 1}" >> "$log" 2>&1
  kafka=(--kafka-brokers "$TRACEKEEPER_TEST_KAFKA" --kafka-topic "$run")
  cql=(--cql-nodes "$TRACEKEEPER_TEST_CQL" --keyspace "tk_$run")
  start collector "${kafka[@]}" --otlp-grpc-addr "$writer" --otlp-http-addr 127.0.0.1:14318 --zipkin-addr 127.0.0.1:0
  start indexer "${kafka[@]}" --group "$run" --kafka-dlq-topic "${run}_dlq" "${cql[@]}" --admin-addr 127.0.0.1:0
  start query "${cql[@]}" --query-addr "$query" --query-grpc-addr 127.0.0.1:0 --jaeger-storage-grpc-addr "$reader" \
    --test-purge-endpoint
  ready=("http://$query/ready" "http://127.0.0.1:14318/ready")
else
  start all-in-one --data-dir "$data/store" --otlp-grpc-addr "$writer" --otlp-http-addr 127.0.0.1:0 \
    --zipkin-addr 127.0.0.1:0 --query-addr "$query" --query-grpc-addr 127.0.0.1:0 \
    --jaeger-storage-grpc-addr "$reader" --test-purge-endpoint
  ready=("http://$query/ready")
fi
for url in "${ready[@]}"; do
  for attempt in $(seq 150); do
    curl -sf "$url" > /dev/null && break
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "tracekeeper did not start" >&2; exit 1; }
    done
    [ "$attempt" -lt 150 ] || { cat "$log" >&2; echo "tracekeeper was not ready: $url" >&2; exit 1; }
    sleep 0.2
  done
done

started=$SECONDS
cd "$suite/cmd/jaeger/internal/integration"
status=0
STORAGE=grpc CUSTOM_STORAGE=true \
  REMOTE_STORAGE_ENDPOINT="$reader" REMOTE_STORAGE_WRITER_ENDPOINT="$writer" \
  PURGER_ENDPOINT="http://$query/api/purge" \
  "$suite/integration.test" -test.run "${JAEGER_SUITE_RUN:-^TestGRPCStorage\$}" -test.v -test.timeout 20m \
  > "$logs/suite.log" 2>&1 || status=$?
grep -E '^\s*--- (PASS|FAIL|SKIP)' "$logs/suite.log" || true
if [ "$status" -ne 0 ]; then
  grep -vE 'integration.go:(164|399)' "$logs/suite.log" | tail -150 >&2
  echo "Jaeger's storage integration suite failed (exit $status; logs in $logs); tracekeeper's log:" >&2
  tail -50 "$log" >&2
fi
echo "Jaeger's storage integration suite on $backend: $((SECONDS - started)) s, exit $status"
exit "$status"
