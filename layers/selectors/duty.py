"""Grid workers' duty figures for a month, per small grid and its worker, in one statement.

Per grid that has a worker, in the reader's scope: ``visits`` (走访) recorded in the grid in the
month, ``households`` (residential dwellings of the grid), ``households_visited`` (distinct ones
visited) and their ``coverage``; reports ``found`` on patrol (the grid patrol channel) against
those ``received`` from every other channel, for events received in the month and located in the
grid; the median hours to the first response (the first ``accept`` or ``start`` step) and to the
resolution. The month is a calendar month in the city's time.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection

from layers.protection.scope import Scope, named_parameters

_DUTY_SQL = """
WITH grids AS (
    SELECT g.id, g.code, g.name, g.worker_id FROM layers_grid g
    WHERE g.level = 'small' AND g.worker_id IS NOT NULL AND ({grids})
), visits AS (
    SELECT v.grid_id, count(*) AS visits, count(DISTINCT v.dwelling_id) AS households_visited
    FROM layers_visit v
    WHERE v.grid_id IN (SELECT id FROM grids) AND v.visited_at >= %(start)s AND v.visited_at < %(end)s
    GROUP BY v.grid_id
), households AS (
    SELECT d.grid_id, count(*) AS n FROM layers_dwelling d
    WHERE d.grid_id IN (SELECT id FROM grids) AND d.use = 'residential'
    GROUP BY d.grid_id
), cases AS (
    SELECT e.grid_id,
           count(*) FILTER (WHERE e.channel = 'grid_patrol') AS found,
           count(*) FILTER (WHERE e.channel <> 'grid_patrol') AS received,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.first_at - e.received_at) / 3600)
               FILTER (WHERE r.first_at IS NOT NULL) AS response_h,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM e.resolved_at - e.received_at) / 3600)
               FILTER (WHERE e.resolved_at IS NOT NULL) AS resolution_h
    FROM layers_event e
    LEFT JOIN LATERAL (
        SELECT min(t.at) AS first_at FROM layers_eventtransition t
        WHERE t.event_id = e.id AND t.action IN ('accept', 'start')
    ) r ON TRUE
    WHERE e.grid_id IN (SELECT id FROM grids) AND e.received_at >= %(start)s AND e.received_at < %(end)s
    GROUP BY e.grid_id
)
SELECT g.code, g.name, u.username, coalesce(v.visits, 0), coalesce(h.n, 0), coalesce(v.households_visited, 0),
       coalesce(c.found, 0), coalesce(c.received, 0), c.response_h, c.resolution_h
FROM grids g
JOIN auth_user u ON u.id = g.worker_id
LEFT JOIN visits v ON v.grid_id = g.id
LEFT JOIN households h ON h.grid_id = g.id
LEFT JOIN cases c ON c.grid_id = g.id
ORDER BY g.code
"""


def month_bounds(month: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The first instant of ``month`` and of the next, in the city's time.

    >>> [t.isoformat() for t in month_bounds(dt.date(2026, 12, 1))]
    ['2026-12-01T00:00:00+08:00', '2027-01-01T00:00:00+08:00']
    """
    zone = ZoneInfo(settings.TIME_ZONE)
    start = dt.datetime(month.year, month.month, 1, tzinfo=zone)
    following = dt.datetime(month.year + (month.month == 12), month.month % 12 + 1, 1, tzinfo=zone)
    return start, following


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def duty_figures(*, scope: Scope, month: dt.date) -> dict:
    """The duty figures of ``month`` (any day of it) per small grid in ``scope`` (see the module
    docstring), with the totals over those grids."""
    start, end = month_bounds(month)
    grids, values = named_parameters(*scope.grids("g"))
    with connection.cursor() as cursor:
        cursor.execute(_DUTY_SQL.format(grids=grids), {"start": start, "end": end, **values})
        rows = cursor.fetchall()
    results = [
        {
            "grid": {"code": code, "name": name},
            "worker": worker,
            "visits": visits,
            "households": households,
            "households_visited": visited,
            "coverage": round(visited / households, 4) if households else None,
            "found_on_patrol": found,
            "received": received,
            "response_hours_median": _round(response),
            "resolution_hours_median": _round(resolution),
        }
        for code, name, worker, visits, households, visited, found, received, response, resolution in rows
    ]
    totals = {
        key: sum(r[key] for r in results)
        for key in ("visits", "households", "households_visited", "found_on_patrol", "received")
    }
    totals["coverage"] = round(totals["households_visited"] / totals["households"], 4) if totals["households"] else None
    return {"month": start.strftime("%Y-%m"), "results": results, "totals": totals}
