#!/usr/bin/env bash
# Resolves the pinned jars of one service (kafka or cassandra) from Maven Central into a
# cache outside the repository, once, and prints that service's directory.
# Usage: ops/stack/fetch.sh SERVICE. Needs Java 17 and Maven.
#
# Safe to run many times at once, as the stack does (Kafka and Cassandra start
# together): one lock serialises resolution (Maven's local repository is shared by both
# services, and is not safe for two resolutions at once), a second caller waits and then
# finds the result, and a service's directory only ever appears whole, renamed into
# place from a temporary directory beside it.
#
# Cache locations, each overridable:
#   TRACEKEEPER_CACHE        the test command's cache root (default ~/.cache/tracekeeper)
#   TRACEKEEPER_JARS         resolved jars (default $TRACEKEEPER_CACHE/jars)
#   TRACEKEEPER_MAVEN_REPO   Maven's local repository (default $TRACEKEEPER_CACHE/maven),
#                            so an empty TRACEKEEPER_CACHE is a genuinely new machine
set -euo pipefail
svc="${1:?usage: fetch.sh kafka|cassandra}"
here="$(cd "$(dirname "$0")" && pwd)"
pom="$here/$svc.pom.xml"
[ -f "$pom" ] || { echo "fetch.sh: unknown service '$svc' (no $pom); expected kafka or cassandra" >&2; exit 2; }
root="${TRACEKEEPER_CACHE:-$HOME/.cache/tracekeeper}"
cache="${TRACEKEEPER_JARS:-$root/jars}"
repo="${TRACEKEEPER_MAVEN_REPO:-$root/maven}"
command -v mvn >/dev/null || { echo "Maven (mvn) is required to fetch Kafka and Cassandra: apt-get install maven" >&2; exit 1; }
command -v flock >/dev/null || { echo "flock (util-linux) is required to fetch Kafka and Cassandra: apt-get install util-linux" >&2; exit 1; }

want=$(sha256sum "$pom" | cut -d' ' -f1)
dir="$cache/$svc"
current() { [ "$(cat "$dir/.pom.sha" 2>/dev/null)" = "$want" ]; }

mkdir -p "$cache"
if ! current; then
  exec 9>"$cache/.resolve.lock"
  flock 9
  # Another caller may have finished while this one waited for the lock.
  if ! current; then
    echo "==> resolving $svc jars into $dir (Maven repository $repo)" >&2
    staging=$(mktemp -d "$cache/.$svc.staging.XXXXXX")
    trap 'rm -rf "$staging"' EXIT
    chmod 755 "$staging"
    mkdir -p "$staging/libs"
    mvn -B -q -f "$pom" -Dmaven.repo.local="$repo" \
      org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$staging/libs" >&2
    echo "$want" > "$staging/.pom.sha"
    # rename(2) will not replace a non-empty directory, so a stale one (its pom changed)
    # is moved aside first. Only a stack started from that stale directory at this very
    # moment could notice, and it was about to run the wrong versions anyway.
    if [ -e "$dir" ]; then
      old=$(mktemp -d "$cache/.$svc.old.XXXXXX")
      mv "$dir" "$old/"
      rm -rf "$old"
    fi
    mv "$staging" "$dir"
    trap - EXIT
  fi
  exec 9>&-
fi
echo "$dir"
