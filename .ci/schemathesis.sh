#!/usr/bin/env bash
# The HTTP contract under an outside client: schemathesis generates requests from
# /openapi.json and checks every answer (no 5xx, documented statuses and schemas, valid data
# accepted, invalid data refused). Installs schemathesis (pinned) into .venv (ignored by git).
# One worker: hypothesis's source introspection is not thread-safe (seen: "AST constructor
# recursion depth mismatch" under --workers 2). A fixed seed makes CI reproducible; set ST_SEED
# to explore other inputs locally.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TESSERA_BIN:-target/debug/tessera}
PORT=${ST_PORT:-18290}
[ -x .venv/bin/st ] || { python3 -m venv .venv && .venv/bin/pip install -q "schemathesis==4.32.5"; }
[ -x "$BIN" ] || cargo build -q -p tessera-server
data=$(mktemp -d)
"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$data" >"$data/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do curl -sf "127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
.venv/bin/st --config-file .ci/schemathesis.toml run "http://127.0.0.1:$PORT/openapi.json" \
  -H "Authorization: Bearer $(cat "$data/bootstrap-admin.key")" \
  --max-examples "${ST_EXAMPLES:-25}" --seed "${ST_SEED:-20261129}" --workers 1 --no-color
