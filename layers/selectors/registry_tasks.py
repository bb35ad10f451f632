"""Reads of the registry's upkeep: a grid's tasks (the tablet), the answers waiting for a
steward, and the address match rate per month (the stewards' page).

Each is one SQL statement: tasks with the report, the address and the candidates they name as
JSON built in the database; the match rate grouped by the month of receipt in the city's time.
"""

from __future__ import annotations

from django.db import connection

from layers.protection.scope import Scope, named_parameters

#: At most this many tasks are listed for a grid (the stale ones are capped per grid anyway).
TASKS_LIMIT = 200

_TASK_JSON = """
json_build_object(
    'id', t.id, 'kind', t.kind, 'status', t.status, 'created_at', t.created_at,
    'resolution', t.resolution, 'proposal', t.proposal, 'answered_at', t.answered_at,
    'grid', g.code,
    'event', CASE WHEN e.id IS NULL THEN NULL ELSE json_build_object(
        'id', e.id, 'address_text', e.address_text, 'received_at', e.received_at, 'status', e.status,
        'category', c.code, 'located', e.location IS NOT NULL,
        'description', CASE WHEN %(descriptions)s THEN e.description END) END,
    'address', CASE WHEN a.id IS NULL THEN NULL ELSE json_build_object(
        'code', a.code, 'text', a.full_text, 'road', a.road, 'door_number', a.door_number,
        'lon', round(ST_X(a.location)::numeric, 6), 'lat', round(ST_Y(a.location)::numeric, 6),
        'confirmed_at', a.confirmed_at) END,
    'candidates', coalesce((
        SELECT json_agg(json_build_object(
            'code', x.code, 'text', x.full_text, 'grid', xg.code,
            'lon', round(ST_X(x.location)::numeric, 6), 'lat', round(ST_Y(x.location)::numeric, 6))
            ORDER BY k.n)
        FROM jsonb_array_elements_text(t.candidates) WITH ORDINALITY AS k(code, n)
        JOIN layers_address x ON x.code = k.code
        LEFT JOIN layers_grid xg ON xg.id = x.grid_id), '[]'::json)
)"""

_FROM = """
FROM layers_registrytask t
LEFT JOIN layers_grid g ON g.id = t.grid_id
LEFT JOIN layers_event e ON e.id = t.event_id
LEFT JOIN layers_category c ON c.id = e.category_id
LEFT JOIN layers_address a ON a.id = t.address_id
"""


def grid_tasks(*, grid_id: int, with_description: bool) -> list[dict]:
    """The open and waiting tasks of one small grid, reports first, then the oldest."""
    sql = f"""
        SELECT coalesce(json_agg(task ORDER BY kind_rank, created_at, id), '[]'::json) FROM (
            SELECT {_TASK_JSON} AS task, CASE t.kind WHEN 'stale' THEN 1 ELSE 0 END AS kind_rank,
                   t.created_at, t.id
            {_FROM}
            WHERE t.grid_id = %(grid)s AND t.status IN ('open', 'awaiting')
            ORDER BY kind_rank, t.created_at, t.id LIMIT %(limit)s) listed
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"grid": grid_id, "descriptions": with_description, "limit": TASKS_LIMIT})
        return cursor.fetchone()[0]


def tasks_awaiting(*, scope: Scope, with_description: bool) -> list[dict]:
    """Answers waiting for a steward in ``scope`` (by the task's grid), oldest answer first, with
    who answered."""
    condition, values = named_parameters(*scope.grids("g"))
    sql = f"""
        SELECT coalesce(json_agg(task ORDER BY answered_at, id), '[]'::json) FROM (
            SELECT {_TASK_JSON}::jsonb || jsonb_build_object('answered_by', u.username, 'answered_by_id', u.id) AS task,
                   t.answered_at, t.id
            {_FROM}
            LEFT JOIN auth_user u ON u.id = t.answered_by_id
            WHERE t.status = 'awaiting' AND ({condition})
            ORDER BY t.answered_at, t.id LIMIT %(limit)s) listed
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"descriptions": with_description, "limit": TASKS_LIMIT, **values})
        return cursor.fetchone()[0]


