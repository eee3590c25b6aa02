#!/usr/bin/env bash
# Cisco's @webex/contact-center SDK (3.12.0, from the npm registry, unchanged) against the mock:
# register, station login, state changes, logout, and the refusals. Needs target/debug/wxcc-mock.
set -euo pipefail
cd "$(dirname "$0")/.."

(cd e2e/sdk && npm ci --no-audit --no-fund --loglevel=error)
. .ci/lib.sh
start_mock
(cd e2e/sdk && MOCK="http://$MOCK_ADDR" npm test --silent)
