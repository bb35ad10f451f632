"""What operators and their tools read: liveness, readiness, Prometheus metrics; and where reads
go when replicas are configured (read-only surfaces to a replica, a client that has just written
to the primary, an unreachable replica skipped)."""

from __future__ import annotations

import json
import time

import pytest
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections

from layers.database import reading
from mapserver import routing
from tests.worlds.events import report, world

pytestmark = pytest.mark.django_db


def test_liveness_needs_no_login_and_no_database(client):
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readiness_says_the_database_answers(client):
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"database": "ok", "ready": True})
    assert response["Cache-Control"] == "no-store"


def test_metrics_count_requests_by_route_and_events_by_status(client):
    world()
    report(), report()
    client.get("/healthz")
    client.get("/api/events/99999")  # 401: no login
    text = client.get("/metrics").content.decode()
    assert 'minqing_http_requests_total{method="GET",route="healthz",status="200"}' in text
    assert 'minqing_http_requests_total{method="GET",route="api/events/<int:event_id>",status="401"}' in text
    assert 'minqing_events{status="assigned"} 2.0' in text
    assert "minqing_http_request_seconds_bucket" in text


def test_metrics_are_for_the_operators_addresses_only(client, settings):
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.5").status_code == 404
    settings.MINQING_METRICS_ALLOWED = ["203.0.113.5"]
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.5").status_code == 200


# --- read routing ----------------------------------------------------------------------------------

NOW = "now"  # the test puts the current time here


@pytest.mark.parametrize(
    ("method", "path", "cookie", "expected"),
    [
        ("GET", "/tiles/events/14/1/1.pbf", None, "replica"),
        ("HEAD", "/ogc/collections/addresses/items", None, "replica"),
        ("GET", "/exports/addresses.geojson", None, "replica"),
        ("GET", "/api/dashboard/kpis", None, "replica"),
        ("GET", "/api/statistics/areas", None, "replica"),
        ("GET", "/api/hotspots", None, "replica"),
        ("GET", "/tiles/events/14/1/1.pbf", NOW, "default"),  # just wrote: the primary
        ("GET", "/tiles/events/14/1/1.pbf", "12", "replica"),  # long ago
        ("GET", "/api/events", None, "default"),  # not a read-only surface
        ("GET", "/grid/", None, "default"),
        ("POST", "/api/events", None, "default"),
        ("POST", "/exports/events.csv", None, "default"),
    ],
)
def test_which_reads_go_to_a_replica(monkeypatch, method, path, cookie, expected):
    monkeypatch.setattr(routing, "replica_configured", lambda: True)
    cookie = str(int(time.time())) if cookie == NOW else cookie
    assert routing.read_alias_for(method=method, path=path, cookie=cookie, user_id=None) == expected


def test_without_replicas_every_read_is_the_primarys():
    assert not reading.replica_configured()
    assert routing.read_alias_for(method="GET", path="/tiles/x/1/1/1.pbf", cookie=None, user_id=None) == "default"


def test_a_write_sends_that_clients_reads_to_the_primary(client, django_user_model, monkeypatch):
    """Its answer carries the cookie, and the user's last write is remembered in the process
    for clients that keep no cookie."""
    monkeypatch.setattr(routing, "replica_configured", lambda: True)
    world()
    user = django_user_model.objects.create_user("writer", is_superuser=True)
    client.force_login(user)
    body = {"channel": "hotline", "category": "hazard.fire", "description": "x", "address": "城关区"}
    assert client.post("/api/events", json.dumps(body), content_type="application/json").status_code == 201
    assert client.cookies[routing.WROTE_COOKIE]["httponly"]
    assert routing.wrote_recently(cookie=client.cookies[routing.WROTE_COOKIE].value, user_id=None)
    assert routing.read_alias_for(method="GET", path="/ogc/collections", cookie=None, user_id=user.pk) == "default"
    refused = client.post("/api/events", "{}", content_type="application/json")
    assert refused.status_code == 400 and routing.WROTE_COOKIE not in refused.cookies


class _Away:
    """A replica connection whose server cannot be reached."""

    alias = "replica"

    def ensure_connection(self):
        raise OperationalError('connection to server on socket "/nowhere/.s.PGSQL.5432" failed')


@pytest.fixture
def unreachable_replica(settings, monkeypatch):
    settings.DATABASES = {**settings.DATABASES, "replica": {}}
    monkeypatch.setattr(reading, "connections", {"replica": _Away(), DEFAULT_DB_ALIAS: connections[DEFAULT_DB_ALIAS]})
    yield
    reading._replica_down_until = 0.0


def test_an_unreachable_replica_is_skipped_for_a_while(unreachable_replica, settings):
    with reading.reads_from("replica"):
        assert reading.reading().alias == "default"  # tried, failed, the primary answers
        assert reading.read_alias() == "default"  # and it is not tried again for now
        with reading.reading().cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
    reading._replica_down_until = time.monotonic() - 1  # the retry time has passed
    with reading.reads_from("replica"):
        assert reading.read_alias() == "replica"
