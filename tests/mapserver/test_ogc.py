"""OGC API – Features at /ogc/: documents, items as valid GeoJSON, keyset paging, filters, bad
parameters, roles, HTML, and GDAL's OGC API driver against a live server."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess

import jsonschema
import pytest
from django.contrib.auth.models import Group
from django.contrib.gis.geos import Point
from rest_framework.authtoken.models import Token

from layers.models import Address, Event, ReaderScope
from tests.factories import ORIGIN, SIZE
from tests.layers.event_world import IN_EAST, IN_WEST, report, world

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
ADDRESSES = 30
SCHEMA = "testsuites/geojson-schema/schemas/FeatureCollection.json"


def make_world() -> dict:
    """The tiny event world, 30 addresses (even ones in WEST, odd in EAST, road 东路/西路) and
    six events received a day apart, the first three still 'received'."""
    areas = world()
    Address.objects.bulk_create(
        Address(
            code=f"A{i:03d}",
            road="西路" if i % 2 == 0 else "东路",
            door_number=f"{i}号",
            full_text=f"城关区测试{'西路' if i % 2 == 0 else '东路'}{i}号",
            location=Point(*(IN_WEST if i % 2 == 0 else IN_EAST), srid=4326),
        )
        for i in range(ADDRESSES)
    )
    for i in range(6):
        event = report(category="hazard.fire" if i < 4 else "dispute.neighbour", description=f"秘密描述{i}")
        status = "received" if i < 3 else "closed"
        Event.objects.filter(pk=event.pk).update(received_at=T0 + dt.timedelta(days=i), status=status)
    return areas


@pytest.fixture
def ogc_world(db):
    return make_world()


def _client_in(client, django_user_model, role: str | None):
    user = django_user_model.objects.create_user(f"user-{role}")
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    # The whole city, whatever the role: these tests are about layers and fields, not data scope.
    ReaderScope.objects.create(user=user, level="city")
    client.force_login(user)
    return client


@pytest.fixture
def api(client, django_user_model):
    return _client_in(client, django_user_model, "grid_worker")


@pytest.fixture
def analyst(client, django_user_model):
    return _client_in(client, django_user_model, "analyst")


def items(client, collection: str = "addresses", **query) -> dict:
    response = client.get(f"/ogc/collections/{collection}/items", query)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/geo+json; charset=utf-8"
    return response.json()


def test_landing_and_conformance(api):
    landing = api.get("/ogc/").json()
    rels = {link["rel"]: link["href"] for link in landing["links"]}
    assert {"self", "alternate", "conformance", "data"} <= set(rels)
    assert rels["data"] == "http://testserver/ogc/collections?f=json"
    conformance = api.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conformance
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conformance


def test_collections_have_extents_from_the_data(api, ogc_world):
    body = api.get("/ogc/collections").json()
    by_id = {c["id"]: c for c in body["collections"]}
    assert {"addresses", "events", "grids_small", "regions_district"} <= set(by_id)
    addresses = by_id["addresses"]
    assert addresses["extent"]["spatial"]["bbox"] == [
        [pytest.approx(IN_WEST[0]), pytest.approx(IN_WEST[1]), pytest.approx(IN_EAST[0]), pytest.approx(IN_EAST[1])]
    ]
    assert "temporal" not in addresses["extent"]
    items_links = [link for link in addresses["links"] if link["rel"] == "items"]
    assert {link["type"] for link in items_links} == {"application/geo+json", "text/html"}
    events = api.get("/ogc/collections/events").json()
    assert events["extent"]["temporal"]["interval"] == [["2025-03-01T08:00:00Z", "2025-03-06T08:00:00Z"]]
    grids = by_id["grids_small"]["extent"]["spatial"]["bbox"][0]
    assert grids == [pytest.approx(v) for v in (ORIGIN[0], ORIGIN[1], ORIGIN[0] + SIZE, ORIGIN[1] + SIZE)]


@pytest.mark.shared_data
def test_items_are_valid_geojson(api, ogc_world, shared_data):
    schema = json.loads(shared_data(SCHEMA).read_text())
    for collection in ("addresses", "events", "grids_small", "regions_district", "grid_stats", "units"):
        body = items(api, collection, limit=5)
        jsonschema.validate(body, schema)
        assert body["numberReturned"] == len(body["features"])
        assert body["timeStamp"].endswith("Z")
        assert "numberMatched" not in body
    feature = items(api, "addresses", limit=1)["features"][0]
    assert set(feature["properties"]) == {"code", "full_text", "road", "door_number", "district_code", "grid_code"}
    assert feature["geometry"]["type"] == "Point"


def test_keyset_pages_have_no_duplicates_or_gaps(api, ogc_world):
    expected = sorted(Address.objects.values_list("pk", flat=True))
    seen, sizes = [], []
    body = items(api, limit=7)
    while True:
        seen += [f["id"] for f in body["features"]]
        sizes.append(body["numberReturned"])
        following = [link["href"] for link in body["links"] if link["rel"] == "next"]
        if not following:
            break
        assert "after=" in following[0] and "limit=7" in following[0]
        body = api.get(following[0].removeprefix("http://testserver")).json()
    assert seen == expected
    assert sizes == [7, 7, 7, 7, 2]


def test_an_exact_last_page_has_no_next(api, ogc_world):
    body = items(api, limit=ADDRESSES)
    assert body["numberReturned"] == ADDRESSES
    assert [link for link in body["links"] if link["rel"] == "next"] == []


def test_filters(api, ogc_world):
    def codes(collection="addresses", **query) -> set:
        return {f["properties"].get("code", f["id"]) for f in items(api, collection, limit=100, **query)["features"]}

    west_box = f"{ORIGIN[0]},{ORIGIN[1]},{ORIGIN[0] + SIZE / 2 - 0.0001},{ORIGIN[1] + SIZE}"
    assert codes(bbox=west_box) == {f"A{i:03d}" for i in range(0, ADDRESSES, 2)}
    assert codes(road="东路") == {f"A{i:03d}" for i in range(1, ADDRESSES, 2)}
    assert codes(road="东路", bbox=west_box) == set()
    assert codes(code="A007") == {"A007"}
    # SQL in a value is only a value.
    assert codes(road="东路' OR '1'='1") == set()
    assert codes(road="'; DROP TABLE layers_address; --") == set()
    assert Address.objects.count() == ADDRESSES

    def days(**query) -> list[int]:
        features = items(api, "events", **query)["features"]
        return sorted(
            dt.datetime.fromisoformat(f["properties"]["received_at"]).astimezone(dt.UTC).day for f in features
        )

    assert days() == [1, 2, 3, 4, 5, 6]
    assert days(datetime="2025-03-02T08:00:00Z") == [2]
    assert days(datetime="2025-03-03") == [3]  # that whole day in the server's zone (UTC+8)
    assert days(datetime="2025-03-02T00:00:00Z/2025-03-04T08:00:00Z") == [2, 3, 4]
    assert days(datetime="../2025-03-02T08:00:00Z") == [1, 2]
    assert days(datetime="2025-03-05T08:00:00Z/..") == [5, 6]
    assert days(datetime="2025-03-05T08:00:00Z/") == [5, 6]
    assert days(status="received") == [1, 2, 3]
    assert days(category="dispute") == [5, 6]
    assert days(category="hazard.fire", status="closed") == [4]
    assert days(family="dispute") == [5, 6]
    assert days(since="2025-03-04T08:00:00Z") == [4, 5, 6]


BAD = [
    ("addresses", {"bbox": "1,2,3"}, "bbox: must be lon_min,lat_min,lon_max,lat_max"),
    ("addresses", {"bbox": "104,36,103,37"}, "bbox: minimum must be below maximum"),
    ("addresses", {"bbox": "104,36,190,37"}, "bbox: must lie within -180,-90,180,90"),
    ("addresses", {"limit": "0"}, "limit: must be between 1 and 10000, got 0"),
    ("addresses", {"limit": "1000000000"}, "limit: must be between 1 and 10000, got 1000000000"),
    ("addresses", {"limit": "ten"}, "limit: must be an integer, got 'ten'"),
    ("addresses", {"after": "-1"}, "after: must be between 0 and 9223372036854775807, got -1"),
    ("addresses", {"f": "xml"}, "f: must be one of json, html, got 'xml'"),
    ("addresses", {"datetime": "2025-03-01"}, "datetime: collection 'addresses' has no time"),
    ("events", {"datetime": "yesterday"}, "datetime: must be an ISO 8601 date-time, got 'yesterday'"),
    ("events", {"datetime": "../.."}, "datetime: must be an instant or start/end (.. for an open end), got '../..'"),
    ("events", {"datetime": "2025-03-02/2025-03-01"}, "datetime: start must not be after end"),
    ("events", {"datetime": "2025-03-01/2025-03-02/2025-03-03"}, "datetime: must be an instant or start/end "
     "(.. for an open end), got '2025-03-01/2025-03-02/2025-03-03'"),
    ("events", {"status": "lost"}, "status: must be one of " + ", ".join(
        ("received", "triaged", "assigned", "in_progress", "resolved", "verified", "closed", "returned",
         "suspended", "reopened")) + ", got 'lost'"),
    ("events", {"since": "soon"}, "since: must be an ISO 8601 date-time, got 'soon'"),
    (
        "addresses",
        {"colour": "red", "zoom": "3"},
        "colour, zoom: unknown parameter; addresses accepts after, bbox, code, datetime, district_code, "
        "door_number, f, full_text, grid_code, limit, road",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("collection", "query", "message"), BAD)
def test_bad_parameters_are_400_naming_them(api, ogc_world, collection, query, message):
    response = api.get(f"/ogc/collections/{collection}/items", query)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["message"] == message


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/ogc/collections/nowhere", "unknown collection 'nowhere'"),
        ("/ogc/collections/nowhere/items", "unknown collection 'nowhere'"),
        ("/ogc/collections/addresses/items/999999999", "collection 'addresses' has no item '999999999'"),
        ("/ogc/collections/addresses/items/abc", "collection 'addresses' has no item 'abc'"),
    ],
)
def test_unknown_collection_or_item_is_404(api, ogc_world, path, message):
    response = api.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["message"] == message


def test_unknown_parameter_on_a_document_is_400(api):
    response = api.get("/ogc/collections", {"q": "x"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "q: unknown parameter; accepted: f"


def test_single_item(api, ogc_world):
    address = Address.objects.get(code="A004")
    response = api.get(f"/ogc/collections/addresses/items/{address.pk}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/geo+json; charset=utf-8"
    feature = response.json()
    assert feature["id"] == address.pk
    assert feature["properties"]["full_text"] == "城关区测试西路4号"
    assert feature["geometry"]["coordinates"] == [pytest.approx(IN_WEST[0]), pytest.approx(IN_WEST[1])]
    assert {"self", "alternate", "collection"} <= {link["rel"] for link in feature["links"]}


def test_role_restricted_field_is_absent_for_the_analyst(analyst, ogc_world):
    features = items(analyst, "events")["features"]
    assert features and all("description" not in f["properties"] for f in features)
    response = analyst.get("/ogc/collections/events/items", {"description": "秘密描述1"})
    assert response.status_code == 400
    event = Event.objects.order_by("pk").first()
    assert "description" not in analyst.get(f"/ogc/collections/events/items/{event.pk}").json()["properties"]


def test_sensitive_role_reads_the_description(api, ogc_world):
    features = items(api, "events", description="秘密描述1")["features"]
    assert [f["properties"]["description"] for f in features] == ["秘密描述1"]


def test_html_lists_features_without_external_assets(api, ogc_world):
    response = api.get("/ogc/collections/addresses/items", {"f": "html", "limit": 5, "road": "西路"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "城关区测试西路0号" in page and "城关区测试西路8号" in page and "西路10号" not in page
    assert "<script src" not in page and 'rel="stylesheet"' not in page
    assert api.get("/ogc/", {"f": "html"}).status_code == 200
    assert "addresses" in api.get("/ogc/collections", {"f": "html"}).content.decode()


def test_anonymous_is_401(client, db):
    response = client.get("/ogc/collections/addresses/items")
    assert response.status_code == 401


# --- GDAL's OGC API driver against a live server --------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_gdal_ogcapi_driver_lists_collections_and_reads_features(live_server, django_user_model):
    make_world()
    user = django_user_model.objects.create_user("gdal")
    ReaderScope.objects.create(user=user, level="city")
    token = Token.objects.create(user=user)
    env = os.environ | {"GDAL_HTTP_HEADERS": f"Authorization: Token {token.key}", "GDAL_HTTP_TIMEOUT": "20"}
    url = f"OAPIF:{live_server.url}/ogc/"

    def ogrinfo(*args: str) -> str:
        done = subprocess.run(  # noqa: S603  (gdal-bin, fixed arguments)
            [shutil.which("ogrinfo"), "-ro", "-q", url, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    listing = ogrinfo()
    assert "addresses" in listing and "events" in listing and "grids_small" in listing
    features = ogrinfo("addresses", "-oo", "PAGE_SIZE=7")
    assert features.count("OGRFeature(addresses)") == ADDRESSES
    assert "城关区测试东路29号" in features
    assert "POINT (" in features
    filtered = ogrinfo("addresses", "-where", "road = '西路'")
    assert filtered.count("OGRFeature(addresses)") == ADDRESSES // 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/ogc/collections/units/items/\u00b2", 404),
        ("/ogc/collections/events/items?datetime=9999-12-31", 400),
    ],
)
def test_unicode_digits_and_far_dates_are_client_errors(admin_client, path, status):
    """'²' passes str.isdigit() but not int(); year 9999 overflows a day's end: neither is a 500."""
    assert admin_client.get(path).status_code == status
