#!/usr/bin/env bash
# The whole test suite, bringing up what it needs. Usage: ops/test.sh [cargo test args]
#
# - cargo's target directory defaults to ~/.cache/tracekeeper/target, outside the clone,
#   so repeated runs reuse the build;
# - the OpenTelemetry Python SDK the end-to-end tests drive is installed into a
#   virtualenv under ~/.cache/tracekeeper/venv.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${TRACEKEEPER_CACHE:-$HOME/.cache/tracekeeper}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"

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

echo "==> cargo test --workspace $*"
cargo test --workspace "$@"
