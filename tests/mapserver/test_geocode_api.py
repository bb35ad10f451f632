"""``GET /api/geocode``: the answer's shape on the tiny city of tests/mapserver/conftest.py, the
400 table naming the parameter, 401 without a login, and its entry in the OpenAPI schema."""

from __future__ import annotations

import pytest

from layers.geocoding.index import address_index_reset

GEOCODE = "/api/geocode"


@pytest.fixture
def api(city, superuser_client):
    address_index_reset()
    return superuser_client


def test_geocode_answers_ranked_candidates_with_grids(api, city):
    response = api.get(GEOCODE, {"q": "兰州市城关区畅家巷一号1栋一单元１０１", "limit": "2"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"query", "normalized", "parsed", "candidates", "no_match_reason", "method", "matched"}
    assert body["normalized"] == "兰州市城关区畅家巷1号1栋1单元101"
    assert body["parsed"] == {
        "city": "兰州市",
        "district": "城关区",
        "road": "畅家巷",
        "door": "1",
        "building": "1",
        "entrance": "1",
        "room": "101",
    }
    assert (body["matched"], body["no_match_reason"], body["method"]) == (True, "", "road_door")
    [best] = body["candidates"]
    assert (best["code"], best["full_text"], best["score"], best["precision"]) == (
        "A001",
        "城关区酒泉路街道畅家巷1号1号楼1单元101室",
        100.0,
        "room",
    )
    assert best["grids"]["grid_small"] == {"code": city.grids["west"].code, "name": city.grids["west"].name}
    assert best["grids"]["community"] == {"code": "620102001001", "name": "畅家巷社区"}
    assert best["lon"] == pytest.approx(city.address.location.x)


def test_foreign_city_answers_no_match_with_reason(api):
    body = api.get(GEOCODE, {"q": "上海市普陀区畅家巷1号"}).json()
    assert (body["matched"], body["no_match_reason"], body["candidates"]) == (
        False,
        "外地地址 (outside Lanzhou): 上海市",
        [],
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({}, "q: is required"),
        ({"q": ""}, "q: is required"),
        ({"q": "   "}, "q: is required"),
        ({"q": "畅" * 201}, "q: must be at most 200 characters, got 201"),
        ({"q": "畅" * 102_400}, "q: must be at most 200 characters, got 102400"),
        ({"q": "畅家巷", "limit": "0"}, "limit: must be between 1 and 20, got 0"),
        ({"q": "畅家巷", "limit": "21"}, "limit: must be between 1 and 20, got 21"),
        ({"q": "畅家巷", "limit": "two"}, "limit: must be an integer, got 'two'"),
    ],
)
def test_bad_parameters_answer_400_naming_the_field(api, query, message):
    response = api.get(GEOCODE, query)
    assert response.status_code == 400
    parameter = message.split(":")[0]
    assert response.json() == {"error": {"code": "bad_parameter", "message": message, "parameter": parameter}}


def test_without_login_answers_401(client, db):
    response = client.get(GEOCODE, {"q": "畅家巷1号"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_schema_documents_geocode(client, db):
    response = client.get("/api/schema/", {"format": "json"})
    operation = response.json()["paths"][GEOCODE]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"q", "limit"}
    schemas = response.json()["components"]["schemas"]
    assert schemas["GeocodeCandidate"]["properties"]["precision"] == {"$ref": "#/components/schemas/PrecisionEnum"}
    assert schemas["PrecisionEnum"]["enum"] == [
        "room",
        "building",
        "door",
        "compound",
        "road",
        "community",
        "street",
        "district",
    ]
