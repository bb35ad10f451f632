#!/usr/bin/env bash
# The project-local PostGIS cluster under var/pgdata, reached through a Unix socket in var/run
# (no TCP port, so it never collides with another cluster on the machine).
#   scripts/db.sh start | stop | status
# PostgreSQL refuses to run as root, so as root the cluster belongs to the unprivileged
# "postgres" account that the Debian package creates. With DATABASE_URL set, nothing is started:
# the settings use that database instead.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
pgbin=/usr/lib/postgresql/15/bin
data=$root/var/pgdata
sockets=$root/var/run
log=$root/var/log/postgres.log
port=${MINQING_PG_PORT:-5439}
database=${MINQING_PG_DATABASE:-minqing}

if [ -n "${DATABASE_URL:-}" ]; then
  echo "db: DATABASE_URL is set; not starting the project-local cluster"
  exit 0
fi

mkdir -p "$root/var/log" "$sockets"
if [ "$(id -u)" -eq 0 ]; then
  owner=postgres
  chown "$owner" "$root/var/log" "$sockets"
  [ -d "$data" ] && chown -R "$owner" "$data"
  as_owner() { runuser -u "$owner" -- "$@"; }
  if ! as_owner test -w "$sockets"; then
    echo "db: the account '$owner' cannot reach $sockets; make the path to the repository traversable (chmod o+x on its parents) or set DATABASE_URL" >&2
    exit 1
  fi
else
  as_owner() { "$@"; }
fi

running() { as_owner "$pgbin/pg_ctl" -D "$data" status >/dev/null 2>&1; }
psql_admin() { as_owner "$pgbin/psql" -X -q -h "$sockets" -p "$port" -U minqing -d postgres "$@"; }

case "${1:-start}" in
  start)
    if [ ! -f "$data/PG_VERSION" ]; then
      echo "db: creating the cluster in var/pgdata"
      mkdir -p "$data"
      [ "$(id -u)" -eq 0 ] && chown "$owner" "$data"
      as_owner "$pgbin/initdb" -D "$data" -U minqing --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
      # A development cluster sized for a 2-core, 24 GB machine. fsync=off trades crash safety of
      # the OS for import speed; a PostgreSQL restart still loses nothing that was committed.
      cat >> "$data/postgresql.conf" <<CONF
listen_addresses = ''
port = $port
unix_socket_directories = '$sockets'
shared_buffers = 1GB
work_mem = 64MB
maintenance_work_mem = 1GB
max_wal_size = 8GB
fsync = off
full_page_writes = off
jit = off
max_parallel_workers_per_gather = 2
random_page_cost = 1.1
effective_cache_size = 12GB
CONF
    fi
    if ! running; then
      rm -f "$data/postmaster.pid"
      as_owner "$pgbin/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null
    fi
    if ! psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1; then
      psql_admin -c "CREATE DATABASE $database"
    fi
    as_owner "$pgbin/psql" -X -q -h "$sockets" -p "$port" -U minqing -d "$database" \
      -c "CREATE EXTENSION IF NOT EXISTS postgis" -c "CREATE EXTENSION IF NOT EXISTS pg_trgm"
    echo "db: PostGIS running (socket $sockets, port $port, database $database)"
    ;;
  stop)
    if [ -f "$data/PG_VERSION" ] && running; then as_owner "$pgbin/pg_ctl" -D "$data" -m fast -w stop >/dev/null; fi
    echo "db: stopped"
    ;;
  status)
    if running; then echo "db: running"; else echo "db: stopped"; exit 3; fi
    ;;
  *)
    echo "usage: scripts/db.sh start|stop|status" >&2; exit 2
    ;;
esac
