#!/usr/bin/env bash
# Alternating rounds of bench/mixed.sh: ROUNDS (3) × each database in DBS × 1 and 3 nodes ×
# Zipf and uniform tenants, then the medians (bench/mixed/summary.py).
#   DBS="tessera_100:$WORK/data-100.tsv tessera_100k:$WORK/data-100k.tsv" bash bench/mixed/rounds.sh
# Same environment as bench/mixed.sh (PG, REDIS_URL, WORK, MASTER_KEY, TESSERA_BIN, DURATION…).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${DBS:?DBS=\"db:data.tsv …\"}"
ROUNDS=${ROUNDS:-3}
for r in $(seq 1 "$ROUNDS"); do
  for spec in $DBS; do
    for nodes in 1 3; do
      for dist in zipf uniform; do
        echo "== round $r ${spec%%:*} nodes=$nodes dist=$dist" >&2
        DB=${spec%%:*} DATA=${spec#*:} NODES=$nodes DIST=$dist TAG=round$r bash bench/mixed.sh mix | grep -E '^(RESULT|MIX)'
      done
    done
  done
done
python3 bench/mixed/summary.py "${WORK:-bench/mixed/work}/results.tsv"
