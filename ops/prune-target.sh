#!/usr/bin/env bash
# Usage: ops/prune-target.sh TARGET_DIR
# A cargo target directory shared by every clone (CI runs a fresh clone each time)
# keeps each build's artifacts and never drops old ones: a day of CI runs grew one to
# 70 GB here. Past TRACEKEEPER_TARGET_LIMIT_GB (default 40) it is emptied, so a kept
# machine never fills its disk; the next build starts from scratch (about 10 minutes).
set -euo pipefail
target="${1:?usage: ops/prune-target.sh TARGET_DIR}"
limit_gb="${TRACEKEEPER_TARGET_LIMIT_GB:-40}"
[ -d "$target" ] || exit 0
used_kb=$(du -sk "$target" 2>/dev/null | cut -f1)
if [ "$used_kb" -gt $((limit_gb * 1024 * 1024)) ]; then
  echo "==> $target holds $((used_kb / 1024 / 1024)) GB of builds, over ${limit_gb} GB: emptying it"
  rm -rf "$target"
fi
