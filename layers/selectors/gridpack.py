"""Reads for the grid worker's tablet (``/grid/``): my grids, my grid's package, my events.

"My grids" are the small grids whose ``Grid.worker`` is the user, for a user who holds the grid
worker's role, within their data scope (``layers.protection.access.Reader``): being named a grid's worker
opens nothing to a user of another role, and a scope row narrows a worker further. "My events" are the events
located in my grids (``Event.grid``): the worker of a small grid is the one who answers for what
happens in it, so the grid link *is* the assignment and no other column is needed. The list
holds what is on the worker's plate: open cases (the SLA clock runs), suspended ones, and
resolved ones awaiting the check; verified and closed cases are history.

Every scope rule of the tablet lives in the ``worker_*`` functions below, so that the reader-scope
helper can replace them in one place: a grid that is not mine raises :class:`NotYourGrid` (403);
an event or photo outside my grids reads as ``None`` (the view answers 404, revealing nothing).

The package is built in SQL (``json_agg`` over the grid's rows, geometry as GeoJSON with five
decimals, i.e. about a metre) in one statement per section; a grid of 500 households with its
residents comes to a few hundred kilobytes.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from layers.protection.access import Reader
from layers.protection.scope import Scope

from ..errors import DomainError
from ..geocoding.points import grid_locate
from ..models import Building, Category, Dwelling, Event, EventPhoto, Grid, Person, RegistryTask, Unit, Visit
from ..names import localized
from ..services.events import OPEN_STATUSES, allowed_actions
from ..services.visits import visit_describe
from .buildings import building_sheets
from .events import _serialize, event_detail, event_replay_readable, events_query
from .registry_tasks import grid_tasks

#: Statuses listed as "my events" (see the module docstring), most urgent deadline first.
WORKER_STATUSES = (*OPEN_STATUSES, Event.Status.SUSPENDED, Event.Status.RESOLVED)

#: The actions the tablet offers, besides a note and a photo (always offered on an open case).
WORKER_ACTIONS = ("accept", "resolve")

#: At most this many events are listed (a grid of 500 households has a handful open at a time).
WORKER_EVENTS_LIMIT = 200

#: Decimal places of coordinates in the package: 1e-5° is 1.1 m north-south, 0.9 m east-west here.
COORDINATE_DIGITS = 5


class NotYourGrid(DomainError):
    """The reader asked for a grid they do not work, or works none."""

    status = 403
    code = "permission_denied"


# --- scope ----------------------------------------------------------------------------------------


def worker_grids(*, reader: Reader) -> list[dict]:
    """The small grids the reader works (``Grid.worker``) within their scope, by code:
    ``{"id", "code", "name"}``; none for a reader without the grid worker's role."""
    if reader.is_anonymous or not reader.works_grids:
        return []
    grids = Grid.objects.filter(worker_id=reader.user_id, level=Grid.Level.SMALL).filter(reader.scope.grid_q())
    return list(grids.order_by("code").values("id", "code", "name"))


def worker_grid_get(*, reader: Reader, code: str | None = None) -> dict:
    """One of the reader's small grids: the one with ``code``, or the first by code. Raises
    :class:`NotYourGrid` when the reader works no grid or ``code`` is not one of theirs (whether
    or not such a grid exists: a worker learns nothing of other grids)."""
    grids = worker_grids(reader=reader)
    if not grids:
        raise NotYourGrid(_("You are not the worker of any small grid."))
    if code is None:
        return grids[0]
    for grid in grids:
        if grid["code"] == code:
            return grid
    raise NotYourGrid(_("The grid %(code)s is not one of your grids.") % {"code": code}, parameter="grid")


def worker_scope(*, reader: Reader) -> Scope:
    """The tablet's scope: the small grids the reader works, whatever else their role may read."""
    return Scope("grids", grid_ids=tuple(grid["id"] for grid in worker_grids(reader=reader)))


def worker_visits(*, worker_id: int, grid_id: int, since: dt.datetime, limit: int = 500) -> list[dict]:
    """A worker's visits in a grid since ``since``, newest first, at most ``limit``."""
    visits = Visit.objects.filter(worker_id=worker_id, grid_id=grid_id, visited_at__gte=since)
    return [visit_describe(visit) for visit in visits.order_by("-visited_at", "-id")[:limit]]


def worker_event_get(*, reader: Reader, event_id: int) -> Event | None:
    """The event to act on when it lies in one of the reader's small grids, else ``None``."""
    grid_ids = worker_scope(reader=reader).grid_ids
    return Event.objects.filter(pk=event_id, grid_id__in=grid_ids).select_related("category").first()


