"""The JSON API takes a session or ``Authorization: Token <key>``; without either it answers 401
in JSON from the error tree."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from layers.services.users import DEMO_PASSWORD, demo_users_ensure

pytestmark = pytest.mark.django_db

WHOAMI = "/api/whoami"


@pytest.fixture
def demo(db) -> dict[str, str]:
    """username → API token of the demo users."""
    return {login.username: login.token for login in demo_users_ensure()}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "身份认证信息未提供。"),
        ({"HTTP_AUTHORIZATION": "Token 0000000000000000000000000000000000000000"}, "认证令牌无效。"),
        ({"HTTP_AUTHORIZATION": "Token"}, "没有提供认证信息（认证令牌HTTP头无效）。"),
        ({"HTTP_AUTHORIZATION": "Token a b"}, "认证令牌字符串不应该包含空格（无效的认证令牌HTTP头）。"),
        ({"HTTP_AUTHORIZATION": "Token x", "HTTP_ACCEPT_LANGUAGE": "en"}, "Invalid token."),
    ],
)
def test_unauthenticated_calls_get_401_json(chinese_client, demo, headers, message):
    """In the default language (Chinese) unless the caller asks for English."""
    response = chinese_client.get(WHOAMI, **headers)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": {"code": "not_authenticated", "message": message}}
    assert response["WWW-Authenticate"] == 'Token realm="api"'


def test_inactive_users_token_is_refused(client, demo, django_user_model):
    django_user_model.objects.filter(username="analyst").update(is_active=False)
    response = client.get(WHOAMI, HTTP_AUTHORIZATION=f"Token {demo['analyst']}")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


CITY = {"level": "city", "key": "city", "districts": [], "streets": [], "communities": [], "grids": []}
#: The demo grid worker of a database without grids works none: their scope is empty.
NOWHERE = CITY | {"level": "grids", "key": "none"}


@pytest.mark.parametrize(
    ("username", "roles", "scope"),
    [("analyst", ["analyst"], CITY), ("gridworker", ["grid_worker"], NOWHERE), ("admin", ["administrator"], CITY)],
)
def test_token_authenticates(client, demo, username, roles, scope):
    response = client.get(WHOAMI, HTTP_AUTHORIZATION=f"Token {demo[username]}")
    assert response.status_code == 200
    assert response.json() == {"username": username, "roles": roles, "scope": scope}


def test_session_login_authenticates(client, demo):
    assert client.login(username="command", password=DEMO_PASSWORD)
    response = client.get(WHOAMI)
    assert response.status_code == 200
    assert response.json() == {"username": "command", "roles": ["command_center"], "scope": CITY}


def test_wrong_password_does_not_log_in(client, demo):
    assert not client.login(username="command", password="wrong")  # noqa: S106
    assert client.get(WHOAMI).status_code == 401


def test_drf_create_token_gives_a_working_token(client, django_user_model):
    django_user_model.objects.create_user("someone", password="some-password")  # noqa: S106
    out = io.StringIO()
    call_command("drf_create_token", "someone", stdout=out)
    key = Token.objects.get(user__username="someone").key
    assert out.getvalue().strip() == f"Generated token {key} for user someone"
    response = client.get(WHOAMI, HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200
    assert response.json()["username"] == "someone"
