"""Reads of the residents' side (小兰帮办): the report form's categories, where a place lies and
who will handle it, typed addresses to standard addresses, and a resident's own case.

Nothing here reads personal data. A typed address is answered at building precision at most
(never an entrance, floor or room: the registry's room-level addresses would tell which flats
exist), and a case is described to the resident holding its follow-up link by its category,
places, steps, handling department and grid, deadline and resolution — not by anyone's name
unless ``MINQING_RESIDENT_SHOW_HANDLER_NAMES`` allows the grid worker's.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from layers.protection import personal
from layers.protection.scope import CITY

from ..geocoding.addresses import address_geocode
from ..geocoding.points import grid_locate
from ..models import Address, Category, Event, EventCluster, EventPhoto, EventTransition, Grid, Region, ResidentTicket
from ..services.residents import DONE_STATUSES, answered, reopen_until

#: The steps of a case a resident sees, in their words on the page (the page translates the
#: codes); notes, photos by staff and re-location are the handlers' business.
RESIDENT_STEPS = (
    "receive",
    "triage",
    "assign",
    "accept",
    "start",
    "resolve",
    "verify",
    "close",
    "return",
    "suspend",
    "resume",
    "escalate",
    "reopen",
    "rate",
)
#: Typed-address candidates offered at most, and the finest precision they are told at.
GEOCODE_LIMIT = 5
_FINER_THAN_BUILDING = ("room",)
#: Decimal places of points answered to residents: 1e-5° is about a metre.
DIGITS = 5


def _iso(value: dt.datetime | None) -> str | None:
    return timezone.localtime(value).isoformat(timespec="seconds") if value else None


def _named(area) -> dict | None:
    return {"code": area.code, "name": area.name} if area is not None else None


# --- the report form ---------------------------------------------------------------------------------


def resident_categories() -> list[dict]:
    """The categories a resident chooses from, family first then its subtypes, by code: ``code``,
    ``family``, ``name`` (Chinese) and ``name_en``."""
    return list(Category.objects.order_by("code").values("code", "family", "name", "name_en"))


def resident_place(*, lon: float, lat: float) -> dict:
    """Where a WGS84 point lies and so who will handle a report there: ``inside`` (a small grid
    covers it), the district, street, community and small grid (``{code, name}`` or null) and the
    point as given back. No registry row is read (no nearest address)."""
    where = grid_locate(lon=lon, lat=lat)
    return {
        "inside": where.inside,
        "district": _named(where.district),
        "street": _named(where.street),
        "community": _named(where.community),
        "grid": _named(where.grid_small),
        "lon": round(lon, DIGITS),
        "lat": round(lat, DIGITS),
    }


def _public_text(row: dict) -> str:
    """A standard address down to its building: district, street, road and door, compound and
    building (no entrance, floor or room)."""
    parts = ("district_name", "street_name", "road", "door_number", "compound_name", "building_number")
    return "".join(row[part] for part in parts if row[part])


def resident_geocode(*, text: str) -> dict:
    """Typed address text → at most :data:`GEOCODE_LIMIT` standard addresses at building
    precision, best first: ``text``, ``precision``, ``lon``/``lat``, ``street``, ``community``
    and ``grid`` (names and codes); ``matched`` and ``reason`` say whether the best one is good
    enough (the matcher's own threshold). Room-level candidates of one building are one answer."""
    answer = address_geocode(text=text, limit=GEOCODE_LIMIT * 4, scope=CITY)
    codes = [c.code for c in answer.candidates if c.lon is not None]
    rows = {
        row["code"]: row
        for row in Address.objects.filter(code__in=codes).values(
            "code", "district_name", "street_name", "road", "door_number", "compound_name", "building_number"
        )
    }
    candidates, seen = [], set()
    for candidate in answer.candidates:
        row = rows.get(candidate.code)
        shown = _public_text(row) if row else candidate.full_text if candidate.lon is None else ""
        if not shown or shown in seen:
            continue
        seen.add(shown)
        grids = candidate.grids or {}
        candidates.append(
            {
                "text": shown,
                "score": candidate.score,
                "precision": "building" if candidate.precision in _FINER_THAN_BUILDING else candidate.precision,
                "lon": round(candidate.lon, DIGITS) if candidate.lon is not None else None,
                "lat": round(candidate.lat, DIGITS) if candidate.lat is not None else None,
                "street": grids.get("street"),
                "community": grids.get("community"),
                "grid": grids.get("grid_small"),
            }
        )
        if len(candidates) == GEOCODE_LIMIT:
            break
    return {
        "query": text,
        "matched": answer.matched and bool(candidates),
        "reason": answer.no_match_reason,
        "candidates": candidates,
    }


# --- a resident's case -------------------------------------------------------------------------------


def _areas(event: Event) -> dict:
    """The case's street, community and small grid, ``{code, name}`` or null."""
    regions = dict(
        (pk, {"code": code, "name": name})
        for pk, code, name in Region.objects.filter(pk__in=[event.street_id, event.community_id]).values_list(
            "pk", "code", "name"
        )
    )
    grid = Grid.objects.filter(pk=event.grid_id).values("code", "name", "worker_id").first() if event.grid_id else None
    return {
        "street": regions.get(event.street_id),
        "community": regions.get(event.community_id),
        "grid": {"code": grid["code"], "name": grid["name"]} if grid else None,
        "_worker_id": grid["worker_id"] if grid else None,
    }


def _matched_text(event: Event) -> str:
    """The standard address a typed place matched, down to its building ("" for a point)."""
    if event.matched_address_id is None:
        return ""
    row = (
        Address.objects.filter(pk=event.matched_address_id)
        .values("district_name", "street_name", "road", "door_number", "compound_name", "building_number")
        .first()
    )
    return _public_text(row) if row else ""


def _person(user_id: int | None) -> str | None:
    """The grid worker's name as the follow-up page may show it (their full name, else their
    username), only when the city allows it."""
    if not settings.MINQING_RESIDENT_SHOW_HANDLER_NAMES or user_id is None:
        return None
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(pk=user_id).first()
    return (user.get_full_name() or user.get_username()) if user is not None else None


def _step(row: dict) -> dict:
    data, step = row["data"] or {}, {"action": row["action"], "status": row["to_status"], "at": _iso(row["at"])}
    if row["action"] == "assign":
        step["responsible_level"] = data.get("responsible_level")
    elif row["action"] == "escalate":
        step["responsible_level"] = data.get("to_level")
    elif row["action"] in ("rate", "reopen"):
        step["satisfaction"] = data.get("satisfaction")
    return step


def resident_photo_ids(*, event_id: int) -> list[int]:
    """The handlers' photos of a case (newest last), which its resident may see."""
    return list(
        EventPhoto.objects.filter(event_id=event_id, uploaded_by__isnull=False)
        .order_by("uploaded_at", "id")
        .values_list("id", flat=True)
    )


def resident_photo_get(*, ticket: ResidentTicket, photo_id: int) -> EventPhoto | None:
    """A handler's photo of the ticket's case, else ``None``."""
    return EventPhoto.objects.filter(pk=photo_id, event_id=ticket.event_id, uploaded_by__isnull=False).first()


def resident_case(*, ticket: ResidentTicket, now: dt.datetime | None = None) -> dict:
    """The case as its resident sees it: ticket, category, status, where it is and who handles
    it (department, level, street, community, grid; the worker's name only if the city allows),
    the deadline, the steps so far (codes the page words), the resolution (its note with ID
    numbers and phones masked, and the handlers' photos) and what the resident may still do."""
    now = now or timezone.now()
    event = Event.objects.select_related("category", "department").get(pk=ticket.event_id)
    steps = list(
        EventTransition.objects.filter(event_id=event.pk, action__in=RESIDENT_STEPS)
        .order_by("at", "id")
        .values("action", "to_status", "at", "data", "reason")
    )
    areas = _areas(event)
    worker_id = areas.pop("_worker_id")
    resolved = event.status in DONE_STATUSES
    resolution = None
    if resolved:
        last = next((s for s in reversed(steps) if s["action"] == "resolve"), None)
        resolution = {
            "at": _iso(event.resolved_at or (last["at"] if last else None)),
            "note": personal.mask_free_text(last["reason"]) if last else "",
            "photos": resident_photo_ids(event_id=event.pk),
        }
    was_answered = answered(ticket, event)
    until = reopen_until(event)
    cluster_size = (
        EventCluster.objects.filter(pk=event.cluster_id).values_list("event_count", flat=True).first()
        if event.cluster_id
        else None
    )
    return {
        "ticket": ticket.ticket,
        "category": {"code": event.category.code, "name": event.category.name, "name_en": event.category.name_en},
        "status": event.status,
        "received_at": _iso(event.received_at),
        "place": {**areas, "address": _matched_text(event), "located": event.location is not None},
        "handler": {
            "department": event.department.name if event.department else None,
            "department_en": event.department.name_en if event.department else None,
            "responsible_level": event.responsible_level,
            "grid": areas["grid"],
            "person": _person(worker_id),
        },
        "deadline": _iso(event.deadline),
        "overdue": bool(event.deadline and event.deadline < now and event.status not in DONE_STATUSES),
        "steps": [_step(s) for s in steps],
        "resolution": resolution,
        "answer": {
            "answered": was_answered,
            "answer": ticket.answer or None,
            "satisfaction": event.satisfaction if ticket.answered_at else None,
            "may_rate": resolved and not was_answered,
            "may_reopen": resolved and not was_answered and until is not None and now <= until,
            "reopen_until": _iso(until),
        },
        "photos_sent": EventPhoto.objects.filter(event_id=event.pk, uploaded_by__isnull=True).count(),
        "same_problem_reports": max(0, (cluster_size or 1) - 1),
    }
