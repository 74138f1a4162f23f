#!/usr/bin/env bash
# Runs an Apache Cassandra 5.0 node in the foreground, CQL on ADDRESS:PORT, data in DIR.
# Usage: ops/stack/cassandra.sh DIR PORT STORAGE_PORT JMX_PORT [HEAP]
# HEAP defaults to $TRACEKEEPER_CASSANDRA_HEAP, else 1G (enough for tests; benchmarks
# give it more). With the 1G default the young generation is pinned at 128M.
#
# Alone it is a one-node cluster on 127.0.0.1. A node of a larger cluster (the stack's
# `--cassandra-nodes N`) is told, each defaulting to the one-node value:
#   TRACEKEEPER_CASSANDRA_ADDRESS  its loopback address (listen and CQL), 127.0.0.1
#   TRACEKEEPER_CASSANDRA_SEEDS    the seeds, ADDRESS:STORAGE_PORT,... (every node of
#                                  the stack is one, so none waits to bootstrap)
#   TRACEKEEPER_CASSANDRA_TOKEN    its one token, 0 (the stack spreads them evenly)
#   TRACEKEEPER_CASSANDRA_RACK     its rack, rack1; every node is in datacenter dc1
#                                  (GossipingPropertyFileSnitch)
#
# TRACEKEEPER_CASSANDRA_SECURE=1 runs it as secured clusters run: clients must log in
# (PasswordAuthenticator, the default superuser cassandra/cassandra) and speak TLS. A CA
# and a node certificate for 127.0.0.1 are made by certs.sh in DIR/tls; clients trust
# DIR/tls/ca.pem.
set -euo pipefail
dir="$1"; port="$2"; storage_port="$3"; jmx_port="$4"; heap="${5:-${TRACEKEEPER_CASSANDRA_HEAP:-1G}}"
address="${TRACEKEEPER_CASSANDRA_ADDRESS:-127.0.0.1}"
seeds="${TRACEKEEPER_CASSANDRA_SEEDS:-$address:$storage_port}"
token="${TRACEKEEPER_CASSANDRA_TOKEN:-0}"
rack="${TRACEKEEPER_CASSANDRA_RACK:-rack1}"
here="$(cd "$(dirname "$0")" && pwd)"
jars="$("$here/fetch.sh" cassandra)/libs"
java="${TRACEKEEPER_JAVA:-$(ls -d /usr/lib/jvm/java-17-openjdk-*/bin/java 2>/dev/null | head -1)}"
java="${java:-java}"
mkdir -p "$dir/data" "$dir/commitlog" "$dir/hints" "$dir/saved_caches" "$dir/logs" "$dir/tmp"
cat > "$dir/cassandra.yaml" <<YAML
cluster_name: tracekeeper-test
num_tokens: 1
initial_token: $token
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: GossipingPropertyFileSnitch
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 8MiB
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters: [{seeds: "$seeds"}]
listen_address: $address
rpc_address: $address
storage_port: $storage_port
native_transport_port: $port
start_native_transport: true
data_file_directories: [$dir/data]
commitlog_directory: $dir/commitlog
hints_directory: $dir/hints
saved_caches_directory: $dir/saved_caches
auto_snapshot: false
memtable_allocation_type: heap_buffers
user_defined_functions_enabled: false
storage_compatibility_mode: NONE
YAML
secure_flags=()
if [ "${TRACEKEEPER_CASSANDRA_SECURE:-}" = 1 ]; then
  tls="$dir/tls" store_password=tracekeeper-store
  "$here/certs.sh" "$tls" node "$store_password"
  cat >> "$dir/cassandra.yaml" <<YAML
authenticator: PasswordAuthenticator
role_manager: CassandraRoleManager
client_encryption_options:
  enabled: true
  optional: false
  keystore: $tls/node.p12
  keystore_password: $store_password
  store_type: PKCS12
  require_client_auth: false
YAML
  # The default superuser is created at once rather than after ten seconds.
  secure_flags=(-Dcassandra.superuser_setup_delay_ms=0)
fi
printf 'dc=dc1\nrack=%s\n' "$rack" > "$dir/cassandra-rackdc.properties"
cat > "$dir/logback.xml" <<'XML'
<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="STDOUT"/></root>
  <logger name="org.apache.cassandra.service.CassandraDaemon" level="INFO"/>
  <logger name="org.apache.cassandra.transport" level="INFO"/>
</configuration>
XML
opens="java.lang.module jdk.internal.loader jdk.internal.ref jdk.internal.reflect jdk.internal.math jdk.internal.module jdk.internal.util.jar sun.nio.ch java.io java.lang.reflect java.lang java.util java.nio"
flags=()
for p in $opens; do flags+=("--add-opens=java.base/$p=ALL-UNNAMED"); done
flags+=(--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED)
for e in java.base/jdk.internal.misc java.management.rmi/com.sun.jmx.remote.internal.rmi java.management/com.sun.jmx.remote.security \
         java.rmi/sun.rmi.registry java.rmi/sun.rmi.server java.sql/java.sql java.base/java.lang.ref jdk.unsupported/sun.misc; do
  flags+=("--add-exports=$e=ALL-UNNAMED")
done
young=(); [ "$heap" = 1G ] && young=(-Xmn128M)
exec "$java" -Xms"$heap" -Xmx"$heap" "${young[@]}" -Xss256k -XX:+UseG1GC -XX:+UseThreadPriorities -XX:ActiveProcessorCount=2 \
  -Djava.net.preferIPv4Stack=true -Djdk.attach.allowAttachSelf=true -Djava.io.tmpdir="$dir/tmp" \
  -Dio.netty.tryReflectionSetAccessible=true -Dio.netty.allocator.useCacheForAllThreads=true -Dio.netty.allocator.maxOrder=11 \
  "${flags[@]}" -javaagent:"$jars/jamm-0.4.0.jar" \
  -Dcassandra.config="file://$dir/cassandra.yaml" -Dcassandra-rackdc.properties="file://$dir/cassandra-rackdc.properties" \
  -Dcassandra-foreground=yes -Dcassandra.storagedir="$dir" \
  -Dcassandra.logdir="$dir/logs" -Dlogback.configurationFile="$dir/logback.xml" \
  -Dcassandra.skip_wait_for_gossip_to_settle=0 -Dcassandra.unsafesystem=true -Dcassandra.jmx.local.port="$jmx_port" \
  "${secure_flags[@]}" -cp "$jars/*" org.apache.cassandra.service.CassandraDaemon
