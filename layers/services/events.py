"""Events: intake from every channel, the closed loop and escalation.

* :func:`event_create` stores a report idempotently per (channel, external id), locates it
  (coordinates, else address text, else the manual-location queue), dispatches it and groups it
  with duplicates.
* :func:`event_act` moves an event through the state machine :data:`TRANSITIONS`; every step,
  allowed or automatic, appends an :class:`~layers.models.EventTransition` row.
* :func:`events_escalate` raises overdue open cases one level (community → street → district →
  city) in set-based SQL, for the ``escalate_events`` command.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace

from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from layers.database.transactions import committed
from layers.geocoding.crs import CLIENT_CRS, to_wgs84
from layers.protection import personal
from layers.protection.access import Reader, duty_for

from ..errors import ActionNotPermitted, InvalidInput, StaleVersion, TransitionNotAllowed
from ..geocoding.addresses import address_geocode
from ..geocoding.points import grid_locate
from ..models import Address, Category, Department, Event, EventTransition, Level, Region
from ..models.events import LEVEL_ORDER, AddressMatch
from ..taxonomy import COMMAND_CENTER
from .bulk import fetch
from .clusters import event_cluster_assign, event_cluster_choose, event_cluster_refresh
from .dispatch import category_get, event_dispatch, level_next, sla_deadline

logger = logging.getLogger("minqing.events")

S = Event.Status

#: Statuses in which the SLA clock runs (a suspended case waits; a resolved one awaits checks).
OPEN_STATUSES = (S.RECEIVED, S.TRIAGED, S.ASSIGNED, S.IN_PROGRESS, S.RETURNED, S.REOPENED)

#: Label of the automatic steps in the transition log.
SYSTEM_DISPATCH = "system:dispatch"
SYSTEM_ESCALATE = "system:escalate_events"

#: How far ahead of our clock a channel's report time may be (their clocks drift).
REPORTED_AT_SKEW = dt.timedelta(minutes=10)
#: Reports older than this are refused: no channel holds earlier records, and the database driver
#: cannot read back a year-1 timestamp.
REPORTED_AT_FLOOR = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
MAX_DESCRIPTION = 10_000
MAX_ADDRESS = 300


@dataclass(frozen=True)
class Transition:
    """Which statuses an action may start from and the status it leads to (``None``: the
    status stays, e.g. a rating; ``resume`` returns to the status before the suspension)."""

    sources: frozenset[str]
    target: str | None


def _from(*statuses: str) -> frozenset[str]:
    return frozenset(str(s) for s in statuses)


#: The state machine of the closed loop: action → allowed from-statuses → to-status.
TRANSITIONS: dict[str, Transition] = {
    "triage": Transition(_from(S.RECEIVED, S.REOPENED), S.TRIAGED),
    "assign": Transition(_from(S.TRIAGED, S.RETURNED, S.REOPENED), S.ASSIGNED),
    "accept": Transition(_from(S.ASSIGNED), S.IN_PROGRESS),
    "start": Transition(_from(S.ASSIGNED), S.IN_PROGRESS),
    "resolve": Transition(_from(S.IN_PROGRESS), S.RESOLVED),
    "verify": Transition(_from(S.RESOLVED), S.VERIFIED),
    "close": Transition(_from(S.VERIFIED), S.CLOSED),
    # 驳回重办: the department refuses the case, or the check refuses the resolution.
    "return": Transition(_from(S.ASSIGNED, S.IN_PROGRESS, S.RESOLVED), S.RETURNED),
    "suspend": Transition(_from(S.ASSIGNED, S.IN_PROGRESS), S.SUSPENDED),
    "resume": Transition(_from(S.SUSPENDED), None),
    "reopen": Transition(_from(S.RESOLVED, S.VERIFIED, S.CLOSED), S.REOPENED),
    "rate": Transition(_from(S.RESOLVED, S.VERIFIED, S.CLOSED), None),
    "locate": Transition(frozenset(S.values) - {S.CLOSED}, None),
    "escalate": Transition(_from(*OPEN_STATUSES), None),
}


def allowed_actions(status: str) -> list[str]:
    """The actions :data:`TRANSITIONS` allows from ``status``, sorted.

    >>> allowed_actions("resolved")
    ['locate', 'rate', 'reopen', 'return', 'verify']
    """
    return sorted(action for action, step in TRANSITIONS.items() if status in step.sources)


# --- locating ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """Where an event lies: its point, link column values and how they were found."""

    point: Point | None
    links: dict
    method: str
    confidence: float | None = None
    precision: str = ""
    address_id: int | None = None
    #: The geocoder's verdict on the address text ("" when none was geocoded) and, unconfident,
    #: the codes it offered.
    address_match: str = ""
    candidates: tuple[str, ...] = ()


_NO_LINKS = {
    "grid_id": None,
    "grid_medium_id": None,
    "grid_large_id": None,
    "community_id": None,
    "street_id": None,
    "district_code": "",
}


_CHAIN_STATEMENT = "minqing_grid_chain"
_CHAIN_SQL = (
    "SELECT grid_id, grid_medium_id, grid_large_id, community_id, street_id, coalesce(district_code, '')"
    " FROM layers_grid_chain WHERE grid_id = $1"
)
#: Sessions (raw connections) in which the chain statement is prepared.
_chain_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _grid_chain(grid_id: int) -> tuple | None:
    """The link ids of a small grid's chain, from the ``layers_grid_chain`` view."""
    connection.ensure_connection()
    raw = connection.connection
    with connection.cursor() as cursor:
        if raw not in _chain_prepared:
            # PREPARE once per session (as grid_locate does): planning the view's joins cost
            # ten times running them, on every intake.
            cursor.execute(f"PREPARE {_CHAIN_STATEMENT} (bigint) AS {_CHAIN_SQL}")
            _chain_prepared[raw] = True
        cursor.execute(f"EXECUTE {_CHAIN_STATEMENT} (%s)", [grid_id])
        return cursor.fetchone()


