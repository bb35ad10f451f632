"""``GET /basemaps/`` (the configured basemaps) and ``GET /basemaps/<name>/<z>/<x>/<y>.<ext>``
(one tile of a basemap this server serves).

The name is checked before anything else: only ``[a-z0-9_-]`` reaches the registry, so
``../`` or an encoded slash never gets near a file path.
"""

from __future__ import annotations

import hashlib

from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from basemaps.sources import NAME_PATTERN, basemap_get, basemaps_configured
from basemaps.tiles import MAX_ZOOM, tile_count

from .. import params
from ..errors import BadParameter, NotFound
from ..schema import integer_parameter, text_parameter

BASEMAP = inline_serializer(
    "Basemap",
    {
        "name": serializers.CharField(),
        "kind": serializers.ChoiceField(["offline", "xyz", "mbtiles", "geotiff"]),
        "title": serializers.CharField(),
        "attribution": serializers.CharField(),
        "minzoom": serializers.IntegerField(),
        "maxzoom": serializers.IntegerField(),
        "url": serializers.CharField(help_text="XYZ template with {z}, {x}, {y}"),
        "public": serializers.BooleanField(help_text="its tiles need no login"),
    },
    many=True,
)


class BasemapList(APIView):
    """The basemaps the client may offer, default first."""

    @extend_schema(
        operation_id="basemaps_list",
        summary="Configured basemaps with their tile URL templates",
        responses={200: inline_serializer("BasemapList", {"basemaps": BASEMAP})},
    )
    def get(self, request: Request) -> Response:
        return Response({"basemaps": [basemap.describe() for basemap in basemaps_configured().values()]})


class BasemapTile(APIView):
    """One tile of a basemap served here (offline, mbtiles, geotiff). A public basemap's tiles
    need no login (the residents' pages); any other's do."""

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="basemap_tile",
        summary="One basemap tile (404 outside the basemap's zooms and tile matrix, or in another format)",
        parameters=[
            text_parameter("name", pattern=r"^[a-z0-9_-]{1,40}$", location="path", required=True),
            integer_parameter("z", 0, MAX_ZOOM, location="path", required=True),
            integer_parameter("x", 0, 2**MAX_ZOOM - 1, location="path", required=True),
            integer_parameter("y", 0, 2**MAX_ZOOM - 1, location="path", required=True),
            text_parameter("ext", pattern=r"^[a-z]{3,4}$", location="path", required=True),
        ],
        responses={(200, "image/png"): bytes},
    )
    def get(self, request: Request, name: str, z: str, x: str, y: str, ext: str) -> HttpResponse:
        if not NAME_PATTERN.fullmatch(name):
            raise BadParameter(
                "name", _("must be 1-40 characters of a-z, 0-9, _ and -, got %(value)s") % {"value": f"{name[:40]!r}"}
            )
        basemap = basemap_get(name)
        if basemap is None:
            raise NotFound(_("No such basemap: %(name)s") % {"name": name})
        if not basemap.public and request.reader.is_anonymous:
            raise drf_exceptions.NotAuthenticated()  # as DRF answers it: 401 with WWW-Authenticate
        if not basemap.served:
            raise NotFound(
                _("The basemap %(name)s is fetched by the client: %(url)s") % {"name": name, "url": basemap.url()}
            )
        zoom = params.parse_int({"z": z}, "z", low=0, high=MAX_ZOOM)
        column = params.parse_int({"x": x}, "x", low=0, high=2**MAX_ZOOM - 1)
        row = params.parse_int({"y": y}, "y", low=0, high=2**MAX_ZOOM - 1)
        # A tile outside the basemap's zooms or its zoom's matrix, or in another format, does not
        # exist (404), as any tile server answers it; a malformed address is a 400.
        inside = (
            ext == basemap.extension
            and basemap.minzoom <= zoom <= basemap.maxzoom
            and max(column, row) < tile_count(zoom)
        )
        tile = basemap.tile(zoom, column, row) if inside else None
        if tile is None:
            raise NotFound(
                _("The basemap %(name)s has no tile %(tile)s") % {"name": name, "tile": f"{zoom}/{column}/{row}"}
            )
        etag = '"' + hashlib.blake2b(tile.content, digest_size=12).hexdigest() + '"'
        if request.headers.get("If-None-Match") == etag:
            response = HttpResponse(status=304)
        else:
            response = HttpResponse(tile.content, content_type=tile.content_type)
            response["Content-Length"] = str(len(tile.content))
        response["ETag"] = etag
        # Tiles of a basemap that is not public follow the login (an orthophoto may be licensed):
        # private caches only.
        response["Cache-Control"] = f"{'public' if basemap.public else 'private'}, max-age={basemap.max_age}"
        return response


basemap_list = BasemapList.as_view()
basemap_tile = BasemapTile.as_view()
