"""Reads for the command-center wall: the headline figures, overdue and escalated cases, the
ranking of streets and one area's summary.

Every figure is one SQL aggregate over the events (and registry tables) within the reader's data
scope (:mod:`layers.protection.scope`); nothing loops over rows in Python. The wall and the JSON API read
the same functions, so a tile on the wall and the API never disagree.

Definitions (a *window* is ``[since, until)`` on the time of receipt):

* **received**: events received in the window; **received_today**: since local midnight.
* **open**: events now in an open status (received … in_progress, returned, reopened), whenever
  received; **overdue**: open with a deadline before now; **escalated**: open and escalated at
  least once. These three are the state *now*, not of the window.
* **completion rate (办结率)**: of the window's events, the share resolved, verified or closed.
* **on-time rate**: of the window's completed events that had a deadline, the share resolved by
  it (the deadline in force when resolved: escalation resets it for the new level).
* **satisfaction**: mean rating (1–5) of the window's rated events, and the share rated 4 or 5.

A rate whose denominator is zero is ``None`` (nothing to rate), never 0 or 100 %.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from layers.database.reading import reading
from layers.protection.scope import Scope, named_parameters

from ..models import Grid, Region
from ..names import localized
from ..services.events import OPEN_STATUSES

#: Statuses that count as completed (办结) for the completion rate.
DONE_STATUSES = ("resolved", "verified", "closed")
#: A rating at or above this counts as satisfied (满意).
SATISFIED_FROM = 4
#: The longest trend an area summary draws, days.
TREND_MAX_DAYS = 92

_OPEN = [str(status) for status in OPEN_STATUSES]
_DONE = list(DONE_STATUSES)


def local_midnight(now: dt.datetime) -> dt.datetime:
    """The start of ``now``'s day in the server's zone (Asia/Shanghai)."""
    local = timezone.localtime(now)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _fetch(sql: str, values: dict) -> list[tuple]:
    with reading().cursor() as cursor:
        cursor.execute(sql, values)
        return cursor.fetchall()


def _scope_sql(scope: Scope, alias: str) -> tuple[str, dict]:
    """The scope's condition on a linked table ``alias`` with named parameters."""
    return named_parameters(*scope.linked(alias), prefix=f"scope_{alias}_")


def map_bounds(*, scope: Scope) -> tuple[float, float, float, float] | None:
    """(lon_min, lat_min, lon_max, lat_max) of the small grids in ``scope`` — the governed city
    the wall opens on — or of the districts when there are no grids; ``None`` when neither has a
    boundary. Index-only: ST_Extent reads the boxes."""
    in_scope, values = named_parameters(*scope.grids("t"), prefix="scope_t_")
    ((extent,),) = _fetch(
        f"""SELECT coalesce(
                (SELECT ST_Extent(t.boundary) FROM layers_grid t WHERE t.level = 'small' AND {in_scope}),
                (SELECT ST_Extent(r.boundary) FROM layers_region r WHERE r.level = 'district'))::box2d::text""",
        values,
    )
    if extent is None:
        return None
    numbers = extent.removeprefix("BOX(").removesuffix(")").replace(",", " ").split()
    return tuple(float(number) for number in numbers)  # type: ignore[return-value]


# --- KPIs -----------------------------------------------------------------------------------------


