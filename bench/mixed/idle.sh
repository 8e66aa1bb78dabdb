#!/usr/bin/env bash
# The background load of a warm node: one `tessera serve` on DB, warmed with the mix (WARM,
# default 200s, saturating), then MEASURE seconds (default 20) with no request at all (or with
# the mix again when LOAD=1). Prints the node's and PostgreSQL's CPU (every process of the
# cluster, from /proc), commits/s and the top statements by time (pg_stat_statements must be
# loaded; its counters are reset).
#   TESSERA_BIN=… PG=postgres://postgres@127.0.0.1:55432 DB=tessera_100k DATA=$WORK/data-100k.tsv \
#     REDIS_URL=… MASTER_KEY=… bash bench/mixed/idle.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${TESSERA_BIN:-target/release/tessera}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
DB=${DB:?DB}; DATA=${DATA:?DATA}
NODE_ROLE=${NODE_ROLE:-tessera}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
MASTER_KEY=${MASTER_KEY:?MASTER_KEY}
MEASURE=${MEASURE:-20}
PORT=${PORT:-18481}
ISSUER=${ISSUER:-http://127.0.0.1:18489}   # the issuer bench/mixed.sh prep issued the JWTs as
node_url=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p._replace(netloc=sys.argv[2] + "@" + p.hostname + (f":{p.port}" if p.port else "")).geturl())' "$PG" "$NODE_ROLE")
dir=$(mktemp -d)
taskset -c "${NODE_CPUS:-0}" "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$dir/n1" --database-url "$node_url/$DB" \
  --master-key-file "$MASTER_KEY" --redis-url "$REDIS_URL" --issuer "$ISSUER" --rate-limits off --metrics-public \
  --log-format json --access-token-ttl 3600 >"$dir/node.log" 2>&1 &
node=$!
trap 'kill $node 2>/dev/null; wait $node 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 300); do curl -sf -o /dev/null "127.0.0.1:$PORT/readyz" && break; sleep 0.1; done
mix() { env MIX_DATA="$DATA" MIX_DIST="${DIST:-uniform}" MIX_THREADS=1 taskset -c "${WRK_CPUS:-1}" \
  wrk -t1 -c50 -d"$1" --latency -s bench/mixed/mix.lua "http://127.0.0.1:$PORT"; }
mix "${WARM:-200s}" >"$dir/warm.out" 2>&1
ticks() { cat /proc/[0-9]*/stat 2>/dev/null | awk -v n="$node" '$1 == n {node += $14 + $15} $0 ~ /\(postgres\)/ {pg += $14 + $15} END {print node + 0, pg + 0}'; }
commits() { psql "$PG/$DB" -Atc "select xact_commit from pg_stat_database where datname = '$DB'"; }
psql "$PG/$DB" -qAtc "select pg_stat_statements_reset()" >/dev/null
read -r n0 p0 < <(ticks); c0=$(commits)
if [ -n "${LOAD:-}" ]; then mix "${MEASURE}s" | grep -E '^MIX'; else sleep "$MEASURE"; fi
read -r n1 p1 < <(ticks); c1=$(commits)
hz=$(getconf CLK_TCK)
python3 -c "import sys; n, p, c, s, hz = map(float, sys.argv[1:]); print(f'IDLE node_cores={n / hz / s:.2f} pg_cores={p / hz / s:.2f} commits_per_s={c / s:.0f}')" \
  $((n1 - n0)) $((p1 - p0)) $((c1 - c0)) "$MEASURE" "$hz"
psql "$PG/$DB" -c "select calls, round(total_exec_time::numeric) exec_ms, left(regexp_replace(query, '\s+', ' ', 'g'), 100) query
  from pg_stat_statements order by total_exec_time desc limit 12"
