"""Vector tiles of catalog layers: decoded content, fields by role, event filters, bad input,
headers, the tile cache, and TileJSON."""

from __future__ import annotations

import datetime as dt

import mapbox_vector_tile
import pytest
from django.contrib.auth.models import Group
from django.contrib.gis.geos import Point
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext

from basemaps.tiles import lonlat_to_mercator, lonlat_to_tile, tile_bounds
from layers.models import Category, Event, Grid
from layers.publishing import catalog
from layers.taxonomy import taxonomy_seed
from tests.worlds.city import EAST_POINT, WEST_POINT
from tests.worlds.factories import ORIGIN, SIZE

pytestmark = pytest.mark.django_db

#: The z14 tile holding the north part of the community square: both small grids cross it.
Z, X, Y = 14, *lonlat_to_tile(ORIGIN[0] + SIZE / 2, ORIGIN[1] + SIZE, 14)
#: The z14 tile of the west and east points, where the test events lie.
EVENTS_TILE = (14, *lonlat_to_tile(*WEST_POINT, 14))
assert EVENTS_TILE[1:] == lonlat_to_tile(*EAST_POINT, 14)
MVT = "application/vnd.mapbox-vector-tile"


@pytest.fixture(autouse=True)
def empty_tile_cache():
    caches["tiles"].clear()
    yield
    caches["tiles"].clear()


def reader(client, django_user_model, *, role: str | None):
    user = django_user_model.objects.create_user(f"user-{role}")
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    client.force_login(user)
    return client


@pytest.fixture
def analyst(client, django_user_model):
    return reader(client, django_user_model, role="analyst")


def tile_url(layer: str, z: int = Z, x: int = X, y: int = Y) -> str:
    return f"/tiles/{layer}/{z}/{x}/{y}.pbf"


def decode(response) -> dict:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == MVT
    return mapbox_vector_tile.decode(response.content)


def tile_xy(lon: float, lat: float, z: int = Z, x: int = X, y: int = Y) -> tuple[float, float]:
    """Position of a point in tile units (0–4096, y up as the decoder returns it)."""
    xmin, ymin, xmax, ymax = tile_bounds(z, x, y)
    mx, my = lonlat_to_mercator(lon, lat)
    return (mx - xmin) / (xmax - xmin) * 4096, (my - ymin) / (ymax - ymin) * 4096


def ring_box(feature: dict) -> tuple[float, float, float, float]:
    geometry = feature["geometry"]
    polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
    points = [p for polygon in polygons for ring in polygon for p in ring]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def event(category: str, *, at: dt.datetime, point=WEST_POINT, status: str = "received", text: str = "路灯不亮"):
    taxonomy_seed()  # a transactional test's flush empties the seeded categories for later tests
    return Event.objects.create(
        channel="hotline",
        description=text,
        category=Category.objects.get(code=category),
        location=Point(*point, srid=4326),
        status=status,
        reported_at=at,
        received_at=at,
    )


AT = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)


def test_small_grids_tile_holds_west_and_east_where_they_lie(city, analyst):
    """Both small grids appear with their codes, names and ids, placed where they are."""
    layer = decode(analyst.get(tile_url("grids_small")))["grids_small"]
    assert layer["extent"] == 4096
    features = {f["properties"]["code"]: f for f in layer["features"]}
    west, east = features[city.grids["west"].code], features[city.grids["east"].code]
    assert west["id"] == city.grids["west"].id and east["id"] == city.grids["east"].id
    assert west["properties"] == {
        "code": city.grids["west"].code,
        "name": "西小网格",
        "community_code": city.regions["community"].code,
        "community_name": "畅家巷社区",
    }
    lon, lat = ORIGIN
    left, _ = tile_xy(lon, lat + SIZE)
    middle, top = tile_xy(lon + SIZE / 2, lat + SIZE)
    right, _ = tile_xy(lon + SIZE, lat + SIZE)
    for feature, (x0, x1) in ((west, (left, middle)), (east, (middle, right))):
        xmin, ymin, xmax, ymax = ring_box(feature)
        assert abs(xmin - x0) <= 1 and abs(xmax - x1) <= 1
        assert abs(ymax - top) <= 1
        assert ymin == -64  # clipped at the buffer: the square runs on into the tile below


