"""``GET /api/geocode``: the answer's shape on the tiny city of tests/worlds/city.py, a
building answered for a sentence, ambiguity across grids, answers independent of ``limit``, the
400 table naming the parameter, 401 without a login, and its entry in the OpenAPI schema."""

from __future__ import annotations

import pytest
from django.contrib.gis.geos import Point

from layers.geocoding.index import address_index_reset
from layers.models import Address
from layers.services import linking
from tests.worlds.city import EAST_POINT, WEST_POINT

GEOCODE = "/api/geocode"


@pytest.fixture
def api(city, superuser_client):
    address_index_reset()
    return superuser_client


def test_geocode_answers_ranked_candidates_with_grids(api, city):
    response = api.get(GEOCODE, {"q": "兰州市城关区畅家巷一号1栋一单元１０１", "limit": "2"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "query", "normalized", "parsed", "candidates", "no_match_reason", "method", "matched", "ambiguous",
    }  # fmt: skip
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
    assert (body["matched"], body["ambiguous"], body["no_match_reason"], body["method"]) == (
        True,
        False,
        "",
        "road_door",
    )
    [best] = body["candidates"]
    assert (best["code"], best["full_text"], best["score"], best["precision"]) == (
        "A001",
        "城关区酒泉路街道畅家巷1号1号楼1单元101室",
        100.0,
        "room",
    )
    assert (best["agrees"], best["differs"]) == (
        ["district", "road", "door", "building", "entrance", "room"],
        [],
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


@pytest.fixture
def twins(api, city):
    """A building's own address beside the conftest room, and a compound of one name in both
    small grids."""
    rows = [
        ("T1", "畅家巷", "1号", "", "1", "", "", WEST_POINT),
        ("T2", "张苏东街", "11号", "幸福家园", "2号楼", "1单元", "101室", WEST_POINT),
        ("T3", "东湖街", "30号", "幸福家园", "2号楼", "1单元", "101室", EAST_POINT),
    ]
    Address.objects.bulk_create(
        Address(
            code=code,
            district_name="城关区",
            street_name="酒泉路街道",
            road=road,
            door_number=door,
            compound_name=compound,
            building_number=building,
            entrance=entrance,
            room=room,
            full_text=f"城关区酒泉路街道{road}{door}{compound}{building}{entrance}{room}",
            location=Point(*at, srid=4326),
        )
        for code, road, door, compound, building, entrance, room, at in rows
    )
    linking.relink_all()
    address_index_reset()
    return api


def test_a_sentence_without_a_room_answers_the_building(twins, city):
    body = twins.get(GEOCODE, {"q": "您好，我是城关区畅家巷1号1栋1单元的住户，楼上漏水"}).json()
    best = body["candidates"][0]
    assert (body["matched"], best["code"], best["precision"]) == (True, "T1", "building")
    assert best["grids"]["grid_small"]["code"] == city.grids["west"].code


def test_candidates_in_two_grids_answer_ambiguous(twins, city):
    body = twins.get(GEOCODE, {"q": "幸福家园2号楼1单元101室"}).json()
    assert (body["matched"], body["ambiguous"]) == (False, True)
    assert body["no_match_reason"] == (
        "2个网格的候选同样可能 (ambiguous: candidates in 2 small grids score within 5 of the best, 100.0)"
    )
    assert {(c["code"], c["grids"]["grid_small"]["code"]) for c in body["candidates"]} == {
        ("T2", city.grids["west"].code),
        ("T3", city.grids["east"].code),
    }


@pytest.mark.parametrize("text", ["畅家巷1号1栋1单元", "畅家巷1号", "幸福家园2号楼1单元101室", "城关区畅家巷"])
def test_the_answer_does_not_depend_on_limit(twins, text):
    bodies = [twins.get(GEOCODE, {"q": text, "limit": str(limit)}).json() for limit in (1, 5, 20)]
    for body in bodies:
        assert (body["matched"], body["ambiguous"], body["no_match_reason"]) == (
            bodies[-1]["matched"],
            bodies[-1]["ambiguous"],
            bodies[-1]["no_match_reason"],
        )
        codes = [c["code"] for c in body["candidates"]]
        assert codes == [c["code"] for c in bodies[-1]["candidates"]][: len(codes)]


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
        "city",
    ]
    assert {"agrees", "differs"} <= set(schemas["GeocodeCandidate"]["properties"])
    assert schemas["Geocode"]["properties"]["ambiguous"]["type"] == "boolean"
