"""``/open311/v2/``: the Open311 GeoReport v2 endpoint (services, requests; JSON and XML).

Authentication is the API's: a session or ``Authorization: Token <key>``, and, as GeoReport
clients expect, the same DRF token in the ``api_key`` parameter (query string or form field).
Reads need no key, as GeoReport intends: the services, and the requests the public map publishes
(a moderator approved their public summary) with public fields only
(:func:`mapserver.georeport.public_requests_list`); a key reads the requests of its data scope.
Every answer, errors included, is in the format the path's extension asks for; errors are
GeoReport's list of ``{code, description}`` with a 4xx status.

POST takes GeoReport's form fields (``service_code``, ``lat``/``long`` in WGS84,
``address_string``, ``address_id`` = one of our standard address codes, ``description``,
``first_name``/``last_name``/``phone`` kept as masked reporter contact, ``account_id`` echoed)
plus our extension ``service_request_id`` (or ``external_id``): the caller's ticket id, which
makes a retried POST answer the request already stored instead of creating a second one.
Requests land on the caller's channel: a user in the group ``intake:<channel>`` (for instance
``intake:hotline``) posts on that channel, everyone else on ``app``. ``email`` and
``device_id`` are accepted and not stored (the event has no place for them);
``jurisdiction_id`` is accepted and ignored (one city per server).
"""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.utils.translation import gettext
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions as drf_exceptions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from layers.errors import DomainError
from layers.models import Event
from layers.protection.scope import Scope
from layers.selectors import open311 as georeport
from layers.selectors.events import event_replay_readable
from layers.services.events import event_create
from layers.services.idempotency import idempotent_answer, request_digest

from .. import open311, params
from ..errors import BadParameter, Conflict, database_unavailable, throttled
from ..schema import (
    GEOREPORT_FORM,
    GEOREPORT_FORMAT,
    GEOREPORT_RECEIPT,
    GEOREPORT_REQUEST,
    GEOREPORT_SERVICE,
    GEOREPORT_SERVICE_DEFINITION,
    IDEMPOTENCY_KEY_PATTERN,
    georeport_responses,
    text_parameter,
)

logger = logging.getLogger("minqing.open311")

#: Group name prefix that binds an intake account to its channel.
CHANNEL_GROUP_PREFIX = "intake:"
DEFAULT_CHANNEL = Event.Channel.APP
#: The endpoint name idempotency keys of GeoReport POSTs are stored under.
INTAKE_ENDPOINT = "open311.requests"
#: The longest DRF token key (rest_framework.authtoken's Token.key).
MAX_TOKEN_LENGTH = 40
#: Values a list filter (``service_code``) takes, and the longest service code (a category code).
MAX_LIST_ITEMS = 50
SERVICE_CODE_LENGTH = 40


class ApiKeyAuthentication(TokenAuthentication):
    """GeoReport's ``api_key`` parameter, holding a DRF token; absent → the next authenticator."""

    def authenticate(self, request: Request):
        key = request.query_params.get("api_key")
        if not key and request.method == "POST":
            key = request.data.get("api_key")
        if not key:
            return None
        return self.authenticate_credentials(key)

    def authenticate_credentials(self, key: str):
        # A token is at most 40 characters and never holds NUL, which PostgreSQL cannot even
        # compare (the lookup would fail with a 500): such a key is simply not a token.
        if len(key) > MAX_TOKEN_LENGTH or "\x00" in key:
            raise drf_exceptions.AuthenticationFailed(gettext("Invalid token."))
        return super().authenticate_credentials(key)


def _error_of(exc: Exception) -> tuple[int, str] | None:
    """The status and description GeoReport's error list carries for ``exc``; None: unexpected."""
    exc = database_unavailable(exc) or exc
    if isinstance(exc, drf_exceptions.Throttled):
        exc = throttled(exc.wait)
    if isinstance(exc, DomainError):
        if exc.detail:
            logger.warning("open311: %s (%s)", exc.message, exc.detail)
        return exc.status, exc.message
    if isinstance(exc, drf_exceptions.APIException):
        status = 401 if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed) else None
        return status or exc.status_code, str(exc.detail)
    return None


