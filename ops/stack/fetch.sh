#!/usr/bin/env bash
# Resolves the pinned Kafka and Cassandra jars from Maven Central into a cache outside
# the repository, once. Prints the cache directory. Needs Java 17 and Maven.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${TRACEKEEPER_JARS:-$HOME/.cache/tracekeeper/jars}"
command -v mvn >/dev/null || { echo "Maven (mvn) is required to fetch Kafka and Cassandra: apt-get install maven" >&2; exit 1; }
for svc in kafka cassandra; do
  pom="$here/$svc.pom.xml"
  want=$(sha256sum "$pom" | cut -d' ' -f1)
  dir="$cache/$svc"
  if [ "$(cat "$dir/.pom.sha" 2>/dev/null)" != "$want" ]; then
    echo "==> resolving $svc jars into $dir" >&2
    rm -rf "$dir"
    mkdir -p "$dir/libs"
    mvn -B -q -f "$pom" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$dir/libs" >&2
    echo "$want" > "$dir/.pom.sha"
  fi
done
echo "$cache"
