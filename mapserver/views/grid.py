"""The grid worker's tablet: the ``/grid/`` page, its service worker and ``/api/grid/…``.

* ``GET /grid/``: the page; ``GET /grid/sw.js``: its service worker (scope ``/grid/``), which
  keeps the page, its scripts and my grid's basemap tiles for offline use.
* ``GET /api/grid/session``: who is logged in, their grids and a fresh CSRF token (the page
  asks after a re-login, so a queue kept offline can be sent with the new session).
* ``GET /api/grid/package``: my grid's package (``layers.selectors.gridpack.grid_package``).
* ``GET /api/grid/locate``: is this point inside my grid?
* ``GET|POST /api/grid/events``: my events; report a new one (channel ``grid_patrol``).
* ``GET /api/grid/events/<id>``, ``POST …/actions`` (accept, resolve, note), ``POST …/photos``
  (the raw image as the body), ``GET /api/grid/photos/<id>`` (the file).

Writes carry the tablet's ``client_id``: a report becomes external id ``GW-<client_id>``, an
action goes through the Idempotency-Key store, a photo keeps it on its row. A queued write sent
twice is stored once. Scope: only my grids' data and events (``worker_*`` selectors).
"""

from __future__ import annotations

import hashlib
import json

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import FileResponse, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.gzip import gzip_page
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from basemaps.sources import basemaps_configured
from layers.geocoding.crs import CLIENT_CRS
from layers.protection.audit import audit_record
from layers.selectors.gridpack import (
    grid_package,
    grid_point_check,
    photo_describe,
    worker_event_detail,
    worker_event_get,
    worker_events,
    worker_grid_get,
    worker_grids,
    worker_photo_get,
    worker_report_detail,
)
from layers.services.events import MAX_DESCRIPTION
from layers.services.gridwork import (
    MAX_NOTE,
    SOURCES,
    WORKER_STEPS,
    PhotoTooLarge,
    event_photo_add,
    grid_event_act,
    grid_event_report,
)
from layers.services.idempotency import idempotent_answer, request_digest
from layers.services.registry_tasks import address_field_lengths
from layers.services.users import Role

from .. import params
from ..auth import roles_required
from ..errors import Conflict, NotFound
from ..parsers import BodyLeftToTheView, ImageLeftToTheView
from ..schema import (
    CATEGORY_PATTERN,
    CHINA_LAT,
    CHINA_LON,
    CLIENT_ID_PATTERN,
    TEXT_PATTERN,
    china_point_parameters,
    error_response,
)
from .pages import page_for

#: The photo fields the API describes (``photo_describe``).
_PHOTO_FIELDS = ("id", "content_type", "size", "width", "height", "uploaded_at")


#: Every /api/grid/ view: the tablet is the grid worker's (administrators may look too); being
#: named a grid's worker opens nothing to a user of another role.
GRID_WORKERS = roles_required(Role.GRID_WORKER, message=gettext_lazy("the tablet's API is for grid workers"))


class GridWorkerView(APIView):
    """Base of the tablet's API views."""

    permission_classes = [GRID_WORKERS]


def _event_or_404(request: Request, event_id: int):
    event = worker_event_get(reader=request.reader, event_id=event_id)
    if event is None:
        raise NotFound(_("No event with id %(id)s in your grids.") % {"id": event_id}, parameter="event_id")
    return event


def _grid_code(request: Request) -> str | None:
    return params.parse_text(request.query_params, "grid", max_length=24, default=None)


# --- the page and its service worker ---------------------------------------------------------------

#: Our static files and the vendor files the page loads; the service worker keeps them offline.
PAGE_STATIC = (
    "vendor/leaflet/leaflet.css",
    "vendor/leaflet/leaflet.js",
    "vendor/leaflet/images/layers.png",
    "vendor/leaflet/images/layers-2x.png",
    "mapserver/common/pages.css",
    "mapserver/common/minqing.js",
    "mapserver/common/favicon.svg",
    "mapserver/grid/grid.css",
    "mapserver/grid/grid.js",
    "mapserver/grid/gridtasks.js",
    "mapserver/common/buildingsheet.js",
)
#: Zoom levels of my grid's basemap tiles the page stores for offline use (the map opens at 15–17).
OFFLINE_TILE_ZOOMS = (14, 18)


