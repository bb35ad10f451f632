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
from django.test import Client
from rest_framework.authtoken.models import Token

from layers.geocoding.crs import CRS84_URI, output_crs_lookup
from layers.models import Address, Event, ReaderScope
from tests.worlds.events import IN_EAST, IN_WEST, report, world
from tests.worlds.factories import ORIGIN, SIZE

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
    assert response["Content-Type"] == "application/geo+json"
    assert response["Content-Crs"] == f"<{output_crs_lookup(query.get('crs', CRS84_URI)).uri}>"
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
        "colour, zoom: unknown parameter; addresses accepts after, bbox, bbox-crs, code, crs, datetime, "
        "district_code, door_number, f, full_text, grid_code, limit, road",
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
    assert response["Content-Type"] == "application/geo+json"
    assert response["Content-Crs"] == f"<{CRS84_URI}>"
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


# --- dates as interval ends, formats by Accept, the API description, counts, CRS, paging rate ------


def test_a_date_as_an_interval_end_includes_that_whole_day(api, ogc_world):
    """Events at 16:00 in the server's zone on March 1–6: a date as an end means its whole day."""

    def days(value: str) -> list[int]:
        features = items(api, "events", datetime=value)["features"]
        return sorted(dt.datetime.fromisoformat(f["properties"]["received_at"]).day for f in features)

    assert days("2025-03-02/2025-03-03") == [2, 3]
    assert days("2025-03-03/2025-03-03") == days("2025-03-03") == [3]
    assert days("../2025-03-02") == [1, 2]
    assert days("2025-03-05/..") == [5, 6]
    assert days("2025-03-03T00:00:00+08:00/2025-03-04") == [3, 4]
    assert days("2025-03-02/2025-03-03 12:00") == [2]  # a time with a space is an instant, not a day


@pytest.mark.parametrize(
    ("accept", "query", "content_type"),
    [
        ("application/geo+json", {}, "application/geo+json"),
        ("application/json", {}, "application/geo+json"),
        ("application/geo+json, application/json", {}, "application/geo+json"),
        ("text/html", {}, "text/html; charset=utf-8"),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", {}, "text/html; charset=utf-8"),
        ("application/json;q=0.5, text/html;q=0.4", {}, "application/geo+json"),
        ("image/png", {}, "application/geo+json"),
        ("*/*", {}, "application/geo+json"),
        ("application/geo+json", {"f": "html"}, "text/html; charset=utf-8"),
        ("text/html", {"f": "json"}, "application/geo+json"),
    ],
)
def test_items_and_item_follow_accept_never_406(api, ogc_world, accept, query, content_type):
    address = Address.objects.get(code="A004")
    for path in ("/ogc/collections/addresses/items", f"/ogc/collections/addresses/items/{address.pk}"):
        response = api.get(path, query, HTTP_ACCEPT=accept)
        assert response.status_code == 200, response.content
        assert response["Content-Type"] == content_type


def test_landing_links_the_api_definition_and_its_page(api, ogc_world):
    links = {link["rel"]: link for link in api.get("/ogc/", HTTP_ACCEPT="application/json").json()["links"]}
    assert links["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert links["service-desc"]["href"] == "http://testserver/ogc/api"
    assert links["service-doc"] == {
        "href": "http://testserver/ogc/api.html",
        "rel": "service-doc",
        "type": "text/html",
        "title": "the API documentation",
    }
    assert api.get("/ogc/", HTTP_ACCEPT="application/json")["Content-Type"] == "application/json"
    conformance = api.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30" in conformance
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conformance


def test_api_definition_names_the_readers_collections_and_page_sizes(api, ogc_world):
    response = api.get("/ogc/api")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.oai.openapi+json;version=3.0"
    document = response.json()
    assert document["openapi"].startswith("3.0")
    assert document["servers"] == [{"url": "http://testserver/ogc"}]
    limit = document["components"]["parameters"]["limit"]
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000}
    events = document["paths"]["/collections/events/items"]["get"]["parameters"]
    names = [p.get("name") or p["$ref"].rsplit("/", 1)[1] for p in events]
    assert {"limit", "bbox", "bbox-crs", "crs", "datetime", "status", "category", "since"} <= set(names)
    addresses = document["paths"]["/collections/addresses/items"]["get"]["parameters"]
    assert "datetime" not in [p.get("$ref", "").rsplit("/", 1)[-1] for p in addresses]
    # Public, but an anonymous reader is told the generic paths only.
    anonymous = Client().get("/ogc/api")
    assert anonymous.status_code == 200
    assert "/collections/events/items" not in anonymous.json()["paths"]
    assert "/collections/{collectionId}/items" in anonymous.json()["paths"]


