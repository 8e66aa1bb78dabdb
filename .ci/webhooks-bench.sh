#!/usr/bin/env bash
# Webhook delivery rate (issue 12 §9): .ci/webhooks/bench.py on SQLite, and on PostgreSQL when
# TESSERA_TEST_DATABASE_URL names an admin URL. The server is pinned to CPU 0 (taskset), the
# node receiver is not. Use a release binary for figures:
#   cargo build --release -p tessera-server --bin tessera
#   TESSERA_BIN=target/release/tessera .ci/webhooks-bench.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TESSERA_BIN:-${CARGO_TARGET_DIR:-target}/release/tessera}
N=${1:-5000}
[ -x "$BIN" ] || cargo build -q --release -p tessera-server --bin tessera
py=python3
[ -x .ci/.venv-webhooks/bin/python ] && py=.ci/.venv-webhooks/bin/python
"$py" .ci/webhooks/bench.py "$BIN" "$N"
if [ -n "${TESSERA_TEST_DATABASE_URL:-}" ] && command -v psql >/dev/null; then
  name="tessera_whb_$$_$RANDOM"
  psql -q "$TESSERA_TEST_DATABASE_URL" -c "CREATE ROLE $name LOGIN NOSUPERUSER NOBYPASSRLS" -c "CREATE DATABASE $name OWNER $name"
  trap 'psql -q "$TESSERA_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "DROP ROLE IF EXISTS $name" || true' EXIT
  base=${TESSERA_TEST_DATABASE_URL%/*}
  scheme=${base%%://*}
  hostpart=${base#*://}
  hostpart=${hostpart#*@}
  "$py" .ci/webhooks/bench.py "$BIN" "$N" --database-url "$scheme://$name@$hostpart/$name"
fi
