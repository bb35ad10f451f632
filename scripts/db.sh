#!/usr/bin/env bash
# The project-local PostGIS cluster under var/pgdata, reached through a Unix socket in var/run
# (no TCP port, so it never collides with another cluster on the machine).
#   scripts/db.sh start | stop | status
# PostgreSQL refuses to run as root, so as root the cluster belongs to the unprivileged
# "postgres" account that the Debian package creates. With DATABASE_URL set, nothing is started:
# the settings use that database instead.
#
# Least privilege (README "Security", "Database roles"):
#   * the cluster's superuser is the account that runs it, reachable only by that account
#     (peer authentication);
#   * "minqing" owns the databases and their tables and runs migrations, imports and other
#     manage.py commands;
#   * "minqing_app" is what the served application connects as: it reads and writes rows, but
#     owns nothing, cannot change the audit log or the event log, and holds no escape setting;
#   * both log in with a password (scram-sha-256), kept in var/secrets/ (mode 0600);
#   * the socket directory is open to the cluster's account only (mode 0700).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
pgbin=/usr/lib/postgresql/15/bin
data=$root/var/pgdata
sockets=$root/var/run
secrets=$root/var/secrets
log=$root/var/log/postgres.log
port=${MINQING_PG_PORT:-5439}
database=${MINQING_PG_DATABASE:-minqing}
owner_role=minqing
app_role=${MINQING_DB_APP_ROLE:-minqing_app}
# Marks a cluster made with these roles; an older one (whose superuser was "minqing", reachable by
# anyone on the machine) is moved aside rather than trusted.
roles_marker=$data/minqing-roles-v1

if [ -n "${DATABASE_URL:-}" ]; then
  echo "db: DATABASE_URL is set; not starting the project-local cluster"
  exit 0
fi

mkdir -p "$root/var/log" "$sockets"
if [ "$(id -u)" -eq 0 ]; then
  account=postgres
  chown "$account" "$root/var/log" "$sockets"
  [ -d "$data" ] && chown -R "$account" "$data"
  as_account() { runuser -u "$account" -- "$@"; }
  if ! as_account test -w "$sockets"; then
    echo "db: the account '$account' cannot reach $sockets; make the path to the repository traversable (chmod o+x on its parents) or set DATABASE_URL" >&2
    exit 1
  fi
else
  account=$(id -un)
  as_account() { "$@"; }
fi
chmod 0700 "$sockets"

running() { as_account "$pgbin/pg_ctl" -D "$data" status >/dev/null 2>&1; }
# The superuser, as the cluster's own account (peer authentication).
psql_super() {
  local db=$1; shift
  as_account env PGOPTIONS="-c client_min_messages=warning" \
    "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h "$sockets" -p "$port" -U "$account" -d "$db" "$@"
}

# A role's password: made once, kept in var/secrets/db-<role>.password (read by settings/base.py).
secret() {
  local file=$secrets/db-$1.password
  if [ ! -s "$file" ]; then
    mkdir -p "$secrets"
    chmod 0700 "$secrets"
    (umask 077; od -An -N24 -tx1 /dev/urandom | tr -d ' \n' > "$file")
  fi
  cat "$file"
}

case "${1:-start}" in
  start)
    if [ -f "$data/PG_VERSION" ] && [ ! -f "$roles_marker" ]; then
      if running; then as_account "$pgbin/pg_ctl" -D "$data" -m fast -w stop >/dev/null; fi
      aside=$root/var/pgdata.before-roles-$(date +%Y%m%d%H%M%S)
      echo "db: var/pgdata predates the least-privilege roles (its superuser was reachable by any local account);"
      echo "db: moved it to ${aside#"$root"/} and creating a new cluster (the demo city is generated again)"
      mv "$data" "$aside"
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
      echo "db: creating the cluster in var/pgdata"
      mkdir -p "$data"
      [ "$(id -u)" -eq 0 ] && chown "$account" "$data"
      as_account "$pgbin/initdb" -D "$data" -U "$account" --auth-local=peer --auth-host=reject \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null
      # A development cluster sized for a 2-core, 24 GB machine. fsync=off trades crash safety of
      # the OS for import speed; a PostgreSQL restart still loses nothing that was committed.
      cat >> "$data/postgresql.conf" <<CONF
listen_addresses = ''
port = $port
unix_socket_directories = '$sockets'
unix_socket_permissions = 0700
password_encryption = scram-sha-256
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
      # The cluster's account by peer; every other role by password. No TCP at all.
      as_account tee "$data/pg_hba.conf" >/dev/null <<HBA
# TYPE  DATABASE  USER        METHOD
local   all       $account    peer
local   all       all         scram-sha-256
HBA
      as_account touch "$roles_marker"
    fi
    if ! running; then
      rm -f "$data/postmaster.pid"
      as_account "$pgbin/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null
    fi
    # Roles: created once, their passwords kept equal to the files in var/secrets (sent on standard
    # input, never on a command line that other accounts could read).
    { printf '\\set owner %s\n\\set app %s\n' "$owner_role" "$app_role"
      printf '\\set owner_pw %s\n\\set app_pw %s\n' "$(secret owner)" "$(secret app)"
      cat <<'SQL'
SELECT format('CREATE ROLE %I', :'owner') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('CREATE ROLE %I', :'app') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %L',
              :'owner', :'owner_pw') \gexec
SELECT format('ALTER ROLE %I LOGIN NOCREATEDB NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %L',
              :'app', :'app_pw') \gexec
-- Replication lag and activity for /metrics and /readyz (pg_monitor: statistics, no data).
SELECT format('GRANT pg_monitor TO %I', :'app') \gexec
SQL
    } | psql_super postgres
    # PostGIS and pg_trgm in the template: every database made afterwards (the test database too,
    # made by the owner, who may not create extensions) starts with them.
    psql_super template1 -c "CREATE EXTENSION IF NOT EXISTS postgis" -c "CREATE EXTENSION IF NOT EXISTS pg_trgm"
    if ! psql_super postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1; then
      psql_super postgres -c "CREATE DATABASE $database OWNER $owner_role"
    fi
    psql_super postgres -c "ALTER DATABASE $database OWNER TO $owner_role"
    psql_super "$database" -c "CREATE EXTENSION IF NOT EXISTS postgis" -c "CREATE EXTENSION IF NOT EXISTS pg_trgm"
    echo "db: PostGIS running (socket $sockets, port $port, database $database; roles $owner_role, $app_role)"
    ;;
  stop)
    if [ -f "$data/PG_VERSION" ] && running; then as_account "$pgbin/pg_ctl" -D "$data" -m fast -w stop >/dev/null; fi
    echo "db: stopped"
    ;;
  status)
    if running; then echo "db: running"; else echo "db: stopped"; exit 3; fi
    ;;
  *)
    echo "usage: scripts/db.sh start|stop|status" >&2; exit 2
    ;;
esac
