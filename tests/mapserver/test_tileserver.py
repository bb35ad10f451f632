"""The asynchronous tile server answers every tile request exactly as the Django view does
(status, bytes, the headers that matter, error bodies), reads sessions and tokens the same way,
uses the tile cache, answers 503 when PostgreSQL is away, and hands every other URL to Django.

Transactional tests: the server reads through its own connections (asyncpg), which only see
committed rows."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import mapbox_vector_tile
import pytest
from a2wsgi import WSGIMiddleware
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import connection, connections
from django.test import Client
from rest_framework.authtoken.models import Token

from basemaps.tiles import lonlat_to_tile
from mapserver.asgi import django_application
from mapserver.tileplan import tile_cached
from mapserver.tileserver import TileServer
from tests.worlds.city import WEST_POINT
from tests.worlds.scope import POINTS, scope_world

from .test_scope import SEES
from .test_tiles import AT, EVENTS_TILE, X, Y, Z, event

pytestmark = pytest.mark.django_db(transaction=True)

#: The headers both servers must agree on for a tile or an error.
COMPARED = (
    "Content-Type",
    "Content-Length",
    "ETag",
    "Cache-Control",
    "WWW-Authenticate",
    "Allow",
    "Retry-After",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
    "Content-Security-Policy",
    "Permissions-Policy",
    "Content-Encoding",
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Max-Age",
    "Access-Control-Expose-Headers",
)
#: The origin the parity table lets call cross-origin.
ALLOWED_ORIGIN = "https://media.example.cn"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def served(requests: list[tuple[str, str, dict]], *, server: TileServer | None = None) -> list[Answer]:
    """Runs the ASGI application over ``(method, path?query, headers)`` requests in one event
    loop, with its lifespan started before and shut down after, as uvicorn drives it."""
    django = WSGIMiddleware(django_application, workers=1)
    app = server or TileServer(fallback=django)

    async def one(method: str, target: str, headers: dict) -> Answer:
        path, _, query = target.partition("?")
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
            "server": ("testserver", 80), "client": ("127.0.0.1", 5000),
        }  # fmt: skip
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        await app(scope, receive, send)
        start = sent[0]
        body = b"".join(m.get("body", b"") for m in sent[1:])
        names = {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}
        return Answer(start["status"], names, body)

    async def run() -> list[Answer]:
        inbox: asyncio.Queue = asyncio.Queue()
        outbox: asyncio.Queue = asyncio.Queue()
        lifespan = asyncio.create_task(app({"type": "lifespan"}, inbox.get, outbox.put))
        await inbox.put({"type": "lifespan.startup"})
        assert (await outbox.get())["type"] == "lifespan.startup.complete"
        try:
            return [await one(*request) for request in requests]
        finally:
            await inbox.put({"type": "lifespan.shutdown"})
            assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
            await lifespan
            # Django ran on the bridge's one thread: its connection must not outlive the test.
            await asyncio.get_running_loop().run_in_executor(django.executor, connections.close_all)
            django.executor.shutdown()

    # In a thread of its own: a browser test's Playwright may keep an event loop running in this one.
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, run()).result()


def django_answer(client: Client, method: str, target: str, headers: dict) -> Answer:
    response = getattr(client, method.lower())(target, headers=headers)
    return Answer(response.status_code, {k.lower(): v for k, v in response.items()}, response.content)


@pytest.fixture(autouse=True)
def tile_cache_off(settings):
    """Both servers share this process's tile cache; with it off each renders for itself."""
    settings.MINQING_TILE_CACHE_SECONDS = 0
    caches["tiles"].clear()


@pytest.fixture
def analyst_token(django_user_model) -> str:
    user = django_user_model.objects.create_user("tile-analyst", password="secret-1")  # noqa: S106
    user.groups.add(Group.objects.get_or_create(name="analyst")[0])
    return Token.objects.create(user=user).key


def tile(layer: str, z: int = Z, x: int = X, y: int = Y, query: str = "") -> str:
    return f"/tiles/{layer}/{z}/{x}/{y}.pbf" + (f"?{query}" if query else "")


