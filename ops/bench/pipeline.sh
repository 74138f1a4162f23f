#!/usr/bin/env bash
# The distributed pipeline under load: loadgen → collector → Kafka (6 partitions) →
# INDEXERS indexers → Cassandra ← query. A benchmark: it prints numbers, it asserts
# nothing.
#
# Usage: ops/bench/pipeline.sh INDEXERS SECONDS RATE [QUERY_ITERATIONS]
#   RATE  spans/s offered (0: as fast as the collector takes them, to saturate the
#         indexers).
#   QUERY_ITERATIONS  when given, then times the common queries against the query
#         node that many times each (`loadgen --query-bench`).
# TRACEKEEPER_BENCH_TOTAL_SPANS sets how many spans the load sends at most (the load
# stops at SECONDS or when they are all sent); by default enough for SECONDS.
# Prints: spans/s indexed (until every partition's lag is 0), CQL rows per span and
# writes/s, CPU of each process, and freshness (ack → searchable) p50/p99 from probes
# sent alongside the load. The last line is the machine-readable summary
# (`SUMMARY bench=pipeline ...`).
# Uses TRACEKEEPER_TEST_KAFKA / TRACEKEEPER_TEST_CQL when set, else starts the local
# stack, with a 4G Cassandra heap unless TRACEKEEPER_CASSANDRA_HEAP says otherwise.
# TRACEKEEPER_BENCH_CLUSTER=1 runs on a cluster instead: three Cassandra nodes (2G heaps
# unless TRACEKEEPER_CASSANDRA_HEAP says otherwise) and three brokers from
# `tracekeeper-stack up --cassandra-nodes 3 --kafka-brokers 3`, the keyspace at
# schema apply's default (3 replicas) and the topic at the brokers' (3, min ISR 2).
# CPU is then summed over the nodes of each kind, and the bytes the Cassandra nodes
# wrote to disk (commit log, flushes, compaction; /proc/PID/io) are reported per span.
# Before the measured run, a warm-up run of TRACEKEEPER_BENCH_WARMUP_SECONDS (default
# 60; 0 skips it) at RATE, in its own keyspace and topic, so that the measured run
# finds Cassandra and Kafka warmed up (their JVMs compile the write path in the first
# half minute) rather than freshly started. Its freshness is printed and is in the
# summary line too (warmup_freshness_p50_ms, warmup_freshness_p99_ms).
set -euo pipefail
cd "$(dirname "$0")/../.."
indexers="${1:-1}"; seconds="${2:-30}"; rate="${3:-0}"; query_iterations="${4:-}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${TRACEKEEPER_CACHE:-$HOME/.cache/tracekeeper}/target}"
export TRACEKEEPER_OPS_DIR="$PWD/ops/stack"
cluster="${TRACEKEEPER_BENCH_CLUSTER:-0}"
export TRACEKEEPER_BENCH_CLUSTER="$cluster"
if [ "$cluster" = 1 ]; then
  export TRACEKEEPER_CASSANDRA_HEAP="${TRACEKEEPER_CASSANDRA_HEAP:-2G}"
else
  export TRACEKEEPER_CASSANDRA_HEAP="${TRACEKEEPER_CASSANDRA_HEAP:-4G}"
fi
cargo build --release -q -p tracekeeper -p tracekeeper-bench -p tracekeeper-stack
bin="$CARGO_TARGET_DIR/release/tracekeeper"
bench="$CARGO_TARGET_DIR/release/tracekeeper-bench"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
if [ -z "${TRACEKEEPER_TEST_KAFKA:-}" ]; then
  shape=()
  [ "$cluster" = 1 ] && shape=(--cassandra-nodes 3 --kafka-brokers 3)
  "$CARGO_TARGET_DIR/release/tracekeeper-stack" up "${shape[@]}" --env-file "$work/stack.env" >"$work/stack.log" 2>&1 &
  pids+=($!)
  until grep -q "^ready" "$work/stack.log" 2>/dev/null; do
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/stack.log"; exit 1; }
    sleep 1
  done
  set -a; . "$work/stack.env"; set +a
  if [ "$cluster" = 1 ]; then
    export TRACEKEEPER_TEST_KAFKA="$TRACEKEEPER_TEST_CLUSTER_KAFKA" TRACEKEEPER_TEST_CQL="$TRACEKEEPER_TEST_CLUSTER_CQL"
  fi
fi
warmup="${TRACEKEEPER_BENCH_WARMUP_SECONDS:-60}"
warmup_summary="warmup_seconds=0"
if [ "$warmup" -gt 0 ]; then
  echo "warm-up run: $warmup s at $rate spans/s..."
  TRACEKEEPER_BENCH_WARMUP_SECONDS=0 TRACEKEEPER_BENCH_TOTAL_SPANS= "$0" "$indexers" "$warmup" "$rate" >"$work/warmup.log" 2>&1
  warmed=$(grep -o 'freshness_p50_ms=[0-9]* freshness_p99_ms=[0-9]*' "$work/warmup.log" | tail -1 || true)
  echo "warm-up run: ${warmed:-no freshness figures}"
  warmup_summary="warmup_seconds=$warmup $(echo "${warmed:-}" | sed 's/freshness_/warmup_freshness_/g')"