@page_for(Role.GRID_WORKER)
def grid_page(request: HttpRequest) -> HttpResponse:
    """The tablet page; everything it shows comes from /api/grid/… (and, offline, from the
    copies the page and its service worker keep)."""
    basemap = next(iter(basemaps_configured().values())).describe()
    config = {
        "username": request.user.get_username(),
        "basemap": {key: basemap[key] for key in ("url", "minzoom", "maxzoom", "attribution")},
        "offlineTileZooms": OFFLINE_TILE_ZOOMS,
        "limits": {
            "photoMaxBytes": settings.MINQING_PHOTO_MAX_BYTES,
            "gpsMaxAccuracyM": settings.MINQING_GPS_MAX_ACCURACY_M,
            # A move of the registry's point up to this far, inside the grid, applies at once.
            "freeMoveM": settings.MINQING_REGISTRY_FREE_MOVE_M,
        },
        # The fields of a standard address a worker may correct or give, with their lengths.
        "addressFields": address_field_lengths(),
        "urls": {
            "page": reverse("grid:page"),
            "serviceWorker": reverse("grid:service-worker"),
            "login": f"{settings.LOGIN_URL}?next={reverse('grid:page')}",
            "session": reverse("grid:api-session"),
            "package": reverse("grid:api-package"),
            "locate": reverse("grid:api-locate"),
            "events": reverse("grid:api-events"),
            "actions": reverse("grid:api-actions", args=[0]).replace("/0/", "/{id}/"),
            "photos": reverse("grid:api-photos", args=[0]).replace("/0/", "/{id}/"),
            "tasks": reverse("grid:api-tasks"),
            "taskAnswer": reverse("grid:api-task-answer", args=[0]).replace("/0/", "/{id}/"),
            "visits": reverse("grid:api-visits"),
        },
    }
    return render(request, "mapserver/grid/grid.html", {"grid_config": config})


def _static_version(paths: list[str]) -> str:
    """A digest of the service worker's own code and of the files it keeps: when one changes, the
    worker changes, the browser installs it and it replaces its stored copies."""
    digest = hashlib.blake2b(digest_size=8)
    for path in ["mapserver/grid/sw.js", *paths]:
        found = finders.find(path)
        if found:
            with open(found, "rb") as handle:  # the static files we serve ourselves; small
                digest.update(handle.read())
    return digest.hexdigest()


def service_worker(request: HttpRequest) -> HttpResponse:
    """``/grid/sw.js``: our worker (static/mapserver/grid/sw.js) with its configuration in front.

    Served from under /grid/ so that its scope covers the page; public (it holds no data, and a
    worker update must not fail on an expired session)."""
    source = finders.find("mapserver/grid/sw.js")
    with open(source, encoding="utf-8") as handle:
        code = handle.read()
    config = {
        "version": _static_version(list(PAGE_STATIC)),
        "page": reverse("grid:page"),
        "staticPrefix": settings.STATIC_URL,
        "precache": [static(path) for path in PAGE_STATIC],
        "jsCatalog": reverse("pages:javascript-catalog"),
        "basemapPrefix": "/basemaps/",
    }
    body = f"self.MINQING_SW = {json.dumps(config)};\n{code}"
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    # Browsers check a worker for updates at most daily anyway; never let a proxy keep an old one.
    response["Cache-Control"] = "no-cache"
    return response


# --- schema pieces --------------------------------------------------------------------------------

