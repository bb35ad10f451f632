#!/usr/bin/env bash
# Serve the demo city: migrate, load the demo when the database has no grids, print the logins.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
$py manage.py migrate --noinput -v0
# Static files with their gzip copies into var/static, served from there (only changed files
# are copied and compressed again).
$py manage.py collectstatic --noinput -v0
if ! $py manage.py shell -v0 -c "import sys; from layers.models import Grid; sys.exit(0 if Grid.objects.exists() else 1)"; then
  echo "run: the database is empty; generating the demo city (about a district, under two minutes)"
  $py manage.py generate_demo_city --scale demo --seed 1
  $py manage.py generate_demo_events --seed 1 --if-empty
fi
$py manage.py ensure_demo_users
# The import worker runs the import page's jobs in the background (one line per stage in this
# log); it stops with the server, and a job it leaves unfinished is queued again at the next start.
PYTHONUNBUFFERED=1 $py manage.py run_import_jobs &
worker=$!
# The export worker builds the GeoPackage and Shapefile exports the pages and clients ask for
# (mapserver/exportjobs.py), so that no web worker ever holds a whole layer.
PYTHONUNBUFFERED=1 MINQING_DB_ROLE=app $py manage.py run_export_jobs &
exporter=$!
trap 'kill "$worker" "$exporter" 2>/dev/null || true' EXIT
echo "run: serving http://127.0.0.1:8000/  (admin: http://127.0.0.1:8000/admin/, imports: http://127.0.0.1:8000/imports/)"
# The production entry point (mapserver/asgi.py): vector tiles on the asynchronous tile server,
# everything else Django (scripts/serve.sh: two processes for the two cores). Not exec'd: the
# trap above stops the import worker when the server stops.
bash scripts/serve.sh