fi
kafka="$TRACEKEEPER_TEST_KAFKA"; cql="$TRACEKEEPER_TEST_CQL"
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
run="bench_$(date +%s)"
"$CARGO_TARGET_DIR/release/tracekeeper-stack" topic --brokers "$kafka" --name "$run" --partitions 6
replication=(--replication "{'class': 'SimpleStrategy', 'replication_factor': 1}")
[ "$cluster" = 1 ] && replication=()
"$bin" schema apply --cql-nodes "$cql" --keyspace "$run" "${replication[@]}" >/dev/null 2>&1

http=$(port)
RUST_LOG=warn "$bin" collector --kafka-brokers "$kafka" --kafka-topic "$run" --otlp-http-addr 127.0.0.1:$http \
  --otlp-grpc-addr 127.0.0.1:$(port) --zipkin-addr 127.0.0.1:$(port) & pids+=($!); collector=$!
admins=(); indexer_pids=()
for i in $(seq "$indexers"); do
  a=127.0.0.1:$(port); admins+=("$a")
  RUST_LOG=warn "$bin" indexer --kafka-brokers "$kafka" --kafka-topic "$run" --group "$run" --cql-nodes "$cql" \
    --keyspace "$run" --admin-addr "$a" & pids+=($!); indexer_pids+=($!)