def worker_photo_get(*, reader: Reader, photo_id: int) -> EventPhoto | None:
    """A photo of an event in one of the reader's small grids, else ``None``."""
    return EventPhoto.objects.filter(pk=photo_id, event__grid_id__in=worker_scope(reader=reader).grid_ids).first()


# --- points ---------------------------------------------------------------------------------------


def grid_point_check(*, reader: Reader, lon: float, lat: float) -> dict:
    """Whether a WGS84 point lies in one of the reader's small grids (``inside``), the small grid
    that holds it (``grid``: code and name, or ``None`` outside every grid), how far it is from
    that grid's edge and a message to show. One indexed query (``grid_locate``)."""
    where = grid_locate(lon=lon, lat=lat)
    mine = {grid["code"] for grid in worker_grids(reader=reader)}
    grid = where.grid_small
    inside = grid is not None and grid.code in mine
    if inside:
        message = _("Inside your grid: %(name)s (%(code)s).") % {"name": grid.name, "code": grid.code}
    elif grid is not None:
        message = _("Outside your grid: it lies in %(name)s (%(code)s).") % {"name": grid.name, "code": grid.code}
    else:
        message = _("Outside your grid and every other grid.")
    return {
        "inside": inside,
        "grid": {"code": grid.code, "name": grid.name} if grid is not None else None,
        "boundary_distance_m": round(where.boundary_distance_m, 1) if where.boundary_distance_m is not None else None,
        "ambiguous": where.ambiguous,
        "message": message,
    }


# --- the package ----------------------------------------------------------------------------------

_D = COORDINATE_DIGITS

_GRID_SQL = f"""
SELECT g.code, g.name, c.code, c.name, s.code, s.name, d.code, d.name,
       ST_AsGeoJSON(g.boundary, {_D})::json,
       json_build_array(round(ST_XMin(g.boundary)::numeric, {_D}), round(ST_YMin(g.boundary)::numeric, {_D}),
                        round(ST_XMax(g.boundary)::numeric, {_D}), round(ST_YMax(g.boundary)::numeric, {_D}))
FROM layers_grid g
LEFT JOIN layers_region c ON c.id = g.community_id
LEFT JOIN layers_region s ON s.id = c.parent_id
LEFT JOIN layers_region d ON d.id = s.parent_id
WHERE g.id = %(grid)s
"""

# Properties are short keys of what the page shows; ids are left out (the tablet names things by
# their codes). Households are counted per building in one grouped pass, not per row.
_BUILDINGS_SQL = f"""
SELECT coalesce(json_agg(json_build_object(
    'type', 'Feature', 'geometry', ST_AsGeoJSON(b.footprint, {_D})::json,
    'properties', json_build_object('code', b.code, 'name', b.name, 'floors', b.floors, 'use', b.use,
                                    'households', coalesce(h.n, 0))
) ORDER BY b.code), '[]'::json)
FROM layers_building b
LEFT JOIN (SELECT building_id, count(*) AS n FROM layers_dwelling WHERE grid_id = %(grid)s GROUP BY building_id) h
       ON h.building_id = b.id
WHERE b.grid_id = %(grid)s
"""

_ADDRESSES_SQL = f"""
SELECT coalesce(json_agg(json_build_object(
    'type', 'Feature', 'geometry', ST_AsGeoJSON(a.location, {_D})::json,
    'properties', json_build_object('code', a.code, 'text', a.full_text)
) ORDER BY a.code), '[]'::json)
FROM layers_address a
WHERE a.grid_id = %(grid)s
"""

_UNITS_SQL = f"""
SELECT coalesce(json_agg(json_build_object(
    'type', 'Feature', 'geometry', ST_AsGeoJSON(u.location, {_D})::json,
    'properties', json_build_object('code', u.credit_code, 'name', u.name, 'kind', u.kind, 'address', u.address_text)
) ORDER BY u.name, u.credit_code), '[]'::json)
FROM layers_unit u
WHERE u.grid_id = %(grid)s
"""

