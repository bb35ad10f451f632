"""The analyst workbench: the page ``/analyst/`` and the statistics it reads,
``/api/statistics/areas`` and ``/api/statistics/series`` (JSON).

Views are glue: every parameter goes through a named parser of :mod:`mapserver.params` (an
unknown one is refused by name), the figures come from :mod:`layers.selectors.statistics` in
the reader's data scope (:mod:`layers.protection.scope`), and nothing here touches a row. The statistics
hold counts and rates only, never a person.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from basemaps.sources import basemaps_configured
from layers.models import Event
from layers.selectors import dashboard, statistics
from layers.selectors.buildings import sheet_labels
from layers.selectors.heat import FAMILIES
from layers.services.users import Role

from .. import params
from ..auth import roles_required
from ..errors import BadParameter
from ..schema import CATEGORY_CODES, error_response
from .catalog import EXPORT_FORMATS
from .heat import MAX_RASTER_SIDE, reject_unknown
from .pages import page_for

#: The filters both statistics endpoints read, in the order they are checked.
FILTERS = ("region", "grid", "category", "status", "since", "until")


#: The page's rule for its API: analysts, administrators and superusers (403 for the rest).
ANALYSTS = roles_required(Role.ANALYST, message=gettext_lazy("Statistics are for analysts and administrators."))


def filter_arguments(query: Mapping) -> dict:
    """The shared filters as the selectors' keyword arguments: region and grid codes, a category
    family or code, a status, and the window ``since`` (inclusive) to ``until`` (exclusive)."""
    arguments = {
        "region_code": params.parse_region_code(query, "region", default=None),
        "grid_code": params.parse_grid_code(query, "grid", default=None),
        "category": params.parse_category(query, "category", default=None),
        "status": params.parse_choice(query, "status", Event.Status.values, default=None),
        "since": params.parse_datetime_param(query, "since", default=None),
        "until": params.parse_datetime_param(query, "until", default=None),
    }
    if arguments["since"] is not None and arguments["until"] is not None and arguments["since"] >= arguments["until"]:
        raise BadParameter("until", _("must be after since"))
    return arguments


# --- schema ---------------------------------------------------------------------------------------

_FILTER_PARAMETERS = [
    OpenApiParameter("region", OpenApiTypes.STR, description="12-digit city, district, street or community code"),
    OpenApiParameter("grid", OpenApiTypes.STR, description="small, medium or large grid code"),
    OpenApiParameter(
        "category", OpenApiTypes.STR, enum=CATEGORY_CODES, description="family (dispute, hazard …) or dotted code"
    ),
    OpenApiParameter("status", OpenApiTypes.STR, enum=Event.Status.values),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="received at or after (ISO 8601)"),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="received before (ISO 8601)"),
]
_FIGURES = {
    "residents": serializers.IntegerField(help_text="persons of the registry linked to the area"),
    "events": serializers.IntegerField(),
    "closed": serializers.IntegerField(help_text="办结: resolved, verified or closed"),
    "open": serializers.IntegerField(help_text="every other status, suspended included"),
    "completion_rate": serializers.FloatField(allow_null=True, help_text="办结率, closed / events (0–1)"),
    "events_per_1000": serializers.FloatField(allow_null=True, help_text="events per 1,000 residents"),
    "satisfaction": serializers.FloatField(allow_null=True, help_text="mean rating, 1–5"),
}
AREAS_RESPONSE = inline_serializer(
    "AreaStatistics",
    {
        "level": serializers.ChoiceField(list(statistics.LEVELS)),
        "areas": inline_serializer(
            "AreaStatisticsRow",
            {
                "code": serializers.CharField(),
                "name": serializers.CharField(),
                "parent": inline_serializer(
                    "AreaParent", {"code": serializers.CharField(), "name": serializers.CharField()}, allow_null=True
                ),
                **_FIGURES,
            },
            many=True,
        ),
        "totals": inline_serializer("AreaStatisticsTotals", _FIGURES),
        "events_outside_areas": serializers.IntegerField(
            help_text="selected events linked to no listed area (not yet located, or outside every grid)"
        ),
    },
)
SERIES_RESPONSE = inline_serializer(
    "EventSeries",
    {
        "interval": serializers.ChoiceField(list(statistics.INTERVALS)),
        "time_zone": serializers.CharField(),
        "buckets": inline_serializer(
            "EventSeriesBucket",
            {
                "start": serializers.DateField(help_text="first day of the bucket, local time"),
                "events": serializers.IntegerField(),
                "closed": serializers.IntegerField(help_text="events received in the bucket and closed now"),
                "open": serializers.IntegerField(),
                "completion_rate": serializers.FloatField(allow_null=True),
            },
            many=True,
        ),
    },
)
ERROR = error_response("error.message names the parameter (400) or the missing role (403)")


# --- views ----------------------------------------------------------------------------------------


class AreaStatistics(APIView):
    """Event counts, rates and residents per street, community or small grid."""

    permission_classes = [ANALYSTS]

    @extend_schema(
        operation_id="statistics_areas",
        summary="Events per area: counts, open/closed, completion rate, per 1,000 residents",
        parameters=[
            OpenApiParameter(
                "level", OpenApiTypes.STR, enum=list(statistics.LEVELS), description="default street; grid: small grids"
            ),
            *_FILTER_PARAMETERS,
        ],
        responses={200: AREAS_RESPONSE, 400: ERROR, 403: ERROR},
    )
    def get(self, request: Request) -> Response:
        query = request.query_params
        reject_unknown(query, ("level", *FILTERS))
        level = params.parse_choice(query, "level", tuple(statistics.LEVELS), default="street")
        body = statistics.area_statistics(scope=request.reader.scope, level=level, **filter_arguments(query))
        return Response({"level": level, **body})


class EventSeries(APIView):
    """Events per day, week or month of receipt, for the workbench's chart."""

    permission_classes = [ANALYSTS]

    @extend_schema(
        operation_id="statistics_series",
        summary="Events over time: per day, week or month, with the completion rate",
        parameters=[
            OpenApiParameter(
                "interval", OpenApiTypes.STR, enum=list(statistics.INTERVALS), description="default week (from Monday)"
            ),
            *_FILTER_PARAMETERS,
        ],
        responses={200: SERIES_RESPONSE, 400: ERROR, 403: ERROR},
    )
    def get(self, request: Request) -> Response:
        query = request.query_params
        reject_unknown(query, ("interval", *FILTERS))
        interval = params.parse_choice(query, "interval", statistics.INTERVALS, default="week")
        buckets = statistics.event_series(scope=request.reader.scope, interval=interval, **filter_arguments(query))
        return Response({"interval": interval, "time_zone": settings.TIME_ZONE, "buckets": buckets})


