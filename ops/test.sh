#!/usr/bin/env bash
# The whole test suite, bringing up what it needs. Usage: ops/test.sh [cargo test args]
#
# - cargo's target directory defaults to ~/.cache/tracekeeper/target, outside the clone,
#   so repeated runs reuse the build;
# - the OpenTelemetry Python SDK the end-to-end tests drive is installed into a
#   virtualenv under ~/.cache/tracekeeper/venv;
# - one Kafka broker and one Cassandra serve the whole run: taken from
#   TRACEKEEPER_TEST_KAFKA / TRACEKEEPER_TEST_CQL when set, left to testcontainers when a
#   Docker daemon answers, and otherwise started here as local JVM processes (jars from
#   Maven Central, cached under ~/.cache/tracekeeper/jars) and stopped at the end;
# - promtool and helm, which check ops/monitoring and ops/helm, are built from the Go
#   module proxy into ~/.cache/tracekeeper/tools by ops/tools.sh;
# - Jaeger's own storage integration suite (v1.75.0, built by ops/tools.sh) then runs
#   unchanged through Jaeger's remote-storage route against the distributed shape on
#   the stack, then against all-in-one (ops/jaeger-suite.sh);
# - the web UI's tests then run under node --test in Debian's chromium (installed
#   with playwright-core by ops/ui-deps.sh when missing);
# - last, the one-node stack stopped, a cluster of three Cassandra nodes and three
#   brokers is started (or taken from TRACEKEEPER_TEST_CLUSTER_KAFKA / _CQL /
#   _CONTROL) for the fault suite, tests/cluster.rs; these three need no arguments
#   given;
# - TRACEKEEPER_CACHE moves all of these caches: TRACEKEEPER_CACHE=$(mktemp -d) ops/test.sh
#   is the run a new machine makes (only the Rust toolchain and apt packages are shared).
# - the target directory is emptied first when it holds over 40 GB of old builds
#   (TRACEKEEPER_TARGET_LIMIT_GB; ops/prune-target.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${TRACEKEEPER_CACHE:-$HOME/.cache/tracekeeper}"
# Everything this command caches lives under $cache (target dir, venv, jars, Maven's
# repository, npm packages), so TRACEKEEPER_CACHE=$(mktemp -d) is a new machine's run.
export TRACEKEEPER_CACHE="$cache"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
# Where the stack's launch scripts are, given at run time: a binary reused from the
# shared target directory may have been built from another (since deleted) clone.
export TRACEKEEPER_OPS_DIR="$PWD/ops/stack"
ops/prune-target.sh "$CARGO_TARGET_DIR"

# librdkafka is built with TLS and SASL against the system's OpenSSL; the test stack
# makes its certificates with the openssl command.
need=()
command -v pkg-config >/dev/null || need+=(pkg-config)
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "the build needs ${need[*]}: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
  echo "==> installing ${need[*]} (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

venv="$cache/venv"
if [ ! -x "$venv/bin/python3" ]; then
  echo "==> creating the Python virtualenv for the SDK tests in $venv"
  python3 -m venv "$venv"
fi
stamp="$venv/.requirements.sha"
want=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing tests/requirements.txt"
  "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
  echo "$want" > "$stamp"
fi
export TRACEKEEPER_TEST_PYTHON="$venv/bin/python3"

# promtool and helm, which check ops/monitoring and ops/helm, and an OpenTelemetry
# Collector with the Kafka exporter (built from the Go module proxy into $cache/tools on
# first use).
tools_bin=$(ops/tools.sh "$cache")
export TRACEKEEPER_PROMTOOL="$tools_bin/promtool" TRACEKEEPER_HELM="$tools_bin/helm"
export TRACEKEEPER_OTELCOL_TRACEKEEPER="$tools_bin/otelcol-tracekeeper"

# Tempo's TraceQL corpus (tests/traceql_conformance.rs): Tempo's, beside the repository
# this checkout came from (a CI clone's origin), never copied into it.
if [ -z "${TRACEKEEPER_TEMPO_TRACEQL_CORPUS:-}" ]; then
  origin=$(git remote get-url origin 2>/dev/null || true)
  for dir in "$PWD/../shared/tempo-traceql" "${origin:+$(dirname "$origin")/shared/tempo-traceql}"; do
    if [ -n "$dir" ] && [ -f "$dir/test_examples.yaml" ]; then
      export TRACEKEEPER_TEMPO_TRACEQL_CORPUS="$dir"
      break
    fi
  done
