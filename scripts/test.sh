#!/usr/bin/env bash
# The whole test suite on the real PostGIS started by scripts/db.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export DJANGO_SETTINGS_MODULE=settings.test
exec .venv/bin/python -m pytest "$@"
