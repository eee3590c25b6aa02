#!/usr/bin/env bash
# Load benchmark (not part of CI), with wrk on loopback against release builds:
#   1. the baseline: a bare axum server answering GET /v1/subscriptions with a fixed JSON body
#      (bench/bare-axum, built here), sent the very same requests (its Authorization header unread);
#   2. the mock's authenticated, validated, journaled GET /v1/subscriptions (console quiet);
#   3. the mock's PUT /v1/agents/session/state (auth + schema validation + state machine + journal).
# Prints the mock's start-up times (bench/startup.py), requests/s of each, the ratio mock/baseline
# (target >= 0.8), and the mock's resident memory before and after.
#
#   bash bench/load.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
connections=${2:-32}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release -q -p wxcc-mock -p bare-axum

# wait_listening LOG: prints host:port once the log says "listening on http://...".
wait_listening() {
  for _ in $(seq 1 2000); do
    addr=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$1" | head -1)
    [ -n "$addr" ] && { echo "$addr"; return 0; }
    sleep 0.005
  done
  echo "did not start:" >&2; cat "$1" >&2; return 1
}
rps() { awk '/Requests\/sec/ {print $2}'; }
rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$1/status"; }

bare_log=$(mktemp); mock_log=$(mktemp)
target/release/bare-axum 0 2>"$bare_log" &
bare=$!
admin=$(python3 -c 'import json; w=json.load(open("fixtures/world.json")); print(next(t["accessToken"] for t in w["tokens"] if t["accessToken"].startswith("admin-full_")))')
agent=$(python3 -c 'import json; w=json.load(open("fixtures/world.json")); print(next(t["accessToken"] for t in w["tokens"] if t["accessToken"].startswith("agent2_")))')
# Start-up first, while nothing else runs (target: answering within 15 ms of the spawn).
python3 bench/startup.py target/release/wxcc-mock "$agent"
target/release/wxcc-mock serve --port 0 --quiet 2>"$mock_log" &
mock=$!
trap 'kill "$bare" "$mock" 2>/dev/null || true' EXIT
mock_addr=$(wait_listening "$mock_log")
bare_addr=$(wait_listening "$bare_log")
get_script=$(mktemp --suffix=.lua)
cat >"$get_script" <<LUA
wrk.headers["Authorization"] = "Bearer $admin"
LUA
put_script=$(mktemp --suffix=.lua)
cat >"$put_script" <<LUA
wrk.method = "PUT"
wrk.headers["Authorization"] = "Bearer $agent"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"state":"Available","auxCodeId":"0"}'
LUA

echo "mock memory before: $(rss "$mock")"
# Warm both up, then alternate short runs (the machine's other load moves single runs by ±20%)
# and compare the medians.
wrk -t2 -c"$connections" -d2s -s "$get_script" "http://$bare_addr/v1/subscriptions" >/dev/null
wrk -t2 -c"$connections" -d2s -s "$get_script" "http://$mock_addr/v1/subscriptions" >/dev/null
bare_runs=(); mock_runs=()
for _ in 1 2 3 4 5; do
  bare_runs+=("$(wrk -t2 -c"$connections" -d"${seconds}s" -s "$get_script" "http://$bare_addr/v1/subscriptions" | rps)")
  mock_runs+=("$(wrk -t2 -c"$connections" -d"${seconds}s" -s "$get_script" "http://$mock_addr/v1/subscriptions" | rps)")
done
median() { printf '%s\n' "$@" | sort -g | sed -n 3p; }
baseline=$(median "${bare_runs[@]}")
mocked=$(median "${mock_runs[@]}")
echo "GET /v1/subscriptions, 5 alternating runs of ${seconds}s each, ${connections} connections (medians):"
echo "  bare axum (fixed body):                      $baseline req/s   (runs: ${bare_runs[*]})"
echo "  wxcc-mock (auth, validated, journaled):      $mocked req/s   (runs: ${mock_runs[*]})"
python3 -c "print(f'  ratio mock/bare: {float(\"$mocked\")/float(\"$baseline\"):.2f} (target >= 0.8)')"
state=$(wrk -t2 -c"$connections" -d"${seconds}s" -s "$put_script" "http://$mock_addr/v1/agents/session/state" | rps)
echo "PUT /v1/agents/session/state (auth, schema, state machine, journal): $state req/s"
echo "mock memory after: $(rss "$mock")"
