"""CORS: pages on the origins in MINQING_CORS_ORIGINS call the API, the OGC API, Open311 and
the tiles with a token (preflight answered, Authorization allowed, no cookies); any other origin
gets no CORS header at all. The tile server's side is in test_tileserver's parity table."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db

ALLOWED = "https://media.example.cn"
OTHER = "https://elsewhere.example.com"


@pytest.fixture(autouse=True)
def origins(settings):
    settings.MINQING_CORS_ORIGINS = [ALLOWED]


@pytest.fixture
def token(django_user_model) -> str:
    user = django_user_model.objects.create_user("cors-analyst")
    user.groups.add(Group.objects.get_or_create(name="analyst")[0])
    return Token.objects.create(user=user).key


PATHS = [
    "/api/whoami",
    "/ogc/collections",
    "/ogc/collections/events/items",
    "/tiles/events.json",
    "/open311/v2/services.json",
]


@pytest.mark.parametrize("path", [*PATHS, "/tiles/events/14/0/0.pbf"])
def test_a_preflight_from_an_allowed_origin_is_answered(client, city, path):
    response = client.options(
        path,
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization, Accept",
        },
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == ALLOWED
    assert "authorization" in response["Access-Control-Allow-Headers"].split(", ")
    assert "GET" in response["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in response


@pytest.mark.parametrize("headers", [
    {"Origin": OTHER, "Access-Control-Request-Method": "GET"},
    {"Origin": ALLOWED, "Access-Control-Request-Method": "DELETE"},
    {"Origin": ALLOWED, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "X-Secret"},
])  # fmt: skip
def test_a_preflight_that_is_not_allowed_is_not_granted(client, city, headers):
    """No method or header is granted (the browser then refuses the call); an origin off the
    list gets no CORS header at all."""
    response = client.options("/ogc/collections", headers=headers)
    assert response.status_code != 204
    granted = [name for name in response.headers if name.lower().startswith("access-control-")]
    assert "Access-Control-Allow-Methods" not in granted and "Access-Control-Allow-Headers" not in granted
    if headers["Origin"] == OTHER:
        assert not granted


@pytest.mark.parametrize("path", PATHS)
def test_a_token_works_cross_origin(client, city, token, path):
    response = client.get(path, headers={"Origin": ALLOWED, "Authorization": f"Token {token}"})
    assert response.status_code == 200, response.content[:300]
    assert response["Access-Control-Allow-Origin"] == ALLOWED
    assert "ETag" in response["Access-Control-Expose-Headers"]
    assert "Origin" in response["Vary"]


def test_an_origin_off_the_list_gets_nothing(client, city, token):
    response = client.get("/api/whoami", headers={"Origin": OTHER, "Authorization": f"Token {token}"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response


def test_pages_are_not_opened_to_other_origins(client, city):
    response = client.options("/wall/", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in response


def test_no_origins_by_default(client, city, token, settings):
    settings.MINQING_CORS_ORIGINS = []
    response = client.get("/api/whoami", headers={"Origin": ALLOWED, "Authorization": f"Token {token}"})
    assert "Access-Control-Allow-Origin" not in response