# --- the page -------------------------------------------------------------------------------------


@page_for(Role.ANALYST)
def workbench(request: HttpRequest) -> HttpResponse:
    """The workbench page. Everything it shows comes from the APIs (layer catalog, statistics,
    tiles, exports, OGC, heat GeoTIFF); the script gets their URLs, the default view, the offline
    basemap and the filter choices through json_script."""
    basemap = next(iter(basemaps_configured().values()), None)
    config = {
        "center": settings.LEAFLET_CONFIG["DEFAULT_CENTER"],
        "zoom": settings.LEAFLET_CONFIG["DEFAULT_ZOOM"],
        # The preview opens on the reader's data: the extent of the small grids in their scope.
        "bounds": dashboard.map_bounds(scope=request.reader.scope),
        "basemap": basemap.describe() if basemap is not None else None,
        "choices": statistics.filter_choices(),
        "levels": list(statistics.LEVELS),
        "intervals": list(statistics.INTERVALS),
        "exportFormats": list(EXPORT_FORMATS),
        "heatFamilies": list(FAMILIES),
        "maxRasterSide": MAX_RASTER_SIDE,
        "sheetLabels": sheet_labels(),
        "urls": {
            "layers": reverse("api:layers"),
            "areas": reverse("wall:api-statistics-areas"),
            "series": reverse("wall:api-statistics-series"),
            "tiles": "/tiles/{layer}/{z}/{x}/{y}.pbf",
            "sheetAt": reverse("grid:api-building-sheet-at"),
            "duty": reverse("grid:api-statistics-duty"),
            "export": "/exports/{layer}.{format}",
            "ogcLanding": reverse("ogc:landing"),
            "ogcCollection": reverse("ogc:collection", args=["LAYER"]),
            "ogcItems": reverse("ogc:items", args=["LAYER"]),
            "heatTiff": reverse("exports:heat-geotiff"),
        },
    }
    return render(request, "mapserver/analyst/analyst.html", {"analyst_config": config})