class ExtensionNegotiation(BaseContentNegotiation):
    """Picks DRF's first renderer whatever the Accept header says (the answers are built by
    :func:`mapserver.open311.respond` in the path's format, not by a renderer)."""

    def select_parser(self, request, parsers):
        return DefaultContentNegotiation().select_parser(request, parsers)

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ReadWithoutKey(BasePermission):
    """GeoReport's reads are public, as the specification intends (without a key: public fields
    of published requests only, :func:`mapserver.georeport.public_requests_list`); a POST needs a
    key (401 without)."""

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or bool(request.user and request.user.is_authenticated)


class Open311View(APIView):
    """Base: answers and errors in the format of the path's extension."""

    authentication_classes = [ApiKeyAuthentication, TokenAuthentication, SessionAuthentication]
    permission_classes = [ReadWithoutKey]
    parser_classes = [FormParser, MultiPartParser]
    # The path's extension picks the format, never the Accept header: a GeoReport client that
    # asks requests.xml with "Accept: text/xml" must not get DRF's 406.
    content_negotiation_class = ExtensionNegotiation

    def initial(self, request: Request, *args, **kwargs) -> None:
        # The format first: an unknown extension is a 404 (told in JSON) even before authentication.
        fmt = kwargs.get("fmt", "json")
        self.fmt = fmt if fmt in open311.FORMATS else "json"
        open311.parse_format(fmt)
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc: Exception):
        error = _error_of(exc)
        if error is None:
            return super().handle_exception(exc)
        status, description = error
        response = open311.respond(
            open311.errors_body(status, description), fmt=getattr(self, "fmt", "json"), kind="errors", status=status
        )
        if status == 401:
            response["WWW-Authenticate"] = 'Token realm="api"'
        if status == 503:
            response["Retry-After"] = str(settings.MINQING_RETRY_AFTER_SECONDS)
        if isinstance(exc, drf_exceptions.Throttled):
            response["Retry-After"] = str(throttled(exc.wait).retry_after)
        return response


class Services(Open311View):
    @extend_schema(
        operation_id="open311_services",
        summary="GeoReport: the services (our categories)",
        tags=["open311"],
        parameters=[GEOREPORT_FORMAT],
        responses=georeport_responses(GEOREPORT_SERVICE),
    )
    def get(self, request: Request, fmt: str):
        return open311.respond(georeport.services_list(), fmt=self.fmt, kind="services")


class ServiceDefinition(Open311View):
    @extend_schema(
        operation_id="open311_service_definition",
        summary="GeoReport: one service's definition (no extra attributes)",
        tags=["open311"],
        parameters=[GEOREPORT_FORMAT, OpenApiParameter("code", OpenApiTypes.STR, location=OpenApiParameter.PATH)],
        responses=georeport_responses(GEOREPORT_SERVICE_DEFINITION),
    )
    def get(self, request: Request, code: str, fmt: str):
        return open311.respond(georeport.service_definition(code=code), fmt=self.fmt, kind="service_definition")


def _parse_ids(query) -> list[int] | None:
    raw = params.parse_text(query, "service_request_id", max_length=20_000, default=None)
    if raw is None:
        return None
    ids = [part.strip() for part in raw.split(",") if part.strip()]
    bad = next((part for part in ids if not re.fullmatch(r"[0-9]{1,18}", part)), None)
    if bad is not None:
        raise BadParameter(
            "service_request_id", _("must be comma-separated request ids, got %(value)s") % {"value": f"{bad[:40]!r}"}
        )
    if len(ids) > georeport.MAX_REQUESTS:
        raise BadParameter(
            "service_request_id",
            _("at most %(value)s ids, got %(value2)s") % {"value": georeport.MAX_REQUESTS, "value2": len(ids)},
        )
    return [int(part) for part in ids]


