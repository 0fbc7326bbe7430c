#!/usr/bin/env bash
# The client libraries' checks and tests, both at once, against a real
# herald: HERALD_BIN (default: target/debug/herald, built with
# `cargo build --bin herald`). With HERALD_TEST_POSTGRES_URL set, the
# resume scenarios also run on that Postgres (and fail if it is down).
#   clients/test.sh            # TypeScript and Python side by side
#   clients/test.sh python     # one of them
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export HERALD_BIN=$(realpath "${HERALD_BIN:-$root/target/debug/herald}")
[ -x "$HERALD_BIN" ] || { echo "FAIL: no herald at $HERALD_BIN (cargo build --bin herald)"; exit 1; }
logs=${CLIENT_LOGS:-$root/target/clients}
mkdir -p "$logs"

typescript() { cd "$root/clients/typescript" && npm ci --no-audit --no-fund --loglevel=error && npm run ci; }
python() { "$root/clients/python/ci.sh"; }

which=("$@")
[ ${#which[@]} -gt 0 ] || which=(typescript python)
declare -A pids
for lib in "${which[@]}"; do
  ( SECONDS=0; "$lib"; echo "$lib: passed in ${SECONDS}s" ) > "$logs/$lib.log" 2>&1 &
  pids[$lib]=$!
done
failed=0
for lib in "${which[@]}"; do
  if wait "${pids[$lib]}"; then
    tail -n 1 "$logs/$lib.log"
  else
    echo "== $lib FAILED; its log ($logs/$lib.log):"; cat "$logs/$lib.log"; failed=1
  fi
done
exit $failed
