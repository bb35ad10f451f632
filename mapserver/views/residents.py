"""The residents' side (小兰帮办): the report page, the follow-up page and ``/api/resident/…``.

No account: every view here answers anonymous requests. What keeps them safe:

* the follow-up link is ``/report/follow/#<token>``: the token sits in the fragment, which
  browsers never send (no server log, history entry on our side or Referer holds it); the page
  sends it in the ``X-Follow-Token`` header, and the database keeps only its SHA-256;
* writes need the page's CSRF token (:class:`mapserver.auth.CsrfUnlessToken`) and are limited
  per client address (``MINQING_THROTTLE_RATES["resident"]``) and per phone (the service);
* a report is idempotent by the page's UUID for it (a resend gets the same ticket and link);
* photos are checked like the grid worker's, at most ``MINQING_RESIDENT_PHOTOS`` per report.

* ``GET /report/``, ``GET /report/follow/``: the pages.
* ``GET /api/resident/categories``, ``/place?lon=&lat=``, ``/geocode?q=``: what the form needs.
* ``POST /api/resident/reports``: a report → 201 ``{ticket, token, follow_url, case}``.
* ``GET /api/resident/case``, ``POST /api/resident/answer``, ``POST /api/resident/photos``,
  ``GET /api/resident/photos/<id>``: the case of the token in ``X-Follow-Token``.
"""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from basemaps.sources import basemap_public
from layers.geocoding.crs import CLIENT_CRS
from layers.selectors.residents import (
    resident_case,
    resident_categories,
    resident_geocode,
    resident_photo_get,
    resident_place,
)
from layers.services.gridwork import PhotoTooLarge
from layers.services.residents import (
    ANSWERS,
    MAX_COMMENT,
    SOURCES,
    resident_answer,
    resident_case_get,
    resident_photo_add,
    resident_photo_count,
    resident_report,
)

from .. import params
from ..auth import CsrfUnlessToken
from ..errors import NotFound
from ..parsers import BodyLeftToTheView, ImageLeftToTheView
from ..schema import (
    CHINA_LAT,
    CHINA_LON,
    CLIENT_ID_PATTERN,
    FOLLOW_TOKEN_PATTERN,
    TEXT_PATTERN,
    UUID_PATTERN,
    category_codes,
    china_point_parameters,
    error_response,
    text_parameter,
)
from ..throttles import AnonymousRate, ResidentWriteRate, UserRate

#: Longest typed address (as intake takes it) and geocoder query.
MAX_ADDRESS = 300
MAX_QUERY = 200


# --- the pages ---------------------------------------------------------------------------------------


def _basemap() -> dict | None:
    """The basemap the residents' and public pages draw on: the first public one (none: the
    pages draw their own layers on a plain background)."""
    basemap = basemap_public()
    if basemap is None:
        return None
    described = basemap.describe()
    return {key: described[key] for key in ("url", "minzoom", "maxzoom", "attribution")}


def _urls() -> dict:
    return {
        "report": reverse("residents:report"),
        "follow": reverse("residents:report-follow"),
        "categories": reverse("residents:api-categories"),
        "place": reverse("residents:api-place"),
        "geocode": reverse("residents:api-geocode"),
        "reports": reverse("residents:api-reports"),
        "case": reverse("residents:api-case"),
        "answer": reverse("residents:api-answer"),
        "photos": reverse("residents:api-photos"),
        "photo": reverse("residents:api-photo", args=[0]).replace("/0", "/{id}"),
        "public": reverse("residents:public"),
    }


def _page_config() -> dict:
    return {
        "basemap": _basemap(),
        "center": settings.LEAFLET_CONFIG["DEFAULT_CENTER"],
        "zoom": settings.LEAFLET_CONFIG["DEFAULT_ZOOM"],
        "limits": {
            "photoMaxBytes": settings.MINQING_PHOTO_MAX_BYTES,
            "photos": settings.MINQING_RESIDENT_PHOTOS,
            "gpsMaxAccuracyM": settings.MINQING_GPS_MAX_ACCURACY_M,
            "descriptionMax": settings.MINQING_RESIDENT_DESCRIPTION_MAX,
            "commentMax": MAX_COMMENT,
            "reopenDays": settings.MINQING_RESIDENT_REOPEN_DAYS,
        },
        "tokenHeader": params.FOLLOW_TOKEN_HEADER,
        "urls": _urls(),
    }


