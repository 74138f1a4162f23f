#!/usr/bin/env bash
# Runs a KRaft broker (and controller) in the foreground on ADDRESS:PORT, data in DIR.
# Usage: ops/stack/kafka.sh DIR PORT CONTROLLER_PORT [HEAP, default 512m] [SASL_SSL_PORT]
#
# Alone it is a one-broker cluster on 127.0.0.1. A broker of a larger cluster (the
# stack's `--kafka-brokers N`) is told, each defaulting to the one-broker value:
#   TRACEKEEPER_KAFKA_ADDRESS      its loopback address, 127.0.0.1
#   TRACEKEEPER_KAFKA_NODE_ID      its node id, 1
#   TRACEKEEPER_KAFKA_VOTERS       the controller quorum, ID@ADDRESS:CONTROLLER_PORT,...
#   TRACEKEEPER_KAFKA_REPLICATION  default.replication.factor and that of the internal
#                                  topics, 1; above 1, min.insync.replicas is 2
#
# With SASL_SSL_PORT, the broker also listens there with TLS and SASL (SCRAM-SHA-256,
# SCRAM-SHA-512 and PLAIN), as secured clusters run:
# - a CA and a broker certificate for 127.0.0.1 and localhost are made by certs.sh in
#   DIR/tls (the CA, for clients to trust, is DIR/tls/ca.pem);
# - user "tracekeeper" with password "tracekeeper-secret" is created for every mechanism.
set -euo pipefail
dir="$1"; port="$2"; ctrl="$3"; heap="${4:-512m}"; sasl_port="${5:-}"
address="${TRACEKEEPER_KAFKA_ADDRESS:-127.0.0.1}"
node_id="${TRACEKEEPER_KAFKA_NODE_ID:-1}"
voters="${TRACEKEEPER_KAFKA_VOTERS:-$node_id@$address:$ctrl}"
replication="${TRACEKEEPER_KAFKA_REPLICATION:-1}"
min_isr=1; [ "$replication" -gt 1 ] && min_isr=2
here="$(cd "$(dirname "$0")" && pwd)"
jars="$("$here/fetch.sh" kafka)/libs"
java="${TRACEKEEPER_JAVA:-$(ls -d /usr/lib/jvm/java-17-openjdk-*/bin/java 2>/dev/null | head -1)}"
java="${java:-java}"
mkdir -p "$dir/data" "$dir/logs"
listeners="PLAINTEXT://$address:$port,CONTROLLER://$address:$ctrl"
advertised="PLAINTEXT://$address:$port"
secured=""
scram=()
if [ -n "$sasl_port" ]; then
  user=tracekeeper password=tracekeeper-secret store_password=tracekeeper-store
  tls="$dir/tls"
  "$here/certs.sh" "$tls" broker "$store_password"
  listeners="$listeners,SASL_SSL://$address:$sasl_port"
  advertised="$advertised,SASL_SSL://$address:$sasl_port"
  secured="
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$user=\"$password\";
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location=$tls/broker.p12
listener.name.sasl_ssl.ssl.keystore.password=$store_password"
  scram=(--add-scram "SCRAM-SHA-256=[name=$user,password=$password]" --add-scram "SCRAM-SHA-512=[name=$user,password=$password]")
fi
cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=$node_id
controller.quorum.voters=$voters
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL$secured
log.dirs=$dir/data
num.partitions=6
default.replication.factor=$replication
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$replication
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=$replication
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$replication
share.coordinator.state.topic.min.isr=$min_isr
group.initial.rebalance.delay.ms=0
PROPS
cat > "$dir/log4j2.yaml" <<'YAML'
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaRaftServer
        level: INFO
YAML
if [ ! -f "$dir/data/meta.properties" ]; then
  "$java" -cp "$jars/*" kafka.tools.StorageTool format -t "5L6g3nShT-eMCtK--X86sw" -c "$dir/server.properties" \
    "${scram[@]}" >/dev/null
fi
exec "$java" -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
  -Dkafka.logs.dir="$dir/logs" -Dlog4j2.configurationFile="$dir/log4j2.yaml" \
  -cp "$jars/*" kafka.Kafka "$dir/server.properties"