def point_links(*, lon: float, lat: float) -> dict:
    """The six link columns for a WGS84 point: the small grid's chain when a grid covers it,
    else the regions whose boundaries hold it (``layers.geocoding.points.grid_locate``)."""
    where = grid_locate(lon=lon, lat=lat)
    if where.grid_small_id is not None:
        chain = _grid_chain(where.grid_small_id)
        if chain is not None:
            return dict(zip(_NO_LINKS, chain, strict=True))
    codes = [area.code for area in (where.community, where.street) if area is not None]
    ids = dict(Region.objects.filter(code__in=codes).values_list("code", "id"))
    return {
        **_NO_LINKS,
        "community_id": ids.get(where.community.code) if where.community else None,
        "street_id": ids.get(where.street.code) if where.street else None,
        "district_code": where.district.code if where.district else "",
    }


#: Candidate codes kept with an event whose address text was not matched confidently.
CANDIDATES_KEPT = 5


def _address_placement(text: str) -> Placement:
    """Geocode address text (``layers.geocoding.addresses.address_geocode``) to the point of the
    best standard address. Unplaced (method ``none``) when nothing matches well enough or the
    match has no point (a bare community or street name); the verdict (matched, ambiguous,
    unmatched) and, when unconfident, the candidates' codes are kept for the registry tasks."""
    unplaced = Placement(point=None, links=dict(_NO_LINKS), method=Event.GeocodeMethod.NONE)
    try:
        # A savepoint: a failing matcher must not poison the caller's transaction, and an event
        # must never be lost because its address could not be read; it waits in the queue.
        with transaction.atomic():
            answer = address_geocode(text=text, limit=CANDIDATES_KEPT)
    except Exception:
        logger.exception("address geocoding failed for an event; it goes to the manual-location queue")
        return unplaced
    best = answer.best
    if best is None or best.lon is None or best.lat is None:
        codes = [c.code for c in answer.candidates if c.lon is not None][:CANDIDATES_KEPT]
        verdict = AddressMatch.AMBIGUOUS if answer.ambiguous else AddressMatch.UNMATCHED
        return replace(unplaced, address_match=verdict, candidates=tuple(codes))
    address_id = Address.objects.filter(code=best.code).values_list("id", flat=True).first()
    return Placement(
        point=Point(best.lon, best.lat, srid=4326),
        links=point_links(lon=best.lon, lat=best.lat),
        method=Event.GeocodeMethod.ADDRESS,
        confidence=round(best.score / 100.0, 3),
        precision=best.precision,
        address_id=address_id,
        address_match=AddressMatch.MATCHED,
    )