@ensure_csrf_cookie
def report_page(request: HttpRequest) -> HttpResponse:
    """``/report/``: the report form (no account). Its data comes from /api/resident/…."""
    return render(request, "mapserver/residents/report.html", {"resident_config": _page_config()})


@ensure_csrf_cookie
def follow_page(request: HttpRequest) -> HttpResponse:
    """``/report/follow/#<token>``: one case as its resident sees it; the token never reaches
    the server in the URL (the page sends it in a header)."""
    return render(request, "mapserver/residents/follow.html", {"resident_config": _page_config()})


# --- schema pieces -----------------------------------------------------------------------------------

ERROR = error_response(
    "error.message names the field (400); a follow-up link that opens nothing (404); not now (409); "
    "a photo too large (413); too many reports from this address or phone (429)"
)
_TOKEN = OpenApiParameter(
    params.FOLLOW_TOKEN_HEADER,
    {"type": "string", "pattern": FOLLOW_TOKEN_PATTERN},
    location=OpenApiParameter.HEADER,
    required=True,
    description="the token of the follow-up link (the part after #)",
)
_AREA = inline_serializer(
    name="ResidentArea", fields={"code": serializers.CharField(), "name": serializers.CharField()}, allow_null=True
)
_PLACE = inline_serializer(
    name="ResidentPlace",
    fields={
        "inside": serializers.BooleanField(help_text="a small grid covers the point"),
        "district": _AREA,
        "street": _AREA,
        "community": _AREA,
        "grid": _AREA,
        "lon": serializers.FloatField(),
        "lat": serializers.FloatField(),
    },
)
_CANDIDATE = inline_serializer(
    name="ResidentAddress",
    fields={
        "text": serializers.CharField(help_text="the standard address down to its building"),
        "score": serializers.FloatField(),
        "precision": serializers.CharField(),
        "lon": serializers.FloatField(allow_null=True),
        "lat": serializers.FloatField(allow_null=True),
        "street": _AREA,
        "community": _AREA,
        "grid": _AREA,
    },
)
_GEOCODE = inline_serializer(
    name="ResidentGeocode",
    fields={
        "query": serializers.CharField(),
        "matched": serializers.BooleanField(),
        "reason": serializers.CharField(help_text="why nothing matched well enough; empty when matched"),
        "candidates": serializers.ListField(child=_CANDIDATE),
    },
)
_CATEGORIES = inline_serializer(
    name="ResidentCategories",
    fields={
        "results": serializers.ListField(
            child=inline_serializer(
                name="ResidentCategory",
                fields={
                    "code": serializers.CharField(),
                    "family": serializers.CharField(),
                    "name": serializers.CharField(),
                    "name_en": serializers.CharField(),
                },
            )
        )
    },
)
_CASE = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="the case as its resident sees it: ticket, category, status, place, handler (department, level, "
    "grid; a person only where the city allows), deadline, steps (codes), resolution (note, photo ids), answer "
    "(may_rate, may_reopen, reopen_until)",
)
_RECEIPT = inline_serializer(
    name="ResidentReceipt",
    fields={
        "ticket": serializers.CharField(help_text="to quote on the phone (12345)"),
        "token": serializers.CharField(help_text="the follow-up token; shown once, never stored"),
        "follow_url": serializers.CharField(help_text="the private follow-up link: /report/follow/#<token>"),
        "case": serializers.DictField(help_text="as GET /api/resident/case answers it"),
    },
)
_REPORT = inline_serializer(
    name="ResidentReportIn",
    fields={
        "client_id": serializers.RegexField(
            UUID_PATTERN, help_text="the page's UUID of this report; a resend is stored once"
        ),
        "category": serializers.ChoiceField(choices=category_codes()),
        "description": serializers.RegexField(TEXT_PATTERN, max_length=settings.MINQING_RESIDENT_DESCRIPTION_MAX),
        "source": serializers.ChoiceField(choices=list(SOURCES), help_text="where the place comes from"),
        "location": inline_serializer(
            name="ResidentReportLocation",
            fields={
                "lon": serializers.FloatField(min_value=CHINA_LON[0], max_value=CHINA_LON[1]),
                "lat": serializers.FloatField(min_value=CHINA_LAT[0], max_value=CHINA_LAT[1]),
                "crs": serializers.ChoiceField(
                    choices=list(CLIENT_CRS), required=False, allow_null=True, help_text="default wgs84"
                ),
                "accuracy_m": serializers.FloatField(
                    required=False, min_value=0, max_value=1e7, help_text="required for gps"
                ),
            },
            required=False,
        ),
        "address": serializers.CharField(
            required=False, allow_null=True, max_length=MAX_ADDRESS, help_text="required when source is address"
        ),
        "phone": serializers.RegexField(
            r"^(1[3-9][0-9]{9})?$", required=False, allow_null=True, help_text="an 11-digit mobile, to be called back"
        ),
    },
)
_ANSWER = inline_serializer(
    name="ResidentAnswerIn",
    fields={
        "action": serializers.ChoiceField(choices=list(ANSWERS)),
        "satisfaction": serializers.IntegerField(min_value=1, max_value=5),
        "comment": serializers.CharField(required=False, max_length=MAX_COMMENT),
    },
)
_PHOTO = inline_serializer(
    name="ResidentPhoto",
    fields={
        "id": serializers.IntegerField(),
        "size": serializers.IntegerField(),
        "photos_sent": serializers.IntegerField(),
    },
)


