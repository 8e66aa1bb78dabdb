#!/usr/bin/env bash
# Forward auth behind real nginx (the Debian package, installed if missing): nginx runs as the
# current user from a throw-away prefix, with `tessera serve` as its `auth_request` target and a
# tiny upstream that echoes the identity headers it received. Checks that an API key and an
# access token reach the upstream with their identity, that another tenant is 403, a revoked
# token 401, that an impersonation token's actor reaches the upstream, that an unmapped route is
# 403, and that a client's own X-Tessera-* headers never pass.
#   TESSERA_BIN   the server binary (default $CARGO_TARGET_DIR/debug/tessera, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=.ci/forward-auth-lib.sh
source .ci/forward-auth-lib.sh
BIN=${TESSERA_BIN:-${CARGO_TARGET_DIR:-target}/debug/tessera}
NGINX=$(fa_nginx_bin)
[ -x "$BIN" ] || cargo build -q -p tessera-server

work=$(mktemp -d)
TPORT=$(fa_free_port) UPORT=$(fa_free_port) NPORT=$(fa_free_port) DPORT=$(fa_free_port)
ISSUER="http://127.0.0.1:$TPORT"
fa_tessera_config "$work/tessera.toml"
"$BIN" serve --config "$work/tessera.toml" --listen "127.0.0.1:$TPORT" --data-dir "$work/data" \
  --issuer "$ISSUER" >"$work/tessera.log" 2>&1 &
tpid=$!
fa_nginx_config "$work/nginx" "$TPORT" "$UPORT" "$NPORT" "$DPORT"
npid=""
failed=1
cleanup() {
  [ -z "$npid" ] || kill "$npid" 2>/dev/null || true
  kill "$tpid" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ "$failed" = 1 ]; then
    echo "--- tessera's log:" >&2; tail -n 50 "$work/tessera.log" >&2 || true
    echo "--- nginx's error log:" >&2; tail -n 50 "$work/nginx/logs/error.log" >&2 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fa_wait_for "$ISSUER/readyz" "$tpid" "tessera"
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/logs/error.log" &
npid=$!
fa_wait_for "http://127.0.0.1:$UPORT/" "$npid" "nginx"
EDGE="http://127.0.0.1:$NPORT"

