"""The public map (``/public/``): what the city solves, for anyone, with no personal data.

* ``GET /public/``: the page; ``GET /public/embed/``: the same map and figures without the page's
  chrome, for the media center to put in a frame — the only view that may be framed, and only by
  the origins in ``MINQING_PUBLIC_EMBED_ORIGINS`` (its Content-Security-Policy's
  ``frame-ancestors``; every other answer keeps ``X-Frame-Options: DENY`` and
  ``frame-ancestors 'none'``).
* ``GET /api/public/month?month=YYYY-MM``: the month's totals, streets (response and resolution
  times) and categories; ``GET /api/public/cells?month=``: cases per small grid as GeoJSON, small
  counts merged; ``GET /api/public/cases``: completed cases with approved public summaries.
* ``GET /public/feed.json`` (JSON Feed 1.1) and ``GET /public/feed.rss`` (RSS 2.0): the approved
  cases, newest first.

Every figure comes from :mod:`layers.selectors.public` (the k-anonymity rules are there). The JSON
answers and feeds are the same for every visitor, so shared caches may keep them
``MINQING_PUBLIC_MAX_AGE`` seconds (the pages are not: they carry the visitor's CSRF token).
"""

from __future__ import annotations

import datetime as dt
import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import feedgenerator, timezone
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from layers.selectors.public import (
    CASES_LIMIT,
    month_current,
    month_of,
    public_cases,
    public_categories,
    public_cells,
    public_streets,
    public_totals,
)

from .. import params
from ..errors import BadParameter
from ..schema import MONTH_PATTERN, error_response, integer_parameter, text_parameter
from ..security import content_security_policy
from .residents import _basemap

#: Months the page offers to choose from, the current one first.
MONTHS_OFFERED = 12
#: Cases in each feed.
FEED_ITEMS = 50


def _cacheable(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = f"public, max-age={settings.MINQING_PUBLIC_MAX_AGE}"
    return response


def _months(now) -> list[str]:
    first = month_current(now).first
    labels = []
    for back in range(MONTHS_OFFERED):
        year, month = divmod(first.year * 12 + first.month - 1 - back, 12)
        labels.append(f"{year:04d}-{month + 1:02d}")
    return labels


def _month(query, now=None):
    """The month asked for (default: the current one); a month after the current one is refused."""
    current = month_current(now)
    first = params.parse_month(query, "month", default=None)
    if first is None:
        return current
    if first > current.first:
        raise BadParameter("month", f"must not be after the current month {current.label}, got {first:%Y-%m}")
    return month_of(first)


def _page_config(*, embed: bool) -> dict:
    now = timezone.now()
    return {
        "embed": embed,
        "basemap": _basemap(),
        "center": settings.LEAFLET_CONFIG["DEFAULT_CENTER"],
        "zoom": settings.LEAFLET_CONFIG["DEFAULT_ZOOM"],
        "months": _months(now),
        "threshold": settings.MINQING_PUBLIC_MIN_COUNT,
        "urls": {
            "month": reverse("residents:api-public-month"),
            "cells": reverse("residents:api-public-cells"),
            "cases": reverse("residents:api-public-cases"),
            "feedJson": reverse("residents:public-feed-json"),
            "feedRss": reverse("residents:public-feed-rss"),
            "page": reverse("residents:public"),
            "report": reverse("residents:report"),
        },
    }


def public_page(request: HttpRequest) -> HttpResponse:
    """``/public/``: the public map page (never framed, like every page but the embeddable view)."""
    return render(request, "mapserver/public/public.html", {"public_config": _page_config(embed=False)})


@xframe_options_exempt
def embed_page(request: HttpRequest) -> HttpResponse:
    """``/public/embed/``: the map and figures for a frame on the configured origins' pages."""
    response = render(request, "mapserver/public/public.html", {"public_config": _page_config(embed=True)})
    origins = list(settings.MINQING_PUBLIC_EMBED_ORIGINS)
    response["Content-Security-Policy"] = content_security_policy(frame_ancestors=["'self'", *origins])
    if not origins:
        # No other origin may frame it: the old header says so to browsers that ignore the policy.
        response["X-Frame-Options"] = "SAMEORIGIN"
    # Not for shared caches: like every page it carries the visitor's CSRF token.
    return response


# --- the API -----------------------------------------------------------------------------------------

_MONTH_PARAM = text_parameter("month", pattern=MONTH_PATTERN, description="YYYY-MM; default the current month")
ERROR = error_response("error.message names the parameter (400)")
_MONTH_ANSWER = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="month, threshold, totals (cases, resolved, open, completion_rate, on_time_rate, satisfaction), "
    "streets (cases, resolved, completion_rate, response_hours, resolution_hours, satisfaction; others), "
    "categories (code, name, name_en, family, cases; other). A count below the threshold is null.",
)
_CELLS_ANSWER = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="GeoJSON FeatureCollection: small grids with at least `threshold` cases, and community or street "
    "buckets of the grids with fewer; properties kind, code, name, community, street, cases, open, resolved; "
    "remainder (cases in no drawn cell, null when below the threshold)",
)
_CASES_ANSWER = inline_serializer(
    name="PublicCases",
    fields={
        "results": serializers.ListField(child=serializers.DictField()),
        "next": serializers.CharField(allow_null=True),
    },
)


