#!/usr/bin/env bash
# The OAuth 2.x / OIDC endpoints under outside clients (interop/README.md): starts a server in a
# throw-away data dir, creates the fixtures through the admin API with the bootstrap key, then
# runs the Python suite (authlib, PyJWT, requests-oauthlib) and the Node suite (openid-client,
# jose). Fails if either fails; skips nothing.
# Installs the pinned clients into interop/python/.venv and interop/node/node_modules (ignored).
#   TESSERA_BIN    the server binary (default target/debug/tessera, built if missing)
#   INTEROP_PORT   the server's port (default: a free one)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TESSERA_BIN:-target/debug/tessera}
die() { echo ".ci/interop.sh: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- the clients, pinned.
py=interop/python
if [ ! -x "$py/.venv/bin/pytest" ] || ! cmp -s "$py/requirements.txt" "$py/.venv/requirements.txt"; then
  python3 -m venv "$py/.venv"
  "$py/.venv/bin/pip" install -q --disable-pip-version-check -r "$py/requirements.txt"
  cp "$py/requirements.txt" "$py/.venv/requirements.txt"
fi
(cd interop/node && npm ci --silent --no-audit --no-fund >/dev/null)

# --- the server.
[ -x "$BIN" ] || cargo build -q -p tessera-server
PORT=${INTEROP_PORT:-$(free_port)}
ISSUER="http://127.0.0.1:$PORT"
data=$(mktemp -d)
"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$data" --issuer "$ISSUER" >"$data/server.log" 2>&1 &
pid=$!
failed=1
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ "$failed" = 1 ]; then echo "--- the server's log ($ISSUER):" >&2; tail -n 100 "$data/server.log" >&2 || true; fi
  rm -rf "$data"
}
trap cleanup EXIT
for _ in $(seq 1 150); do
  curl -sf -o /dev/null "$ISSUER/readyz" && break
  kill -0 "$pid" 2>/dev/null || die "the server exited before it was ready"
  sleep 0.1
done
curl -sf -o /dev/null "$ISSUER/readyz" || die "the server did not become ready at $ISSUER/readyz"

# --- the fixtures: an agency, an account, a user who is account_admin there, a confidential
# and a public app (both redirecting to a port nothing listens on), each installed on the account.
ADMIN="Authorization: Bearer $(cat "$data/bootstrap-admin.key")"
admin() { # path, JSON body → the answer's JSON (fails loudly on an HTTP error)
  curl -sS --fail-with-body -XPOST "$ISSUER$1" -H "$ADMIN" -H 'content-type: application/json' -d "$2" ||
    die "POST $1 failed"
}
jid() { python3 -c 'import sys, json; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
SCOPES='["contacts.readonly","contacts.write","calendars.readonly"]'
REDIRECT_URI="http://127.0.0.1:$(free_port)/callback"
EMAIL="interop-$RANDOM@tessera.test"
PASSWORD="interop-$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
AGY=$(admin /v1/agencies '{"name":"Interop"}' | jid id)
ACC=$(admin "/v1/agencies/$AGY/accounts" '{"name":"Interop account"}' | jid id)
USR=$(admin "/v1/agencies/$AGY/users" "{\"email\":\"$EMAIL\",\"name\":\"Interop User\",\"password\":\"$PASSWORD\"}" | jid id)
admin "/v1/agencies/$AGY/bindings" "{\"principal\":\"$USR\",\"role\":\"account_admin\",\"account\":\"$ACC\"}" >/dev/null
app() { # name, confidential
  admin "/v1/agencies/$AGY/apps" \
    "{\"name\":\"$1\",\"redirect_uris\":[\"$REDIRECT_URI\"],\"scopes\":$SCOPES,\"confidential\":$2,\"kind\":\"private\"}"
}
confidential=$(app "Interop confidential" true)
public=$(app "Interop public" false)
CLIENT_ID=$(jid client_id <<<"$confidential")
CLIENT_SECRET=$(jid client_secret <<<"$confidential")
PUBLIC_CLIENT_ID=$(jid client_id <<<"$public")
INS=$(admin "/v1/agencies/$AGY/accounts/$ACC/installations" "{\"app\":\"$CLIENT_ID\",\"scopes\":$SCOPES}" | jid id)
admin "/v1/agencies/$AGY/accounts/$ACC/installations" "{\"app\":\"$PUBLIC_CLIENT_ID\",\"scopes\":$SCOPES}" >/dev/null

# --- the RS256 fixtures (interop/python/test_rs256.py): a confidential app whose tokens are
# signed with RS256 (OpenID Connect Core §15.1), installed on the same account.
rs256=$(admin "/v1/agencies/$AGY/apps" \
  "{\"name\":\"Interop RS256\",\"redirect_uris\":[\"$REDIRECT_URI\"],\"scopes\":$SCOPES,\"confidential\":true,\"kind\":\"private\",\"token_signing_alg\":\"RS256\"}")
TESSERA_RS256_CLIENT_ID=$(jid client_id <<<"$rs256")
TESSERA_RS256_CLIENT_SECRET=$(jid client_secret <<<"$rs256")
TESSERA_RS256_INSTALLATION=$(admin "/v1/agencies/$AGY/accounts/$ACC/installations" \
  "{\"app\":\"$TESSERA_RS256_CLIENT_ID\",\"scopes\":$SCOPES}" | jid id)
export TESSERA_RS256_CLIENT_ID TESSERA_RS256_CLIENT_SECRET TESSERA_RS256_INSTALLATION

export TESSERA_ISSUER=$ISSUER TESSERA_CLIENT_ID=$CLIENT_ID TESSERA_CLIENT_SECRET=$CLIENT_SECRET \
  TESSERA_PUBLIC_CLIENT_ID=$PUBLIC_CLIENT_ID TESSERA_REDIRECT_URI=$REDIRECT_URI \
  TESSERA_INSTALLATION=$INS TESSERA_AGENCY=$AGY TESSERA_ACCOUNT=$ACC TESSERA_USER_ID=$USR \
  TESSERA_USER_EMAIL=$EMAIL TESSERA_USER_PASSWORD=$PASSWORD

# --- the suites: both run, whatever the first one says.
status=0
"$py/.venv/bin/pytest" -q -p no:cacheprovider "$py" || status=1
(cd interop/node && node --test --test-reporter=spec ./*.test.mjs) || status=1
[ "$status" = 0 ] || die "an interop suite failed"
failed=0
