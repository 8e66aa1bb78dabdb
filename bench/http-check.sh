#!/usr/bin/env bash
# HTTP `POST /v1/check` throughput on loopback: Tessera beside Cerbos (a policy decision
# server), the same RBAC question to both, measured by wrk in the same run, each figure also as
# a fraction of the ceiling (a trivial axum endpoint, `tessera-bench ceiling`, built and
# measured in the same run, with the same request).
#   bash bench/http-check.sh     (DURATION=10s CONNECTIONS=50 ROUNDS=3 PIN=1 by default)
#   PIN=1                        pinned (the default): each server on core 0 (`taskset -c 0`),
#                                wrk on core 1 with one thread; per core is what an operator pays
#   PIN=0                        unpinned: servers and wrk (THREADS=2) share both cores
#   PIN=both                     both, each round measuring pinned then unpinned
#   TESSERA_BIN=path, CEILING_BIN=path   release binaries to use instead of building them
#   PROFILE_DIR=dir              instead of the rounds: profile Tessera (pinned) with `perf record`
#                                while wrk loads it, then the ceiling the same way; writes
#                                DIR/{check,ceiling}.{folded,svg,wrk}
# Only one server runs while it is measured; the order alternates between rounds. Medians.
# Installs Cerbos from npm into bench/peers/ (ignored by git) and wrk from Debian if missing.
set -euo pipefail
# Extra `tessera serve` flags. Default: rate limits off, so the peers are compared on the
# same work (docs/BENCHMARKS.md "Rate limits" measures limits on against off).
TESSERA_FLAGS=${TESSERA_FLAGS:---rate-limits off}
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-50}
ROUNDS=${ROUNDS:-3}
T_PORT=${T_PORT:-18181}
C_PORT=${C_PORT:-18182}
X_PORT=${X_PORT:-18190}
work=$(mktemp -d)
cur_pid=
cleanup() { if [ -n "$cur_pid" ]; then kill "$cur_pid" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
die() { echo "bench/http-check.sh: $*" >&2; exit 1; }
SELF=bench/http-check.sh
source bench/lib/percore.sh

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
BIN=$(release_bin tessera-server tessera "${TESSERA_BIN:-}")
CEIL=$(release_bin tessera-bench tessera-bench "${CEILING_BIN:-}")
[ -x "$BIN" ] || die "no Tessera binary at $BIN"
[ -x "$CEIL" ] || die "no tessera-bench binary at $CEIL"
CERBOS=bench/peers/node_modules/@cerbos/cerbos-linux-x64/cerbos-linux-x64
if [ ! -x "$CERBOS" ]; then
  mkdir -p bench/peers && (cd bench/peers && npm install --silent --no-audit --no-fund @cerbos/cerbos-linux-x64 >/dev/null)
fi


# --- Tessera: an agency, an account, a user with `account_user` there, a checker key.
T="http://127.0.0.1:$T_PORT"
start_tessera() {
  "${SRV[@]}" "$BIN" serve --listen "127.0.0.1:$T_PORT" --data-dir "$work/t" $TESSERA_FLAGS >>"$work/t.log" 2>&1 &
  cur_pid=$!
  wait_ready "$T/readyz" "$work/t.log"
}
start_tessera
ADMIN="Authorization: Bearer $(cat "$work/t/bootstrap-admin.key")"
J='content-type: application/json'
jid() { python3 -c 'import sys, json; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
AGY=$(curl -sf -XPOST "$T/v1/agencies" -H "$ADMIN" -H "$J" -d '{"name":"Bench"}' | jid id)
ACC=$(curl -sf -XPOST "$T/v1/agencies/$AGY/accounts" -H "$ADMIN" -H "$J" -d '{"name":"Acc"}' | jid id)
USR=$(curl -sf -XPOST "$T/v1/agencies/$AGY/users" -H "$ADMIN" -H "$J" -d '{"email":"u@bench.test","name":"U"}' | jid id)
curl -sf -XPOST "$T/v1/agencies/$AGY/bindings" -H "$ADMIN" -H "$J" -d "{\"principal\":\"$USR\",\"role\":\"account_user\",\"account\":\"$ACC\"}" >/dev/null
KEY=$(curl -sf -XPOST "$T/v1/agencies/$AGY/api-keys" -H "$ADMIN" -H "$J" -d '{"name":"gateway","scopes":["roles.readonly"]}' | jid secret)
T_BODY="{\"principal\":\"$USR\",\"permission\":\"contacts.read\",\"resource\":{\"type\":\"contact\",\"id\":\"c1\",\"agency\":\"$AGY\",\"account\":\"$ACC\"}}"
curl -sf -XPOST "$T/v1/check" -H "Authorization: Bearer $KEY" -H "$J" -d "$T_BODY" | grep -q '"allowed":true' ||
  die "Tessera does not allow the benchmark's question"
stop

# --- Cerbos: the same question as a resource policy (role `account_user` may read contacts).
mkdir -p "$work/c/policies"
cat >"$work/c/policies/contact.yaml" <<YAML
apiVersion: api.cerbos.dev/v1
resourcePolicy:
  version: default
  resource: contact
  rules:
    - actions: ["read"]
      effect: EFFECT_ALLOW
      roles: ["account_user"]
YAML
cat >"$work/c/config.yaml" <<YAML
server:
  httpListenAddr: "127.0.0.1:$C_PORT"
  grpcListenAddr: "127.0.0.1:$((C_PORT + 1))"
storage:
  driver: disk
  disk:
    directory: $work/c/policies
audit:
  enabled: false
YAML
C="http://127.0.0.1:$C_PORT"
C_BODY='{"requestId":"b","principal":{"id":"u1","roles":["account_user"],"attr":{"account":"acc1"}},"resources":[{"actions":["read"],"resource":{"kind":"contact","id":"c1","attr":{"account":"acc1"}}}]}'
start_cerbos() {
  CERBOS_NO_TELEMETRY=1 "${SRV[@]}" "$CERBOS" server --config="$work/c/config.yaml" >>"$work/c.log" 2>&1 &
  cur_pid=$!
  wait_ready "$C/_cerbos/health" "$work/c.log"
  curl -sf -XPOST "$C/api/check/resources" -H "$J" -d "$C_BODY" | grep -q 'EFFECT_ALLOW' ||
    die "Cerbos does not allow the benchmark's question"
}
X="http://127.0.0.1:$X_PORT"
start_ceiling() {
  "${SRV[@]}" "$CEIL" ceiling --listen "127.0.0.1:$X_PORT" >>"$work/x.log" 2>&1 &
  cur_pid=$!
  wait_ready "$X/" "$work/x.log"
}

lua() { # $1 body, $2 auth header (may be empty); non-200 answers are counted as errors by wrk
  printf 'wrk.method = "POST"\nwrk.body = [[%s]]\nwrk.headers["Content-Type"] = "application/json"\n' "$1"
  if [ -n "$2" ]; then printf 'wrk.headers["Authorization"] = "%s"\n' "$2"; fi
}
lua "$T_BODY" "Bearer $KEY" >"$work/t.lua"
lua "$C_BODY" "" >"$work/c.lua"
tessera_one() { start_tessera; measure tessera check "$T/v1/check" "$work/t.lua"; stop; }
cerbos_one() { start_cerbos; measure cerbos check "$C/api/check/resources" "$work/c.lua"; stop; }
ceiling_one() { start_ceiling; measure ceiling check "$X/v1/check" "$work/t.lua"; stop; }

if [ -n "${PROFILE_DIR:-}" ]; then
  profile_tools
  set_mode pinned
  start_tessera
  profile check "$T/v1/check" "$work/t.lua"
  stop
  start_ceiling
  profile ceiling "$X/v1/check" "$work/t.lua"
  stop
  exit 0
fi

odd_round() { ceiling_one; tessera_one; cerbos_one; }
even_round() { cerbos_one; tessera_one; ceiling_one; }
rounds odd_round even_round

CERBOS_VERSION=$("$CERBOS" --version 2>/dev/null | head -n1 | awk '{print $NF}')
python3 bench/lib/percore.py "$work/results" "$DURATION" "$CONNECTIONS" \
  "{\"tessera\": \"Tessera \`POST /v1/check\` (API key)\",
    \"cerbos\": \"Cerbos $CERBOS_VERSION \`POST /api/check/resources\`\",
    \"ceiling\": \"ceiling (trivial axum endpoint, same request)\"}" \
  '[["Cerbos", "check", "cerbos"]]'
