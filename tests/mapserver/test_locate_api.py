"""GET /api/locate: the answer's shape, CRS conversion, dates, bad input and authentication."""

from __future__ import annotations

import pytest

from layers.geocoding.crs import gcj02_to_bd09, wgs84_to_gcj02
from tests.worlds.city import WEST_POINT
from tests.worlds.factories import ORIGIN, SIZE

HALF = ORIGIN[0] + SIZE / 2
MID_LAT = ORIGIN[1] + SIZE / 2


@pytest.fixture
def api(client, django_user_model):
    from layers.models import ReaderScope

    user = django_user_model.objects.create_user("worker", "worker@example.org", "worker-password")
    # The whole city: the nearest address is answered only within the reader's data scope.
    ReaderScope.objects.create(user=user, level="city")
    client.force_login(user)
    return client


def test_answer_has_every_key(api, city):
    """A point in WEST, beside the one address: grids, regions, address, distances, input echo."""
    lon, lat = WEST_POINT
    response = api.get("/api/locate", {"lon": lon, "lat": lat})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "district",
        "street",
        "community",
        "grid_large",
        "grid_medium",
        "grid_small",
        "nearest_address",
        "boundary_distance_m",
        "ambiguous",
        "inside",
        "message",
        "input",
        "wgs84",
    }
    assert body["district"] == {"code": "620102000000", "name": "城关区"}
    assert body["street"] == {"code": "620102001000", "name": "酒泉路街道"}
    assert body["community"] == {"code": "620102001001", "name": "畅家巷社区"}
    assert body["grid_large"] == {"code": city.grids["large"].code, "name": "一大网格"}
    assert body["grid_medium"] == {"code": city.grids["medium"].code, "name": "一中网格"}
    assert body["grid_small"] == {"code": city.grids["west"].code, "name": "西小网格"}
    assert body["nearest_address"] == {
        "code": "A001",
        "full_text": "城关区酒泉路街道畅家巷1号1号楼1单元101室",
        "distance_m": 0.0,
    }
    assert body["boundary_distance_m"] == pytest.approx(180.2, abs=1.0)
    assert (body["ambiguous"], body["inside"], body["message"]) == (False, True, "")
    assert body["input"] == {"lon": lon, "lat": lat, "crs": "wgs84"}
    assert body["wgs84"] == {"lon": round(lon, 7), "lat": round(lat, 7)}


@pytest.mark.parametrize(
    "crs, convert", [("gcj02", wgs84_to_gcj02), ("bd09", lambda x, y: gcj02_to_bd09(*wgs84_to_gcj02(x, y)))]
)
def test_phone_map_coordinates_are_converted(api, city, crs, convert):
    """90 m west of the shared edge as AMap or Baidu show it: converted back, it is in WEST."""
    lon, lat = (round(float(v), 7) for v in convert(HALF - 0.001, MID_LAT))
    body = api.get("/api/locate", {"lon": lon, "lat": lat, "crs": crs.upper()}).json()
    assert body["grid_small"]["code"] == city.grids["west"].code
    assert body["input"] == {"lon": lon, "lat": lat, "crs": crs}
    assert body["wgs84"]["lon"] == pytest.approx(HALF - 0.001, abs=1e-6)
    assert body["wgs84"]["lat"] == pytest.approx(MID_LAT, abs=1e-6)


def test_shared_edge_is_ambiguous(api, city):
    body = api.get("/api/locate", {"lon": HALF, "lat": MID_LAT}).json()
    assert body["grid_small"]["code"] == city.grids["west"].code
    assert body["boundary_distance_m"] == 0.0
    assert body["ambiguous"] is True


def test_outside_every_grid_is_an_answer(api, city):
    response = api.get("/api/locate", {"lon": 103.9, "lat": 36.2})
    assert response.status_code == 200
    body = response.json()
    assert body["inside"] is False
    assert body["message"] == "该点不在任何网格内 (the point is outside every grid)"
    assert body["grid_small"] is None and body["district"] is None and body["nearest_address"] is None


def test_date_parameter(api, city):
    """Redrawn WEST (2024): a point in the strip it gave up is in WEST for 2023, in no grid today."""
    from layers.services.grids import grid_redraw
    from tests.worlds.factories import box

    grid_redraw(
        grid=city.grids["west"],
        boundary=box(ORIGIN[0], ORIGIN[1], HALF - 0.002, ORIGIN[1] + SIZE),
        valid_from=city.version.valid_to.replace(year=2025),
        source="test",
    )
    point = {"lon": HALF - 0.001, "lat": MID_LAT}
    assert api.get("/api/locate", point).json()["inside"] is False
    past = api.get("/api/locate", {**point, "date": "2024-06-01"}).json()
    assert past["grid_small"]["code"] == city.grids["west"].code


@pytest.mark.parametrize(
    "query, message",
    [
        ({"lat": "36.06"}, "lon: is required"),
        ({"lon": "103.83"}, "lat: is required"),
        ({"lon": "", "lat": "36.06"}, "lon: must be a number, got ''"),
        ({"lon": "abc", "lat": "36.06"}, "lon: must be a number, got 'abc'"),
        ({"lon": "NaN", "lat": "36.06"}, "lon: must be a finite number"),
        ({"lon": "103.83", "lat": "nan"}, "lat: must be a finite number"),
        ({"lon": "inf", "lat": "36.06"}, "lon: must be a finite number"),
        ({"lon": "200", "lat": "36.06"}, "lon: must be between -180 and 180, got 200"),
        (
            {"lon": "36.06", "lat": "103.83"},
            "lat: must be between -90 and 90, got 103.83; are lon and lat swapped?",
        ),
        ({"lon": "2.35", "lat": "48.85"}, "lon: 2.35 is outside China (longitude 73 to 136)"),
        ({"lon": "0", "lat": "0"}, "lon: 0 is outside China (longitude 73 to 136)"),
        ({"lon": "103.83", "lat": "-10"}, "lat: -10 is outside China (latitude 3 to 54)"),
        (
            {"lon": "103.83", "lat": "36.06", "crs": "epsg3857"},
            "crs: must be one of wgs84, cgcs2000, gcj02, bd09, got 'epsg3857'",
        ),
        (
            {"lon": "103.83", "lat": "36.06", "date": "2024-13-01"},
            "date: must be a date as YYYY-MM-DD, got '2024-13-01'",
        ),
        ({"lon": "103.83", "lat": "36.06", "date": "yesterday"}, "date: must be a date as YYYY-MM-DD, got 'yesterday'"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, city, query, message):
    response = api.get("/api/locate", query)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "bad_parameter"
    assert error["message"] == message
    assert error["parameter"] == message.split(":")[0]


def test_authentication_required(client, city):
    response = client.get("/api/locate", {"lon": WEST_POINT[0], "lat": WEST_POINT[1]})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_token_authentication(client, city, django_user_model):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=django_user_model.objects.create_user("intake"))
    response = client.get(
        "/api/locate", {"lon": WEST_POINT[0], "lat": WEST_POINT[1]}, HTTP_AUTHORIZATION=f"Token {token.key}"
    )
    assert response.status_code == 200
    assert response.json()["grid_small"]["code"] == city.grids["west"].code


def test_schema_documents_locate(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    operation = response.json()["paths"]["/api/locate"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"lon", "lat", "crs", "date"}
