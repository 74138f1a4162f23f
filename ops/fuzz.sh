#!/usr/bin/env bash
# Coverage-guided fuzzing of one target with libFuzzer, on the stable toolchain.
#
#   ops/fuzz.sh TARGET SECONDS     fuzz TARGET for SECONDS, then report executions and crashes
#   ops/fuzz.sh --list             the targets (fuzzing/src/lib.rs says what each checks)
#
# - cargo-fuzz is installed on first use into $TRACEKEEPER_CACHE/tools (default
#   ~/.cache/tracekeeper); builds go to $TRACEKEEPER_CACHE/fuzz-target.
# - Stable Rust has no sanitizers, so targets run with --sanitizer none: a panic, an
#   abort, a stack overflow, a timeout or running out of memory is a crash.
# - New inputs the fuzzer finds go to $TRACEKEEPER_CACHE/fuzz-corpus/TARGET; the
#   checked-in seeds in fuzz/corpus/TARGET are read, never written. A crash is saved to
#   fuzz/artifacts/TARGET/; once fixed, add it to fuzz/corpus/TARGET so that the ordinary
#   test suite (fuzzing/tests/corpus.rs) replays it for ever.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^tracekeeper-fuzz$')
if [ "${1:-}" = "--list" ]; then
  echo "$targets"
  exit 0
fi
if [ $# -ne 2 ] || ! [[ "$2" =~ ^[0-9]+$ ]]; then
  echo "usage: ops/fuzz.sh TARGET SECONDS   (targets: $(echo $targets))" >&2
  exit 2
fi
target=$1 seconds=$2
if ! grep -qx "$target" <<<"$targets"; then
  echo "ops/fuzz.sh: no target named '$target'; the targets are: $(echo $targets)" >&2
  exit 2
fi

cache="${TRACEKEEPER_CACHE:-$HOME/.cache/tracekeeper}"
tools="$cache/tools"
if [ ! -x "$tools/bin/cargo-fuzz" ]; then
  echo "==> installing cargo-fuzz into $tools"
  cargo install --quiet --locked cargo-fuzz --version 0.13.2 --root "$tools"
fi
export PATH="$tools/bin:$PATH"
export CARGO_TARGET_DIR="$cache/fuzz-target"
# Text the parsers read is short; a smaller input bound keeps the fuzzer on inputs that
# matter (and fast). Decoders of request bodies get 64 KiB.
case "$target" in
  traceql|go_duration) max_len=1024 ;;
  search_params) max_len=4096 ;;
  *) max_len=65536 ;;
esac
work="$cache/fuzz-corpus/$target"
mkdir -p "$work" "fuzz/artifacts/$target"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "==> fuzzing $target for ${seconds}s (corpus: $work, seeds: fuzz/corpus/$target)"
status=0
(cd fuzz && cargo fuzz run --sanitizer none --release "$target" "$work" "corpus/$target" -- \
  -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 \
  -max_len="$max_len" -artifact_prefix="artifacts/$target/") 2>&1 | tee "$log" | grep -E '^(#[0-9]+.*(pulse|DONE)|==|INFO: Running|SUMMARY|Done)' || true
status=${PIPESTATUS[0]}

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
crashes=$(find "fuzz/artifacts/$target" -type f -newer "$log" | wc -l)
echo "$target: ${execs:-0} executions in ${seconds}s, $crashes crash(es), $(ls "$work" | wc -l) corpus inputs"
if [ "$crashes" -gt 0 ] || [ "$status" -ne 0 ]; then
  echo "crashing inputs: fuzz/artifacts/$target/ (reproduce: cd fuzz && cargo fuzz run --sanitizer none $target FILE)" >&2
  exit 1
fi