done
query=127.0.0.1:$(port)
RUST_LOG=warn "$bin" query --cql-nodes "$cql" --keyspace "$run" --query-addr "$query" --query-grpc-addr 127.0.0.1:0 & pids+=($!); query_pid=$!
for a in "${admins[@]}" "$query" 127.0.0.1:$http; do until curl -sf "http://$a/ready" >/dev/null; do sleep 0.2; done; done
# Ready indexers may still be forming their consumer group: the load starts once every
# partition has an owner and every indexer owns some (at most 60 s), so that freshness
# is measured in the steady state rather than across the group's first rebalances.
owned() { curl -sf "http://$query/api/status" | python3 -c 'import json,sys
ps = json.load(sys.stdin)["partitions"]; owners = {p.get("owner") for p in ps}
print(int(len(ps) == 6 and None not in owners and "" not in owners and len(owners) == min('"$indexers"', 6)))'; }
for _ in $(seq 300); do [ "$(owned 2>/dev/null)" = 1 ] && break; sleep 0.2; done

kafka_pids=$(pgrep -f 'kafka.Kafka' | paste -sd,); cassandra_pids=$(pgrep -f 'CassandraDaemon' | paste -sd,)
cassandra_pid=${cassandra_pids%%,*}
# CPU ticks of one process, or summed over a comma-separated list.
ticks() { local sum=0 p; for p in ${1//,/ }; do sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$sum"; }
written() { local sum=0 p; for p in ${1//,/ }; do sum=$((sum + $(awk '/^write_bytes/ {print $2}' "/proc/$p/io"))); done; echo "$sum"; }
declare -A t0
watch=("collector:$collector" "query:$query_pid" "kafka:$kafka_pids" "cassandra:$cassandra_pids")
disk0=$(written "$cassandra_pids")
# Busy ticks of the whole machine (every process, the load generator's too).
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
machine0=$(busy)
for i in "${!indexer_pids[@]}"; do watch+=("indexer$((i + 1)):${indexer_pids[$i]}"); done
for w in "${watch[@]}"; do t0[$w]=$(ticks "${w#*:}"); done
s0=$(date +%s.%N)

total=${TRACEKEEPER_BENCH_TOTAL_SPANS:-$(( rate > 0 ? rate * seconds : 120000 * seconds ))}
"$bench" loadgen --endpoint "http://127.0.0.1:$http/v1/traces" --seconds "$seconds" --rate "$rate" \
  --total-spans "$total" >"$work/load.out" 2>/dev/null &
load=$!
"$bench" loadgen --endpoint "http://127.0.0.1:$http/v1/traces" --query "http://$query" \
  --freshness-probes $(( seconds * 4 - 8 )) --probe-interval-ms 250 >"$work/fresh.out" 2>&1 &
fresh=$!
wait $load
lag() { curl -sf "http://$query/api/status" | python3 -c 'import json,sys; print(sum(p["lag"] for p in json.load(sys.stdin)["partitions"]))'; }
sleep 1
until [ "$(lag)" = 0 ]; do sleep 0.5; done
s1=$(date +%s.%N)
disk1=$(written "$cassandra_pids")
machine1=$(busy)
# Every process's CPU is read at the end of the measured window too, not after the
# freshness probes finish.
declare -A t1
for w in "${watch[@]}"; do t1[$w]=$(ticks "${w#*:}"); done
wait $fresh || true
hz=$(getconf CLK_TCK)
spans=$(sed -n 's/.*spans=\([0-9]*\) .*/\1/p' "$work/load.out")
rows=0
for a in "${admins[@]}"; do
  curl -sf "http://$a/metrics" | grep '^tracekeeper_cql_rows_written_total' >>"$work/rows.txt" || true
done
rows=$(awk '{s += $2} END {print s + 0}' "$work/rows.txt")
# Rows per span by table, to see where the writes go.
awk -v spans="$spans" '{match($1, /table="[^"]*"/); t = substr($1, RSTART + 7, RLENGTH - 8); r[t] += $2}
  END {printf "CQL rows per span by table:"; for (t in r) printf " %s=%.3f", t, r[t] / spans; print ""}' "$work/rows.txt"
elapsed=$(python3 -c "print($s1 - $s0)")
echo "keyspace=$run indexers=$indexers offered_rate=$rate $(cat "$work/load.out")"
summary=$(python3 - "$spans" "$rows" "$elapsed" <<PY
import sys
spans, rows, elapsed = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
print(f"indexed_spans_per_sec={spans / elapsed:.0f} cql_rows_per_span={rows / spans:.2f} cql_writes_per_sec={rows / elapsed:.0f}")
PY
)
echo "$summary (all $spans spans searchable after $elapsed s)"
disk_per_span=$(( (disk1 - disk0) / spans ))
echo "Cassandra wrote $(( (disk1 - disk0) / 1048576 )) MiB to disk over $(echo "$cassandra_pids" | tr , '\n' | wc -l) node(s): $disk_per_span bytes per span"
summary="$summary cassandra_disk_bytes_per_span=$disk_per_span"
summary="SUMMARY bench=pipeline indexers=$indexers offered_rate=$rate spans=$spans $warmup_summary $summary"
for w in "${watch[@]}"; do
  t=${t1[$w]}
  cpu=$(python3 -c "print(f'{($t - ${t0[$w]}) / $hz / $elapsed * 100:.0f}')")
  echo "cpu ${w%%:*}: $cpu% of one core"
  summary="$summary cpu_${w%%:*}_percent=$cpu"
done
machine=$(python3 -c "print(f'{($machine1 - $machine0) / $hz / $elapsed * 100:.0f}')")
echo "cpu of the whole machine: $machine% of one core ($(nproc) cores)"
summary="$summary cpu_machine_percent=$machine"
cat "$work/fresh.out"
summary="$summary $(grep -o 'freshness_p50_ms=[0-9]* freshness_p99_ms=[0-9]*' "$work/fresh.out" || true)"
if [ -n "$query_iterations" ]; then
  # Searches are timed once Cassandra has finished compacting what the load flushed
  # (under 15% of a core for 3 s in a row, at most 120 s), as the embedded benchmark
  # waits for its idle flush: a bulk load's compactions are not the steady state.
  quiet=0; waited=0
  while [ "$quiet" -lt 3 ] && [ "$waited" -lt 120 ]; do
    a=$(ticks "$cassandra_pid"); sleep 1; b=$(ticks "$cassandra_pid"); waited=$((waited + 1))
    if [ $(( (b - a) * 100 / hz )) -lt 15 ]; then quiet=$((quiet + 1)); else quiet=0; fi
  done
  echo "Cassandra settled after ${waited} s"
  "$bench" loadgen --endpoint "http://127.0.0.1:$http/v1/traces" --query "http://$query" --query-bench "$query_iterations" \
    | tee "$work/queries.out"
  summary="$summary$(awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    printf " %s_p99_ms=%s", f["query"], f["p99_ms"] }' "$work/queries.out")"
  # Peak RSS of the query node fetching a 50,000-span trace (stored and fetched once
  # first, so that only the reads are in the figure).
  stored=$("$bench" loadgen --endpoint "http://127.0.0.1:$http/v1/traces" --query "http://$query" \
    --fetch-trace-spans 50000 --fetches 1)
  echo "$stored"
  trace_id=$(sed -n 's/.*trace_id=\([0-9a-f]*\).*/\1/p' <<<"$stored")
  before=$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$query_pid/status")
  echo 5 > "/proc/$query_pid/clear_refs"
  "$bench" loadgen --query "http://$query" --fetch-trace-spans 50000 --trace-id "$trace_id" --fetches 5 | tee "$work/fetch.out"
  peak=$(awk '/VmHWM/ {print int($2/1024)}' "/proc/$query_pid/status")
  echo "50,000-span trace: query node RSS before ${before} MiB, peak while fetching it $peak MiB"
  summary="$summary fetch_50000_p50_ms=$(sed -n 's/.*fetch_p50_ms=\([0-9.]*\).*/\1/p' "$work/fetch.out") fetch_50000_rss_rise_mib=$((peak - before))"
fi
echo "$summary"
