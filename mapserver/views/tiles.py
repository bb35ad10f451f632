"""``/tiles/``: Mapbox vector tiles of every catalog layer, their TileJSON and the list of layers.

A tile answer always carries ``Content-Length`` (never a chunked body: clients stall on chunked
tiles, performance-anchors §4), an ``ETag`` and ``Cache-Control``. Outside a layer's zoom range
the answer is an empty 200 tile (``Content-Length: 0``) rather than a 204 or a 404: map clients
treat an empty tile as "nothing here" without logging an error and without retrying.

Tiles are cached (the ``tiles`` cache) under a key made of the layer, z/x/y, the filters, the
layer's data version and the reader's scope; the ETag is a hash of the same key, so a
revalidation never renders the tile (:mod:`mapserver.tileplan` decides all of it).

Two servers answer the tile URL with the same plan: this plain Django view (``runserver``, the
test client, any WSGI server) and the asynchronous tile server of ``mapserver.asgi``
(:mod:`mapserver.tileserver`), which production and ``make run`` use. TileJSON and the index stay
DRF views (read once per map).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from layers.protection.access import Reader
from layers.publishing.catalog import LAYERS, Layer, data_version, layer_get
from layers.selectors.features import layer_extent_cached
from layers.selectors.tiles import tile_render

from .. import params
from ..auth import reader_view
from ..compression import accepted_encoding
from ..errors import NotFound, PermissionDenied
from ..tileplan import (
    TileAsk,
    etag_matches,
    tile_ask,
    tile_cached,
    tile_digest,
    tile_encoded,
    tile_etag,
    tile_headers,
    tile_keep,
)

#: The zoom TileJSON proposes as the centre's when the layer's range allows it (a district).
CENTER_ZOOM = 14


def _readable_layer(request: Request, layer_id: str) -> Layer:
    layer = layer_get(layer_id)
    if layer is None:
        raise NotFound(_("No such layer: %(layer)s") % {"layer": layer_id}, layer=layer_id)
    if not request.reader.reads_layer(layer):
        raise PermissionDenied(_("You may not read the layer %(layer)s.") % {"layer": layer_id}, layer=layer_id)
    return layer


@require_safe
@reader_view
def tile(request: HttpRequest, reader: Reader, layer: str, z: str, x: str, y: str) -> HttpResponse:
    """``GET /tiles/<layer>/<z>/<x>/<y>.pbf``: one vector tile of a catalog layer.

    A plain Django view (no DRF): the hot path costs the reader's lookup (session or token), the
    in-process role set and data version, then the tile cache, and renders only on a miss. The
    asynchronous tile server (``mapserver.tileserver``) answers the same way from the same plan."""
    ask = tile_ask(reader=reader, layer_id=layer, z=z, x=x, y=y, query=request.GET)
    version = data_version(ask.layer) if ask.in_range else ""
    digest = tile_digest(ask, version=version, reader=reader)
    accept_encoding = request.headers.get("Accept-Encoding", "") if ask.in_range else ""
    etag = tile_etag(digest, accepted_encoding(accept_encoding))
    origin = request.headers.get("Origin", "")
    if etag_matches(request.headers.get("If-None-Match", ""), etag):
        return _tile_response(ask, b"", etag=etag, status=304, origin=origin)
    body, encoding = b"", None
    if ask.in_range:
        body = tile_cached(digest)
        if body is None:
            body = tile_render(
                layer=ask.layer, z=ask.z, x=ask.x, y=ask.y, filters=ask.filters, fields=ask.fields, scope=reader.scope
            )
            tile_keep(digest, body)
        body, encoding = tile_encoded(digest, body, accept_encoding)
    return _tile_response(ask, body, etag=etag, encoding=encoding, origin=origin)


def _tile_response(
    ask: TileAsk, body: bytes, *, etag: str, status: int = 200, encoding: str | None = None, origin: str = ""
) -> HttpResponse:
    response = HttpResponse(body, status=status)
    for name, value in tile_headers(ask, etag=etag, length=len(body), encoding=encoding, origin=origin).items():
        response[name] = value
    return response


def tilejson_document(request: Request, layer: Layer, *, reader: Reader, filters: dict) -> dict:
    """TileJSON 3.0.0 for the layer as this reader sees it (their fields and scope, the given
    filters)."""
    template = request.build_absolute_uri(reverse("tiles:index")) + f"{layer.id}/{{z}}/{{x}}/{{y}}.pbf"
    if filters:
        template += "?" + urlencode(filters)
    bounds = layer_extent_cached(layer=layer, scope=reader.scope)[0] or (
        -180.0,
        -85.0511287798066,
        180.0,
        85.0511287798066,
    )
    zoom = max(layer.minzoom, min(layer.maxzoom, CENTER_ZOOM))
    fields = reader.fields_of(layer)
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
        layer_obj = _readable_layer(request, layer)
        params.parse_layer_filters(request.query_params, layer_obj.filters)
        # The raw (validated) text goes into the template: the client asked for exactly that.
        raw = {name: request.query_params[name] for name in request.query_params}
        document = tilejson_document(request, layer_obj, reader=request.reader, filters=raw)
        return Response(document)


class TileIndex(APIView):
    """``GET /tiles/``: the layers this reader may read, with their TileJSON addresses."""

    @extend_schema(operation_id="tile_index", summary="Tile layers and their TileJSON", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        params.parse_layer_filters(request.query_params, ())
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
                        "tilejson": request.build_absolute_uri(reverse("tiles:tilejson", args=[layer.id])),
                    }
                    for layer in LAYERS.values()
                    if request.reader.reads_layer(layer)
                ]
            }
        )