def _check_coordinates(lon: float | None, lat: float | None, crs: str) -> None:
    if (lon is None) != (lat is None):
        raise InvalidInput("location", _("lon and lat must be given together"))
    if crs not in CLIENT_CRS:
        raise InvalidInput(
            "crs",
            _("unknown CRS %(crs)s; expected one of %(value)s") % {"crs": f"{crs!r}", "value": ", ".join(CLIENT_CRS)},
        )
    if lon is None:
        return
    for name, value, bound in (("lon", lon, 180.0), ("lat", lat, 90.0)):
        if not isinstance(value, int | float) or not math.isfinite(value) or abs(value) > bound:
            raise InvalidInput(
                f"location.{name}",
                _("expected a number in degrees within ±%(bound)s, got %(value)s")
                % {"bound": f"{bound:g}", "value": f"{value!r}"},
            )


def event_place(*, lon: float | None, lat: float | None, crs: str = "wgs84", address: str = "") -> Placement:
    """Locate a report: client coordinates (converted to WGS84), else the address text, else
    nowhere (method ``none``: the manual-location queue)."""
    _check_coordinates(lon, lat, crs)
    if lon is not None:
        wlon, wlat = (float(v) for v in to_wgs84(lon, lat, crs))
        return Placement(
            point=Point(wlon, wlat, srid=4326),
            links=point_links(lon=wlon, lat=wlat),
            method=Event.GeocodeMethod.COORDINATES,
            confidence=1.0,
            precision="point",
        )
    if address.strip():
        return _address_placement(address.strip())
    return Placement(point=None, links=dict(_NO_LINKS), method=Event.GeocodeMethod.NONE)


def _apply_placement(event: Event, placement: Placement) -> None:
    event.location = placement.point
    for column, value in placement.links.items():
        setattr(event, column, value)
    event.geocode_method = placement.method
    event.geocode_confidence = placement.confidence
    event.geocode_precision = placement.precision
    event.matched_address_id = placement.address_id
    event.needs_location = placement.point is None
    if placement.address_match:
        # Only a text geocoding gives a verdict; a manual locate keeps the text's.
        event.address_match = placement.address_match
        event.address_candidates = list(placement.candidates)


# --- the log ----------------------------------------------------------------------------------


def _actor_label(actor, label: str) -> str:
    if label:
        return label
    return actor.get_username() if actor is not None else "system"


def _log(
    event: Event, *, action: str, from_status: str, actor, label: str, at: dt.datetime, reason: str = "", data=None
) -> EventTransition:
    return EventTransition.objects.create(
        event=event,
        from_status=from_status,
        to_status=event.status,
        action=action,
        actor=actor,
        actor_label=_actor_label(actor, label),
        at=at,
        reason=reason,
        data=data or {},
    )