# --- fixtures through the admin API.
ADMIN="Authorization: Bearer $(cat "$work/data/bootstrap-admin.key")"
admin() { # path, JSON body → the answer's JSON
  curl -sS --fail-with-body -XPOST "$ISSUER$1" -H "$ADMIN" -H 'content-type: application/json' -d "$2" ||
    fa_die "POST $1 failed"
}
jid() { python3 -c 'import sys, json; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
AGY=$(admin /v1/agencies '{"name":"Edge"}' | jid id)
ACC=$(admin "/v1/agencies/$AGY/accounts" '{"name":"Edge account"}' | jid id)
OTHER=$(admin /v1/agencies '{"name":"Elsewhere"}' | jid id)
key=$(admin "/v1/agencies/$AGY/api-keys" '{"name":"reader","scopes":["contacts.readonly"]}')
KEY=$(jid secret <<<"$key") KEY_ID=$(jid id <<<"$key")
app=$(admin "/v1/agencies/$AGY/apps" \
  '{"name":"Edge app","redirect_uris":["https://edge.test/cb"],"scopes":["contacts.readonly"],"confidential":true,"kind":"private"}')
CLIENT_ID=$(jid client_id <<<"$app") CLIENT_SECRET=$(jid client_secret <<<"$app")
admin "/v1/agencies/$AGY/accounts/$ACC/installations" "{\"app\":\"$CLIENT_ID\",\"scopes\":[\"contacts.readonly\"]}" >/dev/null
TOKEN=$(curl -sS --fail-with-body -u "$CLIENT_ID:$CLIENT_SECRET" "$ISSUER/oauth/token" \
  -d grant_type=client_credentials -d scope=contacts.readonly | jid access_token)
# Impersonation: a support key holding users.impersonate acts as an account user.
support=$(admin "/v1/agencies/$AGY/api-keys" '{"name":"support","scopes":["users.impersonate","contacts.readonly"]}')
SUPPORT=$(jid secret <<<"$support") SUPPORT_ID=$(jid id <<<"$support")
USR=$(admin "/v1/agencies/$AGY/users" '{"name":"Target","email":"target@edge.test"}' | jid id)
admin "/v1/agencies/$AGY/bindings" "{\"principal\":\"$USR\",\"role\":\"account_viewer\",\"account\":\"$ACC\"}" >/dev/null
IMP=$(curl -sS --fail-with-body "$ISSUER/oauth/token" \
  -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
  --data-urlencode "subject_token=$SUPPORT" \
  -d subject_token_type=urn:ietf:params:oauth:token-type:access_token \
  -d "requested_subject=$USR" -d "account=$ACC" -d "reason=forward-auth test" | jid access_token)

# --- the checks.
n=0
expect() { # name, expected status, expected substring of the body ("" for none), curl args…
  local name=$1 status=$2 want=$3 out code
  shift 3
  out=$(curl -sS -o - -w '\n%{http_code}' "$@")
  code=${out##*$'\n'}
  out=${out%$'\n'*}
  [ "$code" = "$status" ] || fa_die "$name: status $code, expected $status: $out"
  [ -z "$want" ] || [[ "$out" == *"$want"* ]] || fa_die "$name: '$want' not in: $out"
  n=$((n + 1))
  echo "ok - $name"
}
expect "an API key reaches the upstream with its identity" 200 \
  "subject=$KEY_ID agency=$AGY account= scopes=contacts.readonly actor= authorization=" \
  "$EDGE/agencies/$AGY/contacts/c1" -H "Authorization: Bearer $KEY"
expect "a client's own X-Tessera-* headers never pass" 200 "subject=$KEY_ID agency=$AGY account= " \
  "$EDGE/agencies/$AGY/contacts/c1" -H "Authorization: Bearer $KEY" \
  -H "X-Tessera-Subject: usr_forged" -H "X-Tessera-Account: acc_forged" -H "X-Tessera-Actor: usr_forged"
expect "an access token reaches the upstream with its identity" 200 \
  "subject=$CLIENT_ID agency=$AGY account=$ACC scopes=contacts.readonly actor=" \
  "$EDGE/agencies/$AGY/accounts/$ACC/contacts" -H "Authorization: Bearer $TOKEN"
expect "an impersonation token's actor reaches the upstream" 200 "subject=$USR agency=$AGY account=$ACC scopes=contacts.readonly actor=$SUPPORT_ID" \
  "$EDGE/agencies/$AGY/accounts/$ACC/contacts" -H "Authorization: Bearer $IMP"
expect "another tenant is 403" 403 "" "$EDGE/agencies/$OTHER/contacts/c1" -H "Authorization: Bearer $KEY"
expect "a permission beyond the credential's scopes is 403" 403 "" -XPOST "$EDGE/agencies/$AGY/contacts" -H "Authorization: Bearer $KEY"
expect "an unmapped route is 403" 403 "" "$EDGE/admin/secrets" -H "Authorization: Bearer $KEY"
expect "a dot segment is 403" 403 "" --path-as-is "$EDGE/agencies/$AGY/contacts/../c1" -H "Authorization: Bearer $KEY"
expect "no credential is 401" 401 "" "$EDGE/agencies/$AGY/contacts/c1"
curl -sS --fail-with-body -u "$CLIENT_ID:$CLIENT_SECRET" "$ISSUER/oauth/revoke" -d "token=$TOKEN" >/dev/null
expect "a revoked token is 401" 401 "" "$EDGE/agencies/$AGY/accounts/$ACC/contacts" -H "Authorization: Bearer $TOKEN"
echo "forward-auth behind nginx: $n checks passed"
failed=0
