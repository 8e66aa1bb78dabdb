#!/usr/bin/env bash
# No secret in the logs of a real server: starts `tessera serve` with TRACE logs, drives the
# secret-issuing flows over HTTP (the bootstrap key, an agency API key and its rotation, an app's
# client secret, client-credentials tokens, a wrong secret), then searches every log line for
# every secret issued and for the master key (hex). Exit 1 names the kind of secret found.
#   bash .ci/secrets-in-logs.sh                 (TESSERA_BIN: default target/debug/tessera)
# Other process-based suites can reuse the scan: `scan_log LOG FILE_OF_SECRETS` below reads
# one secret per line (source this file with SCAN_ONLY=1 to get the function alone).
set -euo pipefail

scan_log() { # log file, file with one secret per line → 0 when none appears
  local log=$1 list=$2 found=0 s
  while IFS= read -r s; do
    [ -n "$s" ] || continue
    if grep -qF -- "$s" "$log"; then
      echo "secrets-in-logs: a secret (${s:0:8}…) appears in $log" >&2
      found=1
    fi
  done <"$list"
  return "$found"
}

if [ "${SCAN_ONLY:-0}" = 1 ]; then return 0 2>/dev/null || exit 0; fi

cd "$(dirname "$0")/.."
BIN=${TESSERA_BIN:-target/debug/tessera}
[ -x "$BIN" ] || cargo build -q -p tessera-server
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
BASE="http://127.0.0.1:$PORT"
data=$(mktemp -d)
TESSERA_LOG=trace "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$data" --rate-limits off >"$data/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do curl -sf -o /dev/null "$BASE/readyz" && break; sleep 0.1; done
secrets="$data/secrets.txt"
admin=$(tr -d '\n' <"$data/bootstrap-admin.key")
tr -d '\n' <"$data/master.key" >>"$secrets"; echo >>"$secrets"
echo "$admin" >>"$secrets"

j() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
post() { curl -sf -X POST "$BASE$1" -H "authorization: Bearer $2" -H 'content-type: application/json' -d "$3"; }

agency=$(post /v1/agencies "$admin" '{"name":"Logs"}' | j '["id"]')
account=$(post "/v1/agencies/$agency/accounts" "$admin" '{"name":"Logs client"}' | j '["id"]')
key=$(post "/v1/agencies/$agency/api-keys" "$admin" '{"name":"k","scopes":["agencies.readonly"]}')
echo "$key" | j '["secret"]' >>"$secrets"
key_id=$(echo "$key" | j '["id"]')
post "/v1/agencies/$agency/api-keys/$key_id/rotate" "$admin" '{}' | j '.get("secret","")' >>"$secrets"
app=$(post "/v1/agencies/$agency/apps" "$admin" '{"name":"a","redirect_uris":["https://app.example.com/cb"],"scopes":["contacts.readonly"],"confidential":true,"kind":"first_party"}')
client=$(echo "$app" | j '["client_id"]')
secret=$(echo "$app" | j '["client_secret"]')
echo "$secret" >>"$secrets"
post "/v1/agencies/$agency/accounts/$account/installations" "$admin" "{\"app\":\"$client\",\"scopes\":[\"contacts.readonly\"]}" >/dev/null
for _ in 1 2 3; do
  curl -sf -u "$client:$secret" -d grant_type=client_credentials -d scope=contacts.readonly "$BASE/oauth/token" | j '["access_token"]' >>"$secrets"
done
wrong="tsk_a_wrong_client_secret_that_must_not_be_logged"
curl -s -o /dev/null -u "$client:$wrong" -d grant_type=client_credentials "$BASE/oauth/token"
echo "$wrong" >>"$secrets"
curl -s -o /dev/null -H "authorization: Bearer $(sed -n 3p "$secrets")" "$BASE/v1/agencies/$agency"

kill "$pid"; wait "$pid" 2>/dev/null || true
lines=$(wc -l <"$data/server.log")
[ "$lines" -gt 20 ] || { echo "secrets-in-logs: only $lines log lines: is TRACE on?" >&2; exit 1; }
scan_log "$data/server.log" "$secrets"
echo "secrets-in-logs: $(grep -c . "$secrets") secrets, $lines log lines: none found"
