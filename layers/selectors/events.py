"""Reads of events for the API: a filtered list with keyset pagination, and one event with its log.

Rows are read with ``values()`` over the joins they need (category, department, the six area
links) in one query per page, plus one query for the districts' names (``district_code`` is a
code, not a foreign key); nothing is loaded per row. The list is ordered newest first on
``(received_at, id)``, served by the ``event_received_id`` index read backwards, and pages are
cut by a row comparison against the last row seen (keyset), so page 1,000 costs what page 1 does.

Every read takes the reader's data scope (:mod:`layers.protection.scope`) as a required argument: an event
outside it is not listed and reads as absent (``None``), never as forbidden.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass

from django.contrib.gis.geos import Polygon
from django.db import connection
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext as _

from layers.protection.scope import Scope
from layers.publishing.catalog import layer_get

from ..errors import InvalidInput
from ..models import Category, Event, EventTransition, Family, Grid, Region
from ..names import localized
from ..services.events import OPEN_STATUSES, allowed_actions

#: Link columns and the keys they answer under in ``areas``.
_AREA_JOINS = {
    "street": "street",
    "community": "community",
    "grid_large": "grid_large",
    "grid_medium": "grid_medium",
    "grid_small": "grid",
}

#: Which table each link column points into.
_AREA_TABLE = {"street": "region", "community": "region", "grid_large": "grid", "grid_medium": "grid", "grid": "grid"}

_FIELDS = (
    "id",
    "channel",
    "external_id",
    "category__code",
    "category__name",
    "category__name_en",
    "description",
    "status",
    "department__code",
    "department__name",
    "department__name_en",
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
    # The link ids, not joins: their codes and names are read for the whole page in two small
    # queries (_serialize). Joining the five areas made a by-id read an eight-table join whose
    # planning alone cost ~5 ms of database CPU, the bulk of an intake answer.
    *(f"{join}_id" for join in _AREA_JOINS.values()),
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
        stamp, _bar, event_id = text.partition("|")
        received_at = dt.datetime.fromisoformat(stamp)
        if received_at.tzinfo is None:
            raise ValueError("naive")
        return received_at, int(event_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor", _("is not a cursor from this API; follow the 'next' link of a page")) from None


# --- filters --------------------------------------------------------------------------------------


def _region_filter(code: str) -> Q:
    region = Region.objects.filter(code=code).values("id", "level").first()
    if region is None:
        raise InvalidInput("region", _("unknown region code %(code)s") % {"code": f"{code!r}"})
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
        raise InvalidInput("grid", _("unknown grid code %(code)s") % {"code": f"{code!r}"})
    column = {Grid.Level.SMALL: "grid_id", Grid.Level.MEDIUM: "grid_medium_id", Grid.Level.LARGE: "grid_large_id"}
    return Q(**{column[grid["level"]]: grid["id"]})


def _category_filter(code: str) -> Q:
    # Categories are a few dozen rows: resolving them to ids keeps the event query on its own
    # indexes instead of joining the taxonomy to filter.
    ids = list(Category.objects.filter(Q(code=code) if "." in code else Q(family=code)).values_list("id", flat=True))
    if not ids or ("." not in code and code not in Family.values):
        raise InvalidInput("category", _("unknown category %(code)s") % {"code": f"{code!r}"})
    return Q(category_id__in=ids)


def events_query(
    *,
    scope: Scope,
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
    query = Event.objects.filter(scope.q())
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
    scope: Scope,
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
    """Events in the reader's ``scope``, newest first (received_at, then id, descending), filtered:

    * ``bbox`` (lon_min, lat_min, lon_max, lat_max, WGS84): located events inside it;
    * ``region_code``: a district, street or community (or the city: all its districts);
    * ``grid_code``: a small, medium or large grid;
    * ``category``: a family (``hazard``: every subtype and the bare family) or a dotted code;
    * ``since`` inclusive and ``until`` exclusive, on the time of receipt;
    * ``after``: the cursor of the previous page.

    Raises :class:`~layers.errors.InvalidInput` for an unknown region, grid or category code
    or a malformed cursor."""
    query = events_query(
        scope=scope,
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


def event_detail(*, event_id: int, scope: Scope, with_description: bool = False) -> dict | None:
    """One event as in the list, plus its append-only ``transitions`` log (oldest first) and the
    ``dispatch_trace`` explaining its department and level; ``None`` when there is no such event
    in ``scope``."""
    row = Event.objects.filter(scope.q(), pk=event_id).values(*_FIELDS, "dispatch_trace").first()
    if row is None:
        return None
    (body,) = _serialize([row], with_description=with_description)
    body["transitions"] = _log(event_id)
    body["dispatch_trace"] = row["dispatch_trace"]
    return body


def _log(event_id: int) -> list[dict]:
    """An event's transition log, oldest first, as the API answers it."""
    return [
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


def event_answer(*, event: Event, with_description: bool = False) -> dict:
    """What :func:`event_detail` answers for ``event``, built from the instance a service has just
    written (its category and department loaded) rather than read back: intake answers every
    report, at hundreds a second, and the read-back was a third of its cost. Only the log and the
    areas' names are read. No scope check: for the writer's own answer."""
    row: dict = {}
    for name in (*_FIELDS, "dispatch_trace"):
        if "__" in name:
            relation, attribute = name.split("__")
            related = getattr(event, relation)
            row[name] = getattr(related, attribute) if related is not None else None
        else:
            row[name] = getattr(event, name)
    (body,) = _serialize([row], with_description=with_description)
    body["transitions"] = _log(event.pk)
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
    names = _area_names(rows)
    districts = {key[1]: name for key, (_code, name) in names.items() if key[0] == "district"}
    now = timezone.now()
    return [_event(row, districts, names, now, with_description=with_description) for row in rows]


# One small query for a whole page: the districts by code, the other areas by link id.
_AREA_NAMES_SQL = """
SELECT 'district', code, code, name FROM layers_region WHERE code = ANY(%(district)s)
UNION ALL SELECT 'region', id::text, code, name FROM layers_region WHERE id = ANY(%(region)s)
UNION ALL SELECT 'grid', id::text, code, name FROM layers_grid WHERE id = ANY(%(grid)s)
"""


def _area_names(rows: list[dict]) -> dict[tuple[str, int | str], tuple[str, str]]:
    """(``district``, code) or (``region`` or ``grid``, id) → (code, name) for the areas of
    ``rows``. A dangling link id (links are a cache) has no entry and answers null."""
    wanted: dict[str, set] = {"district": set(), "region": set(), "grid": set()}
    for row in rows:
        if row["district_code"]:
            wanted["district"].add(row["district_code"])
        for join in _AREA_JOINS.values():
            if row[f"{join}_id"] is not None:
                wanted[_AREA_TABLE[join]].add(row[f"{join}_id"])
    if not any(wanted.values()):
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_AREA_NAMES_SQL, {table: list(keys) for table, keys in wanted.items()})
        return {
            (table, key if table == "district" else int(key)): (code, name)
            for table, key, code, name in cursor.fetchall()
        }