def test_api_page_is_local_html(client, db):
    response = client.get("/ogc/api.html")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/collections/{collectionId}/items" in page and "EPSG/0/4544" in page
    assert "http://" not in page.replace("http://www.opengis.net/", "").replace("http://testserver/", "")
    assert "<script" not in page


def test_number_matched_when_cheap(api, ogc_world, settings):
    first = items(api, limit=7)
    assert first["numberMatched"] == ADDRESSES
    following = next(link["href"] for link in first["links"] if link["rel"] == "next")
    assert api.get(following.removeprefix("http://testserver")).json()["numberMatched"] == ADDRESSES
    assert items(api, road="西路", limit=2)["numberMatched"] == ADDRESSES // 2
    assert items(api, road="西路")["numberMatched"] == ADDRESSES // 2
    settings.MINQING_OGC_COUNT_LIMIT = 10
    assert "numberMatched" not in items(api, road="东路", limit=2)
    # A whole answer on the first page is its own count, whatever the limit.
    assert items(api, road="东路", limit=100)["numberMatched"] == ADDRESSES // 2


def _lat_lon(lon: float, lat: float) -> list:
    return [pytest.approx(lat, abs=1e-7), pytest.approx(lon, abs=1e-7)]


def test_collections_advertise_their_crs(api, ogc_world):
    collection = api.get("/ogc/collections/addresses").json()
    assert collection["crs"] == [
        "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        "http://www.opengis.net/def/crs/EPSG/0/4326",
        "http://www.opengis.net/def/crs/EPSG/0/4490",
        "http://www.opengis.net/def/crs/EPSG/0/4544",
    ]
    assert collection["storageCrs"] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


@pytest.mark.parametrize("spelling", ["http://www.opengis.net/def/crs/EPSG/0/{n}", "[EPSG:{n}]", "EPSG:{n}"])
def test_features_in_a_requested_crs_and_axis_order(api, ogc_world, spelling):
    from pyproj import Transformer

    address = Address.objects.get(code="A004")  # at IN_WEST
    for srid in (4326, 4490):
        body = items(api, code="A004", crs=spelling.format(n=srid))
        assert body["features"][0]["geometry"]["coordinates"] == _lat_lon(*IN_WEST)
    northing, easting = Transformer.from_crs(4326, 4544).transform(IN_WEST[1], IN_WEST[0])
    assert 3_000_000 < northing < 5_000_000 and 300_000 < easting < 500_000  # west of 105°E
    response = api.get(
        f"/ogc/collections/addresses/items/{address.pk}", {"crs": spelling.format(n=4544)}, HTTP_ACCEPT=GEOJSON_TYPE
    )
    assert response["Content-Crs"] == "<http://www.opengis.net/def/crs/EPSG/0/4544>"
    assert response.json()["geometry"]["coordinates"] == [
        pytest.approx(northing, abs=0.01),
        pytest.approx(easting, abs=0.01),
    ]


GEOJSON_TYPE = "application/geo+json"


