#!/usr/bin/env bash
# The cluster test (issue 13): three `tessera serve` processes on loopback ports sharing a
# private PostgreSQL cluster (initdb + pg_ctl on a free port, so it can be restarted) and a
# private redis-server, behind a real haproxy (round robin, /readyz health checks). Scenarios
# (.ci/cluster/*.py, Python 3 standard library only): a revocation on node 1 is refused by
# nodes 2 and 3 within 1 s, also right after every node's LISTEN session was terminated (and
# every node listens again); node 2 reads node 1's writes at once with `at_least_revision`;
# kill -9 under a write load loses no acknowledged write and
# half-applies none; PostgreSQL restarted while serving; Redis stopped (the declared fail
# modes). Installs haproxy, redis-server and PostgreSQL if missing; fails rather than skips.
# About 20-60 s on 2 cores, beyond the build.
#   TESSERA_BIN   the server binary (default: $CARGO_TARGET_DIR/debug/tessera, built if missing)
#   CLUSTER_KEEP  set to keep the work directory (logs, configs) after the run
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ "${#need[@]}" -gt 0 ]; then
  echo "cluster: installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The workspace's debug binary, as `cargo test --workspace` left it (built only if missing:
# building one package alone may unify features differently and rebuild dependencies).
TESSERA_BIN=${TESSERA_BIN:-${CARGO_TARGET_DIR:-target}/debug/tessera}
[ -x "$TESSERA_BIN" ] || cargo build -q -p tessera-server --bin tessera
BIN=$(realpath "$TESSERA_BIN")

work=$(mktemp -d -t tessera-cluster.XXXXXX)
py=""
cleanup() {
  local rc=$?
  # The Python harness stops its processes itself (SIGTERM unwinds it); its children die with
  # it (PR_SET_PDEATHSIG). PostgreSQL is a daemon: stop it here if the harness could not.
  if [ -n "$py" ] && kill -0 "$py" 2>/dev/null; then
    kill -TERM "$py" 2>/dev/null || true
    wait "$py" 2>/dev/null || true
  fi
  if [ -f "$work/pg/data/postmaster.pid" ]; then
    pgbin=$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n 1)")
    if [ "$(id -u)" = 0 ]; then
      runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
    else
      "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
    fi
  fi
  if [ -n "${CLUSTER_KEEP:-}" ]; then echo "cluster: work directory kept: $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

python3 -u .ci/cluster/main.py "$BIN" "$work" &
py=$!
wait "$py"
