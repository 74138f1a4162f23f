#!/usr/bin/env bash
# Builds the ecosystem tools the tests check tracekeeper's artifacts with, from the Go
# module proxy, into $TRACEKEEPER_CACHE/tools/bin (pinned versions; built once):
#   promtool  checks and unit-tests ops/monitoring's rules (tests/monitoring.rs)
#   helm      lints and renders ops/helm/tracekeeper (tests/helm.rs)
#   otelcol-tracekeeper  an OpenTelemetry Collector with the contrib Kafka exporter,
#             built by the Collector's builder from ops/otelcol/builder-config.yaml
#             (tests/otel_collector.rs)
#   jaeger    Jaeger v1.75.0's source tree, binary and storage integration suite
#             (ops/jaeger-suite.sh)
# Prints the bin directory. Usage: ops/tools.sh [cache dir]
set -euo pipefail
cache="${1:-${TRACEKEEPER_CACHE:-$HOME/.cache/tracekeeper}}"
bin="$cache/tools/bin"
mkdir -p "$bin"
# Go's module and build caches stay under the cache too: a new machine builds from
# nothing, and deleting the cache deletes them.
export GOBIN="$bin" GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOFLAGS=-mod=mod

# Runs a build in DIR with its output in a log, shown only when it fails.
build_logged() {
  local name=$1 dir=$2 log="$cache/tools/$1.build.log"
  shift 2
  if ! (cd "$dir" && "$@") > "$log" 2>&1; then
    cat "$log" >&2
    echo "building $name failed (log: $log)" >&2
    exit 1
  fi
}

tools=(
  "promtool github.com/prometheus/prometheus/cmd/promtool@v0.316.0"
  "helm helm.sh/helm/v3/cmd/helm@v3.22.0"
  "builder go.opentelemetry.io/collector/cmd/builder@v0.165.0"
)
for entry in "${tools[@]}"; do
  name="${entry%% *}" module="${entry#* }"
  stamp="$bin/.$name.version"
  if [ -x "$bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$module" ]; then
    continue
  fi
  echo "==> building $name ($module) from the Go module proxy; the first time takes a few minutes" >&2
  started=$SECONDS
  build_logged "$name" "$cache/tools" go install "$module"
  echo "$module" > "$stamp"
  echo "    $name built in $((SECONDS - started)) s" >&2
done
# The Collector: rebuilt when its builder configuration changes.
manifest="$(cd "$(dirname "$0")" && pwd)/otelcol/builder-config.yaml"
want=$(sha256sum "$manifest" | cut -d' ' -f1)
stamp="$bin/.otelcol-tracekeeper.version"
if [ ! -x "$bin/otelcol-tracekeeper" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> building otelcol-tracekeeper with the Collector's builder; the first time takes a few minutes" >&2
  started=$SECONDS
  work="$cache/tools/otelcol"
  rm -rf "$work" && mkdir -p "$work"
  build_logged otelcol-tracekeeper "$work" "$bin/builder" --config "$manifest" --output-path "$work/build"
  mv "$work/build/otelcol-tracekeeper" "$bin/otelcol-tracekeeper"
  rm -rf "$work"
  echo "$want" > "$stamp"
  echo "    otelcol-tracekeeper built in $((SECONDS - started)) s" >&2
fi
# Jaeger v1.75.0, for its own storage integration suite (ops/jaeger-suite.sh): its
# source tree from the Go module proxy, made writable (the suite runs the binary it
# finds at ./cmd/jaeger/jaeger and writes beside it), the jaeger binary, and the
# suite's test binary, both built once.
jaeger_version=v1.75.0
jaeger_src="$cache/tools/jaeger-$jaeger_version"
if [ ! -x "$jaeger_src/integration.test" ]; then
  echo "==> building Jaeger $jaeger_version and its storage integration suite from the Go module proxy; the first time takes several minutes" >&2
  started=$SECONDS
  module_dir=$(cd "$cache/tools" && go mod download -json "github.com/jaegertracing/jaeger@$jaeger_version" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  rm -rf "$jaeger_src" && cp -r "$module_dir" "$jaeger_src" && chmod -R u+w "$jaeger_src"
  build_logged jaeger "$jaeger_src" go build -o cmd/jaeger/jaeger ./cmd/jaeger
  build_logged jaeger-suite "$jaeger_src" go test -c -o integration.test ./cmd/jaeger/internal/integration
  echo "    Jaeger and its suite built in $((SECONDS - started)) s" >&2
fi
echo "$bin"
