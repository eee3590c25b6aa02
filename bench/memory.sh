#!/usr/bin/env bash
# Memory benchmarks (not part of CI), against a release build on loopback:
#   1. the spams of the hardening issue, one after the other (100,000 token mints, 25,000
#      subscription creates, 3,000 websockets of new clientTypes, 10,000 unconnected subscribe
#      registrations, 3,000 requests with 60 KB URIs, 3,000 refused 60 KB bodies), printing the
#      mock's resident memory after each (target: under 50 MB after each);
#   2. 10,000 agents (a generated world), each logged in with a connected notification websocket:
#      resident memory (target: under 200 MB) and how long a state change takes to reach its
#      websocket while all are connected (target: p99 under 50 ms).
# It raises this shell's file-descriptor limit (the mock and the driver each hold 10,000 sockets);
# the machine's settings are left alone.
#
#   bash bench/memory.sh [AGENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
agents=${1:-10000}

cargo build --release -q -p wxcc-mock -p wxcc-bench
hard=$(ulimit -Hn)
want=$((agents * 2 + 1024))
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then want=$hard; fi
ulimit -n "$want"
echo "file descriptors for this run: $(ulimit -n)"

. bench/lib.sh
trap 'kill "${mock:-}" 2>/dev/null || true' EXIT

echo "== the spams (one mock, one after the other)"
small=$(mktemp --suffix=.json)
python3 bench/world.py 10 >"$small"
start_mock "$(mktemp)" --quiet --world "$small"
target/release/wxcc-bench --base "$base" --world "$small" --pid "$mock" spam
kill "$mock"; wait "$mock" 2>/dev/null || true

echo "== ${agents} connected agents"
big=$(mktemp --suffix=.json)
python3 bench/world.py "$agents" >"$big"
start_mock "$(mktemp)" --quiet --world "$big" --max-connections $((agents * 2))
target/release/wxcc-bench --base "$base" --world "$big" --pid "$mock" agents --samples 2000