_EVENT = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="an event as GET /api/events/{id} answers it, plus worker_actions (what the tablet offers) and photos",
)
_PHOTO = inline_serializer(
    name="GridPhoto",
    fields={
        "id": serializers.IntegerField(),
        "url": serializers.CharField(),
        "content_type": serializers.CharField(),
        "size": serializers.IntegerField(),
        "width": serializers.IntegerField(),
        "height": serializers.IntegerField(),
        "uploaded_at": serializers.DateTimeField(),
    },
)
_GRIDS = serializers.ListField(child=serializers.DictField(), help_text="my small grids: code, name")
_SESSION = inline_serializer(
    name="GridSession",
    fields={"username": serializers.CharField(), "grids": _GRIDS, "csrf_token": serializers.CharField()},
)
_GEOJSON = serializers.DictField(help_text="GeoJSON FeatureCollection, coordinates to 5 decimals (about 1 m)")
_PACKAGE = inline_serializer(
    name="GridPackage",
    fields={
        "generated_at": serializers.DateTimeField(),
        "grid": serializers.DictField(help_text="code, name, community, street, district, boundary (GeoJSON), bbox"),
        "my_grids": _GRIDS,
        "counts": serializers.DictField(child=serializers.IntegerField()),
        "buildings": _GEOJSON,
        "addresses": _GEOJSON,
        "units": _GEOJSON,
        "households": serializers.ListField(child=serializers.DictField(), help_text="care-tagged first"),
        "residents": serializers.ListField(
            child=serializers.DictField(), help_text="care-tagged first; id_number and phone masked"
        ),
        "events": serializers.ListField(child=serializers.DictField(), help_text="my events, as GET /api/grid/events"),
        "categories": serializers.ListField(child=serializers.DictField()),
        "labels": serializers.DictField(help_text="display names of the coded values"),
        "limits": serializers.DictField(help_text="photo_max_bytes, gps_max_accuracy_m"),
    },
)
_EVENTS = inline_serializer(name="GridEvents", fields={"results": serializers.ListField(child=serializers.DictField())})
ERROR = error_response("error.message names the field (400); 403 outside your grids; 413 for a photo too large")
_WHERE = inline_serializer(
    name="GridWhere",
    fields={
        "inside": serializers.BooleanField(help_text="inside one of my small grids"),
        "grid": serializers.DictField(allow_null=True, help_text="the small grid holding the point: code, name"),
        "boundary_distance_m": serializers.FloatField(allow_null=True),
        "ambiguous": serializers.BooleanField(),
        "message": serializers.CharField(),
    },
)
_REPORTED = inline_serializer(
    name="GridReported",
    fields={"event": serializers.DictField(help_text="the event, as GET /api/grid/events/{id}"), "where": _WHERE},
)
_GRID_PARAM = OpenApiParameter("grid", OpenApiTypes.STR, description="one of my small grids (default: the first)")
_REPORT = inline_serializer(
    name="GridReportIn",
    fields={
        "client_id": serializers.RegexField(
            CLIENT_ID_PATTERN, help_text="the tablet's id of this report (UUID); a resend is stored once"
        ),
        "category": serializers.RegexField(CATEGORY_PATTERN, max_length=40),
        "description": serializers.RegexField(TEXT_PATTERN, max_length=MAX_DESCRIPTION),
        "location": inline_serializer(
            name="GridReportLocation",
            fields={
                "lon": serializers.FloatField(min_value=CHINA_LON[0], max_value=CHINA_LON[1]),
                "lat": serializers.FloatField(min_value=CHINA_LAT[0], max_value=CHINA_LAT[1]),
                "crs": serializers.ChoiceField(
                    choices=list(CLIENT_CRS), required=False, allow_null=True, help_text="default wgs84"
                ),
                "source": serializers.ChoiceField(choices=SOURCES),
                "accuracy_m": serializers.FloatField(
                    required=False, min_value=0, max_value=1e7, help_text="required for gps"
                ),
            },
        ),
        "reported_at": serializers.DateTimeField(required=False, help_text="when it was reported (offline: earlier)"),
    },
)
_ACTION = inline_serializer(
    name="GridActionIn",
    fields={
        "action": serializers.ChoiceField(choices=list(WORKER_STEPS)),
        "note": serializers.CharField(required=False, max_length=MAX_NOTE, help_text="required by note and resolve"),
        "client_id": serializers.CharField(
            required=False, help_text="the tablet's id of this action; resent: stored once"
        ),
        "version": serializers.IntegerField(required=False),
    },
)


# --- views ----------------------------------------------------------------------------------------


class GridSession(GridWorkerView):
    """Who is logged in, their grids and the CSRF token for writes."""

    # The CSRF token beside the user's name: never compressed (BREACH, mapserver/compression.py).
    never_compress = True

    @extend_schema(
        operation_id="grid_session",
        summary="The grid worker's session: user, grids, CSRF token",
        responses={200: _SESSION},
    )
    def get(self, request: Request) -> Response:
        grids = worker_grids(reader=request.reader)
        return Response(
            {
                "username": request.user.get_username(),
                "grids": [{"code": g["code"], "name": g["name"]} for g in grids],
                "csrf_token": get_token(request._request),
            }
        )


