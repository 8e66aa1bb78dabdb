#!/usr/bin/env bash
# Signed webhooks end to end (issue 12): a real `tessera` process delivers to a local receiver
# that verifies every message with the outside Standard Webhooks library (PyPI
# `standardwebhooks`, pinned in .ci/webhooks/requirements.txt, installed into
# .ci/.venv-webhooks, ignored); the receiver stalls and fails attempts while the server is
# killed with SIGKILL twice and restarted on the same database; every event must arrive,
# verified, under one webhook-id each. Runs on SQLite, and on PostgreSQL when
# TESSERA_TEST_DATABASE_URL names an admin URL (a throw-away role and database are made).
#   TESSERA_BIN    the server binary (default $CARGO_TARGET_DIR/debug/tessera, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TESSERA_BIN:-${CARGO_TARGET_DIR:-target}/debug/tessera}
[ -x "$BIN" ] || cargo build -q -p tessera-server --bin tessera
venv=.ci/.venv-webhooks
if [ ! -x "$venv/bin/python" ] || ! cmp -s .ci/webhooks/requirements.txt "$venv/requirements.txt"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r .ci/webhooks/requirements.txt
  cp .ci/webhooks/requirements.txt "$venv/requirements.txt"
fi
"$venv/bin/python" .ci/webhooks/e2e.py "$BIN"
if [ -n "${TESSERA_TEST_DATABASE_URL:-}" ] && command -v psql >/dev/null; then
  name="tessera_wh_$$_$RANDOM"
  psql -q "$TESSERA_TEST_DATABASE_URL" -c "CREATE ROLE $name LOGIN NOSUPERUSER NOBYPASSRLS" -c "CREATE DATABASE $name OWNER $name"
  trap 'psql -q "$TESSERA_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "DROP ROLE IF EXISTS $name" || true' EXIT
  base=${TESSERA_TEST_DATABASE_URL%/*}
  scheme=${base%%://*}
  hostpart=${base#*://}
  hostpart=${hostpart#*@}
  "$venv/bin/python" .ci/webhooks/e2e.py "$BIN" --database-url "$scheme://$name@$hostpart/$name"
else
  echo "webhooks e2e: PostgreSQL skipped (set TESSERA_TEST_DATABASE_URL to an admin URL)"
fi
