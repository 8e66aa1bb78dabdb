#!/usr/bin/env bash
# The Node guard (sdk/node, issue 11): installs its pinned dependencies (jose; express and
# fastify for the tests) into sdk/node/node_modules (ignored) with `npm ci`, then runs its
# tests with `node --test`: the guard's mechanics against a fake issuer, and an Express and a
# Fastify app protected by the guard against a real Tessera that the tests start themselves.
#   TESSERA_BIN    the server binary (default target/debug/tessera, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TESSERA_BIN:-target/debug/tessera}
[ -x "$BIN" ] || cargo build -q -p tessera-server --bin tessera
export TESSERA_BIN=$(realpath "$BIN")
cd sdk/node
npm ci --silent --no-audit --no-fund >/dev/null
node --test --test-reporter=spec test/*.test.mjs
