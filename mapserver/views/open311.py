"""``/open311/v2/``: the Open311 GeoReport v2 endpoint (services, requests; JSON and XML).

Authentication is the API's: a session or ``Authorization: Token <key>``, and, as GeoReport
clients expect, the same DRF token in the ``api_key`` parameter (query string or form field).
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

import re

from rest_framework import exceptions as drf_exceptions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.views import APIView

from layers.errors import DomainError
from layers.models import Address, Event
from layers.selectors.events import description_readable
from layers.services.events import event_create

from .. import open311, params
from ..auth import reader_roles
from ..errors import BadParameter, MinqingError

#: Group name prefix that binds an intake account to its channel.
CHANNEL_GROUP_PREFIX = "intake:"
DEFAULT_CHANNEL = Event.Channel.APP


def _reads_description(request) -> bool:
    """Free text (descriptions, status notes) only for the roles the catalog lets read it."""
    user = request.user
    return description_readable(roles=reader_roles(user.pk), superuser=user.is_superuser)


class ApiKeyAuthentication(TokenAuthentication):
    """GeoReport's ``api_key`` parameter, holding a DRF token; absent → the next authenticator."""

    def authenticate(self, request: Request):
        key = request.query_params.get("api_key")
        if not key and request.method == "POST":
            key = request.data.get("api_key")
        if not key:
            return None
        return self.authenticate_credentials(key)


def _error_of(exc: Exception) -> tuple[int, str] | None:
    """The status and description GeoReport's error list carries for ``exc``; None: unexpected."""
    if isinstance(exc, MinqingError | DomainError):
        return exc.status, exc.message
    if isinstance(exc, drf_exceptions.APIException):
        status = 401 if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed) else None
        return status or exc.status_code, str(exc.detail)
    return None


class Open311View(APIView):
    """Base: answers and errors in the format of the path's extension."""

    authentication_classes = [ApiKeyAuthentication, TokenAuthentication, SessionAuthentication]
    parser_classes = [FormParser, MultiPartParser]
    #: The schema generator documents the JSON API; GeoReport is documented by its own standard.
    schema = None

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
        return response


class Services(Open311View):
    def get(self, request: Request, fmt: str):
        return open311.respond(open311.services_list(), fmt=self.fmt, kind="services")


class ServiceDefinition(Open311View):
    def get(self, request: Request, code: str, fmt: str):
        return open311.respond(open311.service_definition(code=code), fmt=self.fmt, kind="service_definition")


def _parse_ids(query) -> list[int] | None:
    raw = params.parse_text(query, "service_request_id", max_length=20_000, default=None)
    if raw is None:
        return None
    ids = [part.strip() for part in raw.split(",") if part.strip()]
    bad = next((part for part in ids if not re.fullmatch(r"[0-9]{1,18}", part)), None)
    if bad is not None:
        raise BadParameter("service_request_id", f"must be comma-separated request ids, got {bad[:40]!r}")
    if len(ids) > open311.MAX_REQUESTS:
        raise BadParameter("service_request_id", f"at most {open311.MAX_REQUESTS} ids, got {len(ids)}")
    return [int(part) for part in ids]


def _location(data) -> dict:
    """Event location arguments from GeoReport's lat/long, address_string and address_id."""
    address = params.parse_text(data, "address_string", max_length=300, default="")
    if data.get("lat", "") != "" or data.get("long", "") != "":
        lon, lat = params.parse_china_lon_lat(data, lon="long", lat="lat")
        return {"lon": lon, "lat": lat, "address": address}
    address_id = params.parse_text(data, "address_id", max_length=32, default="")
    if address_id:
        found = Address.objects.filter(code=address_id).values_list("location", "full_text").first()
        if found is None:
            raise BadParameter("address_id", f"unknown standard address {address_id!r}")
        point, full_text = found
        return {"lon": point.x, "lat": point.y, "address": address or full_text}
    if not address:
        raise BadParameter("lat", "lat and long, address_string or address_id is required")
    return {"lon": None, "lat": None, "address": address}


def _reporter_name(*, first: str, last: str) -> str:
    """A Chinese name is surname then given name, unspaced (张三); a Latin one "John Smith"."""
    if any(ch.isascii() and ch.isalpha() for ch in first + last):
        return " ".join(part for part in (first, last) if part)
    return last + first


def _channel(user) -> str:
    for name in user.groups.values_list("name", flat=True):
        channel = name.removeprefix(CHANNEL_GROUP_PREFIX)
        if name.startswith(CHANNEL_GROUP_PREFIX) and channel in Event.Channel.values:
            return channel
    return DEFAULT_CHANNEL


class Requests(Open311View):
    def get(self, request: Request, fmt: str):
        query = request.query_params
        ids = _parse_ids(query)
        code = params.parse_text(query, "service_code", max_length=40, default=None)
        start = params.parse_datetime_param(query, "start_date", default=None)
        end = params.parse_datetime_param(query, "end_date", default=None)
        if start and end and start > end:
            raise BadParameter("end_date", "must not be before start_date")
        status = params.parse_choice(query, "status", ("open", "closed"), default=None)
        rows = open311.requests_list(
            ids=ids,
            service_code=code,
            start=start,
            end=end,
            status=status,
            with_description=_reads_description(request),
        )
        return open311.respond(rows, fmt=self.fmt, kind="requests")

    def post(self, request: Request, fmt: str):
        data = request.data
        code = params.parse_text(data, "service_code", max_length=40)
        service_name = open311.service_name(code=code)
        location = _location(data)
        description = params.parse_text(data, "description", max_length=10_000, default="")
        external_id = params.parse_text(data, "service_request_id", max_length=64, default="") or params.parse_text(
            data, "external_id", max_length=64, default=""
        )
        name = _reporter_name(
            first=params.parse_text(data, "first_name", max_length=25, default=""),
            last=params.parse_text(data, "last_name", max_length=25, default=""),
        )
        event, _created = event_create(
            channel=_channel(request.user),
            external_id=external_id,
            category_code=code,
            # GeoReport makes the description optional; our events need one, so the service's
            # name stands in (the citizen chose it, so it says what the report is about).
            description=description or service_name,
            reporter_name=name,
            reporter_phone=params.parse_text(data, "phone", max_length=20, default=""),
            actor=request.user,
            **location,
        )
        receipt = open311.request_receipt(
            event=event, account_id=params.parse_text(data, "account_id", max_length=64, default="")
        )
        return open311.respond([receipt], fmt=self.fmt, kind="requests")


class RequestDetail(Open311View):
    def get(self, request: Request, pk: str, fmt: str):
        if not re.fullmatch(r"[0-9]{1,18}", pk):
            raise BadParameter("service_request_id", f"must be a request id (digits), got {pk[:40]!r}")
        return open311.respond(
            [open311.request_get(pk=int(pk), with_description=_reads_description(request))],
            fmt=self.fmt,
            kind="requests",
        )
