#!/usr/bin/env bash
# OAuth over HTTP on loopback (issue item 9): client-credentials token issue and RFC 7662
# introspection, Tessera beside oidc-provider (a certified OpenID provider, Node), measured by
# wrk in the same run, each figure also as a fraction of the ceiling (a trivial axum endpoint,
# `tessera-bench ceiling`, built and measured in the same run).
#   bash bench/oauth.sh        (DURATION=10s CONNECTIONS=50 ROUNDS=3 PIN=1 by default)
#   PIN=1                      pinned (the default): each server on core 0 (`taskset -c 0`),
#                              wrk on core 1 with one thread; per core is what an operator pays
#   PIN=0                      unpinned: servers and wrk (THREADS=2) share both cores
#   PIN=both                   both, each round measuring pinned then unpinned
#   PEERS_ONLY=1 bash bench/oauth.sh      measures oidc-provider alone (no cargo build)
#   TESSERA_BIN=path, CEILING_BIN=path    release binaries to use instead of building them
#   PROFILE_DIR=dir            instead of the rounds: profile Tessera (pinned) with `perf record`
#                              while wrk loads each operation; writes DIR/{issue,introspect}.folded
#                              and .svg flame graphs (inferno, `cargo install inferno`)
# Both sides: one confidential client, client_secret_basic, scope `contacts.readonly`.
# - issue: oidc-provider signs JWT access tokens with EdDSA over Ed25519, as Tessera does
#   (bench/oidc-provider/server.mjs, `accessTokenFormat: 'jwt'`);
# - introspection: oidc-provider cannot introspect its JWT tokens, so it runs a second time with
#   `accessTokenFormat: 'opaque'` (in-memory store); Tessera introspects its own JWT.
# Only one server runs while it is measured: each is started, measured and stopped in turn, the
# order alternating between rounds. Prints the figures of each round and the median ratios.
# Installs oidc-provider from npm into bench/peers/ (ignored by git) and wrk from Debian if missing.
set -euo pipefail
# Extra `tessera serve` flags. Default: rate limits off, so the peers are compared on the
# same work (docs/BENCHMARKS.md "Rate limits" measures limits on against off).
TESSERA_FLAGS=${TESSERA_FLAGS:---rate-limits off}
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-50}
ROUNDS=${ROUNDS:-3}
C_PORT=${C_PORT:-18390}
T_PORT=${T_PORT:-18381}
P_PORT=${P_PORT:-18382}
PEERS_ONLY=${PEERS_ONLY:-0}
OIDC_PROVIDER_VERSION=9.13.3
SCOPE=contacts.readonly
work=$(mktemp -d)
cur_pid=
cleanup() { if [ -n "$cur_pid" ]; then kill "$cur_pid" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
die() { echo "bench/oauth.sh: $*" >&2; exit 1; }
SELF=bench/oauth.sh
source bench/lib/percore.sh

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
if [ "$(node -p 'require("./bench/peers/node_modules/oidc-provider/package.json").version' 2>/dev/null)" != "$OIDC_PROVIDER_VERSION" ]; then
  mkdir -p bench/peers
  (cd bench/peers && npm install --silent --no-audit --no-fund --save-exact "oidc-provider@$OIDC_PROVIDER_VERSION" >/dev/null)
fi
if [ "$PEERS_ONLY" != 1 ]; then
  BIN=$(release_bin tessera-server tessera "${TESSERA_BIN:-}")
  [ -x "$BIN" ] || die "no Tessera binary at $BIN"
fi
CEIL=
if [ -n "${CEILING_BIN:-}" ] || [ "$PEERS_ONLY" != 1 ]; then
  CEIL=$(release_bin tessera-bench tessera-bench "${CEILING_BIN:-}")
  [ -x "$CEIL" ] || die "no tessera-bench binary at $CEIL"
fi

basic() { # client id, secret → the Basic credentials (RFC 6749 §2.3.1: each form-urlencoded)
  python3 -c 'import base64, sys, urllib.parse as u
print(base64.b64encode(":".join(u.quote_plus(a) for a in sys.argv[1:3]).encode()).decode())' "$1" "$2"
}
post() { # name, url, basic credentials, body: one sample request that must answer 200
  local code
  code=$(curl -s -o "$work/$1.sample" -w '%{http_code}' -XPOST "$2" -H "Authorization: Basic $3" \
    -H 'content-type: application/x-www-form-urlencoded' --data-raw "$4") || true
  [ "$code" = 200 ] || die "$1: POST $2 answered ${code:-nothing} before measuring: $(cat "$work/$1.sample" 2>/dev/null)"
}
field() { python3 -c 'import sys, json; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/$1.sample" "$2"; }
lua() { # file, basic credentials, body
  printf 'wrk.method = "POST"\nwrk.body = [[%s]]\nwrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\nwrk.headers["Authorization"] = "Basic %s"\n' \
    "$3" "$2" >"$1"
}

# --- Tessera: an agency, an account, a confidential app installed on the account.
T="http://127.0.0.1:$T_PORT"
start_tessera() {
  "${SRV[@]}" "$BIN" serve --listen "127.0.0.1:$T_PORT" --data-dir "$work/t" $TESSERA_FLAGS --issuer "$T" >>"$work/t.log" 2>&1 &
  cur_pid=$!
  wait_ready "$T/readyz" "$work/t.log"
}
if [ "$PEERS_ONLY" != 1 ]; then
  start_tessera
  ADMIN="Authorization: Bearer $(cat "$work/t/bootstrap-admin.key")"
  J='content-type: application/json'
  admin() { # path, body → the answer (fails loudly on an HTTP error)
    curl -sS --fail-with-body -XPOST "$T$1" -H "$ADMIN" -H "$J" -d "$2" || die "POST $1 failed"
  }
  jid() { python3 -c 'import sys, json; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
  AGY=$(admin /v1/agencies '{"name":"OAuth bench"}' | jid id)
  ACC=$(admin "/v1/agencies/$AGY/accounts" '{"name":"Acc"}' | jid id)
  app=$(admin "/v1/agencies/$AGY/apps" "{\"name\":\"bench\",\"redirect_uris\":[\"http://127.0.0.1:9/callback\"],\"scopes\":[\"$SCOPE\"],\"confidential\":true,\"kind\":\"private\"}")
  T_ID=$(jid client_id <<<"$app")
  T_SECRET=$(jid client_secret <<<"$app")
  INS=$(admin "/v1/agencies/$AGY/accounts/$ACC/installations" "{\"app\":\"$T_ID\",\"scopes\":[\"$SCOPE\"]}" | jid id)
  stop
  T_BASIC=$(basic "$T_ID" "$T_SECRET")
  T_ISSUE="grant_type=client_credentials&scope=$SCOPE&installation=$INS"
  lua "$work/t-issue.lua" "$T_BASIC" "$T_ISSUE"
fi

# --- oidc-provider: the same client, started once per format.
P="http://127.0.0.1:$P_PORT"
P_ID=bench-client
P_SECRET=bench-secret-$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
P_BASIC=$(basic "$P_ID" "$P_SECRET")
P_ISSUE="grant_type=client_credentials&scope=$SCOPE"
lua "$work/p-issue.lua" "$P_BASIC" "$P_ISSUE"
start_peer() { # format
  "${SRV[@]}" node bench/oidc-provider/server.mjs "$P_PORT" "$1" "$P_ID" "$P_SECRET" >>"$work/p-$1.log" 2>&1 &
  cur_pid=$!
  wait_ready "$P/.well-known/openid-configuration" "$work/p-$1.log"
}

# --- The ceiling: the same request to an endpoint that does nothing else.
C="http://127.0.0.1:$C_PORT"
ceiling_round() {
  "${SRV[@]}" "$CEIL" ceiling --listen "127.0.0.1:$C_PORT" >>"$work/c.log" 2>&1 &
  cur_pid=$!
  wait_ready "$C/" "$work/c.log"
  measure ceiling ceiling "$C/oauth/token" "$work/p-issue.lua"
  stop
}

tessera_round() {
  start_tessera
  post tessera-issue "$T/oauth/token" "$T_BASIC" "$T_ISSUE"
  measure tessera issue "$T/oauth/token" "$work/t-issue.lua"
  post tessera-issue "$T/oauth/token" "$T_BASIC" "$T_ISSUE"
  local token
  token=$(field tessera-issue access_token)
  post tessera-introspect "$T/oauth/introspect" "$T_BASIC" "token=$token"
  [ "$(field tessera-introspect active)" = True ] || die "Tessera: a fresh token introspects as inactive"
  lua "$work/t-introspect.lua" "$T_BASIC" "token=$token"
  measure tessera introspect "$T/oauth/introspect" "$work/t-introspect.lua"
  stop
}
peer_round() {
  start_peer jwt
  post peer-issue "$P/token" "$P_BASIC" "$P_ISSUE"
  [[ $(field peer-issue access_token) == eyJ* ]] || die "oidc-provider (jwt): the access token is not a JWT"
  measure oidc-provider-jwt issue "$P/token" "$work/p-issue.lua"
  stop
  start_peer opaque
  post peer-issue "$P/token" "$P_BASIC" "$P_ISSUE"
  local token
  token=$(field peer-issue access_token)
  post peer-introspect "$P/token/introspection" "$P_BASIC" "token=$token"
  [ "$(field peer-introspect active)" = True ] || die "oidc-provider: a fresh token introspects as inactive"
  lua "$work/p-introspect.lua" "$P_BASIC" "token=$token"
  measure oidc-provider-opaque introspect "$P/token/introspection" "$work/p-introspect.lua"
  stop
}

if [ -n "${PROFILE_DIR:-}" ]; then
  profile_tools
  set_mode pinned
  start_tessera
  post tessera-issue "$T/oauth/token" "$T_BASIC" "$T_ISSUE"
  profile issue "$T/oauth/token" "$work/t-issue.lua"
  post tessera-issue "$T/oauth/token" "$T_BASIC" "$T_ISSUE"
  lua "$work/t-introspect.lua" "$T_BASIC" "token=$(field tessera-issue access_token)"
  profile introspect "$T/oauth/introspect" "$work/t-introspect.lua"
  stop
  exit 0
fi

odd_round() {
  if [ -n "$CEIL" ]; then ceiling_round; fi
  if [ "$PEERS_ONLY" = 1 ]; then peer_round; else tessera_round; peer_round; fi
}
even_round() {
  if [ -n "$CEIL" ]; then ceiling_round; fi
  peer_round
  if [ "$PEERS_ONLY" != 1 ]; then tessera_round; fi
}
rounds odd_round even_round

python3 bench/lib/percore.py "$work/results" "$DURATION" "$CONNECTIONS" \
  "{\"tessera\": \"Tessera\", \"oidc-provider-jwt\": \"oidc-provider $OIDC_PROVIDER_VERSION (JWT, EdDSA)\",
    \"oidc-provider-opaque\": \"oidc-provider $OIDC_PROVIDER_VERSION (opaque)\",
    \"ceiling\": \"ceiling (trivial axum endpoint, same request)\"}" \
  '[["oidc-provider", "issue", "oidc-provider-jwt"], ["oidc-provider", "introspect", "oidc-provider-opaque"]]'
