#!/usr/bin/env bash
# Read replicas against a REAL streaming replica (issue 13): a private PostgreSQL primary
# (wal_level=replica, replication allowed from 127.0.0.1 with trust) and a hot standby made by
# `pg_basebackup -R -X stream`, both on free loopback ports in a temp dir; once the standby
# streams, `cargo test -p tessera-server --test replica` runs with:
#   TESSERA_TEST_PRIMARY_URL / TESSERA_TEST_REPLICA_URL   superuser urls of the two servers
#   TESSERA_TEST_STANDBY_PGCTL / TESSERA_TEST_STANDBY_DATA  how the tests stop and start the standby
#   TESSERA_TEST_REPLICA_REQUIRED=1                        the tests fail rather than skip
# Everything is removed on exit. Costs about a minute once the test binary is built.
set -euo pipefail
cd "$(dirname "$0")/.."

PGBIN=${PGBIN:-}
if [ -z "$PGBIN" ]; then
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  PGBIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
fi

# PostgreSQL refuses to run as root: the servers run as `postgres` then.
as_pg=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  as_pg=(runuser -u postgres --)
fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

dir=$(mktemp -d /tmp/tessera-replica.XXXXXX)
chmod 755 "$dir"
[ ${#as_pg[@]} -eq 0 ] || chown postgres "$dir"
primary_port=$(free_port)
standby_port=$(free_port)
while [ "$standby_port" = "$primary_port" ]; do standby_port=$(free_port); done

ctl="$dir/standby-ctl"
cat >"$ctl" <<EOF
#!/usr/bin/env bash
exec ${as_pg[*]} "$PGBIN/pg_ctl" "\$@"
EOF
chmod 755 "$ctl"

cleanup() {
  "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$dir/standby" -m immediate stop >/dev/null 2>&1 || true
  "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$dir/primary" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

echo "replica: primary on 127.0.0.1:$primary_port, standby on 127.0.0.1:$standby_port ($dir)"
"${as_pg[@]}" "$PGBIN/initdb" -D "$dir/primary" -U postgres --auth=trust >/dev/null
cat >>"$dir/primary/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $primary_port
unix_socket_directories = '$dir'
wal_level = replica
max_wal_senders = 5
hot_standby = on
max_connections = 200
fsync = off
EOF
# Trust on loopback, replication included (a throw-away cluster; never a real one).
cat >"$dir/primary/pg_hba.conf" <<EOF
local all all trust
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
EOF
"${as_pg[@]}" "$PGBIN/pg_ctl" -D "$dir/primary" -l "$dir/primary.log" -w -t 60 start >/dev/null

"${as_pg[@]}" "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres \
  -D "$dir/standby" -R -X stream -c fast
sed -i "s/^port = .*/port = $standby_port/" "$dir/standby/postgresql.conf"
"${as_pg[@]}" "$PGBIN/pg_ctl" -D "$dir/standby" -l "$dir/standby.log" -w -t 60 start >/dev/null

psql_p() { "$PGBIN/psql" -h 127.0.0.1 -p "$primary_port" -U postgres -d postgres -Atq -c "$1"; }
psql_s() { "$PGBIN/psql" -h 127.0.0.1 -p "$standby_port" -U postgres -d postgres -Atq -c "$1"; }
for _ in $(seq 1 60); do
  if [ "$(psql_p "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'" 2>/dev/null)" = 1 ] \
    && [ "$(psql_s "SELECT pg_is_in_recovery()" 2>/dev/null)" = t ]; then
    streaming=1
    break
  fi
  sleep 1
done
if [ -z "${streaming:-}" ]; then
  echo "replica: the standby does not stream" >&2
  tail -n 30 "$dir/standby.log" >&2 || true
  exit 1
fi
echo "replica: the standby streams"

TESSERA_TEST_PRIMARY_URL="postgres://postgres@127.0.0.1:$primary_port/postgres" \
TESSERA_TEST_REPLICA_URL="postgres://postgres@127.0.0.1:$standby_port/postgres" \
TESSERA_TEST_STANDBY_PGCTL="$ctl" \
TESSERA_TEST_STANDBY_DATA="$dir/standby" \
TESSERA_TEST_REPLICA_REQUIRED=1 \
  cargo test -p tessera-server --test replica -- --nocapture
