#!/usr/bin/env bash
# Alternating rounds of bench/mixed.sh: ROUNDS (3) × each database in DBS × NODE_COUNTS (1 3)
# × DISTS (zipf uniform) × DELAYS (saturating only), then the medians (bench/mixed/summary.py).
#   DBS="tessera_100:$WORK/data-100.tsv tessera_100k:$WORK/data-100k.tsv:180s" bash bench/mixed/rounds.sh
# A third field in a DBS entry is that database's warm-up (a node's steady state at 100k
# agencies takes minutes; WARMUP otherwise). DELAYS="- 10": each run saturating (`-`) and at
# the fixed load of DELAY_MS=10 (bench/mixed.sh). Same environment as bench/mixed.sh (PG,
# REDIS_URL, WORK, MASTER_KEY, TESSERA_BIN, DURATION…).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${DBS:?DBS=\"db:data.tsv[:warmup] …\"}"
ROUNDS=${ROUNDS:-3}
NODE_COUNTS=${NODE_COUNTS:-1 3}
DISTS=${DISTS:-zipf uniform}
DELAYS=${DELAYS:--}
for r in $(seq 1 "$ROUNDS"); do
  for spec in $DBS; do
    IFS=: read -r db data warm <<<"$spec"
    for nodes in $NODE_COUNTS; do
      for dist in $DISTS; do
        for delay in $DELAYS; do
          [ "$delay" = - ] && delay=
          echo "== round $r $db nodes=$nodes dist=$dist delay=${delay:-none}" >&2
          DB=$db DATA=$data NODES=$nodes DIST=$dist TAG=round$r WARMUP=${warm:-${WARMUP:-5s}} DELAY_MS=$delay \
            bash bench/mixed.sh mix | grep -E '^(RESULT|MIX)'
        done
      done
    done
  done
done
python3 bench/mixed/summary.py "${WORK:-bench/mixed/work}/results.tsv"
