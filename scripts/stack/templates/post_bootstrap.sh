#!/bin/sh
# Patroni's post_bootstrap (rendered by scripts/stack): run once, on the first primary, as the
# cluster's superuser ($$1 is Patroni's connection string). The roles as scripts/db.sh makes them
# for development (README "Database roles"): the owner runs migrations and imports, the
# application's role owns nothing. PostGIS and pg_trgm in template1 and the database.
set -eu
psql "$$1" -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE ROLE $owner_role LOGIN CREATEDB NOSUPERUSER NOCREATEROLE PASSWORD '$owner_password';
CREATE ROLE $app_role LOGIN NOCREATEDB NOSUPERUSER NOCREATEROLE PASSWORD '$app_password';
-- The replicas' lag and state for /metrics and /readyz (pg_stat_replication shows them to
-- pg_monitor only); a read-only view of the server's activity, nothing of the data.
GRANT pg_monitor TO $app_role;
CREATE DATABASE $database OWNER $owner_role;
\c template1
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
\c $database
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
SQL