def dashboard_kpis(*, scope: Scope, since: dt.datetime, until: dt.datetime, now: dt.datetime) -> dict:
    """The wall's headline figures for the window ``[since, until)`` and the state at ``now``
    (see the module docstring), plus the window's counts by status and by category family.

    One statement for the figures: it reads only the rows received in the window, today or
    still open (three index ranges OR-ed by the planner), never the whole table."""
    in_scope, values = _scope_sql(scope, "e")
    values |= {
        "since": since,
        "until": until,
        "today": local_midnight(now),
        "now": now,
        "open": _OPEN,
        "done": _DONE,
        "satisfied": SATISFIED_FROM,
    }
    window = "e.received_at >= %(since)s AND e.received_at < %(until)s"
    done = f"{window} AND e.status = ANY(%(done)s)"
    is_open = "e.status = ANY(%(open)s)"
    ((received, today, open_, overdue, escalated, completed, on_time, with_deadline, rated, mean, satisfied),) = _fetch(
        f"""
        SELECT count(*) FILTER (WHERE {window}),
               count(*) FILTER (WHERE e.received_at >= %(today)s AND e.received_at <= %(now)s),
               count(*) FILTER (WHERE {is_open}),
               count(*) FILTER (WHERE {is_open} AND e.deadline < %(now)s),
               count(*) FILTER (WHERE {is_open} AND e.escalation_level > 0),
               count(*) FILTER (WHERE {done}),
               count(*) FILTER (WHERE {done} AND e.deadline IS NOT NULL AND e.resolved_at <= e.deadline),
               count(*) FILTER (WHERE {done} AND e.deadline IS NOT NULL),
               count(e.satisfaction) FILTER (WHERE {window}),
               avg(e.satisfaction) FILTER (WHERE {window}),
               count(*) FILTER (WHERE {window} AND e.satisfaction >= %(satisfied)s)
        FROM layers_event e
        WHERE ({window} OR e.received_at >= %(today)s OR {is_open}) AND {in_scope}""",
        values,
    )
    by_status = _fetch(
        f"""SELECT e.status, count(*) FROM layers_event e WHERE {window} AND {in_scope}
            GROUP BY e.status ORDER BY e.status""",
        values,
    )
    by_family = _fetch(
        f"""SELECT c.family, count(*) FROM layers_event e JOIN layers_category c ON c.id = e.category_id
            WHERE {window} AND {in_scope} GROUP BY c.family ORDER BY c.family""",
        values,
    )
    return {
        "received": received,
        "received_today": today,
        "open": open_,
        "overdue": overdue,
        "escalated": escalated,
        "completed": completed,
        "completion_rate": _rate(completed, received),
        "on_time": on_time,
        "on_time_rate": _rate(on_time, with_deadline),
        "rated": rated,
        "satisfaction_mean": round(float(mean), 2) if mean is not None else None,
        "satisfaction_rate": _rate(satisfied, rated),
        "by_status": dict(by_status),
        "by_family": dict(by_family),
    }


# --- cases ----------------------------------------------------------------------------------------

_CASE_SQL = """
SELECT e.id, c.code, c.name, c.family, e.status, e.responsible_level, e.escalation_level,
       e.deadline, e.received_at, d.name, s.code, s.name, m.code, m.name, g.code, g.name,
       ST_X(e.location), ST_Y(e.location), c.name_en, d.name_en
FROM layers_event e
JOIN layers_category c ON c.id = e.category_id
LEFT JOIN layers_department d ON d.id = e.department_id
LEFT JOIN layers_region s ON s.id = e.street_id
LEFT JOIN layers_region m ON m.id = e.community_id
LEFT JOIN layers_grid g ON g.id = e.grid_id
WHERE e.status = ANY(%(open)s) AND {condition} AND {in_scope}
ORDER BY {order}
LIMIT %(limit)s"""


def _case(row: tuple, now: dt.datetime) -> dict:
    (event_id, code, name, family, status, level, escalations, deadline, received_at, department) = row[:10]
    street_code, street_name, community_code, community_name, grid_code, grid_name, lon, lat = row[10:18]
    name_en, department_en = row[18:]
    return {
        "id": event_id,
        "category": {"code": code, "name": localized(name, name_en), "family": family},
        "status": status,
        "responsible_level": level,
        "escalation_level": escalations,
        "deadline": timezone.localtime(deadline).isoformat() if deadline else None,
        "overdue_hours": round((now - deadline).total_seconds() / 3600, 1) if deadline and deadline < now else 0.0,
        "received_at": timezone.localtime(received_at).isoformat(),
        "department": localized(department, department_en),
        "street": {"code": street_code, "name": street_name} if street_code else None,
        "community": {"code": community_code, "name": community_name} if community_code else None,
        "grid": {"code": grid_code, "name": grid_name} if grid_code else None,
        "location": {"lon": round(lon, 7), "lat": round(lat, 7)} if lon is not None else None,
    }