@pytest.mark.parametrize(
    ("layer", "z", "point", "geometry_type"),
    [
        ("addresses", 16, WEST_POINT, "Point"),
        ("buildings", 16, WEST_POINT, "Polygon"),
        ("grids_large", 14, (ORIGIN[0] + 0.005, ORIGIN[1] + 0.009), "Polygon"),
    ],
)
def test_each_geometry_type_decodes_per_the_mvt_spec(city, analyst, layer, z, point, geometry_type):
    """A point, a polygon and a (multi)polygon layer decode to valid MVT geometries; MVT has no
    multi types of its own, so a one-part multipolygon decodes as a polygon."""
    x, y = lonlat_to_tile(*point, z)
    features = decode(analyst.get(tile_url(layer, z, x, y)))[layer]["features"]
    assert len(features) == 1
    assert features[0]["geometry"]["type"] == geometry_type
    if geometry_type == "Point":
        px, py = tile_xy(*point, z, x, y)
        gx, gy = features[0]["geometry"]["coordinates"]
        assert abs(gx - px) <= 1 and abs(gy - py) <= 1


def test_description_is_absent_for_an_analyst_and_present_for_the_command_center(city, client, django_user_model):
    event("hazard.fire", at=AT)
    analyst = reader(client, django_user_model, role="analyst")
    properties = decode(analyst.get(tile_url("events", *EVENTS_TILE)))["events"]["features"][0]["properties"]
    assert "description" not in properties
    assert properties["category"] == "hazard.fire" and properties["family"] == "hazard"
    assert properties["received_at"] == "2025-03-01T12:00:00Z"
    center = reader(client, django_user_model, role="command_center")
    properties = decode(center.get(tile_url("events", *EVENTS_TILE)))["events"]["features"][0]["properties"]
    assert properties["description"] == "路灯不亮"


def test_events_filtered_by_category_status_and_time(city, analyst):
    fire = event("hazard.fire", at=AT)
    neighbour = event("dispute.neighbour", at=AT - dt.timedelta(days=30), point=EAST_POINT, status="closed")

    def ids(query: str) -> set[int]:
        tile = decode(analyst.get(tile_url("events", *EVENTS_TILE) + query))
        return {f["id"] for f in tile.get("events", {}).get("features", [])}

    assert ids("") == {fire.id, neighbour.id}
    assert ids("?category=hazard") == {fire.id}
    assert ids("?category=dispute.neighbour") == {neighbour.id}
    assert ids("?since=2025-02-15") == {fire.id}
    assert ids("?until=2025-02-15T00:00:00%2B08:00") == {neighbour.id}
    assert ids("?status=closed&category=dispute") == {neighbour.id}
    assert ids("?status=closed&category=hazard") == set()


@pytest.mark.parametrize(
    ("path", "status", "parameter", "message"),
    [
        ("/tiles/grids_small/23/0/0.pbf", 400, "z", "z: must be between 0 and 22, got 23"),
        ("/tiles/grids_small/-1/0/0.pbf", 400, "z", "z: must be between 0 and 22, got -1"),
        ("/tiles/grids_small/a/0/0.pbf", 400, "z", "z: must be an integer, got 'a'"),
        ("/tiles/grids_small/2/4/0.pbf", 400, "x", "x: must be between 0 and 3, got 4"),
        ("/tiles/grids_small/2/-1/0.pbf", 400, "x", "x: must be between 0 and 3, got -1"),
        ("/tiles/grids_small/0/0/1.pbf", 400, "y", "y: must be between 0 and 0, got 1"),
        ("/tiles/grids_small/14/1/1.5.pbf", 400, "y", "y: must be an integer, got '1.5'"),
        (
            "/tiles/grids_small/14/1/1.pbf?category=hazard",
            400,
            "category",
            "category: unknown query parameter; this layer accepts: none",
        ),
        (
            "/tiles/events/14/1/1.pbf?colour=red",
            400,
            "colour",
            "colour: unknown query parameter; this layer accepts: category, status, since, until, region, grid",
        ),
        (
            "/tiles/events/14/1/1.pbf?status=lost",
            400,
            "status",
            "status: must be one of received, triaged, assigned, in_progress, resolved, verified, closed, "
            "returned, suspended, reopened, got 'lost'",
        ),
        (
            "/tiles/events/14/1/1.pbf?category=x'%20OR%201=1--",
            400,
            "category",
            'category: must be a category family or code such as hazard.fire, got "x\' OR 1=1--"',
        ),
        (
            "/tiles/events/14/1/1.pbf?since=yesterday",
            400,
            "since",
            "since: must be an ISO 8601 date-time, got 'yesterday'",
        ),
        ("/tiles/nowhere/14/1/1.pbf", 404, None, "No such layer: nowhere"),
        ("/tiles/nowhere.json", 404, None, "No such layer: nowhere"),
        (
            "/tiles/events.json?limit=3",
            400,
            "limit",
            "limit: unknown query parameter; this layer accepts: category, status, since, until, region, grid",
        ),
    ],
)
def test_bad_tile_requests_name_what_is_wrong(analyst, path, status, parameter, message):
    response = analyst.get(path)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"] == message
    if parameter:
        assert error["parameter"] == parameter


