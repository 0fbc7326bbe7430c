#!/usr/bin/env bash
# Failover through scripts/cluster: publish through node A while streaming
# from node B, kill -9 node A mid-stream, then resume through the load
# balancer with the same Last-Event-ID. The stream before and after must
# hold every message the topic has, in order: no gap, no duplicate, and
# every acknowledged publish among them.
#
#   tests/cluster/failover.sh [MESSAGES]     (default 300)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
total=${1:-300}
export CLUSTER_DIR=${CLUSTER_DIR:-$(mktemp -d)}
export CLUSTER_DATABASE=${CLUSTER_DATABASE:-herald_failover_$$}
export CLUSTER_PORT=${CLUSTER_PORT:-18080}
pg=${CLUSTER_POSTGRES:-postgres://postgres@127.0.0.1:5432}
herald=${HERALD_BIN:-$root/target/release/herald}
[ -x "$herald" ] || herald=$root/target/debug/herald
work=$CLUSTER_DIR/failover
mkdir -p "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$root/scripts/cluster" down
  psql "$pg/postgres" -qc "drop database if exists $CLUSTER_DATABASE with (force)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$CLUSTER_DIR"/herald-*.log "$work"/*.err; do echo "--- $f"; tail -n 20 "$f"; done
  exit 1
}
# Waits up to 20 s for the shell condition $1 to hold (evaluated each time).
until_ok() {
  for _ in $(seq 1 400); do eval "$1" && return 0; sleep 0.05; done
  return 1
}
lines() { wc -l < "$1" 2>/dev/null || echo 0; }

eval "$("$root/scripts/cluster" up)"
echo "cluster: lb $LB_URL, a $A_URL (pid $A_PID), b $B_URL (pid $B_PID)"

# The stream from node B, from the start of the log.
"$herald" subscribe --url "$B_URL" --since 0 --json failover > "$work/b.out" 2> "$work/b.err" &
sub_b=$!
pids+=("$sub_b")

# The publisher: through A until it dies, then through the load balancer.
# Each acknowledged id is recorded.
(
  url=$A_URL
  for i in $(seq 1 "$total"); do
    while :; do
      if ack=$(curl -fsS -X POST "$url/topics/failover" -d "m$i" 2>/dev/null); then
        echo "$ack" | sed -n 's/.*"id":\([0-9]*\).*/\1/p' >> "$work/acked"
        break
      fi
      url=$LB_URL # A is gone (or answered an error): retry through the LB
    done
  done
) &
publisher=$!
pids+=("$publisher")

# Mid-stream: once B has streamed a third, kill -9 node A, then drop the
# stream from B too, and resume through the load balancer from its last id.
until_ok '[ "$(lines "$work/b.out")" -ge $((total / 3)) ]' || fail "B streamed $(lines "$work/b.out") messages"
kill -9 "$A_PID"
echo "killed node A after B streamed $(lines "$work/b.out") messages"
until_ok '[ "$(lines "$work/b.out")" -ge $((total / 2)) ]' || fail "B stopped streaming after A died"
kill "$sub_b"; wait "$sub_b" 2>/dev/null || true
last=$(tail -n 1 "$work/b.out" | sed -n 's/^{"id":\([0-9]*\).*/\1/p')
[ -n "$last" ] || fail "no last id in B's stream"
echo "B's stream ended at id $last ($(lines "$work/b.out") messages); resuming through the load balancer"
"$herald" subscribe --url "$LB_URL" --since "$last" --json failover > "$work/lb.out" 2> "$work/lb.err" &
pids+=("$!")

wait "$publisher" || fail "the publisher failed"
head=$(curl -fsS "$LB_URL/topics/failover" | sed -n 's/.*"last_seq":\([0-9]*\).*/\1/p')
until_ok '[ $(( $(lines "$work/b.out") + $(lines "$work/lb.out") )) -ge "$head" ]' \
  || fail "streamed $(( $(lines "$work/b.out") + $(lines "$work/lb.out") )) of $head messages"

# The ids streamed, in order, against the topic's history.
cat "$work/b.out" "$work/lb.out" | sed -n 's/^{"id":\([0-9]*\).*/\1/p' > "$work/streamed"
curl -fsS "$LB_URL/topics/failover/messages?limit=1000" \
  | grep -o '"id":[0-9]*,"topic"' | sed 's/[^0-9]//g' > "$work/history"
[ "$(sort -n "$work/streamed" | uniq -d | wc -l)" = 0 ] || fail "duplicates in the stream"
cmp -s "$work/streamed" "$work/history" || fail "the stream differs from the history: $(diff "$work/streamed" "$work/history" | head -n 5)"
missing=$(comm -23 <(sort "$work/acked") <(sort "$work/history") | wc -l)
[ "$missing" = 0 ] || fail "$missing acknowledged messages are missing"
echo "OK: $(wc -l < "$work/streamed") messages streamed in order across the failover (last before: $last), $(wc -l < "$work/acked") acknowledged, none lost, none twice"
