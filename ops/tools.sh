#!/usr/bin/env bash
# Builds the ecosystem tools the tests check tracekeeper's artifacts with, from the Go
# module proxy, into $TRACEKEEPER_CACHE/tools/bin (pinned versions; built once):
#   promtool  checks and unit-tests ops/monitoring's rules (tests/monitoring.rs)
#   helm      lints and renders ops/helm/tracekeeper (tests/helm.rs)
# Prints the bin directory. Usage: ops/tools.sh [cache dir]
set -euo pipefail
cache="${1:-${TRACEKEEPER_CACHE:-$HOME/.cache/tracekeeper}}"
bin="$cache/tools/bin"
mkdir -p "$bin"
# Go's module and build caches stay under the cache too: a new machine builds from
# nothing, and deleting the cache deletes them.
export GOBIN="$bin" GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOFLAGS=-mod=mod

tools=(
  "promtool github.com/prometheus/prometheus/cmd/promtool@v0.316.0"
  "helm helm.sh/helm/v3/cmd/helm@v3.22.0"
)
for entry in "${tools[@]}"; do
  name="${entry%% *}" module="${entry#* }"
  stamp="$bin/.$name.version"
  if [ -x "$bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$module" ]; then
    continue
  fi
  echo "==> building $name ($module) from the Go module proxy; the first time takes a few minutes" >&2
  started=$SECONDS
  log="$cache/tools/$name.build.log"
  if ! (cd "$cache/tools" && go install "$module") > "$log" 2>&1; then
    cat "$log" >&2
    echo "building $name failed (log: $log)" >&2
    exit 1
  fi
  echo "$module" > "$stamp"
  echo "    $name built in $((SECONDS - started)) s" >&2
done
echo "$bin"
