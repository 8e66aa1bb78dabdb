#!/usr/bin/env bash
# docs/OPERATIONS.md's runbook "A signing key is compromised", run as written against a real
# `tessera serve` on PostgreSQL: the two roles of "PostgreSQL" (`tessera migrate --grant-to`),
# a client-credentials token, `tessera keys list`, `tessera keys rotate`, the runbook's own SQL
# (read from the page, so the page and this check cannot drift apart), then the restart. It
# checks what the page says: before the restart a running node still accepts a token it has
# verified and, within its 60 s key reload, refuses one it has not; after the restart the old
# token is inactive at introspection and 401 on /v1, the key has left the JWKS, and new tokens
# are signed by the successor. Needs TESSERA_TEST_DATABASE_URL (an admin URL); fails without.
# Costs about 90 s once the binary is built (65 s of it waiting for the key reload).
#   TESSERA_BIN    the server binary (default $CARGO_TARGET_DIR/debug/tessera, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${TESSERA_TEST_DATABASE_URL:?set TESSERA_TEST_DATABASE_URL to an admin PostgreSQL URL}"
BIN=${TESSERA_BIN:-${CARGO_TARGET_DIR:-target}/debug/tessera}
[ -x "$BIN" ] || cargo build -q -p tessera-server --bin tessera
BIN=$(realpath "$BIN")

work=$(mktemp -d); chmod 700 "$work"
name="tessera_rb_$$_$RANDOM"
admin() { psql -qtA -v ON_ERROR_STOP=1 "$TESSERA_TEST_DATABASE_URL" "$@"; }
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  admin -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "DROP ROLE IF EXISTS ${name}_rt" \
    -c "DROP ROLE IF EXISTS ${name}_owner" || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "runbooks: FAIL: $*" >&2; echo "--- server log" >&2; tail -n 30 "$work/serve.log" >&2 || true; exit 1; }

admin -c "CREATE ROLE ${name}_owner LOGIN PASSWORD 'o' NOSUPERUSER NOBYPASSRLS" \
  -c "CREATE ROLE ${name}_rt LOGIN PASSWORD 'r' NOSUPERUSER NOBYPASSRLS" \
  -c "CREATE DATABASE $name OWNER ${name}_owner"
