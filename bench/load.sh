#!/usr/bin/env bash
# Load benchmark (not part of CI): authenticated, schema-validated requests against a release
# build of the mock on loopback, with wrk. Prints requests/s and the mock's resident memory
# before and after. Targets (DEVELOPERS.md): >= 40k req/s on 2 cores, memory flat (< 50 MB).
#
#   bash bench/load.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-32}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release -q -p wxcc-mock

log=$(mktemp)
target/release/wxcc-mock serve --port 0 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  addr=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$log" | head -1)
  [ -n "$addr" ] && break
  sleep 0.1
done
rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$pid/status"; }

token=$(python3 -c 'import json; w=json.load(open("fixtures/world.json")); print(next(t["accessToken"] for t in w["tokens"] if t["accessToken"].startswith("agent2_")))')
script=$(mktemp --suffix=.lua)
cat >"$script" <<LUA
wrk.method = "PUT"
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"state":"Available","auxCodeId":"0"}'
LUA
echo "memory before: $(rss)"
echo "PUT /v1/agents/session/state (auth + schema validation + state machine), ${seconds}s, ${connections} connections:"
wrk -t2 -c"$connections" -d"${seconds}s" -s "$script" "http://$addr/v1/agents/session/state" | grep -E "Requests/sec|Latency|requests in"
echo "memory after: $(rss)"