def test_anonymous_readers_are_refused(client):
    assert client.get(tile_url("grids_small")).status_code == 401


def test_a_layer_limited_to_roles_is_forbidden_to_others(city, analyst, monkeypatch):
    secret = catalog.Layer(
        id="secret", title="内部", title_en="Internal", description="", geometry_type="MultiPolygon",
        source="layers_grid t", roles=frozenset({"command_center"}),
    )  # fmt: skip
    monkeypatch.setitem(catalog.LAYERS, "secret", secret)
    response = analyst.get(tile_url("secret"))
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "You may not read the layer secret."
    assert "secret" not in {layer["id"] for layer in analyst.get("/tiles/").json()["layers"]}


def test_headers_length_etag_cache_control_and_304(city, analyst):
    response = analyst.get(tile_url("grids_small"))
    assert response.status_code == 200
    assert int(response["Content-Length"]) == len(response.content) > 0
    assert "Transfer-Encoding" not in response
    assert response["Cache-Control"] == "private, max-age=3600"
    etag = response["ETag"]
    assert etag.startswith('"') and len(etag) == 34
    again = analyst.get(tile_url("grids_small"), HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    events = analyst.get(tile_url("events", *EVENTS_TILE))
    assert events["Cache-Control"] == "private, max-age=60"
    assert events["ETag"] != etag


def test_outside_the_zoom_range_the_tile_is_empty(city, analyst):
    x, y = lonlat_to_tile(*WEST_POINT, 12)
    with CaptureQueriesContext(connection) as queries:
        response = analyst.get(tile_url("grids_small", 12, x, y))
    assert response.status_code == 200 and response.content == b"" and response["Content-Length"] == "0"
    assert not [q for q in queries.captured_queries if "ST_AsMVT" in q["sql"]]


def test_the_cache_serves_the_second_request_without_rendering(city, analyst):
    with CaptureQueriesContext(connection) as first:
        one = analyst.get(tile_url("grids_small"))
    with CaptureQueriesContext(connection) as second:
        two = analyst.get(tile_url("grids_small"))
    assert [q for q in first.captured_queries if "ST_AsMVT" in q["sql"]]
    assert not [q for q in second.captured_queries if "ST_AsMVT" in q["sql"]]
    assert len(second.captured_queries) == len(first.captured_queries) - 1
    assert one.content == two.content and one["ETag"] == two["ETag"]


@pytest.mark.django_db(transaction=True)
def test_a_write_to_the_layer_table_invalidates_the_cached_tile(city, analyst):
    """The data version comes from the statistics collector, which a backend flushes at most once
    a second; the test asks for the next flush so that it need not sleep."""
    before = analyst.get(tile_url("grids_small"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
    Grid.objects.filter(pk=city.grids["west"].pk).update(name="改名网格")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
    after = analyst.get(tile_url("grids_small"))
    assert after["ETag"] != before["ETag"]
    names = {f["properties"]["name"] for f in decode(after)["grids_small"]["features"]}
    assert names == {"改名网格", "东小网格"}


def test_tilejson_describes_the_layer_for_this_reader(city, analyst):
    document = analyst.get("/tiles/events.json?category=hazard").json()
    assert document["tilejson"] == "3.0.0" and document["name"] == "events"
    assert document["tiles"] == ["http://testserver/tiles/events/{z}/{x}/{y}.pbf?category=hazard"]
    assert (document["minzoom"], document["maxzoom"]) == (10, 22)
    (vector_layer,) = document["vector_layers"]
    assert vector_layer["id"] == "events" and "description" not in vector_layer["fields"]
    assert vector_layer["fields"]["received_at"] == "datetime"
    grids = analyst.get("/tiles/grids_small.json").json()
    lon, lat = ORIGIN
    assert grids["bounds"] == [lon, lat, round(lon + SIZE, 6), round(lat + SIZE, 6)]
    assert grids["center"] == [round(lon + SIZE / 2, 6), round(lat + SIZE / 2, 6), 14]
    assert grids["tiles"] == ["http://testserver/tiles/grids_small/{z}/{x}/{y}.pbf"]


def test_tile_index_lists_every_layer_with_its_tilejson(analyst):
    layers = analyst.get("/tiles/").json()["layers"]
    assert [layer["id"] for layer in layers] == list(catalog.LAYERS)
    assert layers[0]["tilejson"] == f"http://testserver/tiles/{layers[0]['id']}.json"
