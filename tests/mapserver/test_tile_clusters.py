"""Events at low zooms are clusters with counts (every point of the tile counted once, by the
tile that holds it), from z14 points; tiles and JSON are compressed as the client accepts and
decode to the same thing as the plain answer."""

from __future__ import annotations

import gzip
import json
import random

import brotli
import mapbox_vector_tile
import pytest
from django.contrib.gis.geos import Point
from django.core.cache import caches
from django.db import connection

from basemaps.tiles import lonlat_to_tile, tile_bounds
from layers.models import Category, Event
from layers.publishing import catalog
from layers.taxonomy import taxonomy_seed
from tests.worlds.city import WEST_POINT

from .test_tiles import AT, MVT, reader, tile_url

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_tile_cache():
    caches["tiles"].clear()
    yield
    caches["tiles"].clear()


@pytest.fixture
def analyst(client, django_user_model):
    return reader(client, django_user_model, role="analyst")


#: Points scattered around the west point, a few hundred metres to some kilometres apart.
SPREAD = 0.08


@pytest.fixture
def dense(city):
    """1,500 events scattered around the west point, 40 of them on one spot (one cluster at any
    zoom), and their categories split between two families."""
    taxonomy_seed()
    fire, noise = Category.objects.get(code="hazard.fire"), Category.objects.get(code="dispute.neighbour")
    rng = random.Random(15)
    lon, lat = WEST_POINT
    points = [(lon + rng.uniform(-SPREAD, SPREAD), lat + rng.uniform(-SPREAD, SPREAD)) for _ in range(1460)]
    points += [(lon + 0.001, lat + 0.001)] * 40
    Event.objects.bulk_create(
        Event(
            channel="hotline",
            description="路灯不亮",
            category=fire if n % 3 else noise,
            location=Point(*point, srid=4326),
            status="received",
            reported_at=AT,
            received_at=AT,
        )
        for n, point in enumerate(points)
    )


def sql_count(z: int, x: int, y: int, where: str = "TRUE") -> int:
    """The events whose point lies in the tile, counted by PostGIS in Web Mercator."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT count(*) FROM layers_event t JOIN layers_category c ON c.id = t.category_id
                WHERE ST_Intersects(ST_Transform(t.location, 3857), ST_MakeEnvelope(%s, %s, %s, %s, 3857))
                  AND {where}""",
            list(tile_bounds(z, x, y)),
        )
        return cursor.fetchone()[0]


@pytest.mark.parametrize("z", [10, 11, 12, 13])
def test_a_dense_low_zoom_tile_holds_clusters_whose_counts_sum_to_the_sql_count(dense, analyst, z):
    x, y = lonlat_to_tile(*WEST_POINT, z)
    response = analyst.get(tile_url("events", z, x, y))
    assert response.status_code == 200 and response["Content-Type"] == MVT
    features = mapbox_vector_tile.decode(response.content)["events"]["features"]
    counts = [f["properties"]["count"] for f in features]
    assert sum(counts) == sql_count(z, x, y) > 0
    assert len(features) < sum(counts)  # aggregated, not one feature a point
    assert max(counts) >= 40  # the 40 events on one spot are one cluster
    # A cluster of one point is that event (id and fields); a larger one carries its count only.
    for feature in features:
        if feature["properties"]["count"] == 1:
            assert Event.objects.filter(pk=feature["id"]).exists()
            assert feature["properties"]["category"] in ("hazard.fire", "dispute.neighbour")
        else:
            assert set(feature["properties"]) == {"count"}
            assert "id" not in feature or feature["id"] in (None, 0)


def test_clusters_follow_the_filters(dense, analyst):
    x, y = lonlat_to_tile(*WEST_POINT, 10)
    features = mapbox_vector_tile.decode(analyst.get(tile_url("events", 10, x, y) + "?category=dispute").content)
    counts = [f["properties"]["count"] for f in features["events"]["features"]]
    assert sum(counts) == sql_count(10, x, y, "c.family = 'dispute'") > 0