def _location(data, scope: Scope) -> dict:
    """Event location arguments from GeoReport's lat/long, address_string and address_id (a
    standard address in the reader's data ``scope``; another one is as unknown as a made-up code)."""
    address = params.parse_text(data, "address_string", max_length=300, default="")
    if data.get("lat", "") != "" or data.get("long", "") != "":
        lon, lat = params.parse_china_lon_lat(data, lon="long", lat="lat")
        return {"lon": lon, "lat": lat, "address": address}
    address_id = params.parse_text(data, "address_id", max_length=32, default="")
    if address_id:
        lon, lat, full_text = georeport.standard_address(code=address_id, scope=scope)
        return {"lon": lon, "lat": lat, "address": address or full_text}
    if not address:
        raise BadParameter("lat", _("lat and long, address_string or address_id is required"))
    return {"lon": None, "lat": None, "address": address}


def _reporter_name(*, first: str, last: str) -> str:
    """A Chinese name is surname then given name, unspaced (张三); a Latin one "John Smith"."""
    if any(ch.isascii() and ch.isalpha() for ch in first + last):
        return " ".join(part for part in (first, last) if part)
    return last + first


def _channel(reader) -> str:
    """The channel of an intake account (its group ``intake:<channel>``), else the app's."""
    for name in reader.roles:
        channel = name.removeprefix(CHANNEL_GROUP_PREFIX)
        if name.startswith(CHANNEL_GROUP_PREFIX) and channel in Event.Channel.values:
            return channel
    return DEFAULT_CHANNEL


def _replay_check(request: Request, *, event: Event, created: bool) -> None:
    """A retry is answered with the stored request only when it lies in the reader's data scope
    or the reader sent it in; else 409 (a ticket id must not open another's request)."""
    reader = request.reader
    if not created and not event_replay_readable(event_id=event.pk, scope=reader.scope, user_id=reader.user_id):
        raise Conflict(
            _("service_request_id: this ticket id belongs to another request"), parameter="service_request_id"
        )


def _form_of(request: Request) -> dict:
    """What identifies a POST for its Idempotency-Key: the path (hence the format) and the form
    fields but the credential (a rotated api_key still names the same request)."""
    data = request.data
    fields = {
        name: [value if isinstance(value, str) else getattr(value, "name", "") for value in data.getlist(name)]
        for name in data
        if name != "api_key"
    }
    return {"path": request.path, "form": fields}


