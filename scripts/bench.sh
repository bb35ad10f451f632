#!/usr/bin/env bash
# Benchmarks at city scale in their own database (minqing_bench), each beside its peer.
set -euo pipefail
cd "$(dirname "$0")/.."
export MINQING_PG_DATABASE=${MINQING_BENCH_DATABASE:-minqing_bench}
export DJANGO_SETTINGS_MODULE=settings.dev
if [ -z "${DATABASE_URL:-}" ]; then
  MINQING_PG_DATABASE=$MINQING_PG_DATABASE bash scripts/db.sh start >/dev/null
fi
.venv/bin/python manage.py migrate --noinput -v0
exec .venv/bin/python -m scripts.bench "$@"