fi

# The UI tests' browser (Debian's chromium) and driver (playwright-core, in $cache/node).
node_dir=$(ops/ui-deps.sh "$cache")

stack_pid=""
stop_stack() {
  if [ -n "$stack_pid" ]; then
    echo "==> stopping Kafka and Cassandra"
    kill "$stack_pid" 2>/dev/null || true
    wait "$stack_pid" 2>/dev/null || true
  fi
}
trap stop_stack EXIT

if [ -n "${TRACEKEEPER_TEST_KAFKA:-}" ] && [ -n "${TRACEKEEPER_TEST_CQL:-}" ]; then
  echo "==> using the stack at $TRACEKEEPER_TEST_KAFKA (Kafka) and $TRACEKEEPER_TEST_CQL (CQL)"
elif docker info >/dev/null 2>&1; then
  echo "==> a Docker daemon answers: the tests start Kafka and ScyllaDB with testcontainers"
else
  echo "==> starting Kafka and Cassandra as local JVM processes"
  cargo build -q -p tracekeeper-stack --bin tracekeeper-stack
  envfile="$(mktemp -d)/stack.env"
  "$CARGO_TARGET_DIR/debug/tracekeeper-stack" up --env-file "$envfile" > /dev/null &
  stack_pid=$!
  # Compile the tests while the JVMs boot.
  cargo test --workspace --no-run -q "$@" 2>&1 | grep -v '^ *Executable' || true
  while [ ! -s "$envfile" ]; do
    if ! kill -0 "$stack_pid" 2>/dev/null; then
      stack_pid=""
      echo "the Kafka/Cassandra stack failed to start (see above); it needs Java 17 and Maven" >&2
      exit 1
    fi
    sleep 0.5
  done
  set -a; . "$envfile"; set +a
  echo "==> stack ready: Kafka $TRACEKEEPER_TEST_KAFKA, CQL $TRACEKEEPER_TEST_CQL"
fi

echo "==> cargo test --workspace $*"
if [ $# -eq 0 ]; then
  # The cluster cases (tests/cluster.rs, named cluster_*) run last, on the cluster.
  cargo test --workspace -- --skip cluster_
else
  cargo test --workspace "$@"
fi

# The web UI in a real browser against the binary cargo test just built. A run with
# cargo test arguments (a developer's subset) leaves them out.
if [ $# -eq 0 ]; then
  echo "==> Jaeger's storage integration suite through the real Jaeger v2 and our remote storage API"
  ops/jaeger-suite.sh "$CARGO_TARGET_DIR/debug/tracekeeper" "$cache" cql
  stop_stack
  stack_pid=""
  ops/jaeger-suite.sh "$CARGO_TARGET_DIR/debug/tracekeeper" "$cache" embedded
  echo "==> UI tests: node --test ui/tests/ (Chromium; screenshots in $cache/ui-screenshots)"
  TRACEKEEPER_BIN="$CARGO_TARGET_DIR/debug/tracekeeper" TRACEKEEPER_NODE_DIR="$node_dir" \
    TRACEKEEPER_SCREENSHOTS="$cache/ui-screenshots" node --test --test-concurrency=1 ui/tests/

  # The fault suite on a cluster: three Cassandra nodes and three brokers on
  # 127.0.0.1-3 (about 7 GiB), started once the one-node stack is gone.
  if [ -z "${TRACEKEEPER_TEST_CLUSTER_KAFKA:-}" ]; then
    echo "==> starting a cluster: 3 Cassandra nodes, 3 Kafka brokers"
    cargo build -q -p tracekeeper-stack --bin tracekeeper-stack
    cluster_env="$(mktemp -d)/cluster.env"
    "$CARGO_TARGET_DIR/debug/tracekeeper-stack" up --cassandra-nodes 3 --kafka-brokers 3 \
      --env-file "$cluster_env" > /dev/null &
    stack_pid=$!
    while [ ! -s "$cluster_env" ]; do
      if ! kill -0 "$stack_pid" 2>/dev/null; then
        stack_pid=""
        echo "the cluster failed to start (see above)" >&2
        exit 1
      fi
      sleep 0.5
    done
    set -a; . "$cluster_env"; set +a
  fi
  echo "==> the cluster's fault suite (tests/cluster.rs) on Kafka $TRACEKEEPER_TEST_CLUSTER_KAFKA"
  cargo test -p tracekeeper --test cluster -- --test-threads=1 --nocapture
fi
