#!/usr/bin/env bash
# `tessera audit verify --export FILE --keys FILE` as an auditor runs it: no server, no
# database. A signed synthetic export (hidden `tessera audit generate`) must verify (exit 0);
# the same export with one event's field edited, with a line deleted, and with two lines
# swapped must each fail (exit non-zero) naming the line. The HTTP suites tamper with real
# chains on SQLite and PostgreSQL (tests/api/audit_tamper.rs); this checks the CLI contract.
#   TESSERA_BIN    the server binary (default target/debug/tessera, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TESSERA_BIN:-target/debug/tessera}
[ -x "$BIN" ] || cargo build -q -p tessera-server --bin tessera
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$BIN" audit generate --events 5000 --out "$dir/export.jsonl" --keys-out "$dir/keys.json" >/dev/null
"$BIN" audit verify --export "$dir/export.jsonl" --keys "$dir/keys.json"

expect_bad() { # name, file
  local out
  if out=$("$BIN" audit verify --export "$2" --keys "$dir/keys.json" 2>&1); then
    echo "audit-offline: $1 was NOT detected" >&2
    exit 1
  fi
  case "$out" in
    *"line "*) echo "audit-offline: $1 detected: $out" ;;
    *) echo "audit-offline: $1 detected but no line named: $out" >&2; exit 1 ;;
  esac
}
# Edit a field of event line 2500 (its actor), keeping the JSON valid.
python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
lines = open(f"{d}/export.jsonl").read().splitlines(keepends=True)
ev = [i for i, l in enumerate(lines) if json.loads(l).get("type") == "event"]
edited = list(lines)
e = json.loads(edited[ev[2500]]); e["actor"] = "usr_forged"; edited[ev[2500]] = json.dumps(e) + "\n"
open(f"{d}/edited.jsonl", "w").writelines(edited)
open(f"{d}/deleted.jsonl", "w").writelines(lines[:ev[1200]] + lines[ev[1200] + 1:])
swapped = list(lines); swapped[ev[300]], swapped[ev[301]] = swapped[ev[301]], swapped[ev[300]]
open(f"{d}/swapped.jsonl", "w").writelines(swapped)
PY
expect_bad "an edited field" "$dir/edited.jsonl"
expect_bad "a deleted line" "$dir/deleted.jsonl"
expect_bad "two swapped lines" "$dir/swapped.jsonl"
echo "audit-offline: ok"
