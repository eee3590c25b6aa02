#!/usr/bin/env bash
# Checks schemas/openapi.json (valid OpenAPI 3.1) and runs schemathesis against it and a running
# mock. Installs its Python tools into target/ci-venv. Needs target/debug/wxcc-mock.
#
# Two of schemathesis' checks are left out on purpose, because they contradict the real API:
# missing_required_header and ignored_auth expect 401 for a request without Authorization, and
# WxCC answers 400 ("Invalid Authorization header"). The websocket operation is left out because
# an HTTP fuzzer cannot upgrade, and the journal's live stream because it never ends (schemathesis
# would wait out a read timeout per case); both have tests with real clients. Fault rules get a run
# of their own against a mock of their own: a rule the fuzzer adds (reset everything, an hour of
# latency) would otherwise make every later operation fail for reasons that are not theirs.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/ci-venv
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'schemathesis==4.32.5' 'openapi-spec-validator==0.9.0'
fi
"$venv/bin/python" -m openapi_spec_validator schemas/openapi.json

. .ci/lib.sh
start_mock

token=$(python3 -c 'import json; w=json.load(open("fixtures/world.json")); print(next(t["accessToken"] for t in w["tokens"] if t["accessToken"].startswith("admin-full_")))')
"$venv/bin/st" run schemas/openapi.json \
  --url "http://$MOCK_ADDR" \
  --header "Authorization: Bearer $token" \
  --checks all --exclude-checks missing_required_header,ignored_auth \
  --exclude-operation-id notificationConnect --exclude-operation-id adminJournalStream \
  --exclude-operation-id adminAddFault --exclude-operation-id adminLoadScenario \
  --max-examples 30 --seed 1 --workers 2
kill "$MOCK_PID" 2>/dev/null || true

echo "== schemathesis: the fault rules, on a mock of their own"
start_mock
"$venv/bin/st" run schemas/openapi.json \
  --url "http://$MOCK_ADDR" \
  --header "Authorization: Bearer $token" \
  --checks all --exclude-checks missing_required_header,ignored_auth \
  --include-path-regex '^/__admin/faults' \
  --max-examples 100 --seed 1 --workers 2
kill "$MOCK_PID" 2>/dev/null || true

echo "== schemathesis: scenarios, on a mock of their own"
# A scenario resets the mock and brings rules and limits of its own, so it is fuzzed apart. Its
# schema cannot say which routes exist or which names a step has saved, so a schema-valid
# scenario may still be refused with a 400 that says why: positive_data_acceptance is off here.
start_mock
"$venv/bin/st" run schemas/openapi.json \
  --url "http://$MOCK_ADDR" \
  --header "Authorization: Bearer $token" \
  --checks all --exclude-checks missing_required_header,ignored_auth,positive_data_acceptance \
  --include-path-regex '^/__admin/scenario' \
  --max-examples 50 --seed 1 --workers 2
kill "$MOCK_PID" 2>/dev/null || true
