#!/usr/bin/env bash
# tessera-guard verification latency, cached and uncached, beside raw `jsonwebtoken`
# verification of the same Ed25519 access token (docs/BENCHMARKS.md, "The Rust guard").
#   bash bench/guard.sh [SAMPLES] [--json]
# Pin it to one core to compare runs: taskset -c 0 bash bench/guard.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --release -p tessera-guard --example guard_bench -- "${1:-20000}" "${@:2}"
