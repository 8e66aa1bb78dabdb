#!/usr/bin/env bash
# Two builds of Tessera side by side, in alternating rounds on this machine (a refactor must not
# cost speed): the in-process engine at 100 agencies (`tessera-bench inproc`), `POST /v1/check`
# over HTTP (bench/http-check.sh, beside Cerbos), and client-credentials issue plus
# introspection (bench/oauth.sh, beside oidc-provider). Each figure is also given against the
# peer measured in the same run, which cancels most of the machine's drift.
#   BEFORE=dir AFTER=dir bash bench/before-after.sh
# where each dir holds a release `tessera` and `tessera-bench` (for example `target/release` of
# two worktrees). ROUNDS (default 2), DURATION (default 8s), SAMPLES (default 500000). The HTTP
# scripts run in their default mode (pinned, PIN=1); PIN=0 or PIN=both is passed on. Both
# builds are measured against the same ceiling, AFTER's `tessera-bench ceiling`.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BEFORE:?BEFORE=dir with the old release binaries}" "${AFTER:?AFTER=dir with the new ones}"
ROUNDS=${ROUNDS:-2}
export DURATION=${DURATION:-8s}
SAMPLES=${SAMPLES:-500000}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

inproc() { # dir → checks/s, RBAC p50 and p99, Cedar-condition p50 (ns)
  "$1/tessera-bench" inproc --agencies 100 --accounts-per-agency 100 --bindings-per-agency 1000 \
    --samples "$SAMPLES" --save-json "$out/inproc.json" >/dev/null 2>&1
  python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(round(d["throughput_per_s"]), d["check"]["p50_ns"], d["check"]["p99_ns"],
      d["cedar_condition"]["latency"]["p50_ns"])' "$out/inproc.json"
}

for round in $(seq 1 "$ROUNDS"); do
  if ((round % 2)); then order="BEFORE AFTER"; else order="AFTER BEFORE"; fi
  for which in $order; do
    dir=${!which}
    echo "== round $round: $which ($dir)" >&2
    echo "$which inproc $(inproc "$dir")"
    TESSERA_BIN="$dir/tessera" CEILING_BIN="$AFTER/tessera-bench" ROUNDS=1 bash bench/http-check.sh 2>/dev/null |
      awk -v w="$which" -F'|' '/^\| Tessera/ {t=$4} /^\| Cerbos/ {c=$4} /^ratio/ {n=split($0, a, " "); r=a[n]} END {gsub(/ /, "", t); gsub(/ /, "", c); print w, "http-check", t, c, r}'
    TESSERA_BIN="$dir/tessera" CEILING_BIN="$AFTER/tessera-bench" ROUNDS=1 bash bench/oauth.sh 2>/dev/null |
      awk -v w="$which" -F'|' '/^\| Tessera/ {gsub(/ /, "", $3); gsub(/ /, "", $4); print w, "oauth", $3, $4} /^ratio/ {print w, $0}'
  done
done
