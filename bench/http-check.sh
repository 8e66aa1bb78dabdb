#!/usr/bin/env bash
# HTTP `POST /v1/check` throughput on loopback: Tessera beside Cerbos (a policy decision
# server), the same RBAC question to both, measured by wrk in the same run.
#   bash bench/http-check.sh            (DURATION=10s CONNECTIONS=50 by default)
#   TESSERA_BIN=path                    a release binary to use instead of building one
# Installs Cerbos from npm into bench/peers/ (ignored by git) and wrk from Debian if missing.
set -euo pipefail
# Extra `tessera serve` flags. Default: rate limits off, so the peers are compared on the
# same work (docs/BENCHMARKS.md "Rate limits" measures limits on against off).
TESSERA_FLAGS=${TESSERA_FLAGS:---rate-limits off}
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
T_PORT=${T_PORT:-18181}
C_PORT=${C_PORT:-18182}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
if [ -n "${TESSERA_BIN:-}" ]; then
  BIN=$TESSERA_BIN
else
  cargo build --release -q -p tessera-server
  BIN=${CARGO_TARGET_DIR:-target}/release/tessera
fi
CERBOS=bench/peers/node_modules/@cerbos/cerbos-linux-x64/cerbos-linux-x64
if [ ! -x "$CERBOS" ]; then
  mkdir -p bench/peers && (cd bench/peers && npm install --silent --no-audit --no-fund @cerbos/cerbos-linux-x64 >/dev/null)
fi

# --- Tessera: an agency, an account, a user with `account_user` there, a checker key.
"$BIN" serve --listen "127.0.0.1:$T_PORT" --data-dir "$work/t" $TESSERA_FLAGS >"$work/t.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "127.0.0.1:$T_PORT/readyz" >/dev/null && break; sleep 0.1; done
ADMIN="Authorization: Bearer $(cat "$work/t/bootstrap-admin.key")"
J='content-type: application/json'
T="http://127.0.0.1:$T_PORT"
jid() { python3 -c 'import sys, json; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
AGY=$(curl -sf -XPOST "$T/v1/agencies" -H "$ADMIN" -H "$J" -d '{"name":"Bench"}' | jid id)
ACC=$(curl -sf -XPOST "$T/v1/agencies/$AGY/accounts" -H "$ADMIN" -H "$J" -d '{"name":"Acc"}' | jid id)
USR=$(curl -sf -XPOST "$T/v1/agencies/$AGY/users" -H "$ADMIN" -H "$J" -d '{"email":"u@bench.test","name":"U"}' | jid id)
curl -sf -XPOST "$T/v1/agencies/$AGY/bindings" -H "$ADMIN" -H "$J" -d "{\"principal\":\"$USR\",\"role\":\"account_user\",\"account\":\"$ACC\"}" >/dev/null
KEY=$(curl -sf -XPOST "$T/v1/agencies/$AGY/api-keys" -H "$ADMIN" -H "$J" -d '{"name":"gateway","scopes":["roles.readonly"]}' | jid secret)
T_BODY="{\"principal\":\"$USR\",\"permission\":\"contacts.read\",\"resource\":{\"type\":\"contact\",\"id\":\"c1\",\"agency\":\"$AGY\",\"account\":\"$ACC\"}}"
curl -sf -XPOST "$T/v1/check" -H "Authorization: Bearer $KEY" -H "$J" -d "$T_BODY" | grep -q '"allowed":true'

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
CERBOS_NO_TELEMETRY=1 "$CERBOS" server --config="$work/c/config.yaml" >"$work/c.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "127.0.0.1:$C_PORT/_cerbos/health" >/dev/null && break; sleep 0.1; done
C_BODY='{"requestId":"b","principal":{"id":"u1","roles":["account_user"],"attr":{"account":"acc1"}},"resources":[{"actions":["read"],"resource":{"kind":"contact","id":"c1","attr":{"account":"acc1"}}}]}'
curl -sf -XPOST "127.0.0.1:$C_PORT/api/check/resources" -H "$J" -d "$C_BODY" | grep -q 'EFFECT_ALLOW'

lua() { # $1 body, $2 auth header (may be empty); non-200 answers are counted as errors by wrk
  printf 'wrk.method = "POST"\nwrk.body = [[%s]]\nwrk.headers["Content-Type"] = "application/json"\n' "$1"
  if [ -n "$2" ]; then printf 'wrk.headers["Authorization"] = "%s"\n' "$2"; fi
}
lua "$T_BODY" "Bearer $KEY" >"$work/t.lua"
lua "$C_BODY" "" >"$work/c.lua"
run() { wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$2" "$1" 2>&1; }
t_out=$(run "$T/v1/check" "$work/t.lua")
c_out=$(run "http://127.0.0.1:$C_PORT/api/check/resources" "$work/c.lua")
rps() { awk '/Requests\/sec/ {print $2}' <<<"$1"; }
pct() { awk -v p="$2" '$1 == p {print $2}' <<<"$1"; }
t_rps=$(rps "$t_out"); c_rps=$(rps "$c_out")
echo "| server | req/s | p50 | p99 |"
echo "|---|---|---|---|"
echo "| Tessera \`POST /v1/check\` | $t_rps | $(pct "$t_out" 50%) | $(pct "$t_out" 99%) |"
echo "| Cerbos $("$CERBOS" --version 2>/dev/null | head -n1 | awk '{print $NF}') \`POST /api/check/resources\` | $c_rps | $(pct "$c_out" 50%) | $(pct "$c_out" 99%) |"
python3 -c "print(f'ratio Tessera/Cerbos: {float(\"$t_rps\")/float(\"$c_rps\"):.2f}x')"
if grep -q 'Non-2xx' <<<"$t_out$c_out"; then
  echo "non-2xx responses seen: the figures above are not valid" >&2
  grep -E 'Non-2xx' <<<"$t_out$c_out" >&2
  exit 1
fi
