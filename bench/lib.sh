# Shared by the bench scripts (sourced).

# start_mock LOG ARGS...: starts the release mock on a free port with ARGS; sets mock (its pid)
# and base (its URL), or exits with the log.
start_mock() {
  local log=$1; shift
  target/release/wxcc-mock serve --port 0 "$@" 2>"$log" &
  mock=$!
  for _ in $(seq 1 2000); do
    addr=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$log" | head -1)
    [ -n "$addr" ] && { base="http://$addr"; return 0; }
    sleep 0.005
  done
  echo "the mock did not start:" >&2; cat "$log" >&2; exit 1
}
