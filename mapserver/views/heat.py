"""Heat maps and hot spots: ``/tiles/heat/<z>/<x>/<y>.png``, ``/exports/heat.tif``,
``/api/hotspots`` and ``/api/early-warnings``.

Views are glue: parse (every parameter by a named parser, unknown ones refused by name),
compute in :mod:`layers.selectors.heat` / :mod:`layers.selectors.hotspots`, serialise. Every answer is computed from
the reader's data scope only (:mod:`layers.protection.scope`); the ETag of a heat tile carries the scope key.
"""

from __future__ import annotations

import hashlib
import json
import math

from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from basemaps import heat as surfaces
from basemaps import raster
from layers.selectors import heat, hotspots

from .. import params
from ..errors import BadParameter, NotFound
from ..schema import bbox_parameter, error_response, family_parameter, integer_parameter, number_parameter

MAX_ZOOM = 22
ERROR = error_response("error.message names the tile outside its zoom's matrix")
#: The filters every heat surface takes, as filter_arguments reads them.
TIME_FILTERS = [
    family_parameter(),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="received at or after (ISO 8601)"),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="received before (ISO 8601), after since"),
]
#: Largest GeoTIFF side, pixels.
MAX_RASTER_SIDE = 4096
CACHE_CONTROL = "private, max-age=300"


def reject_unknown(query, allowed: tuple[str, ...]) -> None:
    """400 naming the first query parameter the surface does not read."""
    unknown = sorted(set(query) - set(allowed))
    if unknown:
        raise BadParameter(unknown[0], _("is not a parameter here; known: %(value)s") % {"value": ", ".join(allowed)})


def filter_arguments(query) -> dict:
    """family (dispute|hazard), since, until (ISO 8601; since before until)."""
    family = params.parse_choice(query, "family", heat.FAMILIES)
    since = params.parse_datetime_param(query, "since", default=None)
    until = params.parse_datetime_param(query, "until", default=None)
    if since is not None and until is not None and since >= until:
        raise BadParameter("until", _("must be after since"))
    return {"family": family, "since": since, "until": until}


def tile_address(z: str, x: str, y: str) -> tuple[int, int, int]:
    """The tile's z/x/y: a 400 for what is not a tile address, a 404 for a column or row the
    zoom does not have (as a tile server answers a tile outside its matrix)."""
    zoom = params.parse_int({"z": z}, "z", low=0, high=MAX_ZOOM)
    last = 2**zoom - 1
    tx = params.parse_int({"x": x}, "x", low=0, high=2**MAX_ZOOM - 1)
    ty = params.parse_int({"y": y}, "y", low=0, high=2**MAX_ZOOM - 1)
    if tx > last or ty > last:
        raise NotFound(
            _("no tile %(z)s/%(x)s/%(y)s: at zoom %(z)s x and y go up to %(last)s")
            % {"z": zoom, "x": tx, "y": ty, "last": last}
        )
    return zoom, tx, ty


def _etag(*parts: object) -> str:
    return '"' + hashlib.blake2b(json.dumps([str(p) for p in parts]).encode(), digest_size=10).hexdigest() + '"'


class HeatTile(APIView):
    """A heat tile PNG of dispute or hazard events, on one colour scale per zoom."""

    @extend_schema(
        operation_id="heat_tile",
        summary="Heat tile of disputes or hazards",
        parameters=[
            integer_parameter("z", 0, MAX_ZOOM, location="path", required=True),
            integer_parameter("x", 0, 2**MAX_ZOOM - 1, location="path", required=True, description="0 to 2^z - 1"),
            integer_parameter("y", 0, 2**MAX_ZOOM - 1, location="path", required=True, description="0 to 2^z - 1"),
            *TIME_FILTERS,
        ],
        responses={(200, "image/png"): OpenApiTypes.BINARY, 404: ERROR},
    )
    def get(self, request: Request, z: str, x: str, y: str) -> HttpResponse:
        query = request.query_params
        reject_unknown(query, ("family", "since", "until"))
        zoom, tx, ty = tile_address(z, x, y)
        filters = filter_arguments(query)
        scope = request.reader.scope
        png, version = heat.heat_tile(**filters, scope=scope, z=zoom, x=tx, y=ty)
        etag = _etag("heat", filters["family"], filters["since"], filters["until"], version, scope.key, zoom, tx, ty)
        if request.headers.get("If-None-Match") == etag:
            response = HttpResponse(status=304)
        else:
            response = HttpResponse(png, content_type="image/png")
            response["Content-Length"] = str(len(png))
        response["ETag"] = etag
        response["Cache-Control"] = CACHE_CONTROL
        # The tile is the reader's scope's: a browser shared by two logins must not reuse it.
        response["Vary"] = "Cookie, Authorization"
        return response


