#!/usr/bin/env bash
# Dependency policy (deny.toml): licences, bans (wildcards, duplicate versions) and sources
# always; RustSec advisories only when a copy of the advisory database is already on this
# machine, because fetching it needs github.com, which these machines cannot reach.
# Installs cargo-deny into ~/.cargo/bin if missing. The copy is looked for where cargo-deny
# keeps it by default ($CARGO_HOME/advisory-dbs, as deny.toml leaves `db-path` unset).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
export PATH="$CARGO_HOME/bin:$PATH" CARGO_TERM_COLOR=never
DB_DIR=$CARGO_HOME/advisory-dbs

if ! cargo deny --version >/dev/null 2>&1; then
  echo "==> installing cargo-deny (crates.io)"
  cargo install --locked cargo-deny
fi

# cargo-deny reads `cargo metadata` for every platform offline: fetch every locked package first
# (a fresh machine has only those its own builds needed, not the wasm or test-only ones).
echo "==> cargo fetch --locked (every platform's packages, for cargo-deny)"
cargo fetch --locked
echo "==> cargo deny check bans licenses sources"
cargo deny --color never --offline --locked check bans licenses sources

# cargo-deny keeps each database in <db-path>/<name>-<hash>/ (a git checkout).
if compgen -G "$DB_DIR/*/.git" >/dev/null || compgen -G "$DB_DIR/*/crates" >/dev/null; then
  echo "==> cargo deny check advisories (local database in $DB_DIR, not updated)"
  cargo deny --color never --offline --locked check advisories
else
  echo "==> SKIPPED: cargo deny check advisories. The RustSec database is fetched from" \
    "github.com, which this machine cannot reach, and no local copy is in $DB_DIR." \
    "Run \`cargo deny fetch db\` where GitHub is reachable, or clone rustsec/advisory-db" \
    "into $DB_DIR/advisory-db-3157b0e258782691 (the folder cargo-deny 0.20 names for it)."
fi
