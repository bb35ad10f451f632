"""What a vector-tile request asks for, decided once for both servers of ``/tiles/``.

Two servers answer ``/tiles/<layer>/<z>/<x>/<y>.pbf``: the Django view (``manage.py runserver``,
the test client, any WSGI server) and the asynchronous tile server (:mod:`mapserver.tileserver`,
what ``mapserver.asgi`` serves in production). Everything that decides the answer lives here so
the two cannot drift: which layer and fields the reader gets, the parsed filters, the cache key
and ETag, the headers. The servers only differ in how they reach PostgreSQL.

The cache key and ETag are a hash of the layer, z/x/y, the filters, the layer's data version, the
reader's role set (it picks the fields) and, for a scoped layer, their data scope: a write to the
layer's tables changes the version, so no stale tile is served for longer than the data version
is remembered; a reader with other roles or another scope never shares a key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.utils.translation import gettext as _

from basemaps.tiles import MAX_ZOOM
from layers.protection.access import Reader
from layers.publishing.catalog import Field, Layer, layer_get

from . import compression, cors, params
from .errors import NotFound, PermissionDenied
from .metrics import TILE_CACHE

MVT_CONTENT_TYPE = "application/vnd.mapbox-vector-tile"


@dataclass(frozen=True)
class TileAsk:
    """A readable layer, valid tile coordinates and filters, and the fields this reader gets."""

    layer: Layer
    z: int
    x: int
    y: int
    filters: dict[str, object]
    fields: tuple[Field, ...]

    @property
    def in_range(self) -> bool:
        """Outside the layer's zoom range the answer is an empty tile, never rendered."""
        return self.layer.minzoom <= self.z <= self.layer.maxzoom


def tile_ask(*, reader: Reader, layer_id: str, z: str, x: str, y: str, query: Mapping) -> TileAsk:
    """Checks a tile request: 404 for an unknown layer, 403 for one the reader may not read,
    400 naming a bad z/x/y or query parameter."""
    layer = layer_get(layer_id)
    if layer is None:
        raise NotFound(_("No such layer: %(layer)s") % {"layer": layer_id}, layer=layer_id)
    if not layer.readable_by(reader.roles, superuser=reader.superuser):
        raise PermissionDenied(_("You may not read the layer %(layer)s.") % {"layer": layer_id}, layer=layer_id)
    zoom, tx, ty = params.parse_tile(z, x, y, max_zoom=MAX_ZOOM)
    filters = params.parse_layer_filters(query, layer.filters)
    fields = layer.fields_for(reader.roles, superuser=reader.superuser)
    return TileAsk(layer=layer, z=zoom, x=tx, y=ty, filters=filters, fields=fields)


def _canonical(filters: Mapping[str, object]) -> str:
    return "&".join(
        f"{name}={value.isoformat() if hasattr(value, 'isoformat') else value}"
        for name, value in sorted(filters.items())
    )


def tile_digest(ask: TileAsk, *, version: str, reader: Reader) -> str:
    """The cache key of the tile: a hash of everything its bytes depend on."""
    if not ask.in_range:
        key = f"empty|{ask.layer.id}|{ask.z}"
    else:
        # Reference layers (outlines) are the same for every scope: their tiles stay shared.
        scope = reader.scope.key if ask.layer.scope else "all"
        key = "|".join(
            (ask.layer.id, f"{ask.z}/{ask.x}/{ask.y}", _canonical(ask.filters), version, reader.roles_key, scope)
        )
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak or strong) or ``*``."""
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in candidates or "*" in candidates


def tile_etag(digest: str, encoding: str | None) -> str:
    """The ETag of the tile in one encoding: each encoding is another representation, so
    another tag (a cache must not answer a gzip client with brotli bytes)."""
    return f'"{digest}-{encoding}"' if encoding else f'"{digest}"'


def tile_headers(
    ask: TileAsk, *, etag: str, length: int, encoding: str | None = None, origin: str = ""
) -> dict[str, str]:
    """The headers of every tile answer, 200 or 304 (``encoding``: the body's
    ``Content-Encoding``; ``origin``: the request's, for the CORS headers)."""
    max_age = settings.MINQING_TILE_MAX_AGE_LIVE if ask.layer.filters else settings.MINQING_TILE_MAX_AGE_STATIC
    headers = {
        "Content-Type": MVT_CONTENT_TYPE,
        # Always set: a tile must never go out chunked (clients stall on it, performance-anchors §4).
        "Content-Length": str(length),
        "ETag": etag,
        # private: the answer depends on who asks (their roles pick the fields).
        "Cache-Control": f"private, max-age={max_age}",
        "Vary": "Cookie, Authorization, Accept-Encoding, Origin",
        "X-Content-Type-Options": "nosniff",
    }
    if encoding:
        headers["Content-Encoding"] = encoding
    return headers | cors.response_headers(origin)


def tile_encoded(digest: str, body: bytes, accept_encoding: str) -> tuple[bytes, str | None]:
    """The tile's bytes in the encoding the client takes best (brotli, gzip or none) and that
    encoding; compressed copies are kept in the tile cache beside the tile. An empty tile stays
    empty."""
    encoding = compression.accepted_encoding(accept_encoding) if body else None
    if encoding is None:
        return body, None
    key = f"tile:{digest}:{encoding}"
    cached = caches["tiles"].get(key) if settings.MINQING_TILE_CACHE_SECONDS > 0 else None
    if cached is None:
        cached = compression.compress(body, encoding)
        if settings.MINQING_TILE_CACHE_SECONDS > 0:
            caches["tiles"].set(key, cached, settings.MINQING_TILE_CACHE_SECONDS)
    return cached, encoding


def tile_cached(digest: str) -> bytes | None:
    """The cached tile, or ``None`` on a miss or with the cache turned off."""
    if settings.MINQING_TILE_CACHE_SECONDS <= 0:
        return None
    body = caches["tiles"].get(f"tile:{digest}")
    TILE_CACHE.labels("miss" if body is None else "hit").inc()
    return body


def tile_keep(digest: str, body: bytes) -> None:
    seconds = settings.MINQING_TILE_CACHE_SECONDS
    if seconds > 0:
        caches["tiles"].set(f"tile:{digest}", body, seconds)
