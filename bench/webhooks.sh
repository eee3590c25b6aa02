#!/usr/bin/env bash
# Webhook benchmarks (not part of CI), against a release build on loopback:
#   1. throughput: signed deliveries per second to a local receiver (target >= 10,000 on 2 cores).
#      The receiver holds its first request of each subscription while 10,000 state changes are
#      queued, then lets go; the clock runs from then until every delivery has arrived.
#   2. the soak: 180 agents change state every 250 ms for SECONDS (default 60) with five
#      subscriptions at receivers that verify every signature, one answering 500 now and then
#      (retried after 100 ms), one taking 1 ms per delivery; then every transition must have
#      reached every subscription once, in order: it prints "0 lost, 0 duplicated, order kept"
#      or exits 1.
#
#   bash bench/webhooks.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}

cargo build --release -q -p wxcc-mock -p wxcc-bench
world=$(mktemp --suffix=.json)
python3 bench/world.py 180 >"$world"

. bench/lib.sh
trap 'kill "${mock:-}" 2>/dev/null || true' EXIT

echo "== throughput"
start_mock "$(mktemp)" --quiet --world "$world"
target/release/wxcc-bench --base "$base" --world "$world" --pid "$mock" throughput --subscriptions 5 --transitions 10000
kill "$mock"; wait "$mock" 2>/dev/null || true

echo "== soak: 180 agents, 5 subscriptions, ${seconds} s"
start_mock "$(mktemp)" --quiet --world "$world" --webhook-backoff-ms 100
target/release/wxcc-bench --base "$base" --world "$world" --pid "$mock" soak --agents 180 --subscriptions 5 --seconds "$seconds"
echo "mock resident memory after the soak: $(awk '/VmRSS/ {print $2 " kB"}' "/proc/$mock/status")"
