"""The command-center map wall (``/wall/``) and the JSON it reads.

The page is one template and one script (static/mapserver/wall/); everything it shows comes from
APIs: events (the live feed), heat tiles, hot spots, early warnings, and the dashboard endpoints
here (headline figures, overdue and escalated cases, the street ranking, an area's summary),
each answered by one selector in :mod:`layers.selectors.dashboard` within the reader's scope.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from layers.models import Event
from layers.selectors import dashboard
from layers.selectors.buildings import sheet_labels
from layers.selectors.heat import FAMILIES
from layers.services.users import Role

from .. import params
from ..errors import NotFound
from ..schema import (
    AREA_CODE_PATTERN,
    error_response,
    integer_parameter,
    text_parameter,
)
from .heat import reject_unknown
from .pages import page_for

#: How many events the wall's feed keeps; how many cases per list the API answers by default and
#: the wall asks for (it pages through them, a panel at a time).
FEED_SIZE = 50
CASES_LIMIT = 20
WALL_CASES = 100

WINDOW_PARAMETERS = [
    OpenApiParameter(
        "since", OpenApiTypes.DATETIME, description="window start (received at or after); default: today 00:00"
    ),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="window end (received before); default: now"),
]
ERROR = error_response("error.message names the parameter (400) or the unknown area (404)")
_RATE = {"allow_null": True, "help_text": "0–1; null when there is nothing to count"}


@page_for(Role.COMMAND_CENTER)
def wall(request: HttpRequest) -> HttpResponse:
    """The wall page: its configuration goes to the script through json_script."""
    config = {
        "bounds": dashboard.map_bounds(scope=request.reader.scope),
        "center": settings.LEAFLET_CONFIG["DEFAULT_CENTER"],
        "zoom": settings.LEAFLET_CONFIG["DEFAULT_ZOOM"],
        "families": list(FAMILIES),
        "feedSize": FEED_SIZE,
        "casesLimit": WALL_CASES,
        "statuses": {value: str(label) for value, label in Event.Status.choices},
        "sheetLabels": sheet_labels(),
        "urls": {
            "events": reverse("api:events"),
            "kpis": reverse("wall:api-dashboard-kpis"),
            "cases": reverse("wall:api-dashboard-cases"),
            "streets": reverse("wall:api-dashboard-streets"),
            "areaSummary": reverse("wall:api-area-summary", kwargs={"code": "CODE"}),
            "hotspots": reverse("api:hotspots"),
            "locate": reverse("api:locate"),
            "sheetAt": reverse("grid:api-building-sheet-at"),
            "earlyWarnings": reverse("api:early-warnings"),
            "heatTile": "/tiles/heat/{z}/{x}/{y}.png",
            "vectorTile": "/tiles/{layer}/{z}/{x}/{y}.pbf",
            "echarts": settings.STATIC_URL + "vendor/echarts/echarts.min.js",
        },
    }
    return render(request, "mapserver/wall/wall.html", {"wall_config": config})


def _window(request: Request, allowed: tuple[str, ...] = ("since", "until")):
    query = request.query_params
    reject_unknown(query, allowed)
    now = timezone.now()
    since, until = params.parse_window(query, now=now)
    return query, now, since, until


class DashboardKpis(APIView):
    """The wall's headline figures for a time window."""

    @extend_schema(
        operation_id="dashboard_kpis",
        summary="Headline figures: received, open, overdue, completion, on-time and satisfaction rates",
        description=(
            "received/completed/on-time/satisfaction over events received in [since, until); open, overdue "
            "and escalated are the state now. Within the reader's data scope."
        ),
        parameters=WINDOW_PARAMETERS,
        responses={
            200: inline_serializer(
                "DashboardKpis",
                {
                    "since": serializers.DateTimeField(),
                    "until": serializers.DateTimeField(),
                    "now": serializers.DateTimeField(),
                    "kpis": inline_serializer(
                        "DashboardKpiValues",
                        {
                            "received": serializers.IntegerField(),
                            "received_today": serializers.IntegerField(),
                            "open": serializers.IntegerField(),
                            "overdue": serializers.IntegerField(),
                            "escalated": serializers.IntegerField(),
                            "completed": serializers.IntegerField(),
                            "completion_rate": serializers.FloatField(**_RATE),
                            "on_time": serializers.IntegerField(),
                            "on_time_rate": serializers.FloatField(**_RATE),
                            "rated": serializers.IntegerField(),
                            "satisfaction_mean": serializers.FloatField(allow_null=True, help_text="1–5"),
                            "satisfaction_rate": serializers.FloatField(**_RATE),
                            "by_status": serializers.DictField(child=serializers.IntegerField()),
                            "by_family": serializers.DictField(child=serializers.IntegerField()),
                        },
                    ),
                },
            ),
            400: ERROR,
        },
    )
    def get(self, request: Request) -> Response:
        _query, now, since, until = _window(request)
        kpis = dashboard.dashboard_kpis(scope=request.reader.scope, since=since, until=until, now=now)
        return Response({**_stamps(since, until, now), "kpis": kpis})


class DashboardCases(APIView):
    """Open cases that are overdue or escalated."""

    @extend_schema(
        operation_id="dashboard_cases",
        summary="Overdue and escalated open cases (most urgent first)",
        parameters=[integer_parameter("limit", 1, 100, description="per list, default 20")],
        responses={200: OpenApiTypes.OBJECT, 400: ERROR},
    )
    def get(self, request: Request) -> Response:
        query = request.query_params
        reject_unknown(query, ("limit",))
        limit = params.parse_int(query, "limit", low=1, high=100, default=CASES_LIMIT)
        now = timezone.now()
        cases = dashboard.dashboard_cases(scope=request.reader.scope, now=now, limit=limit)
        return Response({"now": timezone.localtime(now).isoformat(), **cases})


class StreetRanking(APIView):
    """Streets ranked by events received in the window."""

    @extend_schema(
        operation_id="dashboard_streets",
        summary="Ranking of streets (街道) by events received in the window",
        parameters=WINDOW_PARAMETERS,
        responses={200: OpenApiTypes.OBJECT, 400: ERROR},
    )
    def get(self, request: Request) -> Response:
        _query, now, since, until = _window(request)
        streets = dashboard.street_ranking(scope=request.reader.scope, since=since, until=until, now=now)
        return Response({**_stamps(since, until, now), "streets": streets})


class AreaSummary(APIView):
    """One grid's or region's people, units, events and trend."""

    @extend_schema(
        operation_id="area_summary",
        summary="Summary of a grid (any level) or region: residents, units, open events, daily trend",
        parameters=[
            text_parameter("code", pattern=AREA_CODE_PATTERN, required=True, location="path"),
            *WINDOW_PARAMETERS,
        ],
        responses={200: OpenApiTypes.OBJECT, 400: ERROR, 404: ERROR},
    )
    def get(self, request: Request, code: str) -> Response:
        code = params.parse_area_code(code)
        _query, now, since, until = _window(request)
        area = dashboard.area_find(code=code)
        if area is None:
            raise NotFound(_("No such grid or region: %(code)s") % {"code": code}, area=code)
        summary = dashboard.area_summary(area=area, scope=request.reader.scope, since=since, until=until, now=now)
        return Response({**_stamps(since, until, now), **summary})


def _stamps(since, until, now) -> dict:
    return {
        "since": timezone.localtime(since).isoformat(),
        "until": timezone.localtime(until).isoformat(),
        "now": timezone.localtime(now).isoformat(),
    }
