#!/usr/bin/env bash
# Checks schemas/openapi.json (valid OpenAPI 3.1) and runs schemathesis against it and a running
# mock. Installs its Python tools into target/ci-venv. Needs target/debug/wxcc-mock.
#
# Two of schemathesis' checks are left out on purpose, because they contradict the real API:
# missing_required_header and ignored_auth expect 401 for a request without Authorization, and
# WxCC answers 400 ("Invalid Authorization header"). The websocket operation is left out because
# an HTTP fuzzer cannot upgrade, and the journal's live stream because it never ends (schemathesis
# would wait out a read timeout per case); both have tests with real clients.
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
  --max-examples 30 --seed 1 --workers 2