# Compressed (about a tenth of its size: 0.4 MB → 40 KB for 500 households, most of a phone's
# first load). BREACH needs a secret and text the attacker controls in one compressed answer:
# the package holds no token (the CSRF token comes from /api/grid/session, not compressed),
# its personal data is masked already, and Django's GZipMiddleware pads each answer with random
# bytes. Answers that echo request text beside a secret (reveals, the session) stay uncompressed.
@method_decorator(gzip_page, name="dispatch")
class GridPackage(GridWorkerView):
    """Everything the tablet needs to work one grid offline."""

    @extend_schema(
        operation_id="grid_package",
        summary="My grid's package: boundary, buildings, addresses, units, households, residents (masked), events",
        parameters=[_GRID_PARAM],
        responses={200: _PACKAGE, 403: ERROR},
    )
    def get(self, request: Request) -> Response:
        grid = worker_grid_get(reader=request.reader, code=_grid_code(request))
        body = grid_package(reader=request.reader, grid=grid)
        # Residents' names, ages and care tags leave for a tablet: recorded like an export.
        audit_record(
            action="export", target=f"grid:{body['grid']['code']}", detail={"kind": "grid_package", **body["counts"]}
        )
        response = Response(body)
        # Residents' data: never kept by a shared cache; the service worker keeps its own copy.
        response["Cache-Control"] = "private, no-cache"
        return response


class GridLocate(GridWorkerView):
    """Whether a point lies inside my grid."""

    @extend_schema(
        operation_id="grid_locate",
        summary="Is this point inside my grid?",
        parameters=[
            *china_point_parameters(),
            OpenApiParameter("crs", OpenApiTypes.STR, enum=list(CLIENT_CRS), description="default wgs84"),
        ],
        responses={200: _WHERE, 400: ERROR},
    )
    def get(self, request: Request) -> Response:
        wgs_lon, wgs_lat = params.parse_point_wgs84(request.query_params)
        return Response(grid_point_check(reader=request.reader, lon=wgs_lon, lat=wgs_lat))


def report_arguments(body: dict) -> dict:
    """The keyword arguments of ``grid_event_report`` (but the actor) from a report body, in the
    order the form is filled in."""
    client_id = params.parse_client_id(body)
    category = params.parse_text(body, "category", max_length=40)
    description = params.parse_text(body, "description", max_length=MAX_DESCRIPTION)
    location = params.parse_object(body, "location")  # required: "location: is required"
    lon, lat, crs = params.parse_json_location(body)
    return {
        "client_id": client_id,
        "category_code": category,
        "description": description,
        "lon": lon,
        "lat": lat,
        "crs": crs,
        "source": params.parse_choice(location, "location.source", SOURCES),
        "accuracy_m": params.parse_float(location, "location.accuracy_m", low=0, high=1e7, default=None),
        "reported_at": params.parse_datetime_param(body, "reported_at", default=None),
    }


class GridEvents(GridWorkerView):
    """My events (GET) and a new report from the field (POST)."""

    parser_classes = [BodyLeftToTheView]

    @extend_schema(
        operation_id="grid_events",
        summary="My events: open, suspended and resolved cases in my grid, earliest deadline first",
        parameters=[_GRID_PARAM],
        responses={200: _EVENTS, 403: ERROR},
    )
    def get(self, request: Request) -> Response:
        grid = worker_grid_get(reader=request.reader, code=_grid_code(request))
        return Response({"results": worker_events(grid=grid, with_description=request.reader.reads_description)})

    @extend_schema(
        operation_id="grid_report",
        summary="Report an event at a GPS fix or a tapped point; answers whether it lies in my grid",
        description="201 with the event and `where`; a resend with the same client_id answers 200 with the stored "
        "event and `Idempotent-Replay: true`.",
        request=_REPORT,
        responses={201: _REPORTED, 200: _REPORTED, 400: ERROR, 409: ERROR},
    )
    def post(self, request: Request) -> Response:
        arguments = report_arguments(params.parse_json_object(request.body))
        event, created = grid_event_report(actor=request.user, **arguments)
        detail = worker_report_detail(reader=request.reader, event_id=event.pk)
        if detail is None:
            raise Conflict(
                _("client_id: the id belongs to another report; send a new one"),
                parameter="client_id",
            )
        where = grid_point_check(reader=request.reader, lon=event.location.x, lat=event.location.y)
        response = Response({"event": detail, "where": where}, status=201 if created else 200)
        if not created:
            response["Idempotent-Replay"] = "true"
        return response