base=${TESSERA_TEST_DATABASE_URL%/*}; hostpart=${base#*://}; hostpart=${hostpart#*@}
owner_url="postgres://${name}_owner:o@$hostpart/$name"
rt_url="postgres://${name}_rt:r@$hostpart/$name"
openssl rand -hex 32 > "$work/master.key"; chmod 600 "$work/master.key"
common=(--master-key-file "$work/master.key" --data-dir "$work/data")
"$BIN" migrate --database-url "$owner_url" --grant-to "${name}_rt" "${common[@]}" >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ts="http://127.0.0.1:$port"
start() {
  "$BIN" serve --database-url "$rt_url" "${common[@]}" --listen "127.0.0.1:$port" --issuer "$ts" \
    >>"$work/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 150); do curl -sf "$ts/readyz" >/dev/null && return; sleep 0.2; done
  fail "the server did not become ready"
}
start

admin_h="Authorization: Bearer $(cat "$work/data/bootstrap-admin.key")"
field() { python3 -c "import sys, json; print(json.load(sys.stdin)['$1'])"; }
post() { curl -sf -X POST "$ts$1" -H "$admin_h" -H 'content-type: application/json' -d "$2"; }
agy=$(post /v1/agencies '{"name": "Runbook"}' | field id)
acc=$(post "/v1/agencies/$agy/accounts" '{"name": "Account"}' | field id)
app=$(post "/v1/agencies/$agy/apps" '{"name": "App", "redirect_uris": ["http://127.0.0.1:9/cb"], "scopes": ["contacts.readonly"], "confidential": true}')
cid=$(echo "$app" | field client_id); csec=$(echo "$app" | field client_secret)
post "/v1/agencies/$agy/accounts/$acc/installations" "{\"app\": \"$cid\", \"scopes\": [\"contacts.readonly\"]}" >/dev/null
token() { curl -sf -X POST "$ts/oauth/token" -u "$cid:$csec" -d grant_type=client_credentials -d scope=contacts.readonly | field access_token; }
kid() { python3 -c "import sys, base64, json; h = sys.argv[1].split('.')[0]; print(json.loads(base64.urlsafe_b64decode(h + '=' * (-len(h) % 4)))['kid'])" "$1"; }
active() { curl -sf -X POST "$ts/oauth/introspect" -u "$cid:$csec" -d "token=$1" | field active; }
keys() { "$BIN" keys list --output json --database-url "$rt_url" "${common[@]}"; }

seen=$(token); unseen=$(token)
[ "$(active "$seen")" = True ] || fail "a fresh token is not active"
# Step 1: the compromised key is the active EdDSA one, which signed the token.
compromised=$(keys | python3 -c "import sys, json; print([k['kid'] for k in json.load(sys.stdin)['keys'] if k['alg'] == 'EdDSA' and k['state'] == 'active'][0])")
[ "$(kid "$seen")" = "$compromised" ] || fail "the token was not signed by the active EdDSA key"
# Step 2.
"$BIN" keys rotate --database-url "$rt_url" "${common[@]}" >/dev/null
successor=$(keys | python3 -c "import sys, json; print([k['kid'] for k in json.load(sys.stdin)['keys'] if k['alg'] == 'EdDSA' and k['state'] == 'pending'][0])")
# Step 3: the SQL block of the runbook, as the owner.
python3 - "$compromised" > "$work/step3.sql" <<'PY'
import sys
page = open("docs/OPERATIONS.md").read()
runbook = page[page.index("### A signing key is compromised"):]
sql = runbook[runbook.index("```sql\n") + 7:]
sql = sql[: sql.index("```")]
lines = [line.strip() for line in sql.splitlines()]
print("\n".join(lines).replace("<compromised kid>", sys.argv[1]))
PY
grep -q "DELETE FROM signing_keys" "$work/step3.sql" || fail "the runbook's SQL was not found"
psql -qtA -v ON_ERROR_STOP=1 "$owner_url" -f "$work/step3.sql" >/dev/null

# Before any restart: the verified token is still accepted from the node's cache.
[ "$(active "$seen")" = True ] || fail "the running node dropped a cached token at once (the page says it keeps it)"
sleep 65
[ "$(active "$seen")" = True ] || fail "the running node dropped a cached token after its key reload (the page says it keeps it)"
[ "$(active "$unseen")" = False ] || fail "a token the node had not verified is still active after the key reload"
[ "$(kid "$(token)")" = "$successor" ] || fail "after the key reload the node does not sign with the successor"

# Step 4: the restart.
kill "$pid"; wait "$pid" || true; pid=
start
[ "$(active "$seen")" = False ] || fail "after the restart the compromised key's token is still active"
code=$(curl -s -o /dev/null -w '%{http_code}' "$ts/v1/agencies/$agy/accounts/$acc" -H "Authorization: Bearer $seen")
[ "$code" = 401 ] || fail "after the restart /v1 answered $code to the compromised key's token, not 401"
if curl -sf "$ts/.well-known/jwks.json" | grep -q "$compromised"; then fail "the compromised key is still in the JWKS"; fi
fresh=$(token)
[ "$(kid "$fresh")" = "$successor" ] && [ "$(active "$fresh")" = True ] || fail "new tokens are not signed by the successor"
keys | python3 -c "
import sys, json
states = {k['kid']: (k['alg'], k['state']) for k in json.load(sys.stdin)['keys']}
assert '$compromised' not in states, states
assert states['$successor'] == ('EdDSA', 'active'), states
"
echo "runbooks: the signing-key compromise runbook holds (compromised $compromised, successor $successor)"