def _dispatch_steps(event: Event, *, now: dt.datetime) -> list[EventTransition]:
    """Dispatch ``event`` and, when it is located and still waiting at intake, move it to
    ``assigned``; returns the triage and assignment log rows (unsaved) for the caller to write."""
    decision = event_dispatch(event=event)
    if event.needs_location or event.status != S.RECEIVED:
        return []
    rows = []
    for action, target, reason in (
        ("triage", S.TRIAGED, "自动分拨 (automatic dispatch)"),
        ("assign", S.ASSIGNED, decision.reason),
    ):
        from_status, event.status = event.status, target
        event.version += 1
        data = {"category": event.category.code} if action == "triage" else _assignment(event)
        rows.append(
            EventTransition(event=event, from_status=from_status, to_status=target, action=action,
                            actor_label=SYSTEM_DISPATCH, at=now, reason=reason, data=data)
        )  # fmt: skip
    return rows


def event_auto_dispatch(event: Event, *, now: dt.datetime) -> None:
    """Triage and assign a stored event that has just been located (at intake, by a manual
    ``locate``, or by bulk re-geocoding): the status moves and its log rows are written."""
    rows = _dispatch_steps(event, now=now)
    if rows:
        event.save(update_fields=["status", "version"])
        EventTransition.objects.bulk_create(rows)


def _assignment(event: Event) -> dict:
    return {
        "department": event.department.code if event.department_id else None,
        "responsible_level": event.responsible_level,
        "joint_handling": event.joint_handling,
        "deadline": event.deadline.isoformat() if event.deadline else None,
    }