def statistics_flushed() -> None:
    """Data versions come from table statistics, which a backend flushes about once a second:
    ask for the flush now, so that both servers read the same version of what the test wrote."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def test_every_answer_matches_the_django_view(city, analyst_token, django_user_model, settings):
    settings.MINQING_CORS_ORIGINS = [ALLOWED_ORIGIN]
    event("dispute.neighbour", at=AT)
    event("hazard.fire", at=AT + dt.timedelta(days=40), status="closed")
    inactive = django_user_model.objects.create_user("tile-gone", is_active=False)
    statistics_flushed()
    token = {"Authorization": f"Token {analyst_token}"}
    x12, y12 = lonlat_to_tile(*WEST_POINT, 12)
    cases = [
        ("GET", tile("grids_small"), token),
        ("GET", tile("grids_small", 12, x12, y12), token),  # outside the layer's zooms: empty 200
        ("GET", tile("events", *EVENTS_TILE), token),
        ("GET", tile("events", *EVENTS_TILE, query="category=dispute"), token),
        ("GET", tile("events", *EVENTS_TILE, query="status=closed&since=2025-03-15T00:00:00%2B08:00"), token),
        ("GET", tile("events", *EVENTS_TILE, query="category=x%27%20OR%201=1--"), token),
        ("GET", tile("events", *EVENTS_TILE, query="limit=3"), token),
        ("GET", tile("grids_small", 23, 0, 0), token),
        ("GET", tile("grids_small", 3, 8, 0), token),
        ("GET", "/tiles/grids_small/1e3/0/0.pbf", token),
        ("GET", tile("nowhere"), token),
        ("GET", tile("grids_small"), {}),
        ("GET", tile("grids_small"), {"Accept-Language": "en-GB,en;q=0.8"}),
        ("GET", tile("grids_small"), {"Cookie": "django_language=en"}),
        ("GET", tile("grids_small"), {"Authorization": "Token not-a-token"}),
        ("GET", tile("grids_small"), {"Authorization": "Token two words"}),
        ("GET", tile("grids_small"), {"Authorization": f"Token {Token.objects.create(user=inactive).key}"}),
        ("HEAD", tile("grids_small"), token),
        ("POST", tile("grids_small"), token),
        ("GET", tile("grids_small"), token | {"Accept-Encoding": "gzip, deflate, br"}),
        ("GET", tile("events", *EVENTS_TILE), token | {"Accept-Encoding": "gzip"}),
        ("GET", tile("grids_small"), token | {"Origin": ALLOWED_ORIGIN}),
        ("GET", tile("grids_small"), {"Origin": ALLOWED_ORIGIN}),  # a 401 the page can read
        ("GET", tile("grids_small"), token | {"Origin": "https://elsewhere.example.com"}),
        (
            "OPTIONS",
            tile("grids_small"),
            {"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "GET",
             "Access-Control-Request-Headers": "authorization"},
        ),
        (
            "OPTIONS",
            tile("grids_small"),
            {"Origin": "https://elsewhere.example.com", "Access-Control-Request-Method": "GET",
             "Access-Control-Request-Headers": "authorization"},
        ),
    ]  # fmt: skip
    client = Client()
    ours = served(cases)
    for (method, target, headers), answer in zip(cases, ours, strict=True):
        expected = django_answer(client, method, target, headers)
        assert answer.status == expected.status, (target, answer.body[:200], expected.body[:200])
        for name in COMPARED:
            assert answer.header(name) == expected.header(name), (target, name)
        # Django adds Accept-Language (its error pages are translated); tile bytes never vary by it.
        if answer.status in (200, 304):
            assert answer.header("Vary") == "Cookie, Authorization, Accept-Encoding, Origin"
            assert expected.header("Vary") == "Cookie, Authorization, Accept-Encoding, Origin, Accept-Language"
        if answer.header("Content-Type") == "application/json":
            assert json.loads(answer.body) == json.loads(expected.body), target
        else:
            assert answer.body == expected.body, target
    # The table holds real tiles, not only errors: the first holds both small grids.
    assert set(mapbox_vector_tile.decode(ours[0].body)) == {"grids_small"}
    assert len(mapbox_vector_tile.decode(ours[0].body)["grids_small"]["features"]) == 2
    assert ours[4].body != ours[2].body != b""


def test_the_etag_revalidates_without_a_body(city, analyst_token):
    token = {"Authorization": f"Token {analyst_token}"}
    (first,) = served([("GET", tile("grids_small"), token)])
    etag = first.header("ETag")
    revalidated, stale = served(
        [
            ("GET", tile("grids_small"), token | {"If-None-Match": f'W/"other", {etag}'}),
            ("GET", tile("grids_small"), token | {"If-None-Match": '"other"'}),
        ]
    )
    assert revalidated.status == 304 and revalidated.body == b"" and revalidated.header("ETag") == etag
    assert stale.status == 200 and stale.body == first.body != b""


def test_a_session_cookie_reads_as_in_django_and_dies_with_a_password_change(city, django_user_model):
    user = django_user_model.objects.create_user("tile-session", password="secret-1")  # noqa: S106
    client = Client()
    client.force_login(user)
    # An odd cookie before the session's (the stdlib's parser drops everything after it).
    cookie = {"Cookie": f"theme=dark mode; sessionid={client.cookies['sessionid'].value}"}
    (before,) = served([("GET", tile("grids_small"), cookie)])
    assert before.status == 200 and before.body
    user.set_password("secret-2")
    user.save()
    (after,) = served([("GET", tile("grids_small"), cookie)])
    assert after.status == 401 and after.header("WWW-Authenticate") == 'Token realm="api"'
    Session.objects.all().update(expire_date=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    client.force_login(user)
    expired = {"Cookie": f"sessionid={client.cookies['sessionid'].value}"}
    Session.objects.all().update(expire_date=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    assert served([("GET", tile("grids_small"), expired)])[0].status == 401


def test_the_tile_cache_is_read_and_filled(city, analyst_token, settings):
    settings.MINQING_TILE_CACHE_SECONDS = 60
    token = {"Authorization": f"Token {analyst_token}"}
    (first,) = served([("GET", tile("grids_small"), token)])
    digest = first.header("ETag").strip('"')
    assert tile_cached(digest) == first.body != b""
    caches["tiles"].set(f"tile:{digest}", b"from the cache", 60)
    (second,) = served([("GET", tile("grids_small"), token)])
    assert second.body == b"from the cache" and second.header("Content-Length") == "14"


def test_a_lost_database_is_a_retryable_503(city, analyst_token, tmp_path):
    nowhere = TileServer(
        fallback=WSGIMiddleware(django_application, workers=1), database=lambda: {"host": str(tmp_path), "port": 5439}
    )
    (answer,) = served([("GET", tile("grids_small"), {"Authorization": f"Token {analyst_token}"})], server=nowhere)
    assert answer.status == 503
    assert json.loads(answer.body) == {"error": {"code": "unavailable", "message": "数据库暂不可用，请稍后重试"}}
    # Like every other 503: when to retry, and the security headers (the review found neither).
    assert answer.header("Retry-After") == "2"
    assert answer.header("X-Content-Type-Options") == "nosniff"
    assert answer.header("X-Frame-Options") == "DENY"
    assert "script-src 'self'" in answer.header("Content-Security-Policy")


def test_every_other_url_is_django(analyst_token):
    token = {"Authorization": f"Token {analyst_token}"}
    layers, heat_typo = served([("GET", "/api/layers", token), ("GET", "/tiles/heat/1/2/3.pbf", token)])
    assert layers.status == 200
    assert json.loads(layers.body) == json.loads(Client().get("/api/layers", headers=token).content)
    # A .pbf under /tiles/heat/ is a tile URL of a layer named "heat": the tile server's 404.
    assert heat_typo.status == 404
    assert json.loads(heat_typo.body)["error"]["message"] == "没有这个图层：heat"


def test_the_reader_gets_their_scope_and_it_keys_the_tile(django_user_model):
    """The grid worker of WEST sees WEST's events only; their ETag is not the analyst's."""
    world = scope_world()
    tokens = {name: {"Authorization": f"Token {Token.objects.create(user=world.users[name]).key}"} for name in SEES}
    z = 16
    targets = sorted({lonlat_to_tile(*point, z) for point in POINTS.values()})
    requests = [("GET", tile("events", z, x, y), headers) for headers in tokens.values() for x, y in targets]
    answers = iter(served(requests))
    etags: dict[str, list[str]] = {}
    for name in tokens:
        ids: set[int] = set()
        for _ in targets:
            answer = next(answers)
            assert answer.status == 200
            etags.setdefault(name, []).append(answer.header("ETag"))
            for layer in mapbox_vector_tile.decode(answer.body).values():
                ids |= {feature["id"] for feature in layer["features"]}
        expected = {world.rows[grid][kind].pk for grid in SEES[name] for kind in ("event", "dispute")}
        assert ids == expected, name
    assert etags["gridworker"] != etags["analyst"]