class HeatGeoTiff(APIView):
    """The blurred count surface as a single-band float32 GeoTIFF in EPSG:3857."""

    @extend_schema(
        operation_id="heat_geotiff",
        summary="Heat surface as a GeoTIFF (EPSG:3857)",
        parameters=[
            *TIME_FILTERS,
            bbox_parameter(required=True),
            number_parameter(
                "resolution_m",
                0.5,
                10_000.0,
                description=f"metres per pixel, default 50; at most {MAX_RASTER_SIDE} pixels a side",
            ),
        ],
        responses={(200, "image/tiff"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request) -> HttpResponse:
        query = request.query_params
        reject_unknown(query, ("family", "since", "until", "bbox", "resolution_m"))
        filters = filter_arguments(query)
        bbox = params.parse_bbox(query)
        if bbox is None:
            raise BadParameter("bbox", _("is required"))
        resolution = params.parse_float(query, "resolution_m", low=0.5, high=10_000.0, default=50.0)
        (xmin, xmax), (ymin, ymax) = (
            (float(v) for v in pair) for pair in surfaces.lonlat_to_mercator([bbox[0], bbox[2]], [bbox[1], bbox[3]])
        )
        # At least one pixel a side: a box thinner than a pixel (down to 1e-300 degrees) is one row.
        width = max(1, math.ceil((xmax - xmin) / resolution))
        height = max(1, math.ceil((ymax - ymin) / resolution))
        if max(width, height) > MAX_RASTER_SIDE:
            raise BadParameter(
                "resolution_m",
                _("gives %(width)s×%(height)s pixels, more than %(MAX_RASTER_SIDE)s a side; use a coarser resolution")
                % {"width": width, "height": height, "MAX_RASTER_SIDE": MAX_RASTER_SIDE},
            )
        bounds = (xmin, ymax - height * resolution, xmin + width * resolution, ymax)
        surface = heat.heat_raster(**filters, scope=request.reader.scope, bounds=bounds, resolution_m=resolution)
        body = raster.geotiff_bytes(
            surface,
            west=xmin,
            north=ymax,
            resolution=resolution,
            crs="EPSG:3857",
            description=f"{filters['family']} events per pixel, Gaussian blur sigma {surfaces.SIGMA_PX:g} px",
        )
        response = HttpResponse(body, content_type="image/tiff")
        response["Content-Length"] = str(len(body))
        response["Content-Disposition"] = f'attachment; filename="heat-{filters["family"]}.tif"'
        return response


class Hotspots(APIView):
    """Small grids as a GeoJSON FeatureCollection with counts, rates and Gi* hot-spot classes."""

    @extend_schema(
        operation_id="hotspots",
        summary="Getis-Ord Gi* hot spots per small grid (GeoJSON)",
        parameters=TIME_FILTERS,
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request) -> JsonResponse:
        query = request.query_params
        reject_unknown(query, ("family", "since", "until"))
        filters = filter_arguments(query)
        rows = hotspots.grid_hotspots(**filters, scope=request.reader.scope)
        geometries = hotspots.grid_geometries([row["id"] for row in rows])
        features = [
            {
                "type": "Feature",
                "id": row["code"],
                "geometry": json.loads(geometries[row["id"]]),
                "properties": {k: v for k, v in row.items() if k != "id"},
            }
            for row in rows
        ]
        body = {
            "type": "FeatureCollection",
            "neighbourhood": "small grids sharing an edge or vertex, plus the grid itself (Gi*)",
            "significance": {"hot99": "z >= 2.576", "hot95": "z >= 1.960", "two_sided": True},
            "features": features,
        }
        return JsonResponse(body, json_dumps_params={"ensure_ascii": False})


class EarlyWarnings(APIView):
    """Small grids whose last 7 days are far above their own weekly baseline."""

    @extend_schema(
        operation_id="early_warnings",
        summary="Grids far above their own weekly baseline",
        parameters=[family_parameter()],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request) -> JsonResponse:
        query = request.query_params
        reject_unknown(query, ("family",))
        family = params.parse_choice(query, "family", heat.FAMILIES)
        now = timezone.now()
        warnings = hotspots.grid_early_warnings(family=family, now=now, scope=request.reader.scope)
        return JsonResponse(
            {"family": family, "now": now.isoformat(), "warnings": warnings}, json_dumps_params={"ensure_ascii": False}
        )