def registry_task_in_grids(*, task_id: int, grid_ids: tuple[int, ...]):
    """The task with ``task_id`` when it lies in one of ``grid_ids``, else ``None``."""
    from ..models import RegistryTask

    return RegistryTask.objects.filter(pk=task_id, grid_id__in=grid_ids).first()


def registry_task_in_scope(*, task_id: int, scope: Scope) -> bool:
    from ..models import Grid, RegistryTask

    grid_id = RegistryTask.objects.filter(pk=task_id).values_list("grid_id", flat=True).first()
    if scope.is_city:
        return RegistryTask.objects.filter(pk=task_id).exists()
    return grid_id is not None and Grid.objects.filter(pk=grid_id).filter(scope.grid_q()).exists()


# The match rate: of the reports whose address text was geocoded (address_match set), the share
# matched, per month of receipt in the city's time; beside it the tasks answered that month.
_RATE_SQL = """
WITH months AS (
    SELECT generate_series(date_trunc('month', %(since)s::timestamptz AT TIME ZONE %(tz)s),
                           date_trunc('month', (%(until)s::timestamptz - interval '1 microsecond') AT TIME ZONE %(tz)s),
                           interval '1 month') AS month
), geocoded AS (
    SELECT date_trunc('month', e.received_at AT TIME ZONE %(tz)s) AS month,
           count(*) AS texts,
           count(*) FILTER (WHERE e.address_match = 'matched') AS matched,
           count(*) FILTER (WHERE e.address_match = 'ambiguous') AS ambiguous,
           count(*) FILTER (WHERE e.address_match = 'unmatched') AS unmatched
    FROM layers_event e
    WHERE e.address_match <> '' AND e.received_at >= %(since)s AND e.received_at < %(until)s AND ({events})
    GROUP BY 1
), answered AS (
    SELECT date_trunc('month', t.answered_at AT TIME ZONE %(tz)s) AS month,
           count(*) FILTER (WHERE t.status = 'done') AS done,
           count(*) FILTER (WHERE t.status = 'awaiting') AS awaiting,
           count(*) FILTER (WHERE t.status = 'rejected') AS rejected
    FROM layers_registrytask t LEFT JOIN layers_grid g ON g.id = t.grid_id
    WHERE t.answered_at >= %(since)s AND t.answered_at < %(until)s AND ({grids})
    GROUP BY 1
)
SELECT to_char(m.month, 'YYYY-MM'), coalesce(x.texts, 0), coalesce(x.matched, 0), coalesce(x.ambiguous, 0),
       coalesce(x.unmatched, 0), coalesce(a.done, 0), coalesce(a.awaiting, 0), coalesce(a.rejected, 0)
FROM months m LEFT JOIN geocoded x ON x.month = m.month LEFT JOIN answered a ON a.month = m.month
ORDER BY m.month
"""


def registry_match_rate(*, scope: Scope, since, until) -> list[dict]:
    """Per month from ``since`` to ``until`` (aware date-times): reports with an address text
    geocoded, how many matched, were ambiguous or unmatched, the ``rate`` matched (``None``
    without any), and the tasks answered that month (done, awaiting approval, rejected)."""
    from django.conf import settings

    events, event_values = named_parameters(*scope.linked("e"), prefix="events")
    grids, grid_values = named_parameters(*scope.grids("g"), prefix="grids")
    if not scope.is_city:
        grids = f"t.grid_id IS NOT NULL AND {grids}"
    sql = _RATE_SQL.format(events=events, grids=grids)
    with connection.cursor() as cursor:
        cursor.execute(sql, {"since": since, "until": until, "tz": settings.TIME_ZONE, **event_values, **grid_values})
        rows = cursor.fetchall()
    return [
        {
            "month": month,
            "texts": texts,
            "matched": matched,
            "ambiguous": ambiguous,
            "unmatched": unmatched,
            "rate": round(matched / texts, 4) if texts else None,
            "tasks_done": done,
            "tasks_awaiting": awaiting,
            "tasks_rejected": rejected,
        }
        for month, texts, matched, ambiguous, unmatched, done, awaiting, rejected in rows
    ]