def dashboard_cases(*, scope: Scope, now: dt.datetime, limit: int) -> dict:
    """Open cases needing attention: ``overdue`` (deadline passed, longest overdue first) and
    ``escalated`` (escalated at least once, highest level then earliest deadline first), at most
    ``limit`` of each, with the total of each."""
    in_scope, values = _scope_sql(scope, "e")
    values |= {"open": _OPEN, "now": now, "limit": limit}
    kinds = {
        "overdue": ("e.deadline < %(now)s", "e.deadline, e.id"),
        "escalated": ("e.escalation_level > 0", "e.escalation_level DESC, e.deadline NULLS LAST, e.id"),
    }
    body: dict = {}
    for kind, (condition, order) in kinds.items():
        rows = _fetch(_CASE_SQL.format(condition=condition, in_scope=in_scope, order=order), values)
        ((total,),) = _fetch(
            f"SELECT count(*) FROM layers_event e WHERE e.status = ANY(%(open)s) AND {condition} AND {in_scope}",
            values,
        )
        body[kind] = {"total": total, "results": [_case(row, now) for row in rows]}
    return body


# --- streets --------------------------------------------------------------------------------------


def street_ranking(*, scope: Scope, since: dt.datetime, until: dt.datetime, now: dt.datetime) -> list[dict]:
    """Every street (街道) with events in the scope, ranked by events received in the window
    (then by open events, then by code): received, open and overdue now, completion rate and mean satisfaction of the
    window. A city-wide reader also gets the streets with no event (zeros)."""
    in_scope, values = _scope_sql(scope, "e")
    values |= {"since": since, "until": until, "now": now, "open": _OPEN, "done": _DONE}
    window = "e.received_at >= %(since)s AND e.received_at < %(until)s"
    # The city lists every street; a narrower scope only the streets its events lie in.
    streets = "TRUE" if scope.is_city else "a.street_id IS NOT NULL"
    rows = _fetch(
        f"""
        WITH a AS (
            SELECT e.street_id,
                   count(*) FILTER (WHERE {window}) AS n_received,
                   count(*) FILTER (WHERE e.status = ANY(%(open)s)) AS n_open,
                   count(*) FILTER (WHERE e.status = ANY(%(open)s) AND e.deadline < %(now)s) AS n_overdue,
                   count(*) FILTER (WHERE {window} AND e.status = ANY(%(done)s)) AS n_done,
                   avg(e.satisfaction) FILTER (WHERE {window}) AS satisfaction
            FROM layers_event e
            WHERE e.street_id IS NOT NULL AND ({window} OR e.status = ANY(%(open)s)) AND {in_scope}
            GROUP BY e.street_id)
        SELECT r.code, r.name, coalesce(a.n_received, 0), coalesce(a.n_open, 0), coalesce(a.n_overdue, 0),
               coalesce(a.n_done, 0), a.satisfaction
        FROM layers_region r LEFT JOIN a ON a.street_id = r.id
        WHERE r.level = 'street' AND {streets}
        ORDER BY 3 DESC, 4 DESC, r.code""",
        values,
    )
    return [
        {
            "rank": rank,
            "code": code,
            "name": name,
            "received": received,
            "open": open_,
            "overdue": overdue,
            "completion_rate": _rate(done, received),
            "satisfaction_mean": round(float(mean), 2) if mean is not None else None,
        }
        for rank, (code, name, received, open_, overdue, done, mean) in enumerate(rows, start=1)
    ]


# --- one area -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Area:
    """A grid or region the summary is about, and how its rows are found in linked tables."""

    code: str
    name: str
    kind: str  # grid_small | grid_medium | grid_large | city | district | street | community
    parent: dict | None
    condition: str  # SQL on a linked table under alias t, with %(area)s as its one parameter
    value: object


def area_find(*, code: str) -> Area | None:
    """The grid (of any level) or region with ``code``; ``None`` when there is none. Outlines and
    names are reference data every reader sees; the counts of a summary are scoped."""
    grid = Grid.objects.filter(code=code).values("id", "name", "level", "community__code", "community__name").first()
    if grid is not None:
        parent = {"code": grid["community__code"], "name": grid["community__name"]}
        if grid["level"] == Grid.Level.SMALL:
            return Area(code, grid["name"], "grid_small", parent, "t.grid_id = %(area)s", grid["id"])
        # Medium and large links carry no index: go through the small grids under the grid.
        small = list(
            Grid.objects.filter(level=Grid.Level.SMALL)
            .filter(
                **(
                    {"parent_id": grid["id"]}
                    if grid["level"] == Grid.Level.MEDIUM
                    else {"parent__parent_id": grid["id"]}
                )
            )
            .values_list("id", flat=True)
        )
        return Area(code, grid["name"], f"grid_{grid['level']}", parent, "t.grid_id = ANY(%(area)s)", small)
    region = Region.objects.filter(code=code).values("id", "name", "level", "parent__code", "parent__name").first()
    if region is None:
        return None
    parent = {"code": region["parent__code"], "name": region["parent__name"]} if region["parent__code"] else None
    level = region["level"]
    if level == Region.Level.COMMUNITY:
        return Area(code, region["name"], level, parent, "t.community_id = %(area)s", region["id"])
    if level == Region.Level.STREET:
        return Area(code, region["name"], level, parent, "t.street_id = %(area)s", region["id"])
    if level == Region.Level.DISTRICT:
        return Area(code, region["name"], level, parent, "t.district_code = %(area)s", code)
    districts = list(
        Region.objects.filter(parent_id=region["id"], level=Region.Level.DISTRICT).values_list("code", flat=True)
    )
    return Area(code, region["name"], level, parent, "t.district_code = ANY(%(area)s)", districts)


