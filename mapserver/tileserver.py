"""The asynchronous vector-tile server: ``/tiles/<layer>/<z>/<x>/<y>.pbf`` on an asyncpg pool.

Why a second server for one URL: a map on the wall or a tablet asks for dozens of tiles at once,
and each costs PostgreSQL well under a millisecond at z14. Through Django's request cycle (sync
workers, middleware, the ORM's connection handling) the framework cost three times the query
(performance-anchors §4: the tile endpoint must reach 0.8× a bare uvicorn + asyncpg endpoint).
So the tile URL is answered here, on the event loop, with the same decisions as the Django view
(:mod:`mapserver.tileplan`: layer, fields, filters, cache key, ETag, headers), the same SQL
(:func:`layers.selectors.tiles.tile_sql`, narrowed to the reader's data scope), the same readers (session
cookie or token, the statements of :mod:`mapserver.auth` and :mod:`layers.protection.access`), the same
in-process memos and tile cache, and the same error bodies.
Every other request goes to ``fallback`` (Django, see :mod:`mapserver.asgi`).

No Django ORM call happens here: the ORM is synchronous, and a thread hop per tile would cost
what this server exists to save.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from importlib import import_module
from types import SimpleNamespace

import asyncpg
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.core.exceptions import ImproperlyConfigured, TooManyFieldsSent
from django.db import connections
from django.http import QueryDict
from django.http.cookie import parse_cookie
from django.utils import translation
from django.utils.crypto import constant_time_compare

from layers.database.reading import REPLICA
from layers.errors import DomainError
from layers.protection.access import READER_SQL, READERS, Reader, reader_from_row
from layers.publishing.catalog import DATA_VERSION_SQL, DATA_VERSIONS
from layers.selectors.tiles import tile_sql

from . import cors
from .auth import NO_CREDENTIALS, TOKEN_USER_SQL, ReaderNotAuthenticated, token_key, token_user
from .compression import accepted_encoding
from .errors import (
    DATABASE_UNAVAILABLE,
    BadParameter,
    ServerError,
    ServiceUnavailable,
    reference,
    server_error_message,
)
from .metrics import observe
from .params import check_query_size
from .routing import WROTE_COOKIE, wrote_recently
from .security import edge_headers
from .tileplan import (
    etag_matches,
    tile_ask,
    tile_cached,
    tile_digest,
    tile_encoded,
    tile_etag,
    tile_headers,
    tile_keep,
)

logger = logging.getLogger("minqing.tiles")

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]

#: The route label of its answers in the metrics (as Django's pattern reads).
TILE_ROUTE = "tiles/<str:layer>/<str:z>/<str:x>/<str:y>.pbf"
#: The URL this server answers, as Django's ``<str:…>`` converters match it (no slashes inside).
TILE_PATH = re.compile(r"^/tiles/(?P<layer>[^/]+)/(?P<z>[^/]+)/(?P<x>[^/]+)/(?P<y>[^/]+)\.pbf$")

#: Sessions the server can read without Django's ORM: those kept in the database table.
_DB_SESSION_ENGINES = ("django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db")

#: Failures that mean "PostgreSQL is away": the client gets a 503 it may retry.
_UNAVAILABLE = (OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """A psycopg statement (``%s`` placeholders, ``%%`` for a percent sign) in asyncpg's
    ``$1, $2, …`` form.

    >>> numbered("SELECT %s, '100%%', %s")
    "SELECT $1, '100%', $2"
    """
    counter = iter(range(1, 10_000))
    return re.sub(r"%[s%]", lambda m: "%" if m.group() == "%%" else f"${next(counter)}", sql)


_READER = numbered(READER_SQL)
_TOKEN_USER = numbered(TOKEN_USER_SQL)
_DATA_VERSION = numbered(DATA_VERSION_SQL)
_SESSION = "SELECT session_data FROM django_session WHERE session_key = $1 AND expire_date > now()"
_SESSION_USER = f"SELECT id, is_active, is_superuser, password FROM {get_user_model()._meta.db_table} WHERE id = $1"


class TileServer:
    """ASGI application: tile URLs here, everything else to ``fallback``.

    The pool (``MINQING_TILE_POOL_SIZE`` connections per process) opens on the first tile or at
    lifespan start-up, whichever comes first, and closes at lifespan shut-down. ``database``
    gives the connection options (asyncpg's ``connect`` keywords); by default Django's own
    database settings."""

    def __init__(self, fallback: ASGIApp, *, database: Callable[[], dict] | None = None) -> None:
        engine = settings.SESSION_ENGINE
        if engine not in _DB_SESSION_ENGINES:
            raise ImproperlyConfigured(
                f"SESSION_ENGINE {engine!r}: the tile server reads sessions from the database; "
                f"use one of {', '.join(_DB_SESSION_ENGINES)}"
            )
        self.fallback = fallback
        self._database = database or django_database
        self._pool: asyncpg.Pool | None = None
        self._replica_pool: asyncpg.Pool | None = None
        self._replica_database = django_database(REPLICA) if REPLICA in settings.DATABASES else None
        self._pool_lock = asyncio.Lock()
        self._session_store = import_module(engine).SessionStore
        self._edge_headers = edge_headers()

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        match = TILE_PATH.match(scope["path"]) if scope["type"] == "http" else None
        if match is None:
            await self.fallback(scope, receive, send)
            return
        start = time.perf_counter()
        status, headers, body = await self._answer(scope, **match.groupdict())
        # The headers Django's middleware would add, on tiles and errors alike (an error's CORS
        # headers too, so that a page on an allowed origin can read why).
        headers = self._edge_headers | headers
        if "Access-Control-Allow-Origin" not in headers:
            origin = next((v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"origin"), "")
            headers |= cors.response_headers(origin)
        await send({"type": "http.response.start", "status": status, "headers": _encoded(headers)})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
        observe(TILE_ROUTE, scope["method"], status, time.perf_counter() - start)

    # --- lifespan and the pool ------------------------------------------------------------------

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._connect()
                except _UNAVAILABLE as error:  # serve anyway: tiles answer 503 until the DB is back
                    logger.warning("tile server: database unavailable at start-up: %s", error)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for pool in (self._pool, self._replica_pool):
                    if pool is not None:
                        await pool.close()
                self._pool = self._replica_pool = None
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _connect(self) -> asyncpg.Pool:
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    **self._database(),
                    reset=_session_left_as_it_is,
                    min_size=1,
                    max_size=settings.MINQING_TILE_POOL_SIZE,
                    timeout=10,
                    command_timeout=settings.MINQING_TILE_QUERY_SECONDS,
                )
            return self._pool

    # --- one tile -------------------------------------------------------------------------------

    async def _answer(self, scope: dict, *, layer: str, z: str, x: str, y: str) -> tuple[int, dict, bytes]:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        if cors.is_preflight(scope["method"], headers):
            allowed = cors.preflight_headers(
                headers.get("origin", ""),
                headers["access-control-request-method"],
                headers.get("access-control-request-headers", ""),
            )
            if allowed is not None:
                return 204, allowed, b""
        if scope["method"] not in ("GET", "HEAD"):
            # As Django's require_safe answers: 405, the allowed methods, no body.
            return 405, {"Allow": "GET, HEAD", "Content-Type": "text/html; charset=utf-8", "Content-Length": "0"}, b""
        # Error messages in the reader's language, picked as Django's LocaleMiddleware picks it.
        with translation.override(_language(headers)):
            return await self._answer_in_language(scope, headers, layer=layer, z=z, x=x, y=y)

    async def _answer_in_language(
        self, scope: dict, headers: dict, *, layer: str, z: str, x: str, y: str
    ) -> tuple[int, dict, bytes]:
        try:
            pool = self._pool or await self._connect()
            async with pool.acquire() as connection:
                return await self._tile(connection, headers, scope, layer=layer, z=z, x=x, y=y)
        except ReaderNotAuthenticated as error:
            return _error(error, extra={"WWW-Authenticate": error.www_authenticate})
        except DomainError as error:
            return _error(error)
        except TooManyFieldsSent:
            try:
                check_query_size(scope["query_string"].decode("latin-1"))
            except BadParameter as error:
                return _error(error)
            raise
        except _UNAVAILABLE as error:
            logger.warning("tile server: database unavailable on %s: %s", scope["path"], error)
            return _error(ServiceUnavailable(str(DATABASE_UNAVAILABLE)))
        except Exception:
            ref = reference()
            logger.exception("unexpected error on %s %s, reference %s", scope["method"], scope["path"], ref)
            return _error(ServerError(server_error_message(ref), reference=ref))

    async def _tile(
        self, connection: asyncpg.Connection, headers: dict, scope: dict, *, layer: str, z: str, x: str, y: str
    ) -> tuple[int, dict, bytes]:
        database = connections["default"].settings_dict["NAME"]
        reader = await self._reader(connection, headers, database)
        ask = tile_ask(
            reader=reader, layer_id=layer, z=z, x=x, y=y, query=QueryDict(scope["query_string"].decode("latin-1"))
        )
        version = ""
        if ask.in_range and ask.layer.tables:
            key = (database, ask.layer.tables)
            version = DATA_VERSIONS.get(key)
            if version is None:
                version = await connection.fetchval(_DATA_VERSION, list(ask.layer.tables)) or "empty"
                DATA_VERSIONS.put(key, version)
        elif ask.in_range:
            version = "static"
        digest = tile_digest(ask, version=version, reader=reader)
        accept_encoding = headers.get("accept-encoding", "") if ask.in_range else ""
        etag = tile_etag(digest, accepted_encoding(accept_encoding))
        origin = headers.get("origin", "")
        if etag_matches(headers.get("if-none-match", ""), etag):
            return 304, tile_headers(ask, etag=etag, length=0, origin=origin), b""
        body, encoding = b"", None
        if ask.in_range:
            body = tile_cached(digest)
            if body is None:
                sql, params = tile_sql(
                    layer=ask.layer,
                    z=ask.z,
                    x=ask.x,
                    y=ask.y,
                    filters=ask.filters,
                    fields=ask.fields,
                    scope=reader.scope,
                )
                body = await self._render(connection, headers, reader, numbered(sql), params)
                tile_keep(digest, body)
            body, encoding = tile_encoded(digest, body, accept_encoding)
        return 200, tile_headers(ask, etag=etag, length=len(body), encoding=encoding, origin=origin), body

    async def _render(
        self, primary: asyncpg.Connection, headers: dict, reader: Reader, sql: str, params: list
    ) -> bytes:
        """The tile's bytes, from a replica when one is configured and reachable and the reader
        has not written within the read-your-writes window (mapserver.routing), else from the
        primary connection already in hand."""
        cookie = parse_cookie(headers.get("cookie", "")).get(WROTE_COOKIE)
        if self._replica_database is not None and not wrote_recently(cookie=cookie, user_id=reader.user_id):
            try:
                pool = self._replica_pool or await self._connect_replica()
                async with pool.acquire() as replica:
                    return bytes(await replica.fetchval(sql, *params) or b"")
            except _UNAVAILABLE as error:
                logger.warning("tile server: replica unavailable, reading from the primary: %s", error)
        return bytes(await primary.fetchval(sql, *params) or b"")

    async def _connect_replica(self) -> asyncpg.Pool:
        async with self._pool_lock:
            if self._replica_pool is None:
                self._replica_pool = await asyncpg.create_pool(
                    **self._replica_database,
                    reset=_session_left_as_it_is,
                    min_size=1,
                    max_size=settings.MINQING_TILE_POOL_SIZE,
                    timeout=5,
                    command_timeout=settings.MINQING_TILE_QUERY_SECONDS,
                )
            return self._replica_pool

    # --- the reader -----------------------------------------------------------------------------

    async def _reader(self, connection: asyncpg.Connection, headers: dict, database: str) -> Reader:
        """As :func:`mapserver.auth.request_reader`: the session's active user first, then a token."""
        found = await self._session_user(connection, headers.get("cookie", ""))
        if found is None:
            key = token_key(headers.get("authorization", "").encode("latin-1"))
            if key is None:
                raise ReaderNotAuthenticated(str(NO_CREDENTIALS))
            found = token_user(await connection.fetchrow(_TOKEN_USER, key))
        user_id, superuser = found
        key = (database, user_id, superuser)
        reader = READERS.get(key)
        if reader is None:
            reader = reader_from_row(user_id, tuple(await connection.fetchrow(_READER, user_id, user_id, user_id)))
            READERS.put(key, reader)
        return reader

    async def _session_user(self, connection: asyncpg.Connection, cookie_header: str) -> tuple[int, bool] | None:
        """The session's user as Django's ``auth.get_user`` would accept it (known backend, active
        user, password hash unchanged since login), or ``None``."""
        if not cookie_header:
            return None
        session_key = parse_cookie(cookie_header).get(settings.SESSION_COOKIE_NAME)
        if not session_key:
            return None
        data = await connection.fetchval(_SESSION, session_key)
        if data is None:
            return None
        session = self._session_store().decode(data)
        if session.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
            return None
        try:
            user_id = int(session[SESSION_KEY])
        except (KeyError, TypeError, ValueError):
            return None
        row = await connection.fetchrow(_SESSION_USER, user_id)
        if row is None or not row["is_active"] or not _session_hash_ok(session.get(HASH_SESSION_KEY), row["password"]):
            return None
        return row["id"], bool(row["is_superuser"])


async def _session_left_as_it_is(connection: asyncpg.Connection) -> None:
    """The pool's reset on release. This server changes no session state (no SET, LISTEN,
    advisory lock or open cursor; asyncpg still rolls back a transaction left open), so the
    default reset statement would be a round trip to PostgreSQL per tile for nothing."""


def django_database(alias: str = "default") -> dict:
    """asyncpg's connection options for one of Django's databases (a Unix socket directory in
    ``HOST`` works as it does for psycopg)."""
    db = connections[alias].settings_dict
    return {
        "host": db["HOST"] or None,
        "port": int(db["PORT"]) if db["PORT"] else None,
        "user": db["USER"] or None,
        "password": db["PASSWORD"] or None,
        "database": db["NAME"],
    }


def _session_hash_ok(session_hash: str | None, password: str) -> bool:
    """Whether the session was made with the user's current password (under the secret key or
    one of its fallbacks), as Django checks on every request."""
    if not session_hash:
        return False
    user = get_user_model()(password=password)
    if constant_time_compare(session_hash, user.get_session_auth_hash()):
        return True
    return any(constant_time_compare(session_hash, h) for h in user.get_session_auth_fallback_hash())


def _language(headers: dict[str, str]) -> str:
    request = SimpleNamespace(
        # Django's own cookie parser: the stdlib's gives up on the whole header at one odd cookie.
        COOKIES=parse_cookie(headers.get("cookie", "")),
        META={"HTTP_ACCEPT_LANGUAGE": headers.get("accept-language", "")},
    )
    return translation.get_language_from_request(request)


def _error(error: DomainError, *, extra: dict | None = None) -> tuple[int, dict, bytes]:
    """The JSON body and headers the Django error renderer gives the same error (a 503 says
    when to retry)."""
    if error.detail:
        logger.warning("tile server: %s (%s)", error.message, error.detail)
    body = json.dumps(error.as_dict(), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))} | (extra or {})
    if error.status == 503:
        headers["Retry-After"] = str(settings.MINQING_RETRY_AFTER_SECONDS)
    return error.status, headers, body


def _encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
