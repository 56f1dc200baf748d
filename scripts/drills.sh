#!/usr/bin/env bash
# The long versions of the reliability drills that scripts/test.sh runs short (tests/e2e/drill_*):
#   crash  — kill -9 of `scalehub run` at random points, 100 trials (suite: 10);
#   chaos  — API-server faults for 1,000 built-in CPU targets (suite: 200);
#   hooks  — hooks that time out, crash, flood, escape and hang, all at once;
#   fds    — the hub under ulimit -n 1024 with 1,500 idle connections.
# Each prints its figures (lines starting with the drill's name). Release build.
# Usage: scripts/drills.sh [crash|chaos|hooks|fds ...]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."

drills=("$@")
[ ${#drills[@]} -gt 0 ] || drills=(crash chaos hooks fds)
export SCALEHUB_DRILL_TRIALS=${SCALEHUB_DRILL_TRIALS:-100}
export SCALEHUB_DRILL_TARGETS=${SCALEHUB_DRILL_TARGETS:-1000}
export SCALEHUB_E2E_BODY_SECS=${SCALEHUB_E2E_BODY_SECS:-3600}
for drill in "${drills[@]}"; do
  printf '==> drill %s\n' "$drill"
  cargo test --release --locked --test e2e "drill_${drill}::" -- --nocapture --test-threads 1 2>&1 \
    | grep -E "drill|^test |test result|failure|panicked"
done