# Households holding a care-tagged resident first, then by code.
_HOUSEHOLDS_SQL = """
SELECT coalesce(json_agg(json_build_object(
    'code', h.code, 'building', h.building, 'address', h.address, 'use', h.use, 'occupancy', h.occupancy,
    'area_m2', h.area_m2, 'residents', h.residents, 'care', h.care
) ORDER BY h.care > 0 DESC, h.code), '[]'::json)
FROM (
    SELECT d.code, b.code AS building, a.full_text AS address, d.use, d.occupancy, d.area_m2,
           count(p.id) AS residents, count(p.id) FILTER (WHERE cardinality(p.care_tags) > 0) AS care
    FROM layers_dwelling d
    LEFT JOIN layers_building b ON b.id = d.building_id
    LEFT JOIN layers_address a ON a.id = d.address_id
    LEFT JOIN layers_person p ON p.dwelling_id = d.id
    WHERE d.grid_id = %(grid)s
    GROUP BY d.id, b.code, a.full_text
) h
"""

# Personal data: only the masked columns are read (the ciphertexts never leave the database);
# the birth date is given as an age in whole years on today's date in the city.
_RESIDENTS_SQL = """
SELECT coalesce(json_agg(json_build_object(
    'name', p.name, 'gender', p.gender, 'age', date_part('year', age(%(today)s::date, p.birth_date))::int,
    'residence', p.residence, 'care_tags', p.care_tags, 'id_number', p.id_number_masked,
    'phone', p.phone_masked, 'household', d.code
) ORDER BY cardinality(p.care_tags) > 0 DESC, d.code, p.name, p.id), '[]'::json)
FROM layers_person p
LEFT JOIN layers_dwelling d ON d.id = p.dwelling_id
WHERE p.grid_id = %(grid)s
"""


def _one(sql: str, params: dict) -> object:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _collection(features: list) -> dict:
    return {"type": "FeatureCollection", "features": features}


def _labels() -> dict:
    """Display names of the coded values in the package (the page works offline with them)."""
    choices = {
        "care_tags": Person.CareTag,
        "residence": Person.Residence,
        "gender": Person.Gender,
        "household_use": Dwelling.Use,
        "occupancy": Dwelling.Occupancy,
        "task_kind": RegistryTask.Kind,
        "task_status": RegistryTask.Status,
        "resolution": RegistryTask.Resolution,
        "building_use": Building.Use,
        "unit_kind": Unit.Kind,
        "status": Event.Status,
        "channel": Event.Channel,
    }
    return {key: dict(values.choices) for key, values in choices.items()}


def grid_package(*, reader: Reader, grid: dict) -> dict:
    """Everything the tablet needs to work one small grid offline: the grid (codes, names, its
    community, street and district, ``boundary`` as GeoJSON and ``bbox``), ``buildings``,
    ``addresses`` and ``units`` as GeoJSON feature collections, ``households`` and ``residents``
    (care-tagged first; ID numbers and phones masked), my ``events`` in this grid, the event
    ``categories``, display ``labels`` and the ``limits`` the page checks before sending.

    ``grid`` comes from :func:`worker_grid_get` (the scope check)."""
    params = {"grid": grid["id"], "today": timezone.localdate()}
    with connection.cursor() as cursor:
        cursor.execute(_GRID_SQL, params)
        code, name, *areas, boundary, bbox = cursor.fetchone()
    pairs = [{"code": areas[i], "name": areas[i + 1]} if areas[i] else None for i in (0, 2, 4)]
    residents = _one(_RESIDENTS_SQL, params)
    households = _one(_HOUSEHOLDS_SQL, params)
    return {
        "generated_at": timezone.localtime().isoformat(timespec="seconds"),
        "grid": {
            "code": code,
            "name": name,
            "community": pairs[0],
            "street": pairs[1],
            "district": pairs[2],
            "boundary": boundary,
            "bbox": [float(v) for v in bbox],
        },
        "my_grids": [{"code": g["code"], "name": g["name"]} for g in worker_grids(reader=reader)],
        "counts": {
            "households": len(households),
            "residents": len(residents),
            "care_residents": sum(1 for r in residents if r["care_tags"]),
        },
        "buildings": _collection(_one(_BUILDINGS_SQL, params)),
        "addresses": _collection(_one(_ADDRESSES_SQL, params)),
        "units": _collection(_one(_UNITS_SQL, params)),
        "households": households,
        "residents": residents,
        "events": worker_events(grid=grid, with_description=reader.reads_description),
        # The building sheets (楼盘表) of the grid's buildings, so they open offline too.
        "sheets": _grid_sheets(reader=reader, grid_id=grid["id"]),
        "tasks": grid_tasks(grid_id=grid["id"], with_description=reader.reads_description),
        "categories": [
            {"code": c["code"], "name": localized(c["name"], c["name_en"]), "family": c["family"]}
            for c in Category.objects.order_by("code").values("code", "name", "name_en", "family")
        ],
        "labels": _labels(),
        "limits": {
            "photo_max_bytes": settings.MINQING_PHOTO_MAX_BYTES,
            "gps_max_accuracy_m": settings.MINQING_GPS_MAX_ACCURACY_M,
        },
    }