def test_bbox_in_another_crs(api, ogc_world):
    from pyproj import Transformer

    def codes(**query) -> set[str]:
        return {f["properties"]["code"] for f in items(api, limit=100, **query)["features"]}

    west = {f"A{i:03d}" for i in range(0, ADDRESSES, 2)}
    lon, lat = IN_WEST
    assert codes(bbox=f"{lon - 0.001},{lat - 0.001},{lon + 0.001},{lat + 0.001}") == west
    lat_lon_box = f"{lat - 0.001},{lon - 0.001},{lat + 0.001},{lon + 0.001}"
    assert codes(bbox=lat_lon_box, **{"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"}) == west
    assert codes(bbox=lat_lon_box, **{"bbox-crs": "EPSG:4490"}) == west
    northing, easting = Transformer.from_crs(4326, 4544).transform(lat, lon)
    box = f"{northing - 50},{easting - 50},{northing + 50},{easting + 50}"
    assert codes(bbox=box, **{"bbox-crs": "EPSG:4544"}) == west
    assert codes(bbox=box, **{"bbox-crs": "EPSG:4544"}, crs="EPSG:4544") == west


CRS_LIST = (
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84, http://www.opengis.net/def/crs/EPSG/0/4326, "
    "http://www.opengis.net/def/crs/EPSG/0/4490, http://www.opengis.net/def/crs/EPSG/0/4544"
)
BAD_CRS = [
    ({"crs": "EPSG:3857"}, f"crs: unsupported CRS 'EPSG:3857'; supported: {CRS_LIST}"),
    ({"crs": "http://www.opengis.net/def/crs/EPSG/0/4547"},
     f"crs: unsupported CRS 'http://www.opengis.net/def/crs/EPSG/0/4547'; supported: {CRS_LIST}"),
    ({"bbox": "36,103,37,104", "bbox-crs": "EPSG:2000"}, f"bbox-crs: unsupported CRS 'EPSG:2000'; supported: {CRS_LIST}"),
    ({"bbox": "103,36,104,37", "bbox-crs": "EPSG:4326"},
     "bbox: must be lat_min,lon_min,lat_max,lon_max within -90,-180,90,180"),
    ({"bbox": "1,2,3", "bbox-crs": "EPSG:4544"},
     "bbox: must be four numbers in the axis order of http://www.opengis.net/def/crs/EPSG/0/4544"),
    ({"bbox": "4,3,2,1", "bbox-crs": "EPSG:4544"}, "bbox: minimum must be below maximum"),
    ({"bbox": "nan,1,2,3", "bbox-crs": "EPSG:4544"}, "bbox: must be four finite numbers"),
]  # fmt: skip


@pytest.mark.parametrize(("query", "message"), BAD_CRS)
def test_unsupported_crs_is_400_naming_it(api, ogc_world, query, message):
    response = api.get("/ogc/collections/addresses/items", query)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["message"] == message
    if "crs" in query:
        address = Address.objects.first()
        single = api.get(f"/ogc/collections/addresses/items/{address.pk}", {"crs": query["crs"]})
        assert single.status_code == 400 and single.json()["error"]["message"] == message


def test_continuation_pages_are_not_cut_off_by_the_users_rate(api, ogc_world, settings):
    """The user's rate counts the first page of each scan; the pages the next link leads to
    count under the far higher ogc_paging rate."""
    settings.MINQING_THROTTLE_RATES = settings.MINQING_THROTTLE_RATES | {"user": "2/min", "ogc_paging": "1000/min"}
    from django.core.cache import cache

    cache.clear()
    body = items(api, limit=2)
    pages = 1
    while following := [link["href"] for link in body["links"] if link["rel"] == "next"]:
        body = api.get(following[0].removeprefix("http://testserver")).json()
        pages += 1
    assert pages == ADDRESSES // 2
    assert api.get("/ogc/collections/addresses/items").status_code == 200
    refused = api.get("/ogc/collections/addresses/items")
    assert refused.status_code == 429
    assert refused["Retry-After"]
    cache.clear()
