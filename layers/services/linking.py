"""Linking registry rows to their small grid and everything above it, in set-based SQL.

Each registry table carries six link columns (small, medium and large grid, community, street,
district code). A point is linked to the small grid that covers it; the rest follows from the
view ``layers_grid_chain`` (migration 0002), one row per small grid with its whole ancestry.

The grid→point join is written polygon-first: the grid table drives a nested loop into the GiST
index on the points, so each grid polygon is prepared once and reused for every point it holds.
The opposite plan (each point probing the grid index) is 5–16× slower at city scale
(reference/performance-anchors.md §2). Points on a shared edge go to the lowest grid id, so the
answer never depends on the plan.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .bulk import execute, fetch

LINK_COLUMNS = ("grid_id", "grid_medium_id", "grid_large_id", "community_id", "street_id", "district_code")


@dataclass(frozen=True)
class PointSource:
    """How a registry table is linked: by its own point, or through its parent's links."""

    table: str
    point_sql: str = "t.location"  # SQL for the row's point, alias t
    index_sql: str = "t.location"  # indexed geometry whose bbox must meet the grid's
    parent_table: str = ""  # link through this table instead (alias p) …
    parent_join: str = ""  # … joined on this condition


ADDRESS = PointSource("layers_address")
UNIT = PointSource("layers_unit")
BUILDING = PointSource("layers_building", "ST_PointOnSurface(t.footprint)", "t.footprint")
COMPOUND = PointSource("layers_compound", "ST_PointOnSurface(t.boundary)", "t.boundary")
DWELLING = PointSource("layers_dwelling", parent_table="layers_address", parent_join="p.id = t.address_id")
PERSON = PointSource("layers_person", parent_table="layers_address", parent_join="p.id = t.address_id")

#: Order matters: persons and dwellings copy the links of their addresses.
ALL_SOURCES = (ADDRESS, UNIT, BUILDING, COMPOUND, DWELLING, PERSON)

_CHANGED = " OR ".join(f"t.{c} IS DISTINCT FROM w.{c}" for c in LINK_COLUMNS)
_ASSIGN = ", ".join(f"{c} = w.{c}" for c in LINK_COLUMNS)


def hits_sql(source: PointSource, where: str) -> str:
    """SELECT (id, grid_id) for the rows of ``source`` matching ``where`` that lie in a small grid."""
    return f"""
        SELECT DISTINCT ON (t.id) t.id, g.id AS grid_id
        FROM layers_grid g
        JOIN {source.table} t ON g.boundary && {source.index_sql} AND ST_Covers(g.boundary, {source.point_sql})
        WHERE g.level = 'small' AND ({where})
        ORDER BY t.id, g.id"""


@dataclass
class Sample:
    """Up to ``limit`` relinked rows with a point of their own, kept to show on a map:
    ``(lon, lat, table, old small grid id, new small grid id)``."""

    limit: int = 0
    rows: list[tuple] = field(default_factory=list)


def link(source: PointSource, *, where: str = "TRUE", params: list | None = None, sample: Sample | None = None) -> int:
    """Recompute the links of the rows of ``source`` matching ``where`` (SQL on alias ``t``).

    Only rows whose links change are rewritten. Returns the number of rows updated; with a
    ``sample`` (and a source with its own point) also keeps some of them there.
    """
    params = list(params or [])
    if source.parent_table:
        wanted = f"""
            SELECT t.id, t.grid_id AS old_grid_id, {", ".join(f"p.{c}" for c in LINK_COLUMNS[:-1])},
                   coalesce(p.district_code, '') AS district_code
            FROM {source.table} t LEFT JOIN {source.parent_table} p ON {source.parent_join}
            WHERE {where}"""
        query_params = params
    else:
        wanted = f"""
            SELECT t.id, t.grid_id AS old_grid_id, c.grid_id, c.grid_medium_id, c.grid_large_id, c.community_id,
                   c.street_id, coalesce(c.district_code, '') AS district_code
            FROM {source.table} t
            LEFT JOIN ({hits_sql(source, where)}) h ON h.id = t.id
            LEFT JOIN layers_grid_chain c ON c.grid_id = h.grid_id
            WHERE {where}"""
        query_params = params + params
    update = f"UPDATE {source.table} t SET {_ASSIGN} FROM ({wanted}) w WHERE t.id = w.id AND ({_CHANGED})"
    if sample is None or sample.limit <= len(sample.rows) or source.parent_table:
        return execute(update, query_params or None)
    # The UPDATE runs to the end whatever the LIMIT; only the rows kept are sent back.
    ((count, kept),) = fetch(
        f"""WITH moved AS ({update}
                RETURNING ST_X({source.point_sql}) AS lon, ST_Y({source.point_sql}) AS lat, w.old_grid_id, w.grid_id)
            SELECT (SELECT count(*) FROM moved),
                   (SELECT coalesce(json_agg(json_build_array(lon, lat, old_grid_id, grid_id)), '[]')
                    FROM (SELECT * FROM moved LIMIT %s) m)""",
        [*query_params, sample.limit - len(sample.rows)],
    )
    rows = kept if isinstance(kept, list) else json.loads(kept)
    sample.rows += [(lon, lat, source.table, old, new) for lon, lat, old, new in rows]
    return count


def relink_area(envelope_wkt: str, *, sample: Sample | None = None) -> dict[str, int]:
    """Relink every registry row near a redrawn grid: points inside ``envelope_wkt`` (WGS84),
    and the persons and dwellings of the addresses among them (``sample``: see :func:`link`)."""
    counts = {}
    for source in ALL_SOURCES:
        if source.parent_table:
            where = "t.address_id IN (SELECT id FROM layers_address WHERE location && ST_GeomFromText(%s, 4326))"
        else:
            where = f"{source.index_sql} && ST_GeomFromText(%s, 4326)"
        counts[source.table] = link(source, where=where, params=[envelope_wkt], sample=sample)
    return counts


def relink_all() -> dict[str, int]:
    return {source.table: link(source) for source in ALL_SOURCES}
