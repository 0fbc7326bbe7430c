#!/usr/bin/env bash
# The client libraries' figures beside herald's own, in one run (issue 31):
#   - herald-bench catchup (herald's own SSE reader, from earliest) and queue
#     (8 consumers pulling 100), each starting its own herald;
#   - then, against one release herald with default flags on a fresh SQLite
#     file, each client's subscribe at saturation (from earliest), subscribe at
#     1,000 messages/s offered, and consume drain with maxInFlight 8.
# Prints the figures and their ratios; the JSON is kept in $BENCH_OUT.
#   clients/bench.sh [DIR]   # DIR holds release herald and herald-bench (default target/release)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(realpath "${1:-$root/target/release}")
out=${BENCH_OUT:-$root/target/clients-bench}
n=${BENCH_MESSAGES:-100000}
mkdir -p "$out"
for b in herald herald-bench; do
  [ -x "$bin/$b" ] || { echo "no $bin/$b: cargo build --release --bin herald --bin herald-bench"; exit 1; }
done
[ -d "$root/clients/typescript/node_modules" ] || (cd "$root/clients/typescript" && npm ci --no-audit --no-fund --loglevel=error)
(cd "$root/clients/typescript" && npm run build >/dev/null)
py=$root/clients/python/.venv/bin/python
[ -x "$py" ] || { python3 -m venv "$root/clients/python/.venv" && "$py" -m pip install -q -e "$root/clients/python"; }

echo "herald-bench catchup ($n messages) and queue ..."
"$bin/herald-bench" catchup --catchup-messages "$n" --json > "$out/catchup.json"
"$bin/herald-bench" queue --json > "$out/queue.json"

dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
"$bin/herald" serve --listen 127.0.0.1:0 --database-url "sqlite://$dir/herald.db" 2> "$dir/log" &
pid=$!
url=""
for _ in $(seq 1 200); do
  url=$(grep -o 'http://127.0.0.1:[0-9]*' "$dir/log" | head -n 1 || true)
  [ -n "$url" ] && break
  kill -0 "$pid" || { cat "$dir/log"; exit 1; }
  sleep 0.05 # a poll: the address is the first log line
done
[ -n "$url" ] || { echo "herald did not start"; cat "$dir/log"; exit 1; }
echo "clients against $url ..."
node "$root/clients/typescript/bench/throughput.mjs" --url "$url" --messages "$n" > "$out/typescript.json"
"$py" "$root/clients/python/bench/throughput.py" --url "$url" --messages "$n" > "$out/python.json"

python3 - "$out" <<'EOF'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
rows = lambda f: json.loads((out / f).read_text())
catchup = next(r for r in rows("catchup.json") if r["scenario"].startswith("catchup from earliest"))
queue = next(r for r in rows("queue.json") if r["scenario"].startswith("queue: drain"))
reader, drain = catchup["value"], queue["value"]
print(f"herald-bench catchup: {reader:,.0f} msgs/s ({catchup['note']})")
print(f"herald-bench queue:   {drain:,.0f} acked msgs/s ({queue['note']})")
print()
print("| client | subscribe, saturation | ÷ catchup | at 1,000/s offered | consume drain, 8 in flight | ÷ queue |")
print("| --- | --- | --- | --- | --- | --- |")
for name in ("typescript", "python"):
    r = rows(f"{name}.json")
    if name == "typescript":
        sat = r["subscribe_saturation"]["msgs_per_s"]
        offered = r["subscribe_offered_1000"]["delivered_per_s"]
        acked = r["consume_drain"]["acked_per_s"]
    else:  # the async client over SSE
        sat = r["subscribe_saturated"]["sse_msgs_per_s"]
        offered = r["subscribe_offered_1000"]["delivered_msgs_per_s"]
        acked = r["consume_drain"]["acked_msgs_per_s"]
    print(f"| {name} | {sat:,} msgs/s | {sat / reader:.2f} | {offered:,} msgs/s ({offered / 1000:.2f}) "
          f"| {acked:,} msgs/s | {acked / drain:.3f} |")
EOF