class GridEventDetail(GridWorkerView):
    """One of my events with its log and photos."""

    @extend_schema(operation_id="grid_event", summary="One of my events", responses={200: _EVENT, 404: ERROR})
    def get(self, request: Request, event_id: int) -> Response:
        event = _event_or_404(request, event_id)
        return Response(worker_event_detail(reader=request.reader, event_id=event.pk))


class GridEventActions(GridWorkerView):
    """Accept, resolve or add a note to one of my events."""

    parser_classes = [BodyLeftToTheView]

    @extend_schema(
        operation_id="grid_event_act",
        summary="Accept, resolve or add a note",
        request=_ACTION,
        responses={200: _EVENT, 400: ERROR, 404: ERROR, 409: ERROR},
    )
    def post(self, request: Request, event_id: int) -> Response:
        event = _event_or_404(request, event_id)
        body = params.parse_json_object(request.body)
        arguments = {
            "action": params.parse_choice(body, "action", WORKER_STEPS),
            "note": params.parse_text(body, "note", max_length=MAX_NOTE, default=""),
            "version": params.parse_int(body, "version", low=0, high=2**31 - 1, default=None),
        }
        client_id = params.parse_client_id(body, default=None)

        def produce() -> tuple[int, dict, int]:
            grid_event_act(event=event, reader=request.reader, actor=request.user, **arguments)
            detail = worker_event_detail(reader=request.reader, event_id=event.pk)
            return 200, detail, event.pk

        answer = idempotent_answer(
            owner_id=request.user.pk,
            endpoint="grid.actions",
            key=client_id,
            digest=request_digest({"event": event.pk, **arguments}),
            produce=produce,
        )
        response = Response(answer.body, status=answer.status)
        if answer.replayed:
            response["Idempotent-Replay"] = "true"
        return response


class GridEventPhotos(GridWorkerView):
    """Attach a photo to one of my events: the body is the image itself (JPEG, PNG or WebP)."""

    parser_classes = [ImageLeftToTheView]

    @extend_schema(
        operation_id="grid_event_photo",
        summary="Attach a photo (the request body is the image)",
        parameters=[OpenApiParameter("client_id", OpenApiTypes.STR, description="the tablet's id of this upload")],
        request={
            "image/jpeg": OpenApiTypes.BINARY,
            "image/png": OpenApiTypes.BINARY,
            "image/webp": OpenApiTypes.BINARY,
        },
        responses={201: _PHOTO, 200: _PHOTO, 400: ERROR, 404: ERROR, 413: ERROR},
    )
    def post(self, request: Request, event_id: int) -> Response:
        event = _event_or_404(request, event_id)
        client_id = params.parse_client_id(request.query_params, default="")
        limit = settings.MINQING_PHOTO_MAX_BYTES
        # Refused from the declared length, before a byte is read: a 30 MB photo costs nothing.
        declared = params.parse_int(request.META, "CONTENT_LENGTH", low=0, high=2**62, default=0)
        if declared > limit:
            raise PhotoTooLarge(declared, limit)
        content = request._request.read(limit + 1)
        photo, created = event_photo_add(event=event, actor=request.user, content=content, client_id=client_id)
        described = photo_describe({field: getattr(photo, field) for field in _PHOTO_FIELDS})
        response = Response(described, status=201 if created else 200)
        if not created:
            response["Idempotent-Replay"] = "true"
        return response


class GridPhoto(GridWorkerView):
    """The file of a photo of one of my events."""

    @extend_schema(
        operation_id="grid_photo",
        summary="A photo's file",
        responses={(200, "image/jpeg"): OpenApiTypes.BINARY, 404: ERROR},
    )
    def get(self, request: Request, photo_id: int) -> HttpResponse:
        photo = worker_photo_get(reader=request.reader, photo_id=photo_id)
        if photo is None:
            raise NotFound(_("No photo with id %(id)s in your grids.") % {"id": photo_id}, parameter="photo_id")
        response = FileResponse(photo.file.open("rb"), content_type=photo.content_type)
        response["Cache-Control"] = "private, max-age=86400"
        response["X-Content-Type-Options"] = "nosniff"
        return response
