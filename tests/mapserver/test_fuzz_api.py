"""Fuzzing: schemathesis generates requests from the OpenAPI schema that
``/api/schema/`` serves (the JSON API and the Open311 GeoReport endpoints), valid and invalid,
and sends them through the project's WSGI application as an authenticated user (a token), with
every check schemathesis has: no server error; a declared status, media type, headers and body
shape (the error shapes included, declared once for every operation by
``mapserver.schema.error_responses``); a request the schema allows is accepted and one it
forbids (an empty date-time, a value outside a declared range, enum or pattern) is refused;
an operation that needs credentials refuses none and wrong ones. So a client generated from
``/api/schema/`` can call every endpoint with what the schema tells it.

Bounded: a fixed number of examples per operation, derandomised so that a run is repeatable;
the whole run takes about a minute."""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.specs.openapi.checks import positive_data_acceptance

from layers.taxonomy import taxonomy_seed
from tests.worlds.city import EAST_POINT, WEST_POINT
from tests.worlds.events import report

#: Generated requests per operation (each operation also gets schemathesis' coverage cases).
EXAMPLES = 40


@pytest.fixture
def api_schema(db, city, settings, tmp_path):
    """The schema as served, loaded through the WSGI application, with data to find: the tiny
    city, the taxonomy and an event in each small grid."""
    settings.MEDIA_ROOT = tmp_path
    taxonomy_seed()
    report(at=WEST_POINT, external_id="FUZZ-1")
    report(at=EAST_POINT, external_id="FUZZ-2", category="dispute.neighbour", description="邻居噪音")
    # The WSGI handler closes connections between requests as a server does; inside the test's
    # transaction that would lose the data, so it is switched off as Django's test client does.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        loaded = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
        # The requests carry a real token (below); generated credentials (a random session
        # cookie) would only make a valid request look like one that ignored bad auth. The
        # authentication checks still probe each operation without and with wrong credentials.
        loaded.config.generation.update(with_security_parameters=False)
        loaded.hook(filter_query)
        yield loaded
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def token(django_user_model) -> str:
    """A superuser's token: every operation's authenticated paths are reachable."""
    user = django_user_model.objects.create_superuser("fuzzer", "fuzzer@example.org", "fuzzer-password")
    return Token.objects.create(user=user).key


schema = schemathesis.pytest.from_fixture("api_schema")


@st.composite
def _bbox(draw) -> str:
    """A bbox as the format "bbox" says: four numbers, minimum below maximum."""
    lon = sorted(draw(st.lists(st.floats(-180, 180), min_size=2, max_size=2, unique=True)))
    lat = sorted(draw(st.lists(st.floats(-90, 90), min_size=2, max_size=2, unique=True)))
    return f"{lon[0]},{lat[0]},{lon[1]},{lat[1]}"


# The schema's bbox parameters have format "bbox": a pattern cannot say "minimum below maximum".
schemathesis.openapi.format("bbox", _bbox())

#: Operations whose valid bodies depend on data or on the clock, which no schema can state (a
#: positive request is generated from the schema alone): each is fuzzed with every other check,
#: and its refusals are tested with tables of cases in its own test file.
DATA_DEPENDENT = {
    # location or address (one of them), reported_at not in the future nor years back
    "POST /api/events",
    # what an action needs depends on the action and on the event's state (409) and departments
    "POST /api/events/{event_id}/actions",
    # a GPS fix must be better than 200 m; reported_at not in the future
    "POST /api/grid/events",
    # the place follows the source (gps, tap or address) and the phone's daily limit
    "POST /api/resident/reports",
    # the photo must decode as the image its media type names
    "POST /api/resident/photos",
    "POST /api/grid/events/{event_id}/photos",
    # the uploaded file must be readable as the kind's format
    "POST /api/imports",
    # lat/long, address_string or address_id (one of them), the address id must exist
    "POST /open311/v2/requests.{fmt}",
    # each rule's department and category must exist, its keyword be new for them
    "POST /api/rules",
    "PUT /api/rules/{library_id}",
}


def _instant(value):
    from mapserver.params import parse_datetime_param

    try:
        return parse_datetime_param({"t": value}, "t", default=None)
    except Exception:
        return None


def filter_query(ctx, query) -> bool:
    """A schemathesis hook: generated queries that break a rule across parameters (see
    :func:`documented_rule_broken`) are not sent. The coverage phase's cases bypass hooks; the
    test below checks those against the same rules."""
    if not isinstance(query, dict) or ctx is None or ctx.operation is None:
        return True
    return documented_rule_broken(f"{ctx.operation.method.upper()} {ctx.operation.path}", query) is None


#: Operations whose time window is [since, until) with until after since, at most a year
#: (mapserver.params.parse_window), and the other windows' rules.
YEAR_WINDOWS = {"GET /api/dashboard/kpis", "GET /api/dashboard/streets", "GET /api/areas/{code}/summary"}
ORDERED_WINDOWS = {
    "GET /api/hotspots",
    "GET /tiles/heat/{z}/{x}/{y}.png",
    "GET /exports/heat.tif",
    "GET /api/statistics/areas",
    "GET /api/statistics/series",
}