# --- views -------------------------------------------------------------------------------------------


class ResidentView(APIView):
    """Base: anonymous, the page's CSRF token on writes, per-address limits on writes."""

    permission_classes = [AllowAny, CsrfUnlessToken]
    throttle_classes = [AnonymousRate, UserRate, ResidentWriteRate]


def _ticket(request: Request):
    return resident_case_get(token=params.parse_follow_token(request.headers))


class ResidentCategories(ResidentView):
    @extend_schema(
        operation_id="resident_categories",
        summary="Residents: the categories to choose from",
        tags=["residents"],
        responses={200: _CATEGORIES},
    )
    def get(self, request: Request) -> Response:
        response = Response({"results": resident_categories()})
        response["Cache-Control"] = f"public, max-age={settings.MINQING_PUBLIC_MAX_AGE}"
        return response


class ResidentPlace(ResidentView):
    @extend_schema(
        operation_id="resident_place",
        summary="Residents: where a point lies, and so which community and grid will handle a report there",
        tags=["residents"],
        parameters=[
            *china_point_parameters(),
            OpenApiParameter(
                "crs",
                OpenApiTypes.STR,
                enum=list(CLIENT_CRS),
                description="default wgs84 (gcj02 and bd09 are converted)",
            ),
        ],
        responses={200: _PLACE, 400: ERROR},
    )
    def get(self, request: Request) -> Response:
        wgs_lon, wgs_lat = params.parse_point_wgs84(request.query_params)
        return Response(resident_place(lon=wgs_lon, lat=wgs_lat))


class ResidentGeocode(ResidentView):
    @extend_schema(
        operation_id="resident_geocode",
        summary="Residents: typed address → standard addresses (down to the building)",
        tags=["residents"],
        parameters=[text_parameter("q", pattern=TEXT_PATTERN, max_length=MAX_QUERY, required=True)],
        responses={200: _GEOCODE, 400: ERROR},
    )
    def get(self, request: Request) -> Response:
        text = params.parse_text(request.query_params, "q", max_length=MAX_QUERY)
        return Response(resident_geocode(text=text))


def report_arguments(body: dict) -> dict:
    """The keyword arguments of ``resident_report`` from a report body, in the order the form is
    filled in (the first bad field is the one named)."""
    client_id = params.parse_text(body, "client_id", max_length=100)
    category = params.parse_category(body, "category")
    description = params.parse_text(body, "description", max_length=settings.MINQING_RESIDENT_DESCRIPTION_MAX)
    source = params.parse_choice(body, "source", SOURCES)
    place = params.parse_json_location(body)
    location = params.parse_object(body, "location", default={})
    accuracy = params.parse_float(location, "location.accuracy_m", low=0, high=1e7, default=None)
    address = params.parse_text(body, "address", max_length=MAX_ADDRESS, default="")
    phone = params.parse_text(body, "phone", max_length=20, default="")
    lon, lat, crs = place if place is not None else (None, None, "wgs84")
    return {
        "client_id": client_id,
        "category_code": category,
        "description": description,
        "source": source,
        "lon": lon,
        "lat": lat,
        "crs": crs,
        "accuracy_m": accuracy,
        "address": address,
        "phone": phone,
    }


