#!/usr/bin/env bash
# Benchmarks, each beside its peer, on two databases of their own (never the demo's):
#   minqing_bench         the city-scale demo city (generated once): locate, geocode, …
#   minqing_bench_import  8,700 synthetic grids; the import benchmark empties and reloads it
# and the production stack's benchmarks ("stack"), which bring up a stack of their own under
# var/stack-bench (scripts/bench/stack.py).
# Arguments (benchmark names, --repeats N, --rows N) pass through to python -m scripts.bench.
set -euo pipefail
cd "$(dirname "$0")/.."
export DJANGO_SETTINGS_MODULE=settings.dev
# The per-user rate limit still counts every request (its cost is measured) but must not trip:
# a benchmark sends thousands of requests a minute as one user.
export MINQING_THROTTLE_USER=${MINQING_THROTTLE_USER:-100000000/min}
# Peers only the benchmarks need (datashader for heat_tile), kept out of the runtime requirements.
.venv/bin/pip install -q -r requirements-bench.txt
for data in synthetic city stack; do
  case $data in
    city) export MINQING_PG_DATABASE=${MINQING_BENCH_DATABASE:-minqing_bench} ;;
    synthetic) export MINQING_PG_DATABASE=${MINQING_BENCH_IMPORT_DATABASE:-minqing_bench_import} ;;
  esac
  if [ "$data" != stack ]; then
    if [ -z "${DATABASE_URL:-}" ]; then bash scripts/db.sh start >/dev/null; fi
    .venv/bin/python manage.py migrate --noinput -v0
  fi
  .venv/bin/python -m scripts.bench --data "$data" "$@"
done
