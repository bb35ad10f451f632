"""``/api/events``: take in a citizen event from any channel, list and read events, act on them.

Bodies are JSON objects read by the named parsers of :mod:`mapserver.params` (each error names
the field, ``location.lon`` for a nested one); the services raise
:class:`~layers.errors.DomainError` for what only the data can tell (an unknown category, a
transition the status does not allow), rendered by the same error tree.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from layers.geocoding.crs import CLIENT_CRS
from layers.models import Event
from layers.protection.scope import CITY
from layers.selectors.events import (
    event_answer,
    event_detail,
    event_get,
    event_replay_readable,
    events_list,
)
from layers.services.events import MAX_ADDRESS, MAX_DESCRIPTION, TRANSITIONS, event_act, event_create
from layers.services.idempotency import idempotent_answer, request_digest

from .. import params
from ..errors import BadParameter, Conflict, NotFound
from ..parsers import BodyLeftToTheView
from ..schema import (
    CATEGORY_CODES,
    CATEGORY_PATTERN,
    CHINA_LAT,
    CHINA_LON,
    IDEMPOTENCY_KEY_PATTERN,
    TEXT_PATTERN,
    bbox_parameter,
    error_response,
    integer_parameter,
)

#: Longest action reason accepted (a paragraph, not a file).
MAX_REASON = 2_000
#: The endpoint name idempotency keys of the JSON intake are stored under.
INTAKE_ENDPOINT = "events.create"


# --- request bodies -------------------------------------------------------------------------------


def intake_arguments(body: dict) -> dict:
    """The keyword arguments of ``event_create`` read from a POST body, checked in the order a
    client fills them in (the first bad field is the one reported)."""
    channel = params.parse_choice(body, "channel", Event.Channel.values)
    external_id = params.parse_text(body, "external_id", max_length=64, default="")
    category = params.parse_text(body, "category", max_length=40)
    description = params.parse_text(body, "description", max_length=MAX_DESCRIPTION)
    location = params.parse_json_location(body)
    address = params.parse_text(body, "address", max_length=MAX_ADDRESS, default="")
    if location is None and not address:
        raise BadParameter("location", _("a location or an address is required (or both)"))
    lon, lat, crs = location if location is not None else (None, None, "wgs84")
    reported_at = params.parse_datetime_param(body, "reported_at", default=None)
    reporter = params.parse_object(body, "reporter", default={})
    return {
        "channel": channel,
        "external_id": external_id,
        "category_code": category,
        "description": description,
        "lon": lon,
        "lat": lat,
        "crs": crs,
        "address": address,
        "reported_at": reported_at,
        "reporter_name": params.parse_text(reporter, "reporter.name", max_length=50, default=""),
        "reporter_phone": params.parse_text(reporter, "reporter.phone", max_length=20, default=""),
    }


def action_arguments(body: dict) -> dict:
    """The keyword arguments of ``event_act`` (but the event) read from an actions body; the
    service checks what depends on the action (an unknown action, a satisfaction score)."""
    data: dict = {}
    for name in ("department", "responsible_level", "category"):
        value = params.parse_text(body, name, max_length=40, default=None)
        if value is not None:
            data[name] = value
    if body.get("satisfaction") is not None:
        data["satisfaction"] = body["satisfaction"]
    location = params.parse_json_location(body)
    if location is not None:
        data["lon"], data["lat"], data["crs"] = location
    return {
        "action": params.parse_text(body, "action", max_length=16),
        "reason": params.parse_text(body, "reason", max_length=MAX_REASON, default=""),
        "version": params.parse_int(body, "version", low=0, high=2**31 - 1, default=None),
        "data": data,
    }


# --- schema ---------------------------------------------------------------------------------------


def _pair(name: str, help_text: str = "") -> serializers.Serializer:
    return inline_serializer(
        name=name,
        fields={"code": serializers.CharField(), "name": serializers.CharField()},
        allow_null=True,
        help_text=help_text,
    )


_POINT = {"lon": serializers.FloatField(), "lat": serializers.FloatField()}
_AREA_KEYS = ("district", "street", "community", "grid_large", "grid_medium", "grid_small")

_EVENT_FIELDS = {
    "id": serializers.IntegerField(),
    "channel": serializers.ChoiceField(choices=Event.Channel.values),
    "external_id": serializers.CharField(),
    "category": _pair("EventCategory"),
    "description": serializers.CharField(),
    "status": serializers.ChoiceField(choices=Event.Status.values),
    "department": _pair("EventDepartment", "null while a report waits for a location"),
    "responsible_level": serializers.CharField(help_text="community, street, district or city"),
    "joint_handling": serializers.BooleanField(help_text="联合处置 by the command center"),
    "deadline": serializers.DateTimeField(allow_null=True),
    "overdue": serializers.BooleanField(help_text="open and past its deadline"),
    "reported_at": serializers.DateTimeField(),
    "received_at": serializers.DateTimeField(),
    "location": inline_serializer(name="EventPoint", fields=_POINT, allow_null=True, help_text="WGS84"),
    "address_text": serializers.CharField(),
    "geocode": inline_serializer(
        name="EventGeocode",
        fields={
            "method": serializers.ChoiceField(choices=Event.GeocodeMethod.values),
            "confidence": serializers.FloatField(allow_null=True),
            "precision": serializers.CharField(),
        },
    ),
    "areas": inline_serializer(name="EventAreas", fields={key: _pair(f"EventArea_{key}") for key in _AREA_KEYS}),
    "reporter": inline_serializer(
        name="EventReporter",
        fields={"name": serializers.CharField(), "phone": serializers.CharField()},
        help_text="masked; the clear values are never served",
    ),
    "satisfaction": serializers.IntegerField(allow_null=True),
    "reopen_count": serializers.IntegerField(),
    "escalation_level": serializers.IntegerField(),
    "cluster_id": serializers.IntegerField(allow_null=True),
    "needs_location": serializers.BooleanField(help_text="waits in the manual-location queue"),
    "version": serializers.IntegerField(help_text="send it back with an action for optimistic locking"),
    "allowed_actions": serializers.ListField(child=serializers.CharField()),
}

EVENT_DETAIL = inline_serializer(
    name="EventDetail",
    fields={
        **_EVENT_FIELDS,
        "transitions": inline_serializer(
            name="EventTransition",
            many=True,
            fields={
                "action": serializers.CharField(),
                "from_status": serializers.CharField(allow_null=True),
                "to_status": serializers.CharField(),
                "actor": serializers.CharField(),
                "at": serializers.DateTimeField(),
                "reason": serializers.CharField(),
                "data": serializers.DictField(),
            },
        ),
        "dispatch_trace": serializers.DictField(help_text="the keyword rules and reasons behind the dispatch"),
    },
)
EVENT_PAGE = inline_serializer(
    name="EventPage",
    fields={
        "results": inline_serializer(name="EventPageItem", fields=_EVENT_FIELDS, many=True),
        "next": serializers.URLField(allow_null=True, help_text="the next page; null on the last"),
    },
)
ERROR = error_response("error.message names the field (400), the current status and allowed actions (409)")
_LOCATION_IN = {
    "lon": serializers.FloatField(min_value=CHINA_LON[0], max_value=CHINA_LON[1], help_text="inside China"),
    "lat": serializers.FloatField(min_value=CHINA_LAT[0], max_value=CHINA_LAT[1], help_text="inside China"),
    "crs": serializers.ChoiceField(
        choices=list(CLIENT_CRS), required=False, allow_null=True, help_text="default wgs84"
    ),
}
INTAKE = inline_serializer(
    name="EventIntake",
    fields={
        "channel": serializers.ChoiceField(choices=Event.Channel.values),
        "external_id": serializers.CharField(
            required=False, max_length=64, help_text="the channel's ticket number; a retry returns the stored event"
        ),
        "category": serializers.RegexField(
            CATEGORY_PATTERN, max_length=40, help_text="dotted code (hazard.fire) or a bare family (hazard)"
        ),
        "description": serializers.RegexField(TEXT_PATTERN, max_length=MAX_DESCRIPTION),
        "location": inline_serializer(name="EventLocationIn", fields=_LOCATION_IN, required=False),
        "address": serializers.CharField(required=False, max_length=MAX_ADDRESS, help_text="location or address"),
        "reported_at": serializers.DateTimeField(required=False, help_text="ISO 8601; default: now"),
        "reporter": inline_serializer(
            name="EventReporterIn",
            fields={"name": serializers.CharField(required=False), "phone": serializers.CharField(required=False)},
            required=False,
        ),
    },
)
ACTION = inline_serializer(
    name="EventActionIn",
    fields={
        "action": serializers.ChoiceField(choices=sorted(TRANSITIONS)),
        "reason": serializers.CharField(required=False, help_text="required by return and suspend"),
        "department": serializers.CharField(required=False, help_text="assign: department code"),
        "responsible_level": serializers.CharField(required=False, help_text="assign"),
        "category": serializers.CharField(required=False, help_text="triage: a new category"),
        "satisfaction": serializers.IntegerField(required=False, min_value=1, max_value=5, help_text="rate, reopen"),
        "location": inline_serializer(name="EventActionLocationIn", fields=_LOCATION_IN, required=False),
        "version": serializers.IntegerField(required=False, help_text="the version you read (optimistic locking)"),
    },
)


# --- views ----------------------------------------------------------------------------------------


def intake_detail(request: Request, *, event: Event, created: bool, with_description: bool) -> dict:
    """The answer to an intake POST. A new event is answered whoever sent it (the reader wrote it,
    even outside their data scope); a retry's stored event only when it is in the reader's scope
    or they sent it in, else 409: a channel's external id must not open another's report."""
    reader = request.reader
    if not created and not event_replay_readable(event_id=event.pk, scope=reader.scope, user_id=reader.user_id):
        raise Conflict(_("external_id: this channel's external_id belongs to another report"), parameter="external_id")
    if created:
        # The instance just written, not read back: one query less on every intake.
        return event_answer(event=event, with_description=with_description)
    return event_detail(event_id=event.pk, scope=CITY, with_description=with_description)


class EventList(APIView):
    """Intake (POST) and the filtered, keyset-paginated list (GET)."""

    parser_classes = [BodyLeftToTheView]

    @extend_schema(
        operation_id="events_list",
        summary="List events, newest first",
        parameters=[
            bbox_parameter(),
            OpenApiParameter("region", OpenApiTypes.STR, description="district, street or community code"),
            OpenApiParameter("grid", OpenApiTypes.STR, description="small, medium or large grid code"),
            OpenApiParameter("status", OpenApiTypes.STR, enum=Event.Status.values),
            OpenApiParameter(
                "category", OpenApiTypes.STR, enum=CATEGORY_CODES, description="family (hazard) or dotted code"
            ),
            OpenApiParameter("channel", OpenApiTypes.STR, enum=Event.Channel.values),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="received at or after"),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="received before"),
            integer_parameter("limit", 1, 1000, description="default 100"),
            OpenApiParameter("cursor", OpenApiTypes.STR, description="from the previous page's next link"),
        ],
        responses={200: EVENT_PAGE, 400: ERROR},
    )
    def get(self, request: Request) -> Response:
        query = request.query_params
        page = events_list(
            scope=request.reader.scope,
            bbox=params.parse_bbox(query),
            region_code=params.parse_text(query, "region", max_length=12, default=None),
            grid_code=params.parse_text(query, "grid", max_length=24, default=None),
            status=params.parse_choice(query, "status", Event.Status.values, default=None),
            category=params.parse_category(query, "category", default=None),
            channel=params.parse_choice(query, "channel", Event.Channel.values, default=None),
            since=params.parse_datetime_param(query, "since", default=None),
            until=params.parse_datetime_param(query, "until", default=None),
            after=params.parse_text(query, "cursor", max_length=200, default=None),
            limit=params.parse_int(query, "limit", low=1, high=1000, default=100),
            with_description=request.reader.reads_description,
        )
        next_url = None
        if page.next_cursor:
            following = query.copy()
            following["cursor"] = page.next_cursor
            next_url = request.build_absolute_uri(f"{request.path}?{following.urlencode()}")
        return Response({"results": page.results, "next": next_url})

    @extend_schema(
        operation_id="events_create",
        summary="Take in an event (idempotent per channel and external_id, or per Idempotency-Key)",
        description=(
            "201 with the stored event and a Location header, sent only once the event is committed; "
            "a retry with the same channel and external_id answers 200 with the stored event and "
            "`Idempotent-Replay: true`. A retry with the same `Idempotency-Key` and body gets the first "
            "answer again (status and body, with `Idempotent-Replay: true`); the same key with another "
            "body is a 422. Keys are kept at least 24 hours, per user. A 503 (database unavailable) "
            "carries Retry-After: retry with the same key. A report that cannot be located is stored "
            "with needs_location true."
        ),
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
                location=OpenApiParameter.HEADER,
                description="1–255 visible ASCII characters, e.g. a UUID; the same key makes a retry safe",
            )
        ],
        request=INTAKE,
        responses={201: EVENT_DETAIL, 200: EVENT_DETAIL, 400: ERROR, 409: ERROR, 422: ERROR},
    )
    def post(self, request: Request) -> Response:
        body = params.parse_json_object(request.body)
        arguments = intake_arguments(body)
        key = params.parse_idempotency_key(request.headers)
        with_description = request.reader.reads_description

        def produce() -> tuple[int, dict, int]:
            event, created = event_create(**arguments, actor=request.user)
            detail = intake_detail(request, event=event, created=created, with_description=with_description)
            return 201 if created else 200, detail, event.pk

        answer = idempotent_answer(
            owner_id=request.user.pk, endpoint=INTAKE_ENDPOINT, key=key, digest=request_digest(body), produce=produce
        )
        # With a key or without return only after the commit: a 201 names an event that is stored.
        response = Response(answer.body, status=answer.status)
        response["Location"] = request.build_absolute_uri(reverse("api:event", args=[answer.event_id]))
        if answer.replayed or answer.status == 200:
            response["Idempotent-Replay"] = "true"
        return response


class EventDetail(APIView):
    """One event with its transition log and dispatch trace."""

    @extend_schema(operation_id="events_retrieve", summary="Read one event", responses={200: EVENT_DETAIL, 404: ERROR})
    def get(self, request: Request, event_id: int) -> Response:
        body = event_detail(
            event_id=event_id, scope=request.reader.scope, with_description=request.reader.reads_description
        )
        if body is None:
            raise NotFound(_("No event with id %(id)s.") % {"id": event_id}, parameter="event_id")
        return Response(body)


class EventActions(APIView):
    """One step of the closed loop."""

    parser_classes = [BodyLeftToTheView]

    @extend_schema(
        operation_id="events_act",
        summary="Act on an event (triage, assign, accept, resolve, verify, close, return, …)",
        request=ACTION,
        responses={200: EVENT_DETAIL, 400: ERROR, 404: ERROR, 409: ERROR},
    )
    def post(self, request: Request, event_id: int) -> Response:
        event = event_get(event_id=event_id, scope=request.reader.scope)
        if event is None:
            raise NotFound(_("No event with id %(id)s.") % {"id": event_id}, parameter="event_id")
        arguments = action_arguments(params.parse_json_object(request.body))
        event_act(event=event, reader=request.reader, actor=request.user, **arguments)
        # The event as the action left it, even if a new location took it out of the reader's
        # scope: the answer describes what the reader just did.
        return Response(event_detail(event_id=event_id, scope=CITY, with_description=request.reader.reads_description))