def _clean(event: Event) -> None:
    """Field validation before a write, as the domain error naming the first bad field. The
    unique and check constraints are left to the database (a racing retry is not an error)."""
    try:
        event.full_clean(exclude=_LINKS, validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        field, messages = next(iter(error.message_dict.items()))
        raise InvalidInput(field, "; ".join(messages)) from error


_LINKS = [
    "category",
    "department",
    "matched_address",
    "cluster",
    "grid",
    "grid_medium",
    "grid_large",
    "community",
    "street",
]


# --- intake -----------------------------------------------------------------------------------


def _stored(channel: str, external_id: str) -> Event | None:
    """The event already stored for this ticket: the cheap answer to a retry."""
    if not external_id:
        return None
    return Event.objects.filter(channel=channel, external_id=external_id).first()


def _check_intake(channel: str, external_id: str, category_code: str, description: str, address: str) -> Category:
    if channel not in Event.Channel.values:
        raise InvalidInput(
            "channel",
            _("unknown channel %(channel)s; expected one of %(value)s")
            % {"channel": f"{channel!r}", "value": ", ".join(Event.Channel.values)},
        )
    if len(external_id) > 64:
        raise InvalidInput("external_id", _("longer than 64 characters"))
    category = category_get(code=category_code)
    if category is None:
        raise InvalidInput(
            "category", _("unknown category %(category_code)s") % {"category_code": f"{category_code!r}"}
        )
    if not description.strip():
        raise InvalidInput("description", _("must not be empty"))
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInput(
            "description", _("longer than %(MAX_DESCRIPTION)s characters") % {"MAX_DESCRIPTION": MAX_DESCRIPTION}
        )
    if len(address) > MAX_ADDRESS:
        raise InvalidInput("address", _("longer than %(MAX_ADDRESS)s characters") % {"MAX_ADDRESS": MAX_ADDRESS})
    return category


def event_create(
    *,
    channel: str,
    external_id: str,
    category_code: str,
    description: str,
    lon: float | None = None,
    lat: float | None = None,
    crs: str = "wgs84",
    address: str = "",
    reported_at: dt.datetime | None = None,
    reporter_name: str = "",
    reporter_phone: str = "",
    actor=None,
    actor_label: str = "",
) -> tuple[Event, bool]:
    """Store a report and return ``(event, created)``.

    Idempotent per (channel, external id): a retry, even one racing the first request, returns
    the stored event with ``created`` false and changes nothing. A report that cannot be located
    is stored all the same with ``needs_location`` set and status ``received``; a located one is
    dispatched at once (status ``assigned``) and joined to its duplicates' cluster. Every step is
    in the transition log (the receipt names ``actor``, or ``actor_label`` for a sender with no
    account, such as a resident). Raises :class:`~layers.errors.InvalidInput` naming the field."""
    external_id = external_id.strip()
    category = _check_intake(channel, external_id, category_code, description, address)
    now = timezone.now()
    if reported_at is not None:
        if timezone.is_naive(reported_at):
            raise InvalidInput("reported_at", _("needs a time zone offset, e.g. 2026-05-01T08:00:00+08:00"))
        if reported_at > now + REPORTED_AT_SKEW:
            raise InvalidInput("reported_at", _("lies in the future (%(value)s)") % {"value": reported_at.isoformat()})
        if reported_at < REPORTED_AT_FLOOR:
            # A year-1 timestamp is stored but cannot be read back by the driver: refuse it here.
            raise InvalidInput(
                "reported_at",
                _("lies before %(value)s (%(value2)s)")
                % {"value": REPORTED_AT_FLOOR.date(), "value2": reported_at.isoformat()},
            )
    existing = _stored(channel, external_id)
    if existing is not None:
        return existing, False
    placement = event_place(lon=lon, lat=lat, crs=crs, address=address)
    # ID numbers and phones the citizen wrote into the text are masked for every reader; the text
    # as written is kept encrypted, for an audited reveal.
    written = description.strip()
    shown = personal.mask_free_text(written)
    event = Event(
        channel=channel,
        external_id=external_id,
        category=category,
        description=shown,
        description_cipher=personal.encrypt(written) if shown != written else "",
        address_text=address.strip(),
        location_input={"lon": lon, "lat": lat, "crs": crs} if lon is not None else None,
        reported_at=reported_at or now,
        received_at=now,
        status=S.RECEIVED,
    )
    _apply_placement(event, placement)
    if reporter_name:
        event.reporter_name_cipher = personal.encrypt(reporter_name)
        event.reporter_name_masked = personal.mask_name(reporter_name)
    if reporter_phone:
        phone = personal.protect_phone(reporter_phone)
        event.reporter_phone_cipher, event.reporter_phone_digest = phone.cipher, phone.digest
        event.reporter_phone_masked = phone.masked
    _clean(event)
    # Dispatch before the insert, so the row is written once with its decision and status.
    steps = _dispatch_steps(event, now=now)
    # Within a caller's transaction (an Idempotency-Key's) no savepoint of our own is needed:
    # whatever fails here fails that transaction too. Outermost, a commit lost on the wire is
    # told apart (CommitUnknown: the report may be stored; a retry with its external id finds it).
    with committed(savepoint=False):
        try:
            # A savepoint: a concurrent retry that inserted first makes ours fail on the unique
            # (channel, external_id) index, after waiting for its commit; we then return its row
            # (and the cluster chosen for ours is rolled back with the savepoint). Without an
            # external id there is no such race, and no savepoint round trip to pay.
            with transaction.atomic(savepoint=bool(external_id)):
                # The cluster first, so that the row is inserted once, with it.
                joined = event.location is not None and event_cluster_choose(event=event)
                event.save(force_insert=True)
        except IntegrityError:
            if not external_id:
                raise
            return Event.objects.get(channel=channel, external_id=external_id), False
        received = EventTransition(
            event=event,
            from_status="",
            to_status=S.RECEIVED,
            action="receive",
            actor=actor,
            actor_label=_actor_label(actor, actor_label),
            at=now,
            data={"channel": channel, "external_id": external_id, "geocode_method": event.geocode_method},
        )
        EventTransition.objects.bulk_create([received, *steps])
        if joined:
            event_cluster_refresh(cluster_id=event.cluster_id)
    return event, True


# --- the closed loop --------------------------------------------------------------------------

#: An action's handler changes the event's fields (not its status) and returns the log's data.
Handler = Callable[[Event, dict, dt.datetime, str], dict]


def _do_triage(event: Event, data: dict, now: dt.datetime, reason: str) -> dict:
    code = data.get("category")
    if code and code != event.category.code:
        category = Category.objects.filter(code=code).first()
        if category is None:
            raise InvalidInput("category", _("unknown category %(code)s") % {"code": f"{code!r}"})
        event.category = category
        event_dispatch(event=event)
    return {"category": event.category.code}


def _do_assign(event: Event, data: dict, now: dt.datetime, reason: str) -> dict:
    code, level = data.get("department"), data.get("responsible_level")
    if code is None and level is None:
        event_dispatch(event=event)
        return _assignment(event)
    if code is not None:
        department = Department.objects.filter(code=code, active=True).first()
        if department is None:
            raise InvalidInput("department", _("unknown department %(code)s") % {"code": f"{code!r}"})
        event.department = department
        event.joint_handling = code == COMMAND_CENTER
    if level is not None:
        if level not in Level.values:
            raise InvalidInput(
                "responsible_level",
                _("unknown level %(level)s; expected one of %(value)s")
                % {"level": f"{level!r}", "value": ", ".join(Level.values)},
            )
        event.responsible_level = level
    event.deadline = sla_deadline(family=event.category.family, level=event.responsible_level, start=event.received_at)
    return _assignment(event)


def _do_nothing(event: Event, data: dict, now: dt.datetime, reason: str) -> dict:
    return {}


def _do_resolve(event: Event, data: dict, now: dt.datetime, reason: str) -> dict:
    event.resolved_at = now
    return {}


def _do_close(event: Event, data: dict, now: dt.datetime, reason: str) -> dict:
    event.closed_at = now
    return {}


def _needs_reason(action: str) -> Handler:
    def handler(event: Event, data: dict, now: dt.datetime, reason: str) -> dict:
        if not reason.strip():
            raise InvalidInput("reason", _("%(action)s needs a reason") % {"action": action})
        if action == "return":
            event.resolved_at = None
        return {}

    return handler


def _do_resume(event: Event, data: dict, now: dt.datetime, reason: str) -> dict:
    # The suspension's log row says where the case was and since when; the clock stopped then,
    # so the deadline moves by the time spent suspended.
    last = EventTransition.objects.filter(event=event, action="suspend").order_by("-at", "-id").first()
    back_to = last.from_status if last else S.IN_PROGRESS
    event.status = back_to
    if last and event.deadline:
        event.deadline += now - last.at
    return {"deadline": event.deadline.isoformat() if event.deadline else None}


def _satisfaction(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise InvalidInput(
            "satisfaction", _("expected an integer from 1 to 5, got %(value)s") % {"value": f"{value!r}"}
        )
    return value


def _do_rate(event: Event, data: dict, now: dt.datetime, reason: str) -> dict:
    event.satisfaction = _satisfaction(data.get("satisfaction"))
    return {"satisfaction": event.satisfaction}


def _do_reopen(event: Event, data: dict, now: dt.datetime, reason: str) -> dict:
    score = _satisfaction(data["satisfaction"]) if "satisfaction" in data else event.satisfaction
    if score is None or score > 2:
        raise InvalidInput(
            "satisfaction",
            _("reopening needs an unsatisfied citizen (satisfaction 1 or 2), got %(score)s") % {"score": f"{score!r}"},
        )
    event.satisfaction = score
    event.reopen_count += 1
    event.resolved_at = event.closed_at = None
    event.deadline = sla_deadline(family=event.category.family, level=event.responsible_level, start=now)
    return {"satisfaction": score, "reopen_count": event.reopen_count}


def _do_locate(event: Event, data: dict, now: dt.datetime, reason: str) -> dict:
    lon, lat, crs = data.get("lon"), data.get("lat"), data.get("crs", "wgs84")
    if lon is None or lat is None:
        raise InvalidInput("location", _("lon and lat are required"))
    placement = event_place(lon=lon, lat=lat, crs=crs)
    _apply_placement(event, placement)
    event.geocode_method = Event.GeocodeMethod.MANUAL
    event.location_input = {"lon": lon, "lat": lat, "crs": crs}
    if event.status == S.TRIAGED:
        # Not yet assigned: the location decides the responsible level, so dispatch again (a
        # case still at intake is dispatched and assigned after this step, see event_act).
        event_dispatch(event=event)
    return {"lon": placement.point.x, "lat": placement.point.y, "grid_id": event.grid_id}


def _do_escalate(event: Event, data: dict, now: dt.datetime, reason: str) -> dict:
    previous = event.responsible_level
    level = level_next(previous)
    if level is None:
        raise InvalidInput("responsible_level", _("already at city level; cannot escalate further"))
    event.responsible_level = level
    event.escalation_level += 1
    event.deadline = sla_deadline(family=event.category.family, level=level, start=now)
    return {
        "from_level": previous,
        "to_level": level,
        "deadline": event.deadline.isoformat() if event.deadline else None,
    }


_HANDLERS: dict[str, Handler] = {
    "triage": _do_triage,
    "assign": _do_assign,
    "accept": _do_nothing,
    "start": _do_nothing,
    "resolve": _do_resolve,
    "verify": _do_nothing,
    "close": _do_close,
    "return": _needs_reason("return"),
    "suspend": _needs_reason("suspend"),
    "resume": _do_resume,
    "reopen": _do_reopen,
    "rate": _do_rate,
    "locate": _do_locate,
    "escalate": _do_escalate,
}


def event_duty_check(*, event: Event, action: str, reader: Reader) -> None:
    """Raise :class:`~layers.errors.ActionNotPermitted` unless ``reader`` may take ``action`` on
    ``event`` as it is now: their roles hold the action's duty (:data:`layers.protection.access.ACTIONS`),
    and a check (verify, close, refusing a resolution) is never made by the case's resolver."""
    duty = duty_for(action, event.status)
    if duty is None:
        return  # not an action of this status: the state machine answers with its own 409
    if not reader.may_take(duty):
        raise ActionNotPermitted(action, event.status, roles=sorted(duty.roles))
    if duty.not_the_resolver and reader.user_id is not None:
        resolver = (
            EventTransition.objects.filter(event_id=event.pk, action="resolve")
            .order_by("-id")
            .values_list("actor_id", flat=True)
            .first()
        )
        if resolver == reader.user_id:
            raise ActionNotPermitted(action, event.status, roles=sorted(duty.roles), resolver=True)


def event_act(
    *,
    event: Event,
    action: str,
    reader: Reader,
    actor=None,
    reason: str = "",
    data: dict | None = None,
    version: int | None = None,
    actor_label: str = "",
) -> Event:
    """Apply ``action`` to ``event`` for ``reader`` (``layers.protection.access.SYSTEM`` for the system's
    own steps) and return the updated event; ``actor`` is the user the log names.

    The row is locked for the step, so concurrent actions queue instead of overwriting each
    other; ``version`` (when given) must equal the stored one. Raises
    :class:`~layers.errors.TransitionNotAllowed` when the current status does not allow the
    action, :class:`~layers.errors.ActionNotPermitted` when the reader may not take it (see
    :func:`event_duty_check`), :class:`~layers.errors.InvalidInput` for an unknown action or bad
    data, and :class:`~layers.errors.StaleVersion` for an outdated ``version``."""
    step = TRANSITIONS.get(action)
    if step is None:
        raise InvalidInput(
            "action",
            _("unknown action %(action)s; expected one of %(value)s")
            % {"action": f"{action!r}", "value": ", ".join(sorted(TRANSITIONS))},
        )
    data = dict(data or {})
    now = timezone.now()
    with transaction.atomic():
        current = Event.objects.select_for_update(of=("self",)).select_related("category").get(pk=event.pk)
        if version is not None and version != current.version:
            raise StaleVersion(version, current.version)
        if current.status not in step.sources:
            raise TransitionNotAllowed(current.status, action, allowed_actions(current.status))
        event_duty_check(event=current, action=action, reader=reader)
        from_status, category_before = current.status, current.category_id
        logged = _HANDLERS[action](current, data, now, reason)
        if step.target is not None:
            current.status = step.target
        current.version += 1
        _clean(current)
        current.save()
        _log(
            current,
            action=action,
            from_status=from_status,
            actor=actor,
            label=actor_label,
            at=now,
            reason=reason,
            data=logged,
        )
        if action == "locate" or current.category_id != category_before:
            # A new place or a new category may make the report a duplicate of another case.
            event_cluster_assign(event=current)
        if action == "locate" and current.status == S.RECEIVED:
            event_auto_dispatch(current, now=now)
    return current


# --- escalation -------------------------------------------------------------------------------

_NEXT_LEVEL_SQL = (
    "CASE e.responsible_level "
    + " ".join(f"WHEN '{a}' THEN '{b}'" for a, b in zip(LEVEL_ORDER, LEVEL_ORDER[1:], strict=False))
    + " END"
)

# One statement: pick the overdue open cases below city level (skipping rows another step holds
# right now; the next run takes them), raise each one level with the SLA hours of the new level
# counted from ``now``, and append their log rows. An escalated case's new deadline lies after
# ``now``, so a second run at the same instant finds nothing: the command is idempotent per run.
_ESCALATE_SQL = f"""
WITH due AS (
    SELECT e.id, e.responsible_level AS from_level, {_NEXT_LEVEL_SQL} AS to_level, c.family
    FROM layers_event e JOIN layers_category c ON c.id = e.category_id
    WHERE e.status = ANY(%(open)s) AND e.deadline < %(now)s AND e.responsible_level <> 'city'
    ORDER BY e.id
    FOR UPDATE OF e SKIP LOCKED
), moved AS (
    UPDATE layers_event e
    SET responsible_level = d.to_level,
        escalation_level = e.escalation_level + 1,
        version = e.version + 1,
        deadline = %(now)s + make_interval(hours => s.hours)
    FROM due d LEFT JOIN layers_slarule s ON s.family = d.family AND s.level = d.to_level
    WHERE e.id = d.id
    RETURNING e.id, e.status, d.from_level, d.to_level, e.deadline
)
INSERT INTO layers_eventtransition (event_id, from_status, to_status, action, actor_label, at, reason, data)
SELECT id, status, status, 'escalate', %(label)s, %(now)s, %(reason)s,
       jsonb_build_object('from_level', from_level, 'to_level', to_level, 'deadline', deadline)
FROM moved
RETURNING event_id, data ->> 'from_level', data ->> 'to_level'
"""

_DUE_SQL = f"""
SELECT e.id, e.responsible_level, {_NEXT_LEVEL_SQL}
FROM layers_event e
WHERE e.status = ANY(%(open)s) AND e.deadline < %(now)s AND e.responsible_level <> 'city'
ORDER BY e.id
"""


def events_escalate(*, now: dt.datetime | None = None, dry_run: bool = False) -> list[tuple[int, str, str]]:
    """Escalate every overdue open case one level and return ``(event id, from, to)`` per case,
    ordered by id; with ``dry_run`` only say which would be escalated."""
    now = now or timezone.now()
    params = {
        "open": [str(s) for s in OPEN_STATUSES],
        "now": now,
        "label": SYSTEM_ESCALATE,
        "reason": "超期自动升级 (overdue: escalated one level)",
    }
    if dry_run:
        return [tuple(row) for row in fetch(_DUE_SQL, params)]
    with transaction.atomic():
        return sorted(tuple(row) for row in fetch(_ESCALATE_SQL, params))
