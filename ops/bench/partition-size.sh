#!/usr/bin/env bash
# Largest and mean partition size of each tracekeeper table in KEYSPACE, from the local
# stack's Cassandra (nodetool over its JMX port, after a flush). A benchmark aid.
# With SPANS (the number of spans stored), also the bytes per span on disk before and
# after a major compaction of the keyspace (`nodetool compact`).
# Usage: ops/bench/partition-size.sh KEYSPACE [SPANS]
set -euo pipefail
cd "$(dirname "$0")/../.."
keyspace="$1"; spans="${2:-}"
pid=$(pgrep -f CassandraDaemon | head -1)
jmx=$(tr '\0' '\n' < "/proc/$pid/cmdline" | sed -n 's/^-Dcassandra.jmx.local.port=//p')
jars="$(ops/stack/fetch.sh cassandra)/libs"
java="$(ls -d /usr/lib/jvm/java-17-openjdk-*/bin/java | head -1)"
# Cassandra's tools need the same module openings as the server (ops/stack/cassandra.sh).
opens=(--add-exports=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
       --add-exports=java.base/jdk.internal.misc=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED
       --add-opens=java.base/java.io=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED
       --add-exports=java.base/jdk.internal.ref=ALL-UNNAMED --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED)
nodetool() {
  "$java" "${opens[@]}" -Dcassandra.logdir=/tmp -cp "$jars/*" org.apache.cassandra.tools.NodeTool -h 127.0.0.1 -p "$jmx" "$@"
}
nodetool flush "$keyspace"
for table in spans postings operations catalog_days; do
  nodetool tablestats "$keyspace.$table" |
    awk -v t="$table" '/Number of partitions \(estimate\)|Compacted partition maximum bytes|Compacted partition mean bytes|Space used \(live\)/ {sub(/^[ \t]+/, ""); print t ": " $0}'
done
if [ -n "$spans" ]; then
  live() {
    for table in spans postings operations catalog_days bucket_terms; do
      nodetool tablestats "$keyspace.$table" | awk '/Space used \(live\)/ {print $4}'
    done | awk '{s += $1} END {print s}'
  }
  before=$(live)
  started=$(date +%s)
  nodetool compact "$keyspace"
  after=$(live)
  echo "bytes_per_span before_compaction=$((before / spans)) after_compaction=$((after / spans)) (live bytes $before -> $after; compaction took $(( $(date +%s) - started )) s)"
  echo "SUMMARY bench=partition-size keyspace=$keyspace spans=$spans bytes_per_span_before_compaction=$((before / spans)) bytes_per_span_after_compaction=$((after / spans))"
fi