def documented_rule_broken(label: str, query: dict) -> str | None:
    """The rule across parameters (or against the data) a query breaks, which the schema states
    in words because OpenAPI 3.0 cannot say it: a window starts before it ends (and, on the
    wall, spans at most a year); a series has at most 1,000 buckets; a GeoTIFF at most 4,096
    pixels a side; a month is not in the future; an area code names an area; a cursor comes
    from a ``next`` link. ``None`` when it breaks none."""
    import datetime as dt
    import math

    from django.utils import timezone

    from layers.models import Grid, Region
    from layers.selectors.statistics import MAX_BUCKETS
    from mapserver.params import WINDOW_MAX_DAYS
    from mapserver.views.heat import MAX_RASTER_SIDE

    if query.get("cursor"):
        return "cursor"
    start, end = _instant(query.get("since")), _instant(query.get("until"))
    if label in YEAR_WINDOWS and (start is not None or end is not None):
        if start is None:
            start = timezone.localtime(end - dt.timedelta(microseconds=1)).replace(hour=0, minute=0, second=0)
        end = end or max(timezone.now(), start + dt.timedelta(seconds=1))
        if not dt.timedelta(0) < end - start <= dt.timedelta(days=WINDOW_MAX_DAYS):
            return "window"
    if label in ORDERED_WINDOWS and start is not None and end is not None and start >= end:
        return "window"
    if label == "GET /api/statistics/series" and start is not None:
        days = {"day": 1, "month": 28}.get(query.get("interval"), 7)
        if ((end or timezone.now()) - start).days / days > MAX_BUCKETS - 2:
            return "buckets"
    if label.startswith("GET /open311/"):
        start, end = _instant(query.get("start_date")), _instant(query.get("end_date"))
        if start is not None and end is not None and start > end:
            return "window"
    month = query.get("month")
    if isinstance(month, str) and month[:7] > timezone.localdate().strftime("%Y-%m"):
        return "month"
    for name, model in (("grid", Grid), ("region", Region), ("area", Region)):
        code = query.get(name)
        if isinstance(code, str) and code.strip():
            if "\x00" in code or not model.objects.filter(code=code.strip()).exists():
                return name
    if label == "GET /exports/heat.tif" and "bbox" in query:
        try:
            lon_min, lat_min, lon_max, lat_max = (float(v) for v in str(query["bbox"]).split(","))
            resolution = float(query.get("resolution_m", 50))
        except (TypeError, ValueError):
            return None
        if resolution <= 0:
            return None  # below the schema's minimum: the parser's 400 is declared
        side = max(lon_max - lon_min, (lat_max - lat_min) * 2) * 111_320 / resolution
        if not math.isfinite(side) or side > MAX_RASTER_SIDE / 2:
            return "raster"
    return None


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_within_its_schema(case, token):
    # identity: the WSGI transport hands the checks the body as sent, and a compressed body
    # (mapserver/compression.py) would not parse; a real HTTP client decodes it.
    label = f"{case.operation.method.upper()} {case.operation.path}"
    broken = documented_rule_broken(label, dict(case.query or {}))
    # Such a request is not one the schema's words allow: every check but "accepted" applies.
    excluded = [positive_data_acceptance] if label in DATA_DEPENDENT or broken else None
    case.call_and_validate(
        headers={"Authorization": f"Token {token}", "Accept-Encoding": "identity"}, excluded_checks=excluded
    )


def test_the_fuzzed_schema_covers_the_api_and_open311(api_schema):
    """The run above reaches the JSON API and GeoReport alike (a schema that lost them would
    make the fuzzing vacuous)."""
    operations = {f"{op.ok().method.upper()} {op.ok().path}" for op in api_schema.get_all_operations()}
    assert {
        "POST /api/events",
        "GET /api/events/{event_id}",
        "POST /api/events/{event_id}/actions",
        "GET /open311/v2/services.{fmt}",
        "GET /open311/v2/requests.{fmt}",
        "POST /open311/v2/requests.{fmt}",
        "GET /open311/v2/requests/{id}.{fmt}",
    } <= operations


def test_every_operation_declares_the_error_answers(client):
    """One hook declares the error tree's shapes on every operation: JSON errors for the API,
    GeoReport's list for Open311, Retry-After on 429 and 503; a view's own declaration stays."""
    document = client.get("/api/schema/", {"format": "json"}).json()
    assert document["components"]["schemas"]["Error"]["required"] == ["error"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in ("400", "401", "403", "404", "405", "406", "415", "422", "429", "503"):
                assert status in responses, (method, path, status)
            media = responses["503"]["content"]
            if path.startswith("/open311/"):
                assert media["application/json"]["schema"] == {"$ref": "#/components/schemas/GeoReportErrors"}
                assert media["text/xml"]["schema"]["type"] == "string"
            else:
                assert media == {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            assert responses["503"]["headers"]["Retry-After"]["schema"] == {"type": "integer", "minimum": 1}
            assert "Retry-After" in responses["429"]["headers"]
    # A view's own narrower declaration is kept (the events' 409 names transitions).
    conflict = document["paths"]["/api/events/{event_id}/actions"]["post"]["responses"]["409"]
    assert conflict["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorAnswer"}
    assert conflict["description"] == (
        "error.message names the field (400), the current status and allowed actions (409)"
    )
