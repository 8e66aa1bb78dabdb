#!/usr/bin/env bash
# Rate limits on against off, in the same run (docs/BENCHMARKS.md "Rate limits"): the
# throughput of `POST /v1/check` (an API key) and of client-credentials issue
# (`POST /oauth/token`), with limits off, on in-process, and on through Redis. The quotas
# are set high enough never to refuse, so every request pays for a full decision over every
# bucket (check: IP, key, agency; token: IP, client, agency) and nothing else changes.
# Rounds alternate the three modes; the server is pinned to CPU 0 and wrk to CPU 1.
#   bash bench/ratelimit.sh    (DURATION=5s CONNECTIONS=32 ROUNDS=3 REDIS_URL=redis://127.0.0.1:6379/9)
#   TESSERA_BIN=path           a release binary to use instead of building one
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-32}
ROUNDS=${ROUNDS:-3}
T_PORT=${T_PORT:-18191}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/9}
SCOPE=contacts.readonly
work=$(mktemp -d)
cur_pid=
cleanup() { [ -n "$cur_pid" ] && kill "$cur_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
die() { echo "bench/ratelimit.sh: $*" >&2; exit 1; }

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
if [ -n "${TESSERA_BIN:-}" ]; then
  BIN=$TESSERA_BIN
else
  cargo build --release -q -p tessera-server
  BIN=${CARGO_TARGET_DIR:-target}/release/tessera
fi
T="http://127.0.0.1:$T_PORT"
HIGH=100000000/1
ON=(--rate-limit "check.ip=$HIGH" --rate-limit "check.key=$HIGH" --rate-limit "check.agency=$HIGH"
    --rate-limit "token.ip=$HIGH" --rate-limit "token.client=$HIGH" --rate-limit "token.agency=$HIGH")
start() { # mode: off | local | redis
  local flags=()
  case $1 in
    off) flags=(--rate-limits off) ;;
    local) flags=("${ON[@]}") ;;
    redis) flags=("${ON[@]}" --redis-url "$REDIS_URL") ;;
  esac
  taskset -c 0 "$BIN" serve --listen "127.0.0.1:$T_PORT" --data-dir "$work/t" --issuer "$T" "${flags[@]}" >>"$work/t.log" 2>&1 &
  cur_pid=$!
  for _ in $(seq 1 200); do curl -sf "$T/readyz" >/dev/null && return; sleep 0.1; done
  die "no answer: $(tail -5 "$work/t.log")"
}
stop() { kill "$cur_pid" 2>/dev/null || true; wait "$cur_pid" 2>/dev/null || true; cur_pid=; }
jid() { python3 -c 'import sys, json; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

start off
ADMIN="Authorization: Bearer $(cat "$work/t/bootstrap-admin.key")"
J='content-type: application/json'
admin() { curl -sS --fail-with-body -XPOST "$T$1" -H "$ADMIN" -H "$J" -d "$2" || die "POST $1 failed"; }
AGY=$(admin /v1/agencies '{"name":"Limits bench"}' | jid id)
ACC=$(admin "/v1/agencies/$AGY/accounts" '{"name":"Acc"}' | jid id)
USR=$(admin "/v1/agencies/$AGY/users" '{"email":"u@bench.test","name":"U"}' | jid id)
admin "/v1/agencies/$AGY/bindings" "{\"principal\":\"$USR\",\"role\":\"account_user\",\"account\":\"$ACC\"}" >/dev/null
KEY=$(admin "/v1/agencies/$AGY/api-keys" '{"name":"gateway","scopes":["roles.readonly"]}' | jid secret)
app=$(admin "/v1/agencies/$AGY/apps" "{\"name\":\"bench\",\"redirect_uris\":[\"http://127.0.0.1:9/callback\"],\"scopes\":[\"$SCOPE\"],\"confidential\":true,\"kind\":\"private\"}")
ID=$(jid client_id <<<"$app"); SECRET=$(jid client_secret <<<"$app")
INS=$(admin "/v1/agencies/$AGY/accounts/$ACC/installations" "{\"app\":\"$ID\",\"scopes\":[\"$SCOPE\"]}" | jid id)
stop
BASIC=$(printf '%s:%s' "$ID" "$SECRET" | base64 -w0)
CHECK="{\"principal\":\"$USR\",\"permission\":\"contacts.read\",\"resource\":{\"type\":\"contact\",\"id\":\"c1\",\"agency\":\"$AGY\",\"account\":\"$ACC\"}}"
printf 'wrk.method = "POST"\nwrk.body = [[%s]]\nwrk.headers["Content-Type"] = "application/json"\nwrk.headers["Authorization"] = "Bearer %s"\n' "$CHECK" "$KEY" >"$work/check.lua"
printf 'wrk.method = "POST"\nwrk.body = [[grant_type=client_credentials&scope=%s&installation=%s]]\nwrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\nwrk.headers["Authorization"] = "Basic %s"\n' "$SCOPE" "$INS" "$BASIC" >"$work/issue.lua"

measure() { # mode, operation, url, lua
  local out
  out=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$4" "$3" 2>&1)
  grep -qE 'Non-2xx|Socket errors' <<<"$out" && die "$1 $2 had failed requests: $out"
  awk -v m="$1" -v o="$2" '
    /Requests\/sec/ { rps = $2 }
    $1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
                  p99 = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : v }
    END { printf "%s %s %s %.2f\n", m, o, rps, p99 }' <<<"$out" >>"$work/results"
}
for round in $(seq 1 "$ROUNDS"); do
  for mode in off local redis; do
    start "$mode"
    # A sample of each before measuring: both must answer 200.
    curl -sf -XPOST "$T/v1/check" -H "Authorization: Bearer $KEY" -H "$J" -d "$CHECK" >/dev/null || die "$mode: check failed"
    curl -sf -XPOST "$T/oauth/token" -H "Authorization: Basic $BASIC" -H 'content-type: application/x-www-form-urlencoded' \
      --data-raw "grant_type=client_credentials&scope=$SCOPE&installation=$INS" >/dev/null || die "$mode: issue failed"
    measure "$mode" check "$T/v1/check" "$work/check.lua"
    measure "$mode" issue "$T/oauth/token" "$work/issue.lua"
    stop
  done
  echo "round $round done" >&2
done
python3 - "$work/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
print("| operation | limits | req/s (median) | vs off | p99 ms (median) | req/s per round |")
print("|---|---|---|---|---|---|")
for op in ("check", "issue"):
    base = statistics.median(float(r[2]) for r in rows if r[0] == "off" and r[1] == op)
    for mode in ("off", "local", "redis"):
        sel = [r for r in rows if r[0] == mode and r[1] == op]
        rps = statistics.median(float(r[2]) for r in sel)
        p99 = statistics.median(float(r[3]) for r in sel)
        print(f"| {op} | {mode} | {rps:.0f} | {100 * (rps / base - 1):+.1f}% | {p99:.2f} | {', '.join(r[2] for r in sel)} |")
PY
