#!/usr/bin/env bash
# The published benchmarks of the authorization engine (docs/BENCHMARKS.md), in one go:
#   1. `inproc` at 100 agencies (×100 accounts, ×1,000 bindings = 100k bindings);
#   2. `inproc` at 100,000 agencies / 1,000,000 accounts / 10,000,000 bindings;
#   3. `peers` (Tessera beside Cedar and casbin) at 100 agencies;
# then a summary against DESIGN §7's budgets. Prints Markdown on stdout; progress on stderr.
# Results (Markdown, JSON, logs) are kept in $BENCH_OUT (default target/tessera-bench/).
#
# Environment:
#   BENCH_OUT        where results go
#   BENCH_LTO=1      build with thin LTO and one codegen unit, in target/bench-lto (so the
#                    shared release artifacts are not rebuilt under the other engineers)
#   BENCH_SAMPLES    timed checks per inproc run (default 1,000,000)
#   BENCH_PEER_SAMPLES  distinct checks for peers (default 5,000)
#   BENCH_PEER_BUDGET_S seconds of timed calls per peer at most (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."

out=${BENCH_OUT:-target/tessera-bench}
samples=${BENCH_SAMPLES:-1000000}
peer_samples=${BENCH_PEER_SAMPLES:-5000}
peer_budget=${BENCH_PEER_BUDGET_S:-60}
mkdir -p "$out"

if [[ ${BENCH_LTO:-0} == 1 ]]; then
  export CARGO_PROFILE_RELEASE_LTO=thin CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/bench-lto}
fi
echo "==> cargo build --release -p tessera-bench" >&2
cargo build --release -p tessera-bench >&2
bin=${CARGO_TARGET_DIR:-target}/release/tessera-bench
# Huge pages for the heap, as `tessera serve` gives itself (crates/tessera-server/src/hugepages.rs).
export GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.hugetlb=1}

run() { # name, then the arguments
  local name=$1
  shift
  echo "==> tessera-bench $*" >&2
  local start=$SECONDS
  "$bin" "$@" --save-json "$out/$name.json" >"$out/$name.md" 2> >(tee "$out/$name.log" >&2)
  echo "    ($((SECONDS - start)) s)" >&2
}

run inproc-100 inproc --agencies 100 --accounts-per-agency 100 --bindings-per-agency 1000 \
  --samples "$samples"
run inproc-100k inproc --agencies 100000 --accounts-per-agency 10 --bindings-per-agency 100 \
  --samples "$samples"
run peers-100 peers --agencies 100 --accounts-per-agency 100 --bindings-per-agency 1000 \
  --samples "$peer_samples" --budget-s "$peer_budget"
"$bin" summary --small "$out/inproc-100.json" --large "$out/inproc-100k.json" \
  --peers "$out/peers-100.json" --save-json "$out/summary.json" >"$out/summary.md"

{
  echo "## Results"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- crates 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/^Mem:/ {print $2}') GiB"
  echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- build: release$([[ ${BENCH_LTO:-0} == 1 ]] && echo ', thin LTO, 1 codegen unit')"
  echo
  cat "$out/summary.md" "$out/inproc-100.md" "$out/inproc-100k.md" "$out/peers-100.md"
} | tee "$out/results.md"
