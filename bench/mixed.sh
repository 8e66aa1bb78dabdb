#!/usr/bin/env bash
# Mixed load on PostgreSQL (issue 13): wrk with bench/mixed/mix.lua against one `tessera serve`
# or three behind haproxy, the nodes sharing one PostgreSQL database and one Redis.
# See bench/README.md "Mixed load" for the whole procedure. Subcommands:
#   bench/mixed.sh setup N     create a database with N agencies through the HTTP API
#                              (bench/mixed/setup.py) and write its credentials ($WORK/creds.jsonl)
#   bench/mixed.sh prep        credentials (CREDS, default $WORK/creds.jsonl) -> $DATA, issuing
#                              the introspection JWTs through a node
#   bench/mixed.sh mix         one measured run: NODES=1|3, DIST=zipf|uniform
#   bench/mixed.sh cold        first checks in agencies never touched (a fresh node, one
#                              connection, one check per agency from WALK_FROM on)
#   bench/mixed.sh writes      the write path alone (1% → 100%: new accounts), NODES, DIST
# Environment (defaults in brackets):
#   TESSERA_BIN [target/release/tessera]   PG [postgres://postgres@127.0.0.1:5432] (a superuser, for
#   creating the database and watching it)  NODE_ROLE [tessera] (the role the nodes connect as:
#   not a superuser, owner of the database)  DB [tessera_mix]
#   REDIS_URL [redis://127.0.0.1:6379]      MASTER_KEY [$WORK/master.key] (the seeding key)
#   WORK [bench/mixed/work]  DATA [$WORK/data.tsv]  DURATION [20s]  WARMUP [5s]
#   CONNECTIONS [50]  THREADS [1]  NODE_CPUS [0]  WRK_CPUS [1]  LB_CPUS [1]  (taskset lists;
#   empty = unpinned)  WRITE_PCT [1]  TAG [a label for the results line]
#   NODE_FLAGS [none: more `tessera serve` flags, such as `--authz-cache-mb 1024`]
#   DELAY_MS [none: saturate] a pause per connection between requests: a fixed load below
#   saturation (about CONNECTIONS / (DELAY_MS + latency) per ms), to compare latencies
# Prints wrk's output and appends one line to $WORK/results.tsv: throughput, latency (the whole
# mix, and the checks alone: mix.lua times each kind), errors,
# peak RSS per node, PostgreSQL CPU seconds (all processes of the cluster, from /proc: the
# postmaster's own and reaped children's times plus its live children's), its share of one
# core, the nodes' CPU (cores used, and requests per second of node CPU: the per-core figure
# that survives a shared machine), sampled pg_stat_activity connections of the database, and the index cache's hits and
# misses over the measured part (from /metrics).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${TESSERA_BIN:-$ROOT/target/release/tessera}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
DB=${DB:-tessera_mix}
NODE_ROLE=${NODE_ROLE:-tessera}
NODE_DB_URL=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p._replace(netloc=sys.argv[2] + "@" + p.hostname + (f":{p.port}" if p.port else "")).geturl())' "$PG" "$NODE_ROLE")
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
WORK=${WORK:-$ROOT/bench/mixed/work}
MASTER_KEY=${MASTER_KEY:-$WORK/master.key}
DATA=${DATA:-$WORK/data.tsv}
CREDS=${CREDS:-$WORK/creds.jsonl}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-5s}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-1}
NODE_CPUS=${NODE_CPUS-0}
WRK_CPUS=${WRK_CPUS-1}
LB_CPUS=${LB_CPUS-1}
NODES=${NODES:-1}
DIST=${DIST:-zipf}
WRITE_PCT=${WRITE_PCT:-1}
TAG=${TAG:-}
NODE_FLAGS=${NODE_FLAGS:-}
BASE_PORT=${BASE_PORT:-18480}
LB_PORT=$((BASE_PORT + 9))
ISSUER=http://127.0.0.1:$LB_PORT
mkdir -p "$WORK"
die() { echo "bench/mixed.sh: $*" >&2; exit 1; }
[ -x "$BIN" ] || die "no tessera binary at $BIN (cargo build --release -p tessera-server --bin tessera)"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

