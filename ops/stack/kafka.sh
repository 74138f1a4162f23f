#!/usr/bin/env bash
# Runs a single-node KRaft broker in the foreground on 127.0.0.1:PORT, data in DIR.
# Usage: ops/stack/kafka.sh DIR PORT CONTROLLER_PORT [HEAP, default 512m]
set -euo pipefail
dir="$1"; port="$2"; ctrl="$3"; heap="${4:-512m}"
here="$(cd "$(dirname "$0")" && pwd)"
jars="$("$here/fetch.sh" kafka)/libs"
java="${TRACEKEEPER_JAVA:-$(ls -d /usr/lib/jvm/java-17-openjdk-*/bin/java 2>/dev/null | head -1)}"
java="${java:-java}"
mkdir -p "$dir/data" "$dir/logs"
cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctrl
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctrl
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=6
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
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
  "$java" -cp "$jars/*" kafka.tools.StorageTool format -t "5L6g3nShT-eMCtK--X86sw" -c "$dir/server.properties" >/dev/null
fi
exec "$java" -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
  -Dkafka.logs.dir="$dir/logs" -Dlog4j2.configurationFile="$dir/log4j2.yaml" \
  -cp "$jars/*" kafka.Kafka "$dir/server.properties"