def _event(row: dict, districts: dict[str, str], names: dict, now: dt.datetime, *, with_description: bool) -> dict:
    point, deadline = row["location"], row["deadline"]
    areas = {"district": _pair(row["district_code"], districts.get(row["district_code"]))}
    for key, join in _AREA_JOINS.items():
        areas[key] = _pair(*names.get((_AREA_TABLE[join], row[f"{join}_id"]), (None, None)))
    return {
        "id": row["id"],
        "channel": row["channel"],
        "external_id": row["external_id"],
        "category": _pair(row["category__code"], localized(row["category__name"], row["category__name_en"])),
        "description": row["description"] if with_description else None,
        "status": row["status"],
        "department": _pair(row["department__code"], localized(row["department__name"], row["department__name_en"])),
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


def event_get(*, event_id: int, scope: Scope) -> Event | None:
    """The event to act on, or ``None`` when there is none in ``scope`` (the services take model
    instances)."""
    return Event.objects.filter(scope.q(), pk=event_id).first()


def event_replay_readable(*, event_id: int, scope: Scope, user_id: int) -> bool:
    """Whether a retried report may be answered with the stored event: it lies in the reader's
    ``scope``, or this reader sent it in (the log's ``receive`` step names them as actor). A
    report that is neither belongs to someone else: its external id must not open it."""
    received_by_reader = Q(transitions__action="receive", transitions__actor_id=user_id)
    return Event.objects.filter(scope.q() | received_by_reader, pk=event_id).exists()