pids=()
run_dir=$(mktemp -d)
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$run_dir"
}
trap cleanup EXIT
pin() { if [ -n "$1" ]; then echo "taskset -c $1"; fi; }

start_nodes() { # count: starts the nodes (and haproxy for more than one); sets URL and node_pids
  node_pids=()
  local i port
  for i in $(seq 1 "$1"); do
    port=$((BASE_PORT + i))
    # shellcheck disable=SC2046
    $(pin "$NODE_CPUS") "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$run_dir/n$i" \
      --database-url "$NODE_DB_URL/$DB" --master-key-file "$MASTER_KEY" --redis-url "$REDIS_URL" \
      --issuer "$ISSUER" --rate-limits off --metrics-public --log-format json --access-token-ttl 3600 $NODE_FLAGS \
      >"$run_dir/n$i.log" 2>&1 &
    pids+=($!)
    node_pids+=($!)
  done
  for i in $(seq 1 "$1"); do
    port=$((BASE_PORT + i))
    for _ in $(seq 1 300); do
      curl -sf -o /dev/null "127.0.0.1:$port/readyz" && break
      kill -0 "${node_pids[$((i - 1))]}" 2>/dev/null || { cat "$run_dir/n$i.log" >&2; die "node $i exited"; }
      sleep 0.1
    done
    curl -sf -o /dev/null "127.0.0.1:$port/readyz" || { cat "$run_dir/n$i.log" >&2; die "node $i never got ready"; }
  done
  if [ "$1" = 1 ]; then
    URL=http://127.0.0.1:$((BASE_PORT + 1))
    return
  fi
  {
    printf 'global\n  maxconn 4096\n  nbthread 1\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n  option http-keep-alive\n  http-reuse always\n'
    printf 'frontend fe\n  bind 127.0.0.1:%s\n  default_backend nodes\nbackend nodes\n  balance roundrobin\n  option httpchk GET /readyz\n' "$LB_PORT"
    for i in $(seq 1 "$1"); do printf '  server n%s 127.0.0.1:%s check inter 1s\n' "$i" $((BASE_PORT + i)); done
  } >"$run_dir/haproxy.cfg"
  # shellcheck disable=SC2046
  $(pin "$LB_CPUS") haproxy -f "$run_dir/haproxy.cfg" -db >"$run_dir/haproxy.log" 2>&1 &
  pids+=($!)
  URL=$ISSUER
  for _ in $(seq 1 100); do curl -sf -o /dev/null "$URL/readyz" && return; sleep 0.1; done
  cat "$run_dir/haproxy.log" >&2
  die "haproxy never answered"
}

pg_master() { psql "$PG/postgres" -Atc "select pid from pg_stat_activity where backend_type = 'checkpointer'" |
  xargs -I{} awk '{print $4}' /proc/{}/stat; }
pg_cpu_ticks() { # the cluster's CPU so far, in ticks: the postmaster's own and its reaped
  # children's (utime stime cutime cstime), plus its live children's (utime stime)
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pm="$1" '{ pid = $1; sub(/^[0-9]+ \(.*\) /, "") # now $2 is ppid, $12 utime, $13 stime
      if (pid == pm) t += $12 + $13 + $14 + $15; else if ($2 == pm) t += $12 + $13 }
    END { print t + 0 }'
}
node_cpu_ticks() { # the nodes' CPU so far, in ticks (utime + stime)
  local p t=0 v
  for p in "${node_pids[@]}"; do
    v=$(sed -E 's/^[0-9]+ \(.*\) //' "/proc/$p/stat" | awk '{print $12 + $13}')
    t=$((t + v))
  done
  echo "$t"
}
metric_sum() { # name (with labels), over every node
  local i total=0 v
  for i in $(seq 1 "$NODES"); do
    v=$(curl -sf "127.0.0.1:$((BASE_PORT + i))/metrics" | awk -v m="$1" '$1 == m {print $2}')
    total=$(python3 -c "print(int(float('${v:-0}')) + $total)")
  done
  echo "$total"
}
rss_peak_mib() { local p m=0 v; for p in "${node_pids[@]}"; do
    v=$(awk '/VmHWM/ {print $2}' "/proc/$p/status"); [ "$v" -gt "$m" ] && m=$v; done; echo $((m / 1024)); }