def area_summary(*, area: Area, scope: Scope, since: dt.datetime, until: dt.datetime, now: dt.datetime) -> dict:
    """What the wall shows for a clicked grid or street: residents, dwellings, buildings and
    units in it; its events open and overdue now; received and completed in the window with the
    completion rate; events by family in the window; and the daily trend of the window (its last
    :data:`TREND_MAX_DAYS` days at most, every day listed, zeros included, local dates)."""
    in_scope, values = _scope_sql(scope, "t")
    values |= {
        "area": area.value,
        "since": since,
        "until": until,
        "now": now,
        "open": _OPEN,
        "done": _DONE,
        "zone": timezone.get_current_timezone_name(),
    }
    where = f"{area.condition} AND {in_scope}"
    ((residents, dwellings, buildings, units),) = _fetch(
        f"""SELECT (SELECT count(*) FROM layers_person t WHERE {where}),
                   (SELECT count(*) FROM layers_dwelling t WHERE {where}),
                   (SELECT count(*) FROM layers_building t WHERE {where}),
                   (SELECT count(*) FROM layers_unit t WHERE {where})""",
        values,
    )
    window = "t.received_at >= %(since)s AND t.received_at < %(until)s"
    ((open_, overdue, received, completed),) = _fetch(
        f"""SELECT count(*) FILTER (WHERE t.status = ANY(%(open)s)),
                   count(*) FILTER (WHERE t.status = ANY(%(open)s) AND t.deadline < %(now)s),
                   count(*) FILTER (WHERE {window}),
                   count(*) FILTER (WHERE {window} AND t.status = ANY(%(done)s))
            FROM layers_event t WHERE {where} AND ({window} OR t.status = ANY(%(open)s))""",
        values,
    )
    by_family = _fetch(
        f"""SELECT c.family, count(*) FROM layers_event t JOIN layers_category c ON c.id = t.category_id
            WHERE {where} AND {window} GROUP BY c.family ORDER BY c.family""",
        values,
    )
    # The trend's days are local dates; the first is at most TREND_MAX_DAYS before the last.
    last_day = timezone.localtime(min(until, now) - dt.timedelta(microseconds=1)).date()
    first_day = max(timezone.localtime(since).date(), last_day - dt.timedelta(days=TREND_MAX_DAYS - 1))
    values |= {"first_day": first_day, "last_day": last_day}
    trend = _fetch(
        f"""SELECT d::date, coalesce(n.count, 0)
            FROM generate_series(%(first_day)s::date, %(last_day)s::date, interval '1 day') d
            LEFT JOIN (SELECT (t.received_at AT TIME ZONE %(zone)s)::date AS day, count(*) AS count
                       FROM layers_event t
                       WHERE {where} AND {window}
                         AND t.received_at >= (%(first_day)s::date::timestamp AT TIME ZONE %(zone)s)
                       GROUP BY 1) n ON n.day = d::date
            ORDER BY 1""",
        values,
    )
    return {
        "code": area.code,
        "name": area.name,
        "kind": area.kind,
        "parent": area.parent,
        "residents": residents,
        "dwellings": dwellings,
        "buildings": buildings,
        "units": units,
        "events": {
            "open": open_,
            "overdue": overdue,
            "received": received,
            "completed": completed,
            "completion_rate": _rate(completed, received),
            "by_family": dict(by_family),
        },
        "trend": [{"date": day.isoformat(), "count": count} for day, count in trend],
    }
