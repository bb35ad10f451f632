"""Inputs that used to answer 5xx: a lone surrogate in JSON, JSON nested 100,000 deep, more than
1,000 query parameters. Each is a 400 naming the problem, on every endpoint that reads them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token

from layers.models import Grid, ReaderScope
from layers.taxonomy import taxonomy_seed
from tests.worlds.city import WEST_POINT

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, city, django_user_model):
    """A grid worker of the west grid with the city to read, signed in by token (no CSRF)."""
    taxonomy_seed()
    user = django_user_model.objects.create_user("field", is_superuser=True)
    user.groups.add(Group.objects.get_or_create(name="grid_worker")[0])
    ReaderScope.objects.create(user=user, level="city")
    Grid.objects.filter(pk=city.grids["west"].pk).update(worker=user)
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {Token.objects.create(user=user).key}"
    return client


def _event(api) -> int:
    body = (
        '{"channel": "hotline", "category": "hazard.fire", "description": "x", '
        f'"location": {{"lon": {WEST_POINT[0]}, "lat": {WEST_POINT[1]}}}}}'
    )
    return api.post("/api/events", body, content_type="application/json").json()["id"]


JSON_POSTS = [
    "/api/events",
    "/api/grid/events",
    "/api/events/{id}/actions",
    "/api/grid/events/{id}/actions",
    "/api/persons/{person}/reveal",
    "/api/events/{id}/reveal",
]

SURROGATE = '{"channel": "hotline", "description": "x\\ud800", "action": "x\\udfff"}'
SURROGATE_KEY = '{"\\ud83d": 1}'
DEEP = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a": ' * 5_000 + "1" + "}" * 5_000


@pytest.mark.parametrize("path", JSON_POSTS)
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (SURROGATE, "body: is not valid JSON: a lone surrogate (\\ud800) in a string is not a character"),
        (SURROGATE_KEY, "body: is not valid JSON: a lone surrogate (\\ud83d) in a string is not a character"),
        (DEEP, "body: is not valid JSON: nested deeper than 64 levels"),
        (DEEP_OBJECT, "body: is not valid JSON: nested deeper than 64 levels"),
    ],
    ids=["surrogate", "surrogate-key", "deep-array", "deep-object"],
)
def test_hostile_json_is_a_400_naming_the_problem(api, city, path, body, message):
    url = path.format(id=_event(api), person=city.person.pk)
    response = api.post(url, body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert response.json() == {"error": {"code": "bad_parameter", "message": message, "parameter": "body"}}


TOO_MANY = "&".join(f"p{n}=1" for n in range(1_001))


@pytest.mark.parametrize(
    "path",
    [
        "/api/events",
        "/api/locate",
        "/api/geocode",
        "/api/layers",
        "/api/dashboard/kpis",
        "/ogc/collections/events/items",
        "/open311/v2/requests.json",
        "/open311/v2/services.xml",
        "/exports/events.geojson",
        "/tiles/events/14/13000/6000.pbf",
        "/tiles/events.json",
        "/tiles/heat/10/800/400.png",
        "/api/grid/package",
        "/api/schema/",
    ],
)
def test_more_than_a_thousand_query_parameters_is_a_400(api, path):
    response = api.get(f"{path}?{TOO_MANY}")
    assert response.status_code == 400, (path, response.content[:300])
    assert response.json() == {
        "error": {
            "code": "bad_parameter",
            "message": "query: more than 1,000 parameters (at most 1,000 are read)",
            "parameter": "query",
        }
    }