run_wrk() { # duration, extra env assignments…: wrk with mix.lua against $URL
  local d=$1; shift
  # shellcheck disable=SC2046
  env MIX_DATA="$DATA" MIX_DIST="$DIST" MIX_WRITE_PCT="$WRITE_PCT" MIX_THREADS="$THREADS" \
    ${DELAY_MS:+MIX_DELAY_MS="$DELAY_MS"} "$@" \
    $(pin "$WRK_CPUS") wrk -t"$THREADS" -c"$CONNECTIONS" -d"$d" --latency -s bench/mixed/mix.lua "$URL"
}

measure() { # mode label, extra env for wrk…
  local label=$1; shift
  local pm; pm=$(pg_master)
  [ -n "$pm" ] || die "cannot find the PostgreSQL postmaster at $PG"
  start_nodes "$NODES"
  if [ "$WARMUP" != 0 ] && [ "$WARMUP" != 0s ]; then run_wrk "$WARMUP" "$@" >"$run_dir/warmup.out" 2>&1 || true; fi
  local h0 m0 c0 t0 n0
  h0=$(metric_sum 'tessera_authz_cache_lookups_total{outcome="hit"}')
  m0=$(metric_sum 'tessera_authz_cache_lookups_total{outcome="miss"}')
  c0=$(pg_cpu_ticks "$pm"); t0=$(date +%s.%N); n0=$(node_cpu_ticks)
  # One psql session for every sample: a psql started per sample forks a client and a
  # PostgreSQL backend each second, and that burst showed as a once-a-second stall in the
  # cold walk's latencies.
  # It stops when told, or when this script is gone (an error exit removes run_dir).
  local me=$$
  ( while [ ! -e "$run_dir/stop-sampler" ] && kill -0 "$me" 2>/dev/null; do echo "select count(*) from pg_stat_activity where datname = '$DB';"; sleep 1; done |
      psql "$PG/postgres" -At 2>/dev/null ) >"$run_dir/conns" &
  local sampler=$!
  pids+=("$sampler")
  run_wrk "$DURATION" "$@" | tee "$run_dir/wrk.out"
  touch "$run_dir/stop-sampler"; wait "$sampler" 2>/dev/null || true
  local c1 t1 h1 m1 n1
  c1=$(pg_cpu_ticks "$pm"); t1=$(date +%s.%N); n1=$(node_cpu_ticks)
  h1=$(metric_sum 'tessera_authz_cache_lookups_total{outcome="hit"}')
  m1=$(metric_sum 'tessera_authz_cache_lookups_total{outcome="miss"}')
  local hz; hz=$(getconf CLK_TCK)
  local mix err
  mix=$(awk '/^MIX requests/ {for (i = 2; i <= NF; i++) {split($i, kv, "="); printf "%s ", kv[2]}}' "$run_dir/wrk.out")
  err=$(awk '/^MIX errors/ {split($3, kv, "="); print kv[2]}' "$run_dir/wrk.out")
  [ -n "$mix" ] || die "no MIX line in wrk's output"
  local ck; ck=$(awk '/^MIX kind=c / {split($4, a, "="); split($5, b, "="); print a[2], b[2]}' "$run_dir/wrk.out")
  python3 - "$label" "$NODES" "$DIST" "$TAG" "$mix" "$err" "$(rss_peak_mib)" "$c0" "$c1" "$t0" "$t1" "$hz" \
    "$h0" "$h1" "$m0" "$m1" "$run_dir/conns" "$WORK/results.tsv" "$DB" "$WRITE_PCT" "$n0" "$n1" "${ck:-nan nan}" <<'PY'
import os, statistics, sys
(label, nodes, dist, tag, mix, err, rss, c0, c1, t0, t1, hz, h0, h1, m0, m1, conns, out, db, wpct, n0, n1, ck) = sys.argv[1:]
check_p50, check_p99 = ck.split()
req, secs, rps, p50, p90, p99, mx = mix.split()
cpu = (int(c1) - int(c0)) / int(hz)
node_cpu = (int(n1) - int(n0)) / int(hz)
wall = float(t1) - float(t0)
cs = [int(x) for x in open(conns).read().split() if x.isdigit()] or [0]
hits, misses = int(h1) - int(h0), int(m1) - int(m0)
rate = hits / (hits + misses) if hits + misses else float("nan")
row = dict(label=label, db=db, nodes=nodes, dist=dist, write_pct=wpct, delay_ms=os.environ.get("DELAY_MS", ""), tag=tag, rps=rps, p50_ms=p50, p99_ms=p99, max_ms=mx,
           check_p50_ms=check_p50, check_p99_ms=check_p99,
           error_rate=err, rss_peak_mib=rss, pg_cpu_s=f"{cpu:.1f}", pg_cores=f"{cpu / wall:.2f}",
           pg_cores_per_1k_rps=f"{cpu / wall / max(float(rps), 1) * 1000:.3f}",
           pg_conns_max=max(cs), pg_conns_median=statistics.median(cs),
           cache_hits=hits, cache_misses=misses, cache_hit_rate=f"{rate:.4f}",
           node_cores=f"{node_cpu / wall:.2f}", rps_per_node_core=f"{float(req) / max(node_cpu, 0.01):.0f}")
new = not os.path.exists(out)
with open(out, "a") as f:
    if new:
        f.write("\t".join(row) + "\n")
    f.write("\t".join(str(v) for v in row.values()) + "\n")
print("RESULT " + " ".join(f"{k}={v}" for k, v in row.items()))
PY
}