def _grid_sheets(*, reader: Reader, grid_id: int) -> dict[str, dict]:
    ids = list(Building.objects.filter(grid_id=grid_id).values_list("id", flat=True))
    sheets = building_sheets(building_ids=ids, care=reader.reads_care_tags)
    return {sheet["building"]["code"]: sheet for sheet in sheets.values()}


# --- my events ------------------------------------------------------------------------------------


def worker_events(*, grid: dict, with_description: bool) -> list[dict]:
    """The events on the worker's plate in ``grid`` (:data:`WORKER_STATUSES`), earliest deadline
    first, each as in the events API plus ``worker_actions`` (what the tablet offers) and
    ``photos``."""
    rows = list(
        events_query(scope=Scope("grids", grid_ids=(grid["id"],)), grid_code=grid["code"])
        .filter(status__in=[str(s) for s in WORKER_STATUSES])
        .order_by("deadline", "-received_at", "-id")[:WORKER_EVENTS_LIMIT]
    )
    # The events API's own serialiser: one shape of an event across the API and the tablet.
    events = _serialize(rows, with_description=with_description)
    photos = event_photos(event_ids=[event["id"] for event in events])
    for event in events:
        event["worker_actions"] = worker_actions(event["status"])
        event["photos"] = photos.get(event["id"], [])
    return events


def worker_actions(status: str) -> list[str]:
    """What the tablet offers on an event in ``status``: accept and resolve when the state
    machine allows them, and a note and a photo unless the case is closed.

    >>> worker_actions("assigned"), worker_actions("in_progress"), worker_actions("closed")
    (['accept', 'note', 'photo'], ['resolve', 'note', 'photo'], [])
    """
    if status == Event.Status.CLOSED:
        return []
    allowed = set(allowed_actions(status))
    return [action for action in WORKER_ACTIONS if action in allowed] + ["note", "photo"]


def photo_url(photo_id: int) -> str:
    return f"/api/grid/photos/{photo_id}"


def event_photos(*, event_ids: list[int]) -> dict[int, list[dict]]:
    """The photos of these events, oldest first, by event id: ``{"id", "url", "content_type",
    "size", "uploaded_at"}``."""
    found: dict[int, list[dict]] = {}
    if not event_ids:
        return found
    for row in EventPhoto.objects.filter(event_id__in=event_ids).values(
        "id", "event_id", "content_type", "size", "width", "height", "uploaded_at"
    ):
        found.setdefault(row["event_id"], []).append(photo_describe(row))
    return found


def photo_describe(row: dict) -> dict:
    """A photo row (``values()`` or model fields) as the API answers it."""
    uploaded_at: dt.datetime = row["uploaded_at"]
    return {
        "id": row["id"],
        "url": photo_url(row["id"]),
        "content_type": row["content_type"],
        "size": row["size"],
        "width": row["width"],
        "height": row["height"],
        "uploaded_at": timezone.localtime(uploaded_at).isoformat(),
    }


def worker_event_detail(*, reader: Reader, event_id: int) -> dict | None:
    """One event in the reader's grids as :func:`layers.selectors.events.event_detail` answers
    it, plus ``worker_actions`` and ``photos``; ``None`` outside them."""
    body = event_detail(event_id=event_id, scope=worker_scope(reader=reader), with_description=reader.reads_description)
    return _with_worker_parts(body)


def worker_report_detail(*, reader: Reader, event_id: int) -> dict | None:
    """A report as :func:`worker_event_detail` answers it, also when it lies outside the reader's
    grids but they sent it in (the log's ``receive`` step names them); ``None`` otherwise: a
    client id that someone else's report already carries opens nothing."""
    if not event_replay_readable(event_id=event_id, scope=worker_scope(reader=reader), user_id=reader.user_id):
        return None
    # Readable as checked just above: the reporter sees the one event they sent in, wherever it lies.
    body = event_detail(event_id=event_id, scope=Scope("city"), with_description=reader.reads_description)
    return _with_worker_parts(body)


def _with_worker_parts(body: dict | None) -> dict | None:
    if body is not None:
        body["worker_actions"] = worker_actions(body["status"])
        body["photos"] = event_photos(event_ids=[body["id"]]).get(body["id"], [])
    return body
