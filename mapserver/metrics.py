"""Operations' view of the server: Prometheus metrics, liveness and readiness.

* ``GET /metrics`` (Prometheus text format), to the addresses in ``MINQING_METRICS_ALLOWED``
  only (a 404 to anyone else): requests and their latency by route, tile cache hits, requests
  waiting for a Django thread and those shed (:mod:`mapserver.admission`), reads by database
  (primary or replica), and, computed when scraped, the event backlog by status and the
  replicas' lag. The server's processes share the figures through ``PROMETHEUS_MULTIPROC_DIR``
  (scripts/serve.sh sets it); without it each process answers for itself.
* ``GET /healthz``: the process answers (liveness; no database).
* ``GET /readyz``: 200 when the primary answers and, with replicas configured, the replica lags
  no more than ``MINQING_REPLICA_MAX_LAG_BYTES``; else 503 saying which.
"""

from __future__ import annotations

import os
import time

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from layers.database.reading import REPLICA, replica_configured

REQUESTS = Counter("minqing_http_requests", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram(
    "minqing_http_request_seconds",
    "Time to answer an HTTP request (to the first byte of a streamed answer)",
    ["route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TILE_CACHE = Counter("minqing_tile_cache", "Vector tiles answered from the tile cache or rendered", ["result"])
READS = Counter("minqing_db_reads", "Requests whose reads went to each database", ["database"])
DJANGO_ACTIVE = Gauge(
    "minqing_django_requests_active", "Django requests running or waiting for a thread", multiprocess_mode="livesum"
)
SHED = Counter("minqing_django_requests_shed", "Requests answered 503 at once because the queue was full")

_BACKLOG_SQL = "SELECT status, count(*) FROM layers_event GROUP BY status"
# On the primary: how far each replica's replay is behind (bytes), as pg_stat_replication sees it.
_LAG_SQL = """
SELECT application_name, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint, sync_state
FROM pg_stat_replication
"""


def observe(route: str, method: str, status: int, seconds: float) -> None:
    REQUESTS.labels(route, method, str(status)).inc()
    LATENCY.labels(route).observe(seconds)


class MetricsMiddleware:
    """Counts and times every Django request by route (the URL pattern, not the path: a
    bounded set of labels)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None else "unmatched"
        observe(route, request.method, response.status_code, time.perf_counter() - start)
        return response


class DatabaseFigures:
    """Figures read from the database when scraped: the backlog and the replicas' lag."""

    def collect(self):
        backlog = GaugeMetricFamily("minqing_events", "Events by status now", labels=["status"])
        lag = GaugeMetricFamily(
            "minqing_replica_lag_bytes", "WAL the replica has not replayed yet", labels=["replica", "sync_state"]
        )
        try:
            with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
                cursor.execute(_BACKLOG_SQL)
                for status, count in cursor.fetchall():
                    backlog.add_metric([str(status)], count)
                cursor.execute(_LAG_SQL)
                for name, behind, state in cursor.fetchall():
                    lag.add_metric([str(name or ""), str(state or "")], behind)
        except DatabaseError:
            return  # the database away: /readyz says so; the process figures still answer
        yield backlog
        yield lag


def metrics(request: HttpRequest) -> HttpResponse:
    if request.META.get("REMOTE_ADDR") not in settings.MINQING_METRICS_ALLOWED:
        return HttpResponse(status=404)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
    else:
        processes = REGISTRY
    figures = CollectorRegistry()
    figures.register(DatabaseFigures())
    return HttpResponse(generate_latest(processes) + generate_latest(figures), content_type=CONTENT_TYPE_LATEST)


def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


def replica_lag_bytes() -> int | None:
    """How far the replica that the ``replica`` alias reaches is behind the primary (bytes),
    comparing the primary's WAL position with the replica's replay position."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        (primary,) = cursor.fetchone()
    with connections[REPLICA].cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())::bigint", [primary])
        (behind,) = cursor.fetchone()
    return max(0, behind) if behind is not None else None


def readyz(request: HttpRequest) -> HttpResponse:
    body: dict = {}
    ready = True
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
        body["database"] = "ok"
    except DatabaseError as error:
        body["database"] = f"unreachable: {type(error).__name__}"
        ready = False
    if replica_configured():
        try:
            lag = replica_lag_bytes()
            ok = lag is not None and lag <= settings.MINQING_REPLICA_MAX_LAG_BYTES
            body["replica"] = {"lag_bytes": lag, "max_lag_bytes": settings.MINQING_REPLICA_MAX_LAG_BYTES, "ok": ok}
        except DatabaseError as error:
            ok = False
            body["replica"] = {"ok": False, "error": f"unreachable: {type(error).__name__}"}
        ready = ready and ok
    body["ready"] = ready
    response = JsonResponse(body, status=200 if ready else 503)
    response["Cache-Control"] = "no-store"
    return response
