"""Heat tiles, the heat GeoTIFF, hot spots and early warnings over HTTP: shapes, headers, bad input."""

from __future__ import annotations

import datetime as dt
import io
import math
import time

import numpy as np
import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from django.utils import timezone
from PIL import Image

from rasterio.io import MemoryFile

from basemaps import heat as surfaces
from layers.models import Category, Event
from layers.taxonomy import taxonomy_seed
from tests.worlds.factories import ORIGIN, SIZE, grid_tree, region_chain

CENTRE = (ORIGIN[0] + SIZE / 4, ORIGIN[1] + SIZE / 2)  # inside the WEST small grid


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    x, y = surfaces.lonlat_to_mercator(np.array([lon]), np.array([lat]))
    size = 2 * surfaces.HALF_WORLD / 2**z
    return int((x[0] + surfaces.HALF_WORLD) // size), int((surfaces.HALF_WORLD - y[0]) // size)


@pytest.fixture
def events(db):
    """40 dispute events scattered around a point of the WEST small grid, 10 hazards in EAST."""
    taxonomy_seed()
    grids = grid_tree(region_chain()["community"])
    rng = np.random.default_rng(11)
    dispute = Category.objects.filter(family="dispute").first()
    hazard = Category.objects.filter(family="hazard").first()
    now = timezone.now()
    rows = [
        Event(channel="grid_patrol", category=dispute, description="纠纷", reported_at=now, received_at=now,
              location=Point(CENTRE[0] + dx, CENTRE[1] + dy, srid=4326), grid=grids["west"])
        for dx, dy in rng.normal(0, 0.0005, (40, 2))
    ] + [
        Event(channel="grid_patrol", category=hazard, description="隐患", reported_at=now, received_at=now,
              location=Point(ORIGIN[0] + 0.008, ORIGIN[1] + 0.005, srid=4326), grid=grids["east"])
        for _ in range(10)
    ]  # fmt: skip
    Event.objects.bulk_create(rows)
    return grids


@pytest.fixture
def api(client, django_user_model):
    from layers.models import ReaderScope

    user = django_user_model.objects.create_user("worker", "worker@example.org", "worker-password")
    # The whole city: heat and hot spots are computed from the reader's data scope only.
    ReaderScope.objects.create(user=user, level="city")
    client.force_login(user)
    return client


@pytest.mark.parametrize("z", [10, 14])
def test_heat_tile(api, events, z):
    """Both paths: the cached count blocks (z ≤ 12) and a query per tile (z > 12)."""
    x, y = tile_of(*CENTRE, z)
    response = api.get(f"/tiles/heat/{z}/{x}/{y}.png", {"family": "dispute"})
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert int(response["Content-Length"]) == len(response.content)
    assert response["Cache-Control"] == "private, max-age=300"
    image = Image.open(io.BytesIO(response.content))
    assert (image.mode, image.size) == ("RGBA", (256, 256))
    assert np.asarray(image)[:, :, 3].max() > 0
    again = api.get(f"/tiles/heat/{z}/{x}/{y}.png", {"family": "dispute"}, HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    assert again["ETag"] == response["ETag"]


def test_tile_far_away_is_transparent(api, events):
    x, y = tile_of(*CENTRE, 14)
    empty = api.get(f"/tiles/heat/14/{x + 3}/{y}.png", {"family": "dispute"})
    assert np.asarray(Image.open(io.BytesIO(empty.content)))[:, :, 3].max() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("z", [10, 14])
def test_a_committed_write_changes_the_etag_and_the_cached_points(api, events, z):
    """The data version reads the statistics counters, which see committed work only."""
    x, y = tile_of(*CENTRE, z)
    before = api.get(f"/tiles/heat/{z}/{x}/{y}.png", {"family": "hazard"})
    assert np.asarray(Image.open(io.BytesIO(before.content)))[:, :, 3].max() > 0
    Event.objects.filter(category__family="hazard").delete()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
    time.sleep(0.05)
    after = api.get(f"/tiles/heat/{z}/{x}/{y}.png", {"family": "hazard"})
    assert after["ETag"] != before["ETag"]
    assert np.asarray(Image.open(io.BytesIO(after.content)))[:, :, 3].max() == 0


def test_since_until_filter(api, events):
    x, y = tile_of(*CENTRE, 14)
    future = (timezone.now() + dt.timedelta(days=1)).isoformat()
    response = api.get(f"/tiles/heat/14/{x}/{y}.png", {"family": "dispute", "since": future})
    assert np.asarray(Image.open(io.BytesIO(response.content)))[:, :, 3].max() == 0


@pytest.mark.parametrize(
    "path, query, message",
    [
        ("/tiles/heat/14/0/0.png", {}, "family: is required"),
        ("/tiles/heat/14/0/0.png", {"family": "fire"}, "family: must be one of dispute, hazard, got 'fire'"),
        ("/tiles/heat/abc/0/0.png", {"family": "dispute"}, "z: must be an integer, got 'abc'"),
        ("/tiles/heat/23/0/0.png", {"family": "dispute"}, "z: must be between 0 and 22, got 23"),
        ("/tiles/heat/1/0/-1.png", {"family": "dispute"}, "y: must be between 0 and 4194303, got -1"),
        (
            "/tiles/heat/3/0/0.png",
            {"family": "dispute", "since": "yesterday"},
            "since: must be an ISO 8601 date-time, got 'yesterday'",
        ),
        (
            "/tiles/heat/3/0/0.png",
            {"family": "dispute", "since": "2026-02-01", "until": "2026-01-01"},
            "until: must be after since",
        ),
        (
            "/tiles/heat/3/0/0.png",
            {"family": "dispute", "colour": "red"},
            "colour: is not a parameter here; known: family, since, until",
        ),
        ("/exports/heat.tif", {"family": "dispute"}, "bbox: is required"),
        ("/exports/heat.tif", {"family": "dispute", "bbox": "1,2,3"}, "bbox: must be lon_min,lat_min,lon_max,lat_max"),
        (
            "/exports/heat.tif",
            {"family": "dispute", "bbox": "103,36,104,37", "resolution_m": "10"},
            "resolution_m: gives 11132×13849 pixels, more than 4096 a side; use a coarser resolution",
        ),
        (
            "/exports/heat.tif",
            {"family": "dispute", "bbox": "103,36,104,37", "resolution_m": "0"},
            "resolution_m: must be between 0.5 and 10000, got 0",
        ),
        ("/api/hotspots", {"family": "environment"}, "family: must be one of dispute, hazard, got 'environment'"),
        ("/api/early-warnings", {"family": "dispute", "since": "2026-01-01"}, "since: is not a parameter here; known: family"),
    ],
)  # fmt: skip
def test_bad_parameters(api, db, path, query, message):
    response = api.get(path, query)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == message


@pytest.mark.parametrize("path", ["/tiles/heat/3/0/0.png", "/exports/heat.tif", "/api/hotspots", "/api/early-warnings"])
def test_anonymous_is_refused(client, db, path):
    assert client.get(path, {"family": "dispute"}).status_code in (401, 403)


def test_geotiff_reads_back(api, events):
    lon, lat = CENTRE
    bbox = f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}"
    response = api.get("/exports/heat.tif", {"family": "dispute", "bbox": bbox, "resolution_m": "20"})
    assert response.status_code == 200
    assert response["Content-Type"] == "image/tiff"
    x, y = surfaces.lonlat_to_mercator(np.array([lon - 0.01, lon + 0.01]), np.array([lat - 0.01, lat + 0.01]))
    width, height = math.ceil((x[1] - x[0]) / 20), math.ceil((y[1] - y[0]) / 20)
    with MemoryFile(response.content) as memory, memory.open() as dataset:
        assert dataset.crs.to_epsg() == 3857
        assert (dataset.count, dataset.height, dataset.width) == (1, height, width)
        assert dataset.nodata == -1.0
        assert dataset.descriptions[0].startswith("dispute events per pixel")
        assert dataset.transform.a == 20.0 and dataset.transform.c == pytest.approx(x[0])
        band = dataset.read(1)
    # All 40 points lie well inside: the blurred surface keeps their total.
    assert band.sum() == pytest.approx(40, rel=0.02)
    assert band.min() >= 0


def test_hotspots_feature_collection(api, events):
    response = api.get("/api/hotspots", {"family": "dispute"})
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "FeatureCollection"
    features = {f["id"]: f for f in body["features"]}
    assert set(features) == {events["west"].code, events["east"].code}
    west = features[events["west"].code]
    assert west["geometry"]["type"] == "MultiPolygon"
    assert set(west["properties"]) == {"code", "name", "count", "residents", "rate_per_1000", "z", "p", "class"}
    assert (west["properties"]["count"], features[events["east"].code]["properties"]["count"]) == (40, 0)


def test_early_warnings_answer(api, events):
    response = api.get("/api/early-warnings", {"family": "dispute"})
    assert response.status_code == 200
    body = response.json()
    assert body["family"] == "dispute"
    # 40 events this week in a grid with no history: far above a baseline of nothing.
    assert [(w["code"], w["last_7_days"]) for w in body["warnings"]] == [(events["west"].code, 40)]


def test_a_tile_outside_its_zoom_matrix_is_not_found(api, events):
    """x and y beyond 2^z - 1 name no tile: a 404, as tile servers answer it (a 400 is for what
    is not a tile address at all)."""
    response = api.get("/tiles/heat/1/2/0.png", {"family": "dispute"})
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "no tile 1/2/0: at zoom 1 x and y go up to 1"
