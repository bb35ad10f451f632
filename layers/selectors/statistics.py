"""Event statistics per area and over time, for the analyst workbench (``/api/statistics/…``).

Every figure is an SQL aggregate over the link columns that events and persons share
(:class:`~layers.models.registry.GridLinked`: small / medium / large grid, community, street,
district code), so one statement answers a whole table: Python never sees an event or a person,
only one JSON document per request.

* **Areas** of a level are those of the grid chain (``layers_grid_chain``, one row per small
  grid with its ancestry) inside the region / grid filter: every street, community or small grid
  covered by the grid system is listed, with zeros where nothing happened. An event or a person
  is counted in an area through its link column, the same cache every other surface reads.
* **Population** is the registry's: the persons linked to the area (实有人口), whatever the time
  window, so "per 1,000 residents" divides by today's residents.
* **Closed** (办结) means resolved, verified or closed; every other status, suspended included,
  is **open**, as in the ``grid_stats`` layer of the catalog. The completion rate (办结率) is
  closed / events of the selection.
* **Scope**: every figure counts only the rows in the reader's data scope (:mod:`layers.protection.scope`):
  the areas listed, their events and their residents.
* **Filters** mean what they mean in the event list (``layers.selectors.events``): ``region`` a
  city, district, street or community code; ``grid`` a small, medium or large grid code;
  ``category`` a family (``hazard``) or a dotted code; ``status``; ``since`` inclusive and
  ``until`` exclusive on the time of receipt. Unknown codes raise
  :class:`~layers.errors.InvalidInput` naming the field, with the event list's messages.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext as _

from layers.database.reading import reading
from layers.protection.scope import Scope

from ..errors import InvalidInput
from ..models import Category, Event, Family, Grid, Region

#: Statuses counted as closed (办结); the rest are open.
CLOSED_STATUSES = (Event.Status.RESOLVED, Event.Status.VERIFIED, Event.Status.CLOSED)
#: Series longer than this are refused: a chart cannot show more bars, and a day series over a
#: century would cost the database for nothing.
MAX_BUCKETS = 1000
INTERVALS = ("day", "week", "month")


@dataclass(frozen=True)
class AreaLevel:
    """A level the statistics break down by: the link column naming an area, the table holding
    the areas, and the column of that table naming the parent shown beside each area."""

    key: str
    table: str
    parent: str


LEVELS: dict[str, AreaLevel] = {
    "street": AreaLevel(key="street_id", table="layers_region", parent="parent_id"),
    "community": AreaLevel(key="community_id", table="layers_region", parent="parent_id"),
    "grid": AreaLevel(key="grid_id", table="layers_grid", parent="community_id"),
}


@dataclass(frozen=True)
class Filters:
    """The filters and the reader's scope resolved to SQL: :meth:`area` is a condition on the
    link columns of a table (events, persons and the grid chain share them), :attr:`events` one
    on the events ``t`` alone."""

    scope: Scope
    area_sql: tuple[str, ...]  # templates over the alias {a}
    area_params: tuple
    events: str
    event_params: tuple

    def area(self, alias: str) -> tuple[str, list]:
        """The region / grid filter and the scope on the table under ``alias``."""
        in_scope, scope_params = self.scope.linked(alias)
        conditions = [in_scope, *(sql.format(a=alias) for sql in self.area_sql)]
        return " AND ".join(conditions), [*scope_params, *self.area_params]


# --- filters --------------------------------------------------------------------------------------


def _region_condition(code: str) -> tuple[str, tuple]:
    region = Region.objects.filter(code=code).values("id", "level").first()
    if region is None:
        raise InvalidInput("region", _("unknown region code %(code)s") % {"code": f"{code!r}"})
    level = region["level"]
    if level == Region.Level.COMMUNITY:
        return "{a}.community_id = %s", (region["id"],)
    if level == Region.Level.STREET:
        return "{a}.street_id = %s", (region["id"],)
    if level == Region.Level.DISTRICT:
        return "{a}.district_code = %s", (code,)
    districts = Region.objects.filter(parent_id=region["id"], level=Region.Level.DISTRICT)
    return "{a}.district_code = ANY(%s)", (list(districts.values_list("code", flat=True)),)


def _grid_condition(code: str) -> tuple[str, tuple]:
    grid = Grid.objects.filter(code=code).values("id", "level").first()
    if grid is None:
        raise InvalidInput("grid", _("unknown grid code %(code)s") % {"code": f"{code!r}"})
    column = {Grid.Level.SMALL: "grid_id", Grid.Level.MEDIUM: "grid_medium_id", Grid.Level.LARGE: "grid_large_id"}
    return f"{{a}}.{column[grid['level']]} = %s", (grid["id"],)


def _category_ids(code: str) -> list[int]:
    # As the event list reads it: a dotted code is one category, a bare word a whole family. A
    # few dozen rows, resolved to ids here so that the event scan needs no join.
    ids = list(Category.objects.filter(Q(code=code) if "." in code else Q(family=code)).values_list("id", flat=True))
    if not ids or ("." not in code and code not in Family.values):
        raise InvalidInput("category", _("unknown category %(code)s") % {"code": f"{code!r}"})
    return ids


def filters_build(
    *,
    scope: Scope,
    region_code: str | None = None,
    grid_code: str | None = None,
    category: str | None = None,
    status: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Filters:
    """The filters as SQL conditions (see the module's docstring for their meaning), inside the
    reader's ``scope``."""
    area, area_params = [], []
    for code, resolve in ((region_code, _region_condition), (grid_code, _grid_condition)):
        if code:
            sql, values = resolve(code)
            area.append(sql)
            area_params += values
    events, event_params = ["TRUE"], []
    if category:
        events.append("t.category_id = ANY(%s)")
        event_params.append(_category_ids(category))
    if status:
        events.append("t.status = %s")
        event_params.append(status)
    if since is not None:
        events.append("t.received_at >= %s")
        event_params.append(since)
    if until is not None:
        events.append("t.received_at < %s")
        event_params.append(until)
    return Filters(scope, tuple(area), tuple(area_params), " AND ".join(events), tuple(event_params))


# --- per area -------------------------------------------------------------------------------------

_CLOSED_SQL = "t.status IN ({})".format(", ".join(f"'{s}'" for s in CLOSED_STATUSES))


def _figures(row: str) -> str:
    """The JSON members of one table row (or the totals) from its summed columns."""
    return f"""
        'residents', {row}.residents, 'events', {row}.events, 'closed', {row}.closed,
        'open', {row}.events - {row}.closed,
        'completion_rate', round({row}.closed::numeric / nullif({row}.events, 0), 4),
        'events_per_1000', round(1000.0 * {row}.events / nullif({row}.residents, 0), 2),
        'satisfaction', round({row}.sat_sum::numeric / nullif({row}.sat_n, 0), 2)"""


def area_statistics(
    *,
    scope: Scope,
    level: str,
    region_code: str | None = None,
    grid_code: str | None = None,
    category: str | None = None,
    status: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> dict:
    """Per area of ``level`` (``street``, ``community`` or ``grid``, the small grid) inside the
    region / grid filter, in code order::

        {"areas": [{"code", "name", "parent": {"code", "name"} | None, "residents", "events",
                    "closed", "open", "completion_rate", "events_per_1000", "satisfaction"}, …],
         "totals": {the same figures summed over the areas},
         "events_outside_areas": n}

    ``completion_rate`` is a fraction (0–1, 4 decimals), ``events_per_1000`` has 2 decimals,
    ``satisfaction`` is the mean rating (1–5, 2 decimals); each is ``None`` where it would divide
    by zero. ``events_outside_areas`` counts the selected events linked to no listed area (waiting
    for a location, or outside every grid). One statement."""
    shape = LEVELS[level]
    filters = filters_build(
        scope=scope,
        region_code=region_code,
        grid_code=grid_code,
        category=category,
        status=status,
        since=since,
        until=until,
    )
    key = shape.key
    (in_chain, chain_params), (in_events, event_area_params), (in_persons, person_params) = (
        filters.area(alias) for alias in ("ch", "t", "p")
    )
    sql = f"""
        WITH scope AS (
            SELECT DISTINCT ch.{key} AS id FROM layers_grid_chain ch
            WHERE ch.{key} IS NOT NULL AND {in_chain}),
        ev AS (
            SELECT t.{key} AS id, count(*) AS events, count(*) FILTER (WHERE {_CLOSED_SQL}) AS closed,
                   coalesce(sum(t.satisfaction), 0) AS sat_sum, count(t.satisfaction) AS sat_n
            FROM layers_event t
            WHERE {in_events} AND {filters.events}
            GROUP BY t.{key}),
        pop AS (
            SELECT p.{key} AS id, count(*) AS residents FROM layers_person p
            WHERE p.{key} IS NOT NULL AND {in_persons}
            GROUP BY p.{key}),
        rows AS (
            SELECT a.code, a.name, up.code AS parent_code, up.name AS parent_name,
                   coalesce(pop.residents, 0) AS residents, coalesce(ev.events, 0) AS events,
                   coalesce(ev.closed, 0) AS closed, coalesce(ev.sat_sum, 0) AS sat_sum,
                   coalesce(ev.sat_n, 0) AS sat_n
            FROM scope
            JOIN {shape.table} a ON a.id = scope.id
            LEFT JOIN layers_region up ON up.id = a.{shape.parent}
            LEFT JOIN ev ON ev.id = scope.id
            LEFT JOIN pop ON pop.id = scope.id),
        totals AS (
            SELECT coalesce(sum(residents), 0) AS residents, coalesce(sum(events), 0) AS events,
                   coalesce(sum(closed), 0) AS closed, coalesce(sum(sat_sum), 0) AS sat_sum,
                   coalesce(sum(sat_n), 0) AS sat_n
            FROM rows)
        SELECT json_build_object(
            'areas', coalesce((
                SELECT json_agg(json_build_object(
                    'code', r.code, 'name', r.name,
                    'parent', CASE WHEN r.parent_code IS NOT NULL
                                   THEN json_build_object('code', r.parent_code, 'name', r.parent_name) END,
                    {_figures("r")}) ORDER BY r.code)
                FROM rows r), '[]'::json),
            'totals', (SELECT json_build_object({_figures("s")}) FROM totals s),
            'events_outside_areas', (SELECT coalesce(sum(events), 0) FROM ev) - (SELECT events FROM totals)
        )::text"""
    params = (*chain_params, *event_area_params, *filters.event_params, *person_params)
    with reading().cursor() as cursor:
        cursor.execute(sql, params)
        return json.loads(cursor.fetchone()[0])


# --- over time ------------------------------------------------------------------------------------


def event_series(
    *,
    scope: Scope,
    interval: str,
    region_code: str | None = None,
    grid_code: str | None = None,
    category: str | None = None,
    status: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> list[dict]:
    """The selected events per ``interval`` (``day``, ``week`` from Monday, ``month``) of receipt,
    in the server's time zone (``TIME_ZONE``), oldest first::

        [{"start": "2026-05-04", "events", "closed", "open", "completion_rate"}, …]

    ``closed`` counts the events received in the bucket that are closed now (a cohort, so the
    rate of a recent bucket still grows). The buckets run from ``since`` to just before
    ``until``, or from the first to the last selected event where one is not given, every
    bucket present (zeros included); no event and no window gives ``[]``. More than
    :data:`MAX_BUCKETS` buckets raise :class:`~layers.errors.InvalidInput` on ``interval``."""
    if interval not in INTERVALS:
        raise ValueError(f"interval {interval!r} is not one of {INTERVALS}")
    filters = filters_build(
        scope=scope,
        region_code=region_code,
        grid_code=grid_code,
        category=category,
        status=status,
        since=since,
        until=until,
    )
    in_events, event_area_params = filters.area("t")
    zone = settings.TIME_ZONE
    # Buckets are local: a day of the series is a day on the wall clock of the city. The window's
    # last bucket is the one holding the instant just before ``until`` (exclusive).
    sql = f"""
        WITH ev AS (
            SELECT date_trunc(%s, timezone(%s, t.received_at)) AS bucket, count(*) AS events,
                   count(*) FILTER (WHERE {_CLOSED_SQL}) AS closed
            FROM layers_event t
            WHERE {in_events} AND {filters.events}
            GROUP BY 1),
        bounds AS (
            SELECT coalesce(date_trunc(%s, timezone(%s, %s::timestamptz)), min(bucket)) AS first,
                   coalesce(date_trunc(%s, timezone(%s, %s::timestamptz - interval '1 microsecond')),
                            max(bucket)) AS last
            FROM ev),
        buckets AS (
            SELECT generate_series(first, last, ('1 ' || %s)::interval) AS bucket FROM bounds
            LIMIT {MAX_BUCKETS + 1})
        SELECT coalesce(json_agg(json_build_object(
                   'start', to_char(b.bucket, 'YYYY-MM-DD'),
                   'events', coalesce(ev.events, 0), 'closed', coalesce(ev.closed, 0),
                   'open', coalesce(ev.events - ev.closed, 0),
                   'completion_rate', round(ev.closed::numeric / nullif(ev.events, 0), 4)) ORDER BY b.bucket),
               '[]'::json)::text
        FROM buckets b LEFT JOIN ev ON ev.bucket = b.bucket"""
    params = (
        interval,
        zone,
        *event_area_params,
        *filters.event_params,
        interval,
        zone,
        since,
        interval,
        zone,
        until,
        interval,
    )
    with reading().cursor() as cursor:
        cursor.execute(sql, params)
        buckets = json.loads(cursor.fetchone()[0])
    if len(buckets) > MAX_BUCKETS:
        raise InvalidInput(
            "interval",
            _(
                "%(interval)s gives more than %(buckets)s buckets for this time window; "
                "choose a longer interval or a shorter window"
            )
            % {"interval": interval, "buckets": MAX_BUCKETS},
        )
    return buckets


# --- choices for the filters -------------------------------------------------------------------


def _english(label) -> str:
    with translation.override("en"):
        return str(label)


def filter_choices() -> dict:
    """What the workbench's filter lists offer: the category families and codes (Chinese and
    English names) and the event statuses, in a stable order. A few dozen rows."""
    # The taxonomy holds each family as a category of its own (code = family, no dot).
    categories = list(Category.objects.order_by("family", "code").values("code", "family", "name", "name_en"))
    return {
        "families": [c for c in categories if "." not in c["code"]],
        "categories": [c for c in categories if "." in c["code"]],
        "statuses": [{"code": s.value, "name": str(s.label), "name_en": _english(s.label)} for s in Event.Status],
    }
