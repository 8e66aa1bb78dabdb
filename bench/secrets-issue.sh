#!/usr/bin/env bash
# The cost of sealing personal data on the hot write path (issue 12, item 9): client-credentials
# token issue (its audit event goes through the group-commit writer, which now seals the
# client's address under the agency's data key) for two release builds, in alternating rounds,
# each server pinned to CPU 0 and wrk to CPU 1.
#   BEFORE=path/to/old/tessera AFTER=path/to/new/tessera bash bench/secrets-issue.sh
# ROUNDS (default 3), DURATION (default 10s), CONNECTIONS (default 50). Prints req/s per round,
# the medians and the change.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BEFORE:?BEFORE=the old tessera binary}" "${AFTER:?AFTER=the new tessera binary}"
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-50}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
work=$(mktemp -d)
pid=
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT

j() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
post() { curl -sf -X POST "$BASE$1" -H "authorization: Bearer $2" -H 'content-type: application/json' -d "$3"; }

measure() { # binary → req/s
  local bin=$1 port data
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  BASE="http://127.0.0.1:$port"
  data=$(mktemp -d -p "$work")
  taskset -c 0 "$bin" serve --listen "127.0.0.1:$port" --data-dir "$data" --rate-limits off >"$data/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 150); do curl -sf -o /dev/null "$BASE/readyz" && break; sleep 0.1; done
  local admin agency account app client secret
  admin=$(tr -d '\n' <"$data/bootstrap-admin.key")
  agency=$(post /v1/agencies "$admin" '{"name":"Bench"}' | j '["id"]')
  account=$(post "/v1/agencies/$agency/accounts" "$admin" '{"name":"Bench client"}' | j '["id"]')
  app=$(post "/v1/agencies/$agency/apps" "$admin" '{"name":"b","redirect_uris":["https://app.example.com/cb"],"scopes":["contacts.readonly"],"confidential":true,"kind":"first_party"}')
  client=$(echo "$app" | j '["client_id"]')
  secret=$(echo "$app" | j '["client_secret"]')
  post "/v1/agencies/$agency/accounts/$account/installations" "$admin" "{\"app\":\"$client\",\"scopes\":[\"contacts.readonly\"]}" >/dev/null
  local auth
  auth=$(printf '%s:%s' "$client" "$secret" | base64 -w0)
  cat >"$work/issue.lua" <<EOF
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=contacts.readonly"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $auth"
EOF
  # Warm-up, then the measured run.
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d2s -s "$work/issue.lua" "$BASE/oauth/token" >/dev/null
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s "$work/issue.lua" "$BASE/oauth/token" >"$work/out"
  grep -q "Non-2xx" "$work/out" && { echo "bench: errors in the run:" >&2; cat "$work/out" >&2; }
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  awk '/Requests\/sec/ {print int($2)}' "$work/out"
}

declare -a before after
for round in $(seq 1 "$ROUNDS"); do
  if ((round % 2)); then order="before after"; else order="after before"; fi
  for which in $order; do
    if [ "$which" = before ]; then r=$(measure "$BEFORE"); before+=("$r"); else r=$(measure "$AFTER"); after+=("$r"); fi
    echo "round $round $which: $r req/s"
  done
done
python3 - "${before[*]}" "${after[*]}" <<'EOF'
import statistics, sys
b = [int(x) for x in sys.argv[1].split()]
a = [int(x) for x in sys.argv[2].split()]
mb, ma = statistics.median(b), statistics.median(a)
print(f"before: {b} median {mb:.0f} req/s")
print(f"after:  {a} median {ma:.0f} req/s")
print(f"change: {100 * (ma - mb) / mb:+.1f}%")
EOF