class ResidentReports(ResidentView):
    parser_classes = [BodyLeftToTheView]

    @extend_schema(
        operation_id="resident_report",
        summary="Residents: report a problem (no account) → a ticket number and a private follow-up link",
        description="201 with the ticket and the follow-up token; a resend with the same client_id answers 200 with "
        "the same ticket and token and `Idempotent-Replay: true`. Needs the page's CSRF token (X-CSRFToken) "
        "unless authenticated by a token.",
        tags=["residents"],
        request=_REPORT,
        responses={201: _RECEIPT, 200: _RECEIPT, 400: ERROR, 403: ERROR, 429: ERROR},
    )
    def post(self, request: Request) -> Response:
        receipt = resident_report(**report_arguments(params.parse_json_object(request.body)))
        body = {
            "ticket": receipt.ticket.ticket,
            "token": receipt.token,
            "follow_url": f"{reverse('residents:report-follow')}#{receipt.token}",
            "case": resident_case(ticket=receipt.ticket),
        }
        response = Response(body, status=201 if receipt.created else 200)
        if not receipt.created:
            response["Idempotent-Replay"] = "true"
        return response


class ResidentCase(ResidentView):
    @extend_schema(
        operation_id="resident_case",
        summary="Residents: my case, by the token of its follow-up link",
        tags=["residents"],
        parameters=[_TOKEN],
        responses={200: _CASE, 400: ERROR, 404: ERROR},
    )
    def get(self, request: Request) -> Response:
        return Response(resident_case(ticket=_ticket(request)))


class ResidentAnswer(ResidentView):
    parser_classes = [BodyLeftToTheView]

    @extend_schema(
        operation_id="resident_answer",
        summary="Residents: rate the resolution of my case (1–5, once), or reopen it as not solved",
        tags=["residents"],
        parameters=[_TOKEN],
        request=_ANSWER,
        responses={200: _CASE, 400: ERROR, 404: ERROR, 409: ERROR},
    )
    def post(self, request: Request) -> Response:
        ticket = _ticket(request)
        body = params.parse_json_object(request.body)
        ticket = resident_answer(
            ticket=ticket,
            action=params.parse_choice(body, "action", ANSWERS),
            satisfaction=params.parse_int(body, "satisfaction", low=1, high=5),
            comment=params.parse_text(body, "comment", max_length=MAX_COMMENT, default=""),
        )
        return Response(resident_case(ticket=ticket))


class ResidentPhotos(ResidentView):
    """A photo of my report: the body is the image itself (JPEG, PNG or WebP)."""

    parser_classes = [ImageLeftToTheView]

    @extend_schema(
        operation_id="resident_photo_add",
        summary="Residents: add a photo to my report (the request body is the image)",
        tags=["residents"],
        parameters=[
            _TOKEN,
            text_parameter(
                "client_id", pattern=CLIENT_ID_PATTERN, required=True, description="the page's id of this upload"
            ),
        ],
        request={
            "image/jpeg": OpenApiTypes.BINARY,
            "image/png": OpenApiTypes.BINARY,
            "image/webp": OpenApiTypes.BINARY,
        },
        responses={201: _PHOTO, 200: _PHOTO, 400: ERROR, 404: ERROR, 409: ERROR, 413: ERROR},
    )
    def post(self, request: Request) -> Response:
        ticket = _ticket(request)
        client_id = params.parse_client_id(request.query_params)
        limit = settings.MINQING_PHOTO_MAX_BYTES
        # Refused from the declared length before a byte is read, as on the tablet.
        declared = params.parse_int(request.META, "CONTENT_LENGTH", low=0, high=2**62, default=0)
        if declared > limit:
            raise PhotoTooLarge(declared, limit)
        content = request._request.read(limit + 1)
        photo, created = resident_photo_add(ticket=ticket, content=content, client_id=client_id)
        sent = resident_photo_count(event_id=ticket.event_id)
        response = Response({"id": photo.pk, "size": photo.size, "photos_sent": sent}, status=201 if created else 200)
        if not created:
            response["Idempotent-Replay"] = "true"
        return response


class ResidentPhoto(ResidentView):
    """A handler's photo of my case (the resolution photo)."""

    @extend_schema(
        operation_id="resident_photo",
        summary="Residents: a handler's photo of my case",
        tags=["residents"],
        parameters=[_TOKEN],
        responses={(200, "image/jpeg"): OpenApiTypes.BINARY, 404: ERROR},
    )
    def get(self, request: Request, photo_id: int) -> HttpResponse:
        photo = resident_photo_get(ticket=_ticket(request), photo_id=photo_id)
        if photo is None:
            raise NotFound(_("no photo %(id)s of this case") % {"id": photo_id}, parameter="photo_id")
        response = FileResponse(photo.file.open("rb"), content_type=photo.content_type)
        response["Cache-Control"] = "private, no-store"
        return response
