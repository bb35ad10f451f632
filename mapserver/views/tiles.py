"""``/tiles/``: Mapbox vector tiles of every catalog layer, their TileJSON and the list of layers.

A tile answer always carries ``Content-Length`` (never a chunked body: clients stall on chunked
tiles, performance-anchors §4), an ``ETag`` and ``Cache-Control``. Outside a layer's zoom range
the answer is an empty 200 tile (``Content-Length: 0``) rather than a 204 or a 404: map clients
treat an empty tile as "nothing here" without logging an error and without retrying.

Tiles are cached (the ``tiles`` cache) under a key made of the layer, z/x/y, the filters, the
layer's data version and the reader's role set; the ETag is a hash of the same key, so a
revalidation never renders the tile.

The tile view is a plain Django view (not DRF) on the hot path: a request costs the reader's
lookup (session, or one token query), the role set and data version remembered in process for a
second or a few (``mapserver.auth``, ``layers.catalog.data_version``), then the tile cache; the
tile query runs only on a miss. TileJSON and the index stay DRF views (read once per map).
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from basemaps.tiles import MAX_ZOOM
from layers.catalog import REGISTRY, Layer, data_version, layer_get
from layers.tiles import layer_extent, tile_render

from .. import params
from ..auth import Reader, reader_roles, reader_view
from ..errors import NotFound, PermissionDenied

MVT_CONTENT_TYPE = "application/vnd.mapbox-vector-tile"
#: The zoom TileJSON proposes as the centre's when the layer's range allows it (a district).
CENTER_ZOOM = 14


def _reader(request: Request) -> tuple[list[str], bool]:
    user = request.user
    return list(reader_roles(user.pk)), bool(user.is_superuser)


def _readable_layer(request: Request, layer_id: str) -> tuple[Layer, list[str], bool]:
    layer = layer_get(layer_id)
    if layer is None:
        raise NotFound(f"没有这个图层 (no such layer): {layer_id}", layer=layer_id)
    roles, superuser = _reader(request)
    if not layer.readable_by(roles, superuser=superuser):
        raise PermissionDenied(f"无权读取图层 (may not read layer): {layer_id}", layer=layer_id)
    return layer, roles, superuser


def _canonical(filters: dict[str, object]) -> str:
    return "&".join(
        f"{name}={value.isoformat() if hasattr(value, 'isoformat') else value}"
        for name, value in sorted(filters.items())
    )


def _etag_matches(request: HttpRequest, etag: str) -> bool:
    header = request.headers.get("If-None-Match", "")
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return etag in candidates or "*" in candidates


def _tile_response(body: bytes, *, etag: str, layer: Layer, status: int = 200) -> HttpResponse:
    response = HttpResponse(body, content_type=MVT_CONTENT_TYPE, status=status)
    # Set explicitly: a tile must never go out chunked.
    response["Content-Length"] = str(len(body))
    response["ETag"] = etag
    max_age = settings.MINQING_TILE_MAX_AGE_LIVE if layer.filters else settings.MINQING_TILE_MAX_AGE_STATIC
    # private: the answer depends on who asks (their roles pick the fields).
    response["Cache-Control"] = f"private, max-age={max_age}"
    response["Vary"] = "Cookie, Authorization"
    return response


@require_safe
@reader_view
def tile(request: HttpRequest, reader: Reader, layer: str, z: str, x: str, y: str) -> HttpResponse:
    """``GET /tiles/<layer>/<z>/<x>/<y>.pbf``: one vector tile of a catalog layer.

    A plain Django view (no DRF): the hot path costs the reader's lookup (session or token), the
    in-process role set and data version, then the tile cache, and renders only on a miss."""
    layer_obj = layer_get(layer)
    if layer_obj is None:
        raise NotFound(f"没有这个图层 (no such layer): {layer}", layer=layer)
    if not layer_obj.readable_by(reader.roles, superuser=reader.superuser):
        raise PermissionDenied(f"无权读取图层 (may not read layer): {layer}", layer=layer)
    zoom, tx, ty = params.parse_tile(z, x, y, max_zoom=MAX_ZOOM)
    filters = params.parse_layer_filters(request.GET, layer_obj.filters)
    if not layer_obj.minzoom <= zoom <= layer_obj.maxzoom:
        etag = '"' + hashlib.blake2b(f"empty|{layer_obj.id}|{zoom}".encode(), digest_size=16).hexdigest() + '"'
        return _tile_response(b"", etag=etag, layer=layer_obj)
    key = "|".join((layer_obj.id, f"{zoom}/{tx}/{ty}", _canonical(filters), data_version(layer_obj), reader.scope))
    digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
    etag = f'"{digest}"'
    if _etag_matches(request, etag):
        return _tile_response(b"", etag=etag, layer=layer_obj, status=304)
    cache = caches["tiles"]
    seconds = settings.MINQING_TILE_CACHE_SECONDS
    body = cache.get(f"tile:{digest}") if seconds else None
    if body is None:
        fields = layer_obj.fields_for(reader.roles, superuser=reader.superuser)
        body = tile_render(layer=layer_obj, z=zoom, x=tx, y=ty, filters=filters, fields=fields)
        if seconds:
            cache.set(f"tile:{digest}", body, seconds)
    return _tile_response(body, etag=etag, layer=layer_obj)


def _extent(layer: Layer) -> tuple[float, float, float, float] | None:
    cache = caches["tiles"]
    key = "extent:" + hashlib.blake2b(f"{layer.id}|{data_version(layer)}".encode()).hexdigest()
    extent = cache.get(key)
    if extent is None:
        extent = layer_extent(layer=layer) or ()
        cache.set(key, extent, 24 * 3600)
    return tuple(extent) or None


def tilejson_document(request: Request, layer: Layer, *, roles: list[str], superuser: bool, filters: dict) -> dict:
    """TileJSON 3.0.0 for the layer as this reader sees it (their fields, the given filters)."""
    template = request.build_absolute_uri(reverse("tiles-index")) + f"{layer.id}/{{z}}/{{x}}/{{y}}.pbf"
    if filters:
        template += "?" + urlencode(filters)
    bounds = _extent(layer) or (-180.0, -85.0511287798066, 180.0, 85.0511287798066)
    zoom = max(layer.minzoom, min(layer.maxzoom, CENTER_ZOOM))
    fields = layer.fields_for(roles, superuser=superuser)
    return {
        "tilejson": "3.0.0",
        "name": layer.id,
        "description": f"{layer.title} — {layer.description}",
        "scheme": "xyz",
        "tiles": [template],
        "minzoom": layer.minzoom,
        "maxzoom": layer.maxzoom,
        "bounds": [round(v, 6) for v in bounds],
        "center": [round((bounds[0] + bounds[2]) / 2, 6), round((bounds[1] + bounds[3]) / 2, 6), zoom],
        "vector_layers": [
            {
                "id": layer.id,
                "description": layer.title_en,
                "fields": {f.name: f.type for f in fields},
                "minzoom": layer.minzoom,
                "maxzoom": layer.maxzoom,
            }
        ],
    }


class TileJSON(APIView):
    """``GET /tiles/<layer>.json``: TileJSON 3.0.0; the layer's filters pass into the template."""

    @extend_schema(operation_id="tilejson", summary="TileJSON 3.0.0 of a catalog layer", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, layer: str) -> Response:
        layer_obj, roles, superuser = _readable_layer(request, layer)
        params.parse_layer_filters(request.query_params, layer_obj.filters)
        # The raw (validated) text goes into the template: the client asked for exactly that.
        raw = {name: request.query_params[name] for name in request.query_params}
        return Response(tilejson_document(request, layer_obj, roles=roles, superuser=superuser, filters=raw))


class TileIndex(APIView):
    """``GET /tiles/``: the layers this reader may read, with their TileJSON addresses."""

    @extend_schema(operation_id="tile_index", summary="Tile layers and their TileJSON", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        params.parse_layer_filters(request.query_params, ())
        roles, superuser = _reader(request)
        return Response(
            {
                "layers": [
                    {
                        "id": layer.id,
                        "title": layer.title,
                        "title_en": layer.title_en,
                        "geometry_type": layer.geometry_type,
                        "minzoom": layer.minzoom,
                        "maxzoom": layer.maxzoom,
                        "tilejson": request.build_absolute_uri(reverse("tiles-tilejson", args=[layer.id])),
                    }
                    for layer in REGISTRY.values()
                    if layer.readable_by(roles, superuser=superuser)
                ]
            }
        )
