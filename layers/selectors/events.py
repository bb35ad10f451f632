"""Reads of events for the API: a filtered list with keyset pagination, and one event with its log.

Rows are read with ``values()`` over the joins they need (category, department, the six area
links) in one query per page, plus one query for the districts' names (``district_code`` is a
code, not a foreign key); nothing is loaded per row. The list is ordered newest first on
``(received_at, id)``, served by the ``event_received_id`` index read backwards, and pages are
cut by a row comparison against the last row seen (keyset), so page 1,000 costs what page 1 does.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass

from django.contrib.gis.geos import Polygon
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from ..catalog import layer_get
from ..errors import InvalidInput
from ..models import Category, Event, EventTransition, Family, Grid, Region
from ..services.events import OPEN_STATUSES, allowed_actions

#: Link columns and the keys they answer under in ``areas``.
_AREA_JOINS = {
    "street": "street",
    "community": "community",
    "grid_large": "grid_large",
    "grid_medium": "grid_medium",
    "grid_small": "grid",
}

_FIELDS = (
    "id",
    "channel",
    "external_id",
    "category__code",
    "category__name",
    "description",
    "status",
    "department__code",
    "department__name",
    "responsible_level",
    "joint_handling",
    "deadline",
    "reported_at",
    "received_at",
    "location",
    "address_text",
    "geocode_method",
    "geocode_confidence",
    "geocode_precision",
    "district_code",
    *(f"{join}__{part}" for join in _AREA_JOINS.values() for part in ("code", "name")),
    "reporter_name_masked",
    "reporter_phone_masked",
    "satisfaction",
    "reopen_count",
    "escalation_level",
    "cluster_id",
    "needs_location",
    "version",
)


@dataclass(frozen=True)
class EventPage:
    """One page of the list: serialised events and the cursor of the next page (``None``: last)."""

    results: list[dict]
    next_cursor: str | None


# --- the cursor -----------------------------------------------------------------------------------


def cursor_encode(*, received_at: dt.datetime, event_id: int) -> str:
    """An opaque cursor pointing just past the event (received_at, id).

    >>> import datetime as dt
    >>> t = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)
    >>> cursor_decode(cursor_encode(received_at=t, event_id=42)) == (t, 42)
    True
    """
    raw = f"{received_at.isoformat()}|{event_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(cursor: str) -> tuple[dt.datetime, int]:
    """The (received_at, id) a cursor from :func:`cursor_encode` holds; raises
    :class:`~layers.errors.InvalidInput` for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, event_id = text.partition("|")
        received_at = dt.datetime.fromisoformat(stamp)
        if received_at.tzinfo is None:
            raise ValueError("naive")
        return received_at, int(event_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor", "is not a cursor from this API; follow the 'next' link of a page") from None


# --- filters --------------------------------------------------------------------------------------


def _region_filter(code: str) -> Q:
    region = Region.objects.filter(code=code).values("id", "level").first()
    if region is None:
        raise InvalidInput("region", f"unknown region code {code!r}")
    level = region["level"]
    if level == Region.Level.COMMUNITY:
        return Q(community_id=region["id"])
    if level == Region.Level.STREET:
        return Q(street_id=region["id"])
    if level == Region.Level.DISTRICT:
        return Q(district_code=code)
    districts = Region.objects.filter(parent_id=region["id"], level=Region.Level.DISTRICT).values_list(
        "code", flat=True
    )
    return Q(district_code__in=list(districts))


def _grid_filter(code: str) -> Q:
    grid = Grid.objects.filter(code=code).values("id", "level").first()
    if grid is None:
        raise InvalidInput("grid", f"unknown grid code {code!r}")
    column = {Grid.Level.SMALL: "grid_id", Grid.Level.MEDIUM: "grid_medium_id", Grid.Level.LARGE: "grid_large_id"}
    return Q(**{column[grid["level"]]: grid["id"]})


def _category_filter(code: str) -> Q:
    # Categories are a few dozen rows: resolving them to ids keeps the event query on its own
    # indexes instead of joining the taxonomy to filter.
    ids = list(Category.objects.filter(Q(code=code) if "." in code else Q(family=code)).values_list("id", flat=True))
    if not ids or ("." not in code and code not in Family.values):
        raise InvalidInput("category", f"unknown category {code!r}")
    return Q(category_id__in=ids)


def events_query(
    *,
    bbox: tuple[float, float, float, float] | None = None,
    region_code: str | None = None,
    grid_code: str | None = None,
    status: str | None = None,
    category: str | None = None,
    channel: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    after: str | None = None,
) -> QuerySet:
    """The ordered ``values()`` query behind :func:`events_list`, unsliced (also for EXPLAIN)."""
    query = Event.objects.all()
    if bbox is not None:
        # ``&&`` against the envelope: answered by the GiST index on location.
        query = query.filter(location__bboverlaps=Polygon.from_bbox(bbox))
    if region_code:
        query = query.filter(_region_filter(region_code))
    if grid_code:
        query = query.filter(_grid_filter(grid_code))
    if status:
        query = query.filter(status=status)
    if category:
        query = query.filter(_category_filter(category))
    if channel:
        query = query.filter(channel=channel)
    if since is not None:
        query = query.filter(received_at__gte=since)
    if until is not None:
        query = query.filter(received_at__lt=until)
    if after:
        received_at, event_id = cursor_decode(after)
        # A row comparison, not "a < x OR (a = x AND b < y)": PostgreSQL turns it into one
        # index range condition on (received_at, id), so a deep page starts where the last ended.
        query = query.filter(
            RawSQL(
                '("layers_event"."received_at", "layers_event"."id") < (%s, %s)',
                (received_at, event_id),
                output_field=BooleanField(),
            )
        )
    return query.order_by("-received_at", "-id").values(*_FIELDS)


def events_list(
    *,
    bbox: tuple[float, float, float, float] | None = None,
    region_code: str | None = None,
    grid_code: str | None = None,
    status: str | None = None,
    category: str | None = None,
    channel: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    after: str | None = None,
    limit: int = 100,
    with_description: bool = False,
) -> EventPage:
    """Events newest first (received_at, then id, descending), filtered:

    * ``bbox`` (lon_min, lat_min, lon_max, lat_max, WGS84): located events inside it;
    * ``region_code``: a district, street or community (or the city: all its districts);
    * ``grid_code``: a small, medium or large grid;
    * ``category``: a family (``hazard``: every subtype and the bare family) or a dotted code;
    * ``since`` inclusive and ``until`` exclusive, on the time of receipt;
    * ``after``: the cursor of the previous page.

    Raises :class:`~layers.errors.InvalidInput` for an unknown region, grid or category code
    or a malformed cursor."""
    query = events_query(
        bbox=bbox,
        region_code=region_code,
        grid_code=grid_code,
        status=status,
        category=category,
        channel=channel,
        since=since,
        until=until,
        after=after,
    )
    rows = list(query[: limit + 1])
    more, rows = len(rows) > limit, rows[:limit]
    results = _serialize(rows, with_description=with_description)
    last = rows[-1] if rows else None
    next_cursor = cursor_encode(received_at=last["received_at"], event_id=last["id"]) if more and last else None
    return EventPage(results, next_cursor)


def event_detail(*, event_id: int, with_description: bool = False) -> dict | None:
    """One event as in the list, plus its append-only ``transitions`` log (oldest first) and the
    ``dispatch_trace`` explaining its department and level; ``None`` when there is no such event."""
    row = Event.objects.filter(pk=event_id).values(*_FIELDS, "dispatch_trace").first()
    if row is None:
        return None
    (body,) = _serialize([row], with_description=with_description)
    body["transitions"] = [
        {
            "action": step["action"],
            "from_status": step["from_status"] or None,
            "to_status": step["to_status"],
            "actor": step["actor_label"],
            "at": _iso(step["at"]),
            "reason": step["reason"],
            "data": step["data"],
        }
        for step in EventTransition.objects.filter(event_id=event_id)
        .order_by("at", "id")
        .values("action", "from_status", "to_status", "actor_label", "at", "reason", "data")
    ]
    body["dispatch_trace"] = row["dispatch_trace"]
    return body


# --- serialisation --------------------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    return timezone.localtime(value).isoformat() if value is not None else None


def _pair(code: str | None, name: str | None) -> dict | None:
    return {"code": code, "name": name} if code else None


def description_readable(*, roles, superuser: bool) -> bool:
    """Whether a reader may see events' free text: the same rule as the catalog's ``events``
    layer (citizens write names and phone numbers into descriptions)."""
    field = next(f for f in layer_get("events").fields if f.name == "description")
    return field.readable_by(roles, superuser=superuser)


def _serialize(rows: list[dict], *, with_description: bool) -> list[dict]:
    """API dictionaries for ``values()`` rows of :data:`_FIELDS`; reporter contact masked only, the
    description (free text) only ``with_description``, else ``None``."""
    codes = {row["district_code"] for row in rows if row["district_code"]}
    districts = dict(Region.objects.filter(code__in=codes).values_list("code", "name")) if codes else {}
    now = timezone.now()
    return [_event(row, districts, now, with_description=with_description) for row in rows]


def _event(row: dict, districts: dict[str, str], now: dt.datetime, *, with_description: bool) -> dict:
    point, deadline = row["location"], row["deadline"]
    areas = {"district": _pair(row["district_code"], districts.get(row["district_code"]))}
    for key, join in _AREA_JOINS.items():
        areas[key] = _pair(row[f"{join}__code"], row[f"{join}__name"])
    return {
        "id": row["id"],
        "channel": row["channel"],
        "external_id": row["external_id"],
        "category": _pair(row["category__code"], row["category__name"]),
        "description": row["description"] if with_description else None,
        "status": row["status"],
        "department": _pair(row["department__code"], row["department__name"]),
        "responsible_level": row["responsible_level"],
        "joint_handling": row["joint_handling"],
        "deadline": _iso(deadline),
        "overdue": deadline is not None and deadline < now and row["status"] in OPEN_STATUSES,
        "reported_at": _iso(row["reported_at"]),
        "received_at": _iso(row["received_at"]),
        "location": {"lon": round(point.x, 7), "lat": round(point.y, 7)} if point is not None else None,
        "address_text": row["address_text"],
        "geocode": {
            "method": row["geocode_method"],
            "confidence": row["geocode_confidence"],
            "precision": row["geocode_precision"],
        },
        "areas": areas,
        "reporter": {"name": row["reporter_name_masked"], "phone": row["reporter_phone_masked"]},
        "satisfaction": row["satisfaction"],
        "reopen_count": row["reopen_count"],
        "escalation_level": row["escalation_level"],
        "cluster_id": row["cluster_id"],
        "needs_location": row["needs_location"],
        "version": row["version"],
        "allowed_actions": allowed_actions(row["status"]),
    }


def event_get(*, event_id: int) -> Event | None:
    """The event to act on, or ``None`` (the services take model instances)."""
    return Event.objects.filter(pk=event_id).first()
