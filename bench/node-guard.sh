#!/usr/bin/env bash
# The Node guard's verification rate beside bare jose jwtVerify of the same token (issue 11,
# deliverable 7: target ≥ 0.9×). Installs sdk/node's pinned dependencies (ignored folder),
# starts a Tessera from TESSERA_BIN (default target/debug/tessera, built if missing) and runs
# sdk/node/bench/verify.mjs. ROUNDS (default 15) and SECONDS (default 0.3) per contestant.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TESSERA_BIN:-${CARGO_TARGET_DIR:-target}/debug/tessera}
[ -x "$BIN" ] || cargo build -q -p tessera-server --bin tessera
export TESSERA_BIN=$(realpath "$BIN")
(cd sdk/node && npm ci --silent --no-audit --no-fund >/dev/null)
cd sdk/node && node bench/verify.mjs
