#!/usr/bin/env bash
# The application server: mapserver.asgi under uvicorn, as make run, the tests that need a real
# server and the production units start it. Environment: MINQING_HOST (default 127.0.0.1),
# MINQING_PORT (8000), MINQING_RUN_WORKERS (2 processes, one per core).
#   --no-proxy-headers  uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1, i.e. from
#                       anyone on this machine; the application reads it from
#                       MINQING_TRUSTED_PROXIES only (mapserver/security.py).
#   --log-config        the access log with credentials redacted (mapserver/logs.py), as text
#                       or, with MINQING_LOG_FORMAT=json, JSON lines.
set -euo pipefail
cd "$(dirname "$0")/.."
# Prometheus figures shared by the processes of this server (mapserver/metrics.py): a directory
# of its own per port, emptied at each start as prometheus_client asks.
export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-$PWD/var/metrics/${MINQING_PORT:-8000}}
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
log_format=$([ "${MINQING_LOG_FORMAT:-text}" = json ] && echo -json || true)
exec .venv/bin/uvicorn mapserver.asgi:application \
  --host "${MINQING_HOST:-127.0.0.1}" --port "${MINQING_PORT:-8000}" --workers "${MINQING_RUN_WORKERS:-2}" \
  --loop uvloop --http httptools --no-proxy-headers --log-config "scripts/uvicorn-logging${log_format}.json"