class PublicView(APIView):
    permission_classes = [AllowAny]


class PublicMonth(PublicView):
    @extend_schema(
        operation_id="public_month",
        summary="Public map: a month's totals, streets and categories (small counts suppressed)",
        tags=["public"],
        parameters=[_MONTH_PARAM],
        responses={200: _MONTH_ANSWER, 400: ERROR},
    )
    def get(self, request: Request) -> Response:
        month = _month(request.query_params)
        body = {
            "month": month.label,
            "threshold": settings.MINQING_PUBLIC_MIN_COUNT,
            "totals": public_totals(month=month),
            "streets": public_streets(month=month),
            "categories": public_categories(month=month),
        }
        return _cacheable(Response(body))


class PublicCells(PublicView):
    @extend_schema(
        operation_id="public_cells",
        summary="Public map: a month's cases per small grid, small grids merged into their community or street",
        tags=["public"],
        parameters=[_MONTH_PARAM],
        responses={200: _CELLS_ANSWER, 400: ERROR},
    )
    def get(self, request: Request) -> Response:
        return _cacheable(Response(public_cells(month=_month(request.query_params))))


class PublicCases(PublicView):
    @extend_schema(
        operation_id="public_cases",
        summary="Public map: completed cases with their approved public summaries, newest first",
        tags=["public"],
        parameters=[
            integer_parameter("limit", 1, CASES_LIMIT, description="default 20"),
            OpenApiParameter("cursor", OpenApiTypes.STR, description="from the previous page's next"),
        ],
        responses={200: _CASES_ANSWER, 400: ERROR},
    )
    def get(self, request: Request) -> Response:
        limit = params.parse_int(request.query_params, "limit", low=1, high=CASES_LIMIT, default=20)
        cursor = params.parse_text(request.query_params, "cursor", max_length=200, default=None)
        page = public_cases(limit=limit, after=cursor)
        if page["next"]:
            page["next"] = f"{reverse('residents:api-public-cases')}?limit={limit}&cursor={page['next']}"
        return _cacheable(Response(page))


# --- feeds -------------------------------------------------------------------------------------------


def _item_title(case: dict) -> str:
    place = " ".join(part for part in (case["street"], case["community"]) if part)
    return f"{case['category']['name']} · {place}" if place else case["category"]["name"]


def _item_url(request: HttpRequest, case: dict) -> str:
    return request.build_absolute_uri(f"{reverse('residents:public')}#case-{case['id']}")


def feed_json(request: HttpRequest) -> HttpResponse:
    """JSON Feed 1.1 of the approved cases."""
    cases = public_cases(limit=FEED_ITEMS)["results"]
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": _("Minqing Map: cases the city solved"),
        "home_page_url": request.build_absolute_uri(reverse("residents:public")),
        "feed_url": request.build_absolute_uri(reverse("residents:public-feed-json")),
        "language": "zh-CN",
        "items": [
            {
                "id": f"minqing-case-{case['id']}",
                "url": _item_url(request, case),
                "title": _item_title(case),
                "content_text": case["summary"],
                "date_published": case["published_at"],
                "tags": [case["category"]["code"]],
            }
            for case in cases
        ],
    }
    response = HttpResponse(json.dumps(feed, ensure_ascii=False), content_type="application/feed+json; charset=utf-8")
    return _cacheable(response)


def feed_rss(request: HttpRequest) -> HttpResponse:
    """RSS 2.0 of the approved cases."""
    feed = feedgenerator.Rss201rev2Feed(
        title=_("Minqing Map: cases the city solved"),
        link=request.build_absolute_uri(reverse("residents:public")),
        description=_("Completed cases with the summaries the city approved for publication."),
        language="zh-cn",
        feed_url=request.build_absolute_uri(reverse("residents:public-feed-rss")),
    )
    for case in public_cases(limit=FEED_ITEMS)["results"]:
        feed.add_item(
            title=_item_title(case),
            link=_item_url(request, case),
            description=case["summary"],
            unique_id=f"minqing-case-{case['id']}",
            unique_id_is_permalink=False,
            pubdate=dt.datetime.fromisoformat(case["published_at"]),
            categories=[case["category"]["code"]],
        )
    response = HttpResponse(feed.writeString("utf-8"), content_type="application/rss+xml; charset=utf-8")
    return _cacheable(response)
