#!/usr/bin/env bash
# Forward auth through nginx, beside nginx proxying straight to the same upstream (issue 11,
# docs/BENCHMARKS.md): requests/s and latency with wrk, an API key and an access token.
# The servers (nginx, one worker; Tessera, release build) are pinned to core 0 and wrk to
# core 1 (`taskset`), as in bench/oauth.sh. Prints Markdown on stdout; progress on stderr.
#   BENCH_SECONDS      seconds per run (default 10)
#   BENCH_CONNECTIONS  wrk connections (default 50)
#   TESSERA_BIN        the server (default: the release build, built here)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=.ci/forward-auth-lib.sh
source .ci/forward-auth-lib.sh
secs=${BENCH_SECONDS:-10}
conns=${BENCH_CONNECTIONS:-50}
command -v wrk >/dev/null 2>&1 || { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
NGINX=$(fa_nginx_bin)
if [ -z "${TESSERA_BIN:-}" ]; then
  echo "==> cargo build --release -p tessera-server" >&2
  cargo build -q --release -p tessera-server >&2
fi
BIN=${TESSERA_BIN:-${CARGO_TARGET_DIR:-target}/release/tessera}

work=$(mktemp -d)
TPORT=$(fa_free_port) UPORT=$(fa_free_port) NPORT=$(fa_free_port) DPORT=$(fa_free_port)
ISSUER="http://127.0.0.1:$TPORT"
fa_tessera_config "$work/tessera.toml"
# Rate limits off: the benchmark measures throughput, not the quotas.
taskset -c 0 "$BIN" serve --config "$work/tessera.toml" --listen "127.0.0.1:$TPORT" \
  --data-dir "$work/data" --issuer "$ISSUER" --rate-limits off >"$work/tessera.log" 2>&1 &
tpid=$!
fa_nginx_config "$work/nginx" "$TPORT" "$UPORT" "$NPORT" "$DPORT"
npid=""
cleanup() {
  [ -z "$npid" ] || kill "$npid" 2>/dev/null || true
  kill "$tpid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fa_wait_for "$ISSUER/readyz" "$tpid" "tessera"
taskset -c 0 "$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/logs/error.log" &
npid=$!
fa_wait_for "http://127.0.0.1:$UPORT/" "$npid" "nginx"

ADMIN="Authorization: Bearer $(cat "$work/data/bootstrap-admin.key")"
admin() { curl -sS --fail-with-body -XPOST "$ISSUER$1" -H "$ADMIN" -H 'content-type: application/json' -d "$2"; }
jid() { python3 -c 'import sys, json; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
AGY=$(admin /v1/agencies '{"name":"Bench"}' | jid id)
ACC=$(admin "/v1/agencies/$AGY/accounts" '{"name":"Bench account"}' | jid id)
KEY=$(admin "/v1/agencies/$AGY/api-keys" '{"name":"reader","scopes":["contacts.readonly"]}' | jid secret)
app=$(admin "/v1/agencies/$AGY/apps" \
  '{"name":"Bench app","redirect_uris":["https://bench.test/cb"],"scopes":["contacts.readonly"],"confidential":true,"kind":"private"}')
CLIENT_ID=$(jid client_id <<<"$app") CLIENT_SECRET=$(jid client_secret <<<"$app")
admin "/v1/agencies/$AGY/accounts/$ACC/installations" "{\"app\":\"$CLIENT_ID\",\"scopes\":[\"contacts.readonly\"]}" >/dev/null
TOKEN=$(curl -sS --fail-with-body -u "$CLIENT_ID:$CLIENT_SECRET" "$ISSUER/oauth/token" \
  -d grant_type=client_credentials -d scope=contacts.readonly | jid access_token)
PATH_KEY="/agencies/$AGY/contacts/c1"
PATH_TOKEN="/agencies/$AGY/accounts/$ACC/contacts"
for p in "$PATH_KEY:$KEY" "$PATH_TOKEN:$TOKEN"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$NPORT${p%%:*}" -H "Authorization: Bearer ${p#*:}")
  [ "$code" = 200 ] || fa_die "warm-up through forward auth answered $code"
done

run() { # label url credential → "req/s|p50|p99"
  echo "==> wrk $1 ($secs s, $conns connections)" >&2
  local out
  out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" --latency -H "Authorization: Bearer $3" "$2")
  echo "$out" >&2
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  [ -z "$errors" ] || fa_die "$1: $errors non-2xx answers"
  echo "$rps|$p50|$p99"
}
direct=$(run "nginx → upstream" "http://127.0.0.1:$DPORT$PATH_KEY" "$KEY")
key=$(run "nginx + forward auth (API key)" "http://127.0.0.1:$NPORT$PATH_KEY" "$KEY")
token=$(run "nginx + forward auth (access token)" "http://127.0.0.1:$NPORT$PATH_TOKEN" "$TOKEN")
ratio() { python3 -c "print(f'{float(\"$1\") / float(\"$2\") * 100:.0f} %')"; }
cat <<EOF
### Forward auth through nginx (wrk -t1 -c$conns, ${secs} s; servers on core 0, wrk on core 1)

| path | requests/s | p50 | p99 | of direct |
|---|---:|---:|---:|---:|
| nginx → upstream (no auth) | ${direct%%|*} | $(cut -d'|' -f2 <<<"$direct") | $(cut -d'|' -f3 <<<"$direct") | 100 % |
| nginx → forward auth (API key) → upstream | ${key%%|*} | $(cut -d'|' -f2 <<<"$key") | $(cut -d'|' -f3 <<<"$key") | $(ratio "${key%%|*}" "${direct%%|*}") |
| nginx → forward auth (access token) → upstream | ${token%%|*} | $(cut -d'|' -f2 <<<"$token") | $(cut -d'|' -f3 <<<"$token") | $(ratio "${token%%|*}" "${direct%%|*}") |
EOF
