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
#                                while wrk loads it; writes DIR/check.folded and DIR/check.svg
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
measure() { # server, url, lua file: appends "mode server req/s p50(ms) p99(ms)" to results
  local out
  out=$("${LOAD[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$3" "$2" 2>&1)
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
    echo "bench/http-check.sh: $1 had failed requests, the figures are not valid:" >&2
    echo "$out" >&2
    exit 1
  fi
  awk -v m="$MODE" -v s="$1" '
    function ms(v,   u) { u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
                         return (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : v }
    /Requests\/sec/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    END { if (rps == "" || p99 == "") exit 1; printf "%s %s %s %.3f %.3f\n", m, s, rps, p50, p99 }' <<<"$out" >>"$work/results" ||
    die "could not read wrk's output for $1: $out"
}
tessera_one() { start_tessera; measure tessera "$T/v1/check" "$work/t.lua"; stop; }
cerbos_one() { start_cerbos; measure cerbos "$C/api/check/resources" "$work/c.lua"; stop; }
ceiling_one() { start_ceiling; measure ceiling "$X/v1/check" "$work/t.lua"; stop; }

if [ -n "${PROFILE_DIR:-}" ]; then
  profile_tools
  set_mode pinned
  start_tessera
  profile check "$T/v1/check" "$work/t.lua"
  stop
  exit 0
fi

for round in $(seq 1 "$ROUNDS"); do
  for mode in $MODES; do
    set_mode "$mode"
    echo "round $round/$ROUNDS, $MODE" >&2
    if [ $((round % 2)) = 1 ]; then
      ceiling_one; tessera_one; cerbos_one
    else
      cerbos_one; tessera_one; ceiling_one
    fi
  done
done

python3 - "$work/results" "$DURATION" "$CONNECTIONS" "$(nproc)" "$("$CERBOS" --version 2>/dev/null | head -n1 | awk '{print $NF}')" <<'PY'
import statistics, sys
path, duration, connections, cores, cerbos = sys.argv[1:]
rows = [line.split() for line in open(path)]
names = {"tessera": "Tessera `POST /v1/check` (API key)",
         "cerbos": f"Cerbos {cerbos} `POST /api/check/resources`",
         "ceiling": "ceiling (trivial axum endpoint, same request)"}
where = {"pinned": "pinned: each server on core 0 (taskset -c 0), wrk -t1 on core 1",
         "unpinned": f"unpinned: servers and wrk -t2 share the {cores} cores"}
for mode in dict.fromkeys(r[0] for r in rows):
    mine = [r[1:] for r in rows if r[0] == mode]
    print(f"### {where[mode]}\n")
    print(f"wrk -c{connections} -d{duration}, {len(mine)} runs, one server at a time\n")
    print("| server | req/s (median) | of the ceiling | p50 ms | p99 ms | req/s per round |")
    print("|---|---|---|---|---|---|")
    col = lambda s, i: [float(r[i]) for r in mine if r[0] == s]
    med = {s: statistics.median(col(s, 1)) for s in dict.fromkeys(r[0] for r in mine)}
    ceiling = med.get("ceiling")
    for s in ("ceiling", "tessera", "cerbos"):
        if s not in med:
            continue
        frac = f"{100 * med[s] / ceiling:.1f}%" if ceiling else "-"
        print(f"| {names[s]} | {med[s]:.0f} | {frac} | {statistics.median(col(s, 2)):.3f} | "
              f"{statistics.median(col(s, 3)):.3f} | {', '.join(f'{v:.0f}' for v in col(s, 1))} |")
    print()
    if "cerbos" in med:
        print(f"ratio Tessera/Cerbos, {mode} (median req/s): {med['tessera'] / med['cerbos']:.2f}x")
    if ceiling:
        print(f"Tessera / ceiling, {mode}: {100 * med['tessera'] / ceiling:.1f}%")
    print()
PY