class Requests(Open311View):
    @extend_schema(
        operation_id="open311_requests_list",
        summary="GeoReport: service requests, newest first (at most 1000)",
        tags=["open311"],
        parameters=[
            GEOREPORT_FORMAT,
            text_parameter(
                "service_request_id", pattern=r"^([0-9]{1,18}(,[0-9]{1,18})*)?$", description="comma-separated ids"
            ),
            OpenApiParameter(
                "service_code",
                {"type": "string", "pattern": r"^[^,\s][^,]*(,[^,\s][^,]*)*$", "maxLength": SERVICE_CODE_LENGTH},
                description="one or more service codes, comma-separated or repeated (any of them)",
            ),
            OpenApiParameter("start_date", OpenApiTypes.DATETIME),
            OpenApiParameter("end_date", OpenApiTypes.DATETIME),
            OpenApiParameter(
                "status",
                {"type": "string", "pattern": r"^(open|closed)(,(open|closed))*$", "maxLength": 200},
                description="open, closed or both, comma-separated or repeated",
            ),
        ],
        responses=georeport_responses(GEOREPORT_REQUEST),
    )
    def get(self, request: Request, fmt: str):
        query = request.query_params
        ids = _parse_ids(query)
        codes = params.parse_list(query, "service_code", max_items=MAX_LIST_ITEMS, max_length=SERVICE_CODE_LENGTH)
        start = params.parse_datetime_param(query, "start_date", default=None)
        end = params.parse_datetime_param(query, "end_date", default=None)
        if start and end and start > end:
            raise BadParameter("end_date", _("must not be before start_date"))
        statuses = params.parse_list(query, "status", max_items=2, max_length=6, choices=("open", "closed"))
        if request.reader.is_anonymous:
            rows = georeport.public_requests_list(ids=ids, service_codes=codes, start=start, end=end, statuses=statuses)
            return open311.respond(rows, fmt=self.fmt, kind="requests")
        rows = georeport.requests_list(
            scope=request.reader.scope,
            ids=ids,
            service_codes=codes,
            start=start,
            end=end,
            statuses=statuses,
            with_description=request.reader.reads_description,
        )
        return open311.respond(rows, fmt=self.fmt, kind="requests")

    @extend_schema(
        operation_id="open311_requests_create",
        summary="GeoReport: take in a service request (idempotent per service_request_id or Idempotency-Key)",
        tags=["open311"],
        parameters=[
            GEOREPORT_FORMAT,
            OpenApiParameter(
                "Idempotency-Key",
                {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
                location=OpenApiParameter.HEADER,
                description="1–255 visible ASCII characters; a retry with the same key and form gets the first answer",
            ),
        ],
        request=GEOREPORT_FORM,
        responses=georeport_responses(GEOREPORT_RECEIPT),
    )
    def post(self, request: Request, fmt: str):
        data = request.data
        code = params.parse_text(data, "service_code", max_length=40)
        service_name = georeport.service_name(code=code)
        location = _location(data, request.reader.scope)
        description = params.parse_text(data, "description", max_length=10_000, default="")
        external_id = params.parse_text(data, "service_request_id", max_length=64, default="") or params.parse_text(
            data, "external_id", max_length=64, default=""
        )
        name = _reporter_name(
            first=params.parse_text(data, "first_name", max_length=25, default=""),
            last=params.parse_text(data, "last_name", max_length=25, default=""),
        )
        phone = params.parse_text(data, "phone", max_length=20, default="")
        account_id = params.parse_text(data, "account_id", max_length=64, default="")
        key = params.parse_idempotency_key(request.headers)

        def produce() -> tuple[int, list, int]:
            event, created = event_create(
                channel=_channel(request.reader),
                external_id=external_id,
                category_code=code,
                # GeoReport makes the description optional; our events need one, so the service's
                # name stands in (the citizen chose it, so it says what the report is about).
                description=description or service_name,
                reporter_name=name,
                reporter_phone=phone,
                actor=request.user,
                **location,
            )
            _replay_check(request, event=event, created=created)
            return 200, [georeport.request_receipt(event=event, account_id=account_id)], event.pk

        answer = idempotent_answer(
            owner_id=request.user.pk,
            endpoint=INTAKE_ENDPOINT,
            key=key,
            digest=request_digest(_form_of(request)),
            produce=produce,
        )
        response = open311.respond(answer.body, fmt=self.fmt, kind="requests", status=answer.status)
        if answer.replayed:
            response["Idempotent-Replay"] = "true"
        return response


class RequestDetail(Open311View):
    @extend_schema(
        operation_id="open311_request",
        summary="GeoReport: one service request",
        tags=["open311"],
        parameters=[
            GEOREPORT_FORMAT,
            # drf-spectacular names the path's "pk" "id".
            text_parameter(
                "id", pattern=r"^[0-9]{1,18}$", location="path", required=True, description="the request id"
            ),
        ],
        responses=georeport_responses(GEOREPORT_REQUEST),
    )
    def get(self, request: Request, pk: str, fmt: str):
        if not re.fullmatch(r"[0-9]{1,18}", pk):
            raise BadParameter(
                "service_request_id", _("must be a request id (digits), got %(value)s") % {"value": f"{pk[:40]!r}"}
            )
        if request.reader.is_anonymous:
            return open311.respond([georeport.public_request_get(pk=int(pk))], fmt=self.fmt, kind="requests")
        return open311.respond(
            [
                georeport.request_get(
                    pk=int(pk), scope=request.reader.scope, with_description=request.reader.reads_description
                )
            ],
            fmt=self.fmt,
            kind="requests",
        )
