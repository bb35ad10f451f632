"""Hardening of the HTTP edge: security headers and a Content-Security-Policy without inline
script (the admin's map widgets get a per-response nonce), no inline script in our templates,
rate limits (429 with Retry-After through the error tree), login lockout per username and
address, request size limits (413), and the production settings: `check --deploy` is clean and
they send HSTS, redirect to HTTPS and mark the cookies Secure."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.test import override_settings
from rest_framework.authtoken.models import Token

from mapserver.security import content_security_policy
from tests.worlds.factories import grid_tree, region_chain

ROOT = Path(settings.BASE_DIR)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.org", "root-password")
    client.force_login(user)
    return client


# --- headers ----------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path, status",
    [("/", 200), ("/api/schema/", 200), ("/accounts/login/", 200), ("/admin/login/", 200), ("/api/nowhere", 404),
     ("/api/events", 401), ("/ogc/", 401)],
)  # fmt: skip
def test_every_response_carries_the_security_headers(client, path, status):
    response = client.get(path)
    assert response.status_code == status
    assert {name: response.get(name) for name in SECURITY_HEADERS} == {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "geolocation=(self), camera=(self), microphone=(), payment=(), usb=()",
    }


SECURITY_HEADERS = (
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "X-Frame-Options",
    "Cross-Origin-Opener-Policy",
    "Permissions-Policy",
)


@override_settings(
    MINQING_BASEMAPS=[
        {"name": "offline", "kind": "offline"},
        {"name": "osm", "kind": "xyz", "url": "https://{s}.tile.example.org/{z}/{x}/{y}.png"},
    ]
)
def test_xyz_basemap_hosts_may_serve_images():
    assert "img-src 'self' data: blob: https://a.tile.example.org;" in content_security_policy()


_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/(?:ld\+)?json\")[^>]*>", re.I)
_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)


def test_no_template_has_inline_script_or_event_handlers():
    """The pages run under script-src 'self': data goes through json_script or data- attributes."""
    offenders = []
    for template in sorted(ROOT.glob("*/templates/**/*.html")):
        text = template.read_text(encoding="utf-8")
        for pattern in (_INLINE_SCRIPT, _HANDLER):
            offenders += [f"{template.relative_to(ROOT)}: {m.group(0)}" for m in pattern.finditer(text)]
    assert offenders == []


def _inline_scripts(html: str) -> list[str]:
    return [m.group(0) for m in _INLINE_SCRIPT.finditer(html)]


@pytest.mark.django_db
def test_the_admin_map_widget_runs_under_a_per_response_nonce(admin_client):
    """django-leaflet's widget needs inline script: its tags carry this response's nonce, which
    the policy allows for this response only; admin pages without a map get no nonce."""
    grids = grid_tree(region_chain()["community"])
    pages = {}
    for attempt in range(2):
        response = admin_client.get(f"/admin/layers/grid/{grids['west'].pk}/change/")
        assert response.status_code == 200
        nonce = re.search(r"script-src 'self' 'nonce-([A-Za-z0-9_-]{24})'", response["Content-Security-Policy"])
        assert nonce, response["Content-Security-Policy"]
        html = response.content.decode()
        scripts = _inline_scripts(html)
        assert scripts and all(f'nonce="{nonce.group(1)}"' in tag for tag in scripts), scripts
        pages[attempt] = nonce.group(1)
    assert pages[0] != pages[1]
    assert admin_client.get("/admin/")["Content-Security-Policy"] == CSP
    from layers.models import BoundaryVersion

    version = BoundaryVersion.objects.create(
        subject="grid", code=grids["west"].code, level="small", boundary=grids["west"].boundary,
        valid_from="2020-01-01", valid_to="2024-01-01", source="test",
    )  # fmt: skip
    response = admin_client.get(f"/admin/layers/boundaryversion/{version.pk}/change/")
    nonce = re.search(r"'nonce-([A-Za-z0-9_-]{24})'", response["Content-Security-Policy"]).group(1)
    scripts = _inline_scripts(response.content.decode())
    assert scripts and all(f'nonce="{nonce}"' in tag for tag in scripts)


# --- rate limits --------------------------------------------------------------------------------------

RATES = {"anon": "2/min", "user": "3/min", "intake": "5/min"}


@pytest.fixture
def low_rates():
    cache.clear()
    with override_settings(MINQING_THROTTLE_RATES=RATES):
        yield
    cache.clear()


def _throttled(response, *, georeport: bool = False) -> None:
    assert response.status_code == 429
    seconds = int(response["Retry-After"])
    assert 1 <= seconds <= 60
    message = f"Too many requests: retry in {seconds} s."
    if georeport:  # Open311 answers GeoReport's error list
        assert response.json() == [{"code": 429, "description": message}]
        return
    assert response.json() == {"error": {"code": "throttled", "message": message, "retry_after": seconds}}


@pytest.mark.django_db
def test_anonymous_requests_are_limited_per_address(client, low_rates):
    """Spoofed X-Forwarded-For headers do not dodge the limit (no trusted proxy is configured)."""
    for n in range(2):
        assert client.get("/api/schema/", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code == 200
    _throttled(client.get("/api/schema/", HTTP_X_FORWARDED_FOR="10.0.0.9"))
    # Another address has its own allowance.
    assert client.get("/api/schema/", REMOTE_ADDR="192.0.2.7").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/api/whoami", "/api/layers", "/open311/v2/services.json", "/ogc/collections", "/api/events"]
)
def test_users_are_limited_per_user(client, django_user_model, low_rates, path):
    user = django_user_model.objects.create_user("reader")
    token = Token.objects.create(user=user)
    other = Token.objects.create(user=django_user_model.objects.create_user("other"))
    headers = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    for _ in range(3):
        assert client.get(path, **headers).status_code == 200
    _throttled(client.get(path, **headers), georeport=path.startswith("/open311/"))
    assert client.get(path, HTTP_AUTHORIZATION=f"Token {other.key}").status_code == 200


@pytest.mark.django_db
def test_intake_systems_have_their_own_higher_rate(client, django_user_model, low_rates):
    hotline = django_user_model.objects.create_user("hotline")
    hotline.groups.add(Group.objects.create(name="intake:hotline"))
    headers = {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=hotline).key}"}
    for _ in range(5):
        assert client.get("/api/whoami", **headers).status_code == 200
    _throttled(client.get("/api/whoami", **headers))


# --- login lockout -------------------------------------------------------------------------------------

LOCKED = "too many failed logins: this account is locked from this address for 15 minutes; try again later"


@pytest.fixture
def account(django_user_model):
    return django_user_model.objects.create_user("li", password="right-password")  # noqa: S106


def _login(
    client, password: str, *, address: str = "198.51.100.1", username: str = "li", path: str = "/accounts/login/"
):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.django_db
def test_five_failures_lock_the_username_from_that_address(client, account):
    for _ in range(4):
        response = _login(client, "wrong")
        assert response.status_code == 200
        assert 'id="login-error"' in response.content.decode()
    response = _login(client, "wrong")
    assert (response.status_code, response["Retry-After"]) == (429, "900")
    assert LOCKED in response.content.decode()
    # Locked: even the right password is refused from that address, on the admin login too.
    for path in ("/accounts/login/", "/admin/login/"):
        response = _login(client, "right-password", path=path)
        assert response.status_code == 429, path
        assert LOCKED in response.content.decode()
    # An API client gets the error tree's JSON.
    response = client.post(
        "/accounts/login/",
        {"username": "li", "password": "x"},
        REMOTE_ADDR="198.51.100.1",
        HTTP_ACCEPT="application/json",
    )
    assert response.json() == {"error": {"code": "account_locked", "message": LOCKED, "retry_after": 900}}
    # The same user from another address, and another user from this one, still log in.
    assert _login(client, "right-password", address="198.51.100.2").status_code == 302
    client.logout()
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("wang", password="wang-password")  # noqa: S106
    assert _login(client, "wang-password", username="wang").status_code == 302


@pytest.mark.django_db
def test_the_lock_ends_after_the_cool_off_and_a_success_resets_the_count(client, account):
    from axes.models import AccessAttempt

    for _ in range(5):
        _login(client, "wrong")
    assert _login(client, "right-password").status_code == 429
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time.replace(year=2000))
    assert _login(client, "right-password").status_code == 302
    client.logout()
    # Four failures, a success, four failures: never locked.
    for _ in range(4):
        _login(client, "wrong")
    assert _login(client, "right-password").status_code == 302
    client.logout()
    for _ in range(4):
        assert _login(client, "wrong").status_code == 200


SPRAYED = "too many failed logins from this address: logins from it are refused for 15 minutes; try again later"


@pytest.mark.django_db
def test_password_spraying_from_one_address_locks_that_address(client, account, django_user_model, settings):
    """A few tries at many accounts never trips the per-account lock; the per-address limit
    (MINQING_LOGIN_ADDRESS_FAILURE_LIMIT) refuses every login from that address, the right
    password of an untouched account included, while other addresses log in."""
    settings.MINQING_LOGIN_ADDRESS_FAILURE_LIMIT = 12
    for n in range(6):
        django_user_model.objects.create_user(f"user{n}", password=f"pw-{n}")
    statuses = [_login(client, "guess", username=f"user{n % 6}") for n in range(12)]
    assert [r.status_code for r in statuses] == [200] * 12  # never four tries at one account
    response = _login(client, "right-password")
    assert (response.status_code, response["Retry-After"]) == (429, "900")
    assert SPRAYED in response.content.decode()
    response = _login(client, "x", username="user1", path="/admin/login/")
    assert response.status_code == 429
    assert client.post(
        "/accounts/login/",
        {"username": "li", "password": "x"},
        REMOTE_ADDR="198.51.100.1",
        HTTP_ACCEPT="application/json",
    ).json() == {"error": {"code": "address_locked", "message": SPRAYED, "retry_after": 900}}
    assert _login(client, "right-password", address="198.51.100.99").status_code == 302


# --- request sizes ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_oversized_body_is_refused_before_it_is_read(client, account):
    client.force_login(account)
    response = client.generic(
        "POST", "/api/events", b"{}", content_type="application/json", CONTENT_LENGTH=str(30 * 1024 * 1024)
    )
    assert (response.status_code, response.json()) == (
        413,
        {
            "error": {
                "code": "payload_too_large",
                "message": "The request body of 31,457,280 bytes is over the limit of 20,971,520 bytes.",
                "limit": 20971520,
            }
        },
    )


@pytest.mark.django_db
def test_a_json_body_over_the_form_limit_is_413(client, account):
    client.force_login(account)
    body = json.dumps({"description": "长" * 1_000_000})  # 6 MB of \\u escapes
    response = client.post("/api/events", body, content_type="application/json")
    assert (response.status_code, response.json()) == (
        413,
        {
            "error": {
                "code": "payload_too_large",
                "message": "The request body is over the limit of 2,621,440 bytes.",
                "limit": 2621440,
            }
        },
    )


@pytest.mark.django_db
def test_too_many_form_fields_is_400(client, account):
    client.force_login(account)
    form = "&".join(f"f{n}=1" for n in range(1001))
    response = client.post("/open311/v2/requests.json", form, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in json.dumps(response.json())


# --- production settings ---------------------------------------------------------------------------------


def _prod_environment(**extra: str) -> dict[str, str]:
    # The browser tests' conftest allows the ORM beside Playwright's event loop for this test
    # process only; a deployment must not inherit that (check --deploy says async.E001).
    inherited = {name: value for name, value in os.environ.items() if name != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    environment = {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "settings.prod",
        "DJANGO_SECRET_KEY": "k9#Qv2!xZ7@pL4$wR8^mN1&bT6*cY3(eH5)uJ0_sD-fG+aK=oP[iU]lE{rW}tQ|zX",
        "DJANGO_ALLOWED_HOSTS": "minqing.example.org,testserver",
        "MINQING_PERSONAL_DATA_KEY": "cHJvZC10ZXN0LWtleS0zMi1ieXRlcy1sb25nLTAwMDA=",
        **extra,
    }
    return environment


def test_check_deploy_is_clean_with_the_production_settings():
    done = subprocess.run(  # noqa: S603  (this interpreter, fixed arguments)
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=_prod_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (done.returncode, done.stderr.strip()[-3000:], done.stdout.strip()) == (
        0,
        "",
        "System check identified no issues (1 silenced).",
    )


@pytest.mark.parametrize(
    "missing, message",
    [
        ("DJANGO_SECRET_KEY", "DJANGO_SECRET_KEY must be set in production"),
        ("DJANGO_ALLOWED_HOSTS", "DJANGO_ALLOWED_HOSTS must be set in production"),
        (
            "MINQING_PERSONAL_DATA_KEY",
            "MINQING_PERSONAL_DATA_KEY must be set in production (32 bytes, URL-safe base64)",
        ),
    ],
)
def test_production_refuses_to_start_without_its_secrets(missing, message):
    done = subprocess.run(  # noqa: S603  (this interpreter, fixed arguments)
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=_prod_environment(**{missing: ""}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert f"django.core.exceptions.ImproperlyConfigured: {message}" in done.stderr


_PROBE = """
import json
from django.test import Client
client = Client()
plain = client.get("/accounts/login/")
secure = client.get("/accounts/login/", secure=True)
cookie = secure.cookies["csrftoken"]
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location")],
    "secure": secure.status_code,
    "hsts": secure.get("Strict-Transport-Security"),
    "csp": secure.get("Content-Security-Policy"),
    "csrf_cookie": [bool(cookie["secure"]), cookie["samesite"]],
}))
"""


def test_production_sends_hsts_redirects_to_https_and_marks_cookies_secure():
    done = subprocess.run(  # noqa: S603  (this interpreter, fixed arguments)
        [sys.executable, "manage.py", "shell", "-c", _PROBE],
        cwd=ROOT,
        env=_prod_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "plain": [301, "https://testserver/accounts/login/"],
        "secure": 200,
        "hsts": "max-age=31536000; includeSubDomains; preload",
        "csp": CSP,
        "csrf_cookie": [True, "Lax"],
    }


# --- CSRF ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path, content_type, body",
    [
        ("/api/events", "application/json", "{}"),
        ("/api/persons/1/reveal", "application/json", "{}"),
        ("/open311/v2/requests.json", "application/x-www-form-urlencoded", "service_code=hazard"),
    ],
)
def test_session_writes_need_the_csrf_token(django_user_model, path, content_type, body):
    """A browser session cannot be ridden by another site: without the CSRF token a write is
    refused (an API token, which no other site can send, needs none)."""
    from django.test import Client

    user = django_user_model.objects.create_user("li")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    response = browser.post(path, body, content_type=content_type)
    assert response.status_code == 403
    assert "CSRF Failed: CSRF cookie not set." in response.content.decode()
    token = Token.objects.create(user=user)
    response = Client(enforce_csrf_checks=True).post(
        path, body, content_type=content_type, HTTP_AUTHORIZATION=f"Token {token.key}"
    )
    assert response.status_code in (400, 403, 404) and "CSRF" not in response.content.decode()


# --- what may be kept, and what is built once ----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "cache_control"),
    [
        ("/api/events", "private, no-store"),
        ("/api/layers", "private, no-store"),
        ("/api/locate?lon=103.83&lat=36.06", "private, no-store"),
        ("/open311/v2/requests.json", "private, no-store"),
        ("/ogc/collections", "private, no-store"),
        ("/exports/events.csv", "private, no-store"),
        ("/exports/events.geojson", "private, no-store"),
        ("/api/nowhere", "private, no-store"),
        ("/api/schema/", "public, max-age=3600"),
        ("/tiles/grids_small/14/13000/6000.pbf", "private, max-age=3600"),
    ],
)
def test_answers_that_depend_on_the_reader_are_never_stored(admin_client, path, cache_control):
    """API JSON and exports said nothing, so a shared cache or the browser's disk could keep a
    resident's data; now they say no-store unless the view chose otherwise."""
    response = admin_client.get(path)
    assert response["Cache-Control"] == cache_control


@pytest.mark.django_db
def test_the_schema_is_built_once(client, monkeypatch):
    """Three anonymous clients asking for /api/schema/ pushed a user's request from 20 to 620 ms."""
    from drf_spectacular.generators import SchemaGenerator

    from mapserver.schema import SchemaView

    SchemaView.built.clear()
    calls = []
    original = SchemaGenerator.get_schema
    monkeypatch.setattr(SchemaGenerator, "get_schema", lambda self, **kw: calls.append(1) or original(self, **kw))
    first = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for _ in range(3):
        assert client.get("/api/schema/", HTTP_ACCEPT="application/json").json() == first
    assert client.get("/api/schema/").status_code == 200  # YAML, the same schema
    assert len(calls) == 1