case "${1:-}" in
  setup)
    n=${2:?agencies}
    psql "$PG/postgres" -qc "drop database if exists $DB" -c "create database $DB owner $NODE_ROLE"
    start_nodes 1
    python3 bench/mixed/setup.py --url "$URL" --admin-key-file "$run_dir/n1/bootstrap-admin.key" \
      --agencies "$n" --out "$CREDS"
    echo "bench/mixed.sh: $n agencies in $DB, credentials in $CREDS" ;;
  prep)
    NODE_CPUS='' start_nodes 1
    python3 bench/mixed/prep.py --in "$CREDS" --out "$DATA" --url "$URL" --tokens "${TOKENS:-2000}" ;;
  mix)
    # The JWTs prep.py issued live an hour (`--access-token-ttl 3600`): an older file would
    # answer every introspection `active: false` (counted as errors) and change the mix.
    [ -f "$DATA" ] || die "no data file $DATA (bench/mixed.sh prep)"
    age=$(( $(date +%s) - $(stat -c %Y "$DATA") ))
    [ "$age" -lt 3300 ] || die "$DATA was prepared $((age / 60)) min ago and its JWTs expire after 60: run bench/mixed.sh prep again"
    measure mix ;;
  writes) measure writes MIX_ONLY=write ;;
  cold)
    WARMUP=0 THREADS=1 CONNECTIONS=1 DIST=walk measure cold MIX_ONLY=check MIX_WALK_FROM="${WALK_FROM:-1}" ;;
  *) sed -n '2,27p' "$0"; exit 2 ;;
esac
