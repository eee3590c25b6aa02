#!/usr/bin/env bash
# The dashboard (/__admin/ui) in Debian's Chromium, headless, driven by puppeteer-core (from the
# npm registry) against a mock on a virtual clock. Installs Chromium with apt-get when it is
# missing (as root, or through sudo). Needs target/debug/wxcc-mock.
set -euo pipefail
cd "$(dirname "$0")/.."

chromium=${CHROMIUM:-$(command -v chromium || true)}
if [ -z "$chromium" ]; then
  if [ "$(id -u)" = 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
    echo "Chromium is missing and cannot be installed here (not root, no sudo): install Debian's 'chromium' package, or set CHROMIUM to a Chromium or Chrome binary." >&2
    exit 1
  fi
  echo "installing Debian's chromium (apt-get)"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
  chromium=$(command -v chromium)
fi
echo "browser: $("$chromium" --version 2>/dev/null || echo "$chromium")"

(cd e2e/ui && npm ci --no-audit --no-fund --loglevel=error)
. .ci/lib.sh
start_mock --clock virtual
(cd e2e/ui && MOCK="http://$MOCK_ADDR" CHROMIUM="$chromium" npm test --silent)
