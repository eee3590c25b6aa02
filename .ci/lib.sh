# Shared by the .ci scripts (sourced, not run).

# start_mock [ARGS...]: starts target/debug/wxcc-mock serve --port 0 in the background, sets
# MOCK_PID and MOCK_ADDR (host:port) once it logs "listening on", and stops it on exit.
start_mock() {
  local log
  log=$(mktemp)
  target/debug/wxcc-mock serve --port 0 "$@" >"$log" 2>&1 &
  MOCK_PID=$!
  trap 'kill "$MOCK_PID" 2>/dev/null || true' EXIT
  MOCK_ADDR=""
  for _ in $(seq 1 100); do
    MOCK_ADDR=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$log" | head -1)
    [ -n "$MOCK_ADDR" ] && return 0
    sleep 0.1
  done
  echo "the mock did not start:"
  cat "$log"
  return 1
}
