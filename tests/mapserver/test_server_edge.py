"""The real server's edge (scripts/serve.sh, uvicorn as make run and production start it): the
client's address comes from configured proxies only, so a forged X-Forwarded-For unlocks
nothing; the access log never holds a credential."""

from __future__ import annotations

import http.client
import re
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection
from rest_framework.authtoken.models import Token

from scripts.loadgen import app_database_url, serve

PASSWORD = "right-password"  # noqa: S105  (a test account's)
#: make run's configuration: the development settings, no proxy in front.
MAKE_RUN = {"DJANGO_SETTINGS_MODULE": "settings.dev", "MINQING_TRUSTED_PROXIES": ""}


@pytest.fixture
def account(transactional_db, django_user_model):
    """Committed (the server is another process): a user with a known password, hashed as the
    server's settings hash it (the tests' own settings use a fast hasher the server does not know)."""
    hashed = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
    return django_user_model.objects.create(username="li", password=hashed)


class Browser:
    """A login form client over one HTTP connection, keeping the CSRF cookie."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: str | None = None, headers: dict | None = None):
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        sent = {**({"Cookie": cookie} if cookie else {}), **(headers or {})}
        self.connection.request(method, path, body, sent)
        response = self.connection.getresponse()
        text = response.read().decode("utf-8", errors="replace")
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return response.status, text

    def login(self, password: str, *, username: str = "li", headers: dict | None = None) -> int:
        status, page = self.request("GET", "/accounts/login/", headers=headers)
        assert status == 200, page[:500]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
        form = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
        status, _ = self.request(
            "POST",
            "/accounts/login/",
            form,
            {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
        )
        self.cookies.pop("sessionid", None)
        return status


def test_a_forged_x_forwarded_for_does_not_unlock_a_locked_login(account):
    """The review locked an account with five wrong passwords, then logged in with the right
    one by adding X-Forwarded-For: uvicorn believed the header from 127.0.0.1."""
    with serve(db_url=app_database_url(connection.settings_dict), workers=1, env=MAKE_RUN) as server:
        browser = Browser(server.port)
        assert [browser.login("wrong") for _ in range(5)] == [200, 200, 200, 200, 429]
        for forged in ({"X-Forwarded-For": "203.0.113.7"}, {"X-Real-IP": "203.0.113.8"}, {"Forwarded": "for=1.2.3.4"}):
            assert browser.login(PASSWORD, headers=forged) == 429, forged


def test_behind_a_trusted_proxy_each_client_is_counted_apart(account):
    """From a configured proxy, the client is the right-most address it appended: one client's
    failures lock that client only, and a client cannot hide behind an address it prepends."""
    env = {**MAKE_RUN, "MINQING_TRUSTED_PROXIES": "127.0.0.1"}
    with serve(db_url=app_database_url(connection.settings_dict), workers=1, env=env) as server:
        browser = Browser(server.port)
        one = {"X-Forwarded-For": "203.0.113.1"}
        assert [browser.login("wrong", headers=one) for _ in range(5)] == [200, 200, 200, 200, 429]
        # The same client with a made-up address in front of the one the proxy appended.
        assert browser.login(PASSWORD, headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.1"}) == 429
        assert browser.login(PASSWORD, headers={"X-Forwarded-For": "203.0.113.2"}) == 302


def test_the_access_log_never_holds_an_open311_api_key(account):
    key = Token.objects.create(user=account).key
    with serve(db_url=app_database_url(connection.settings_dict), workers=1, env=MAKE_RUN) as server:
        client = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        client.request("GET", f"/open311/v2/requests.json?api_key={key}&status=open")
        response = client.getresponse()
        response.read()
        assert response.status == 200
        client.request("GET", f"/open311/v2/requests.json?api_key={key}x")
        assert client.getresponse().status == 401
        log = server.log_text()
    assert "api_key=[redacted]&status=open" in log
    assert key not in log