def test_neighbouring_tiles_count_each_point_once(dense, analyst):
    """The four z11 tiles under the west point's z10 tile count what the z10 tile counts."""
    x, y = lonlat_to_tile(*WEST_POINT, 10)
    total = 0
    for dx in (0, 1):
        for dy in (0, 1):
            tile = mapbox_vector_tile.decode(analyst.get(tile_url("events", 11, 2 * x + dx, 2 * y + dy)).content)
            total += sum(f["properties"]["count"] for f in tile.get("events", {}).get("features", []))
    level10 = mapbox_vector_tile.decode(analyst.get(tile_url("events", 10, x, y)).content)
    assert total == sum(f["properties"]["count"] for f in level10["events"]["features"]) == sql_count(10, x, y)


def test_points_from_the_first_unclustered_zoom(dense, analyst):
    z = catalog.layer_get("events").cluster_maxzoom + 1
    x, y = lonlat_to_tile(WEST_POINT[0] + 0.001, WEST_POINT[1] + 0.001, z)
    features = mapbox_vector_tile.decode(analyst.get(tile_url("events", z, x, y)).content)["events"]["features"]
    assert features and all("count" not in f["properties"] for f in features)
    assert len(features) == len({f["id"] for f in features}) >= 40


@pytest.mark.parametrize("accept, encoding, decompress", [
    ("gzip", "gzip", gzip.decompress),
    ("br", "br", brotli.decompress),
    ("gzip, deflate, br", "br", brotli.decompress),
    ("br;q=0, gzip;q=0.8", "gzip", gzip.decompress),
])  # fmt: skip
def test_a_compressed_tile_decodes_equal_to_the_plain_one(dense, analyst, accept, encoding, decompress):
    z, (x, y) = 14, lonlat_to_tile(WEST_POINT[0] + 0.001, WEST_POINT[1] + 0.001, 14)
    plain = analyst.get(tile_url("events", z, x, y))
    packed = analyst.get(tile_url("events", z, x, y), headers={"Accept-Encoding": accept})
    assert "Content-Encoding" not in plain and "Accept-Encoding" in plain["Vary"]
    assert packed["Content-Encoding"] == encoding and "Accept-Encoding" in packed["Vary"]
    assert int(packed["Content-Length"]) == len(packed.content) < len(plain.content)
    assert packed["ETag"] != plain["ETag"]
    assert decompress(packed.content) == plain.content
    assert mapbox_vector_tile.decode(decompress(packed.content)) == mapbox_vector_tile.decode(plain.content)
    # Revalidation of the compressed representation needs its own tag.
    again = analyst.get(
        tile_url("events", z, x, y), headers={"Accept-Encoding": accept, "If-None-Match": packed["ETag"]}
    )
    assert again.status_code == 304


@pytest.mark.parametrize("accept, encoding, decompress", [
    ("gzip", "gzip", gzip.decompress),
    ("br, gzip", "br", brotli.decompress),
])  # fmt: skip
def test_json_answers_are_compressed_as_accepted(dense, analyst, accept, encoding, decompress):
    plain = analyst.get("/ogc/collections/events/items", {"limit": 50})
    packed = analyst.get("/ogc/collections/events/items", {"limit": 50}, headers={"Accept-Encoding": accept})
    assert plain.status_code == packed.status_code == 200
    assert "Content-Encoding" not in plain
    assert packed["Content-Encoding"] == encoding and "Accept-Encoding" in packed["Vary"]
    assert int(packed["Content-Length"]) == len(packed.content)
    assert json.loads(decompress(packed.content)) == json.loads(plain.content)


def test_the_session_answer_with_its_csrf_token_is_never_compressed(client, city, django_user_model):
    """BREACH: a secret beside text the requester controls stays uncompressed."""
    from django.contrib.auth.models import Group

    worker = django_user_model.objects.create_user("worker-c")
    worker.groups.add(Group.objects.get_or_create(name="grid_worker")[0])
    client.force_login(worker)
    response = client.get("/api/grid/session", headers={"Accept-Encoding": "gzip, br"})
    assert response.status_code == 200 and "csrf_token" in response.json()
    assert "Content-Encoding" not in response
