#!/usr/bin/env bash
# What the UI's browser tests and benchmark need, installed when missing:
# - Debian's chromium and fonts-liberation (apt; needs root, as CI and the dev machines
#   have), never a browser download;
# - npm playwright-core, pinned in ui/package-lock.json to the release that drives
#   Chromium's major version, installed into CACHE/node (not into the clone).
# Usage: ops/ui-deps.sh CACHE. Prints the node folder.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${1:?usage: ops/ui-deps.sh CACHE}"
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -d /usr/share/fonts/truetype/liberation ] || need+=(fonts-liberation)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "the UI tests need ${need[*]}: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
  echo "==> installing ${need[*]} (apt)" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
command -v node >/dev/null || { echo "the UI tests need Node.js 20 or later" >&2; exit 1; }
node_dir="$cache/node"
want=$(cat ui/package.json ui/package-lock.json | sha256sum | cut -d' ' -f1)
if [ "$(cat "$node_dir/.lock.sha" 2>/dev/null)" != "$want" ]; then
  echo "==> installing playwright-core into $node_dir (npm ci)" >&2
  mkdir -p "$node_dir"
  cp ui/package.json ui/package-lock.json "$node_dir/"
  (cd "$node_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  echo "$want" > "$node_dir/.lock.sha"
fi
echo "$node_dir"
