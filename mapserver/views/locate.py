"""``GET /api/locate``: which grids, regions and standard address a point falls in.

The grids and regions are answered for any point (reference data: a grid worker must learn that
a point lies in another grid); the nearest standard address only when it lies in the reader's
data scope (:func:`layers.geocoding.points.location_in_scope`).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from layers.geocoding.crs import CLIENT_CRS, to_wgs84
from layers.geocoding.points import grid_locate, location_in_scope

from .. import params
from ..schema import china_point_parameters


def _area(name: str) -> serializers.Serializer:
    return inline_serializer(
        name=f"LocateArea_{name}",
        fields={"code": serializers.CharField(), "name": serializers.CharField()},
        allow_null=True,
    )


_POINT = {"lon": serializers.FloatField(), "lat": serializers.FloatField()}

LOCATE_RESPONSE = inline_serializer(
    name="Locate",
    fields={
        **{level: _area(level) for level in ("district", "street", "community")},
        **{level: _area(level) for level in ("grid_large", "grid_medium", "grid_small")},
        "nearest_address": inline_serializer(
            name="LocateNearestAddress",
            fields={
                "code": serializers.CharField(),
                "full_text": serializers.CharField(),
                "distance_m": serializers.FloatField(),
            },
            allow_null=True,
        ),
        "boundary_distance_m": serializers.FloatField(
            allow_null=True, help_text="metres to the small grid's edge (inside) or to the nearest small grid (outside)"
        ),
        "ambiguous": serializers.BooleanField(help_text="nearer to a grid edge than MINQING_LOCATE_AMBIGUOUS_M"),
        "inside": serializers.BooleanField(help_text="false: the point is outside every small grid"),
        "message": serializers.CharField(),
        "input": inline_serializer(name="LocateInput", fields={**_POINT, "crs": serializers.CharField()}),
        "wgs84": inline_serializer(name="LocateWgs84", fields=_POINT),
    },
)


class Locate(APIView):
    """Point → areas, in one indexed query."""

    @extend_schema(
        summary="Locate a point: grids, regions, nearest standard address",
        parameters=[
            *china_point_parameters(),
            OpenApiParameter("crs", OpenApiTypes.STR, enum=list(CLIENT_CRS), description="default wgs84"),
            OpenApiParameter("date", OpenApiTypes.DATE, description="answer with the boundaries valid that day"),
        ],
        responses={200: LOCATE_RESPONSE},
    )
    def get(self, request: Request) -> Response:
        lon, lat = params.parse_china_lon_lat(request.query_params)
        crs = params.parse_crs(request.query_params)
        day = params.parse_date_param(request.query_params, "date", default=None)
        wgs_lon, wgs_lat = (float(v) for v in to_wgs84(lon, lat, crs))
        location = location_in_scope(grid_locate(lon=wgs_lon, lat=wgs_lat, on_date=day), scope=request.reader.scope)
        body = location.as_dict()
        body["input"] = {"lon": lon, "lat": lat, "crs": crs}
        body["wgs84"] = {"lon": round(wgs_lon, 7), "lat": round(wgs_lat, 7)}
        return Response(body)
