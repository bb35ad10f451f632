"""Injection strings fed to every filter of every catalog layer on every surface that takes
them (vector tiles, OGC API items, exports), to every parameter of the event list and of
Open311's request list, to path segments, and to the basemap name: each answer is a 4xx naming
the parameter or a normal empty answer, never a 500 and never more rows; the tables are intact
afterwards. Values always travel as query parameters (layers/selectors/features.py), so this holds by
construction; the test keeps it so."""

from __future__ import annotations

import csv
import io
import math
from urllib.parse import quote

import mapbox_vector_tile
import pytest
from django.db import connection

from layers.models import Region
from layers.publishing import catalog
from layers.services.events import event_create
from layers.taxonomy import taxonomy_seed
from tests.worlds.city import WEST_POINT

PAYLOADS = [
    "'; DROP TABLE layers_event;--",
    "1 OR 1=1",
    "%' --",
    "' OR '1'='1",
    "’ OR ’1’=’1",  # typographic quotes
    "＇ OR ＇1＇=＇1",  # full-width apostrophes
    "1); DELETE FROM layers_event; --",
    "$$; DROP TABLE layers_address; $$",
    "%",
    "\\",
    "\x00",
    "abc\x00def",
]

#: Tables the surfaces read; none may lose a row or vanish.
TABLES = [
    "layers_region", "layers_grid", "layers_compound", "layers_building", "layers_address", "layers_dwelling",
    "layers_person", "layers_unit", "layers_event", "layers_eventtransition", "layers_category", "auth_user",
]  # fmt: skip


def _counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        found = {}
        for table in TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")
            found[table] = cursor.fetchone()[0]
    return found


@pytest.fixture
def world(city, superuser_client):
    """Every layer holds at least one row: the tiny city (regions of every level get the
    community's outline), one event, read by a superuser (who may read every field)."""
    taxonomy_seed()
    Region.objects.filter(boundary__isnull=True).update(boundary=city.regions["community"].boundary)
    event_create(
        channel="hotline", external_id="INJ-1", category_code="hazard.fire", description="楼道堆放杂物",
        lon=WEST_POINT[0], lat=WEST_POINT[1], reporter_phone="13912345678",
    )  # fmt: skip
    return city


def _tile_path(layer: catalog.Layer) -> str:
    z = max(layer.minzoom, min(16, layer.maxzoom))
    n = 2**z
    lon, lat = WEST_POINT
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return f"/tiles/{layer.id}/{z}/{x}/{y}.pbf"


def _rows(surface: str, layer: catalog.Layer, response) -> int:
    """How many rows a successful answer holds."""
    if surface == "tiles":
        if not response.content:
            return 0
        return len(mapbox_vector_tile.decode(response.content).get(layer.id, {}).get("features", []))
    if surface == "exports":
        text = b"".join(response.streaming_content).decode("utf-8-sig")
        return len(list(csv.DictReader(io.StringIO(text))))
    return len(response.json()["features"])


def _surfaces(layer: catalog.Layer) -> dict[str, tuple[str, list[str]]]:
    """surface → (path, the parameters it takes)."""
    fields = [f.name for f in layer.fields if not f.personal]
    filters = [f.name for f in layer.filters]
    common = ["bbox", *(["datetime"] if layer.datetime_sql else []), *filters, *fields]
    return {
        "tiles": (_tile_path(layer), filters),
        "ogc": (f"/ogc/collections/{layer.id}/items", [*common, "limit", "after"]),
        "exports": (f"/exports/{layer.id}.csv", common),
    }


@pytest.mark.django_db
@pytest.mark.parametrize("layer_id", sorted(catalog.LAYERS))
def test_every_filter_of_every_layer_refuses_or_matches_nothing(world, superuser_client, layer_id):
    layer = catalog.LAYERS[layer_id]
    before = _counts()
    problems = []
    for surface, (path, names) in _surfaces(layer).items():
        baseline = superuser_client.get(path)
        assert baseline.status_code == 200, (surface, path, baseline.content[:300])
        assert _rows(surface, layer, baseline) >= 1, f"{surface} {layer_id}: the fixture must hold a row"
        for name in names:
            for payload in PAYLOADS:
                response = superuser_client.get(path, {name: payload})
                status = response.status_code
                if 400 <= status < 500:
                    if surface != "tiles" or name in {f.name for f in layer.filters}:
                        message = response.json()["error"]["message"]
                        if name.split(",")[0] not in message:
                            problems.append(f"{surface} {name}={payload!r}: {status} without naming it: {message}")
                    continue
                if status != 200:
                    problems.append(f"{surface} {name}={payload!r}: {status}")
                elif _rows(surface, layer, response) != 0:
                    problems.append(f"{surface} {name}={payload!r}: {_rows(surface, layer, response)} rows")
    assert problems == []
    assert _counts() == before


EVENT_LIST_PARAMETERS = ["bbox", "region", "grid", "status", "category", "channel", "since", "until", "cursor", "limit"]


@pytest.mark.django_db
def test_the_event_list_and_open311_refuse_or_match_nothing(world, superuser_client):
    before = _counts()
    assert len(superuser_client.get("/api/events").json()["results"]) == 1
    assert len(superuser_client.get("/open311/v2/requests.json").json()) == 1
    problems = []
    for path, names, empty in (
        ("/api/events", EVENT_LIST_PARAMETERS, {"results": [], "next": None}),
        ("/open311/v2/requests.json", ["service_request_id", "service_code", "start_date", "end_date", "status"], []),
    ):
        for name in names:
            for payload in PAYLOADS:
                response = superuser_client.get(path, {name: payload})
                if 400 <= response.status_code < 500:
                    continue
                if (response.status_code, response.json()) != (200, empty):
                    problems.append(f"{path} {name}={payload!r}: {response.status_code} {response.content[:200]!r}")
    assert problems == []
    assert _counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize("payload", PAYLOADS)
def test_path_segments_refuse_or_match_nothing(world, superuser_client, payload):
    """Layer ids, feature ids, event ids and basemap names taken from the path."""
    segment = quote(payload, safe="")
    before = _counts()
    for path in (
        f"/tiles/{segment}/10/0/0.pbf",
        f"/ogc/collections/{segment}/items",
        f"/ogc/collections/events/items/{segment}",
        f"/exports/{segment}.csv",
        f"/exports/grid/{segment}.html",
        f"/open311/v2/requests/{segment}.json",
        f"/basemaps/{segment}/1/0/0.png",
        f"/basemaps/..%2F{segment}/1/0/0.png",
    ):
        response = superuser_client.get(path)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.content[:200])
    assert _counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path, message",
    [
        ("/basemaps/../offline/1/0/0.png", "name: must be 1-40 characters of a-z, 0-9, _ and -, got '../offline'"),
        ("/basemaps/%2e%2e%2f%2e%2e%2fetc/1/0/0.png", "name: must be 1-40 characters of a-z, 0-9, _ and -, got '../../etc'"),
        ("/basemaps/offline%00/1/0/0.png", "name: must be 1-40 characters of a-z, 0-9, _ and -, got 'offline\\x00'"),
    ],
)  # fmt: skip
def test_basemap_names_cannot_climb_out(superuser_client, path, message):
    response = superuser_client.get(path)
    assert (response.status_code, response.json()["error"]["message"]) == (400, message)
