"""Points → areas: which grids and regions hold a WGS84 point, one at a time or a million at once.

* :func:`grid_locate` answers one point with one indexed SQL statement (prepared once per database
  session): the small grid that covers it and its medium and large grid, its community, street
  and district, the nearest standard address, and how far the point is from the grid's edge.
* :func:`grid_assign_points` assigns arrays of points to small grids in process with shapely:
  an STRtree over the *points*, each grid polygon prepared once and tested against its bbox
  candidates (reference/performance-anchors.md §2: about twice ``geopandas.sjoin``).
* :func:`points_to_grids_sql` is the in-database bulk path: the polygon-driven join of
  :mod:`layers.services.linking`.

A reader's answer goes through :func:`location_in_scope`: the grids and regions holding a point
are reference data and always answered (a grid worker must learn that a point is in another
grid); the nearest standard address only when it lies in the reader's data scope.

All three agree on the boundary rule of linking: a point covered by several small grids (on a
shared edge) belongs to the one with the lowest id, so an answer never depends on the plan.
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from dataclasses import asdict, dataclass, replace

import numpy as np
from django.conf import settings
from django.db import connection

import shapely

from layers.protection.scope import Scope

from ..services.linking import PointSource, hits_sql

#: How far the nearest standard address may be to be reported (metres).
NEAREST_ADDRESS_M = 200.0

#: The nearest address is found by KNN in degrees, then re-ranked in metres: a degree of
#: longitude is shorter than a degree of latitude (0.81× at Lanzhou), so the metric nearest is
#: among the first few by degrees but not always the first.
_KNN_CANDIDATES = 16

_REGION_RANK = "CASE r.level WHEN 'community' THEN 0 WHEN 'street' THEN 1 WHEN 'district' THEN 2 ELSE 3 END"

# One statement for the whole answer. $1 lon, $2 lat, $3 date (NULL: today's boundaries),
# $4 nearest-address radius (m). Every LATERAL is an index probe (GiST on boundaries and
# locations); the region and nearest-grid probes run only for a point outside every grid.
# Historical shapes (BoundaryVersion) are matched to today's rows by code, so a past answer still
# names the grid, its parents and its community as they are known now.
_LOCATE_SQL = f"""
WITH q AS (SELECT ST_SetSRID(ST_MakePoint($1, $2), 4326) AS pt, $3::date AS day)
SELECT s.id, s.code, s.name, s.edge_m,
       m.code, m.name, l.code, l.name,
       r0.level, r0.code, r0.name, r1.level, r1.code, r1.name, r2.level, r2.code, r2.name,
       a.code, a.full_text, a.distance_m,
       near.distance_m
FROM q
LEFT JOIN LATERAL (
    SELECT h.id, h.code, h.name, h.parent_id, h.community_id,
           ST_Distance(ST_Boundary(h.boundary)::geography, q.pt::geography) AS edge_m
    FROM (
        SELECT g.id, g.code, g.name, g.parent_id, g.community_id, g.boundary
        FROM layers_grid g
        WHERE g.level = 'small' AND g.boundary && q.pt AND ST_Covers(g.boundary, q.pt)
          AND (q.day IS NULL OR g.valid_from IS NULL OR g.valid_from <= q.day)
        UNION ALL
        SELECT g.id, g.code, g.name, g.parent_id, g.community_id, v.boundary
        FROM layers_boundaryversion v JOIN layers_grid g ON g.code = v.code
        WHERE q.day IS NOT NULL AND v.subject = 'grid' AND v.level = 'small'
          AND v.boundary && q.pt AND ST_Covers(v.boundary, q.pt)
          AND (v.valid_from IS NULL OR v.valid_from <= q.day) AND q.day < v.valid_to
    ) h
    ORDER BY h.id
    LIMIT 1
) s ON TRUE
LEFT JOIN layers_grid m ON m.id = s.parent_id
LEFT JOIN layers_grid l ON l.id = m.parent_id
LEFT JOIN LATERAL (
    SELECT r.id
    FROM (
        SELECT r.id, r.level FROM layers_region r
        WHERE r.boundary && q.pt AND ST_Covers(r.boundary, q.pt)
          AND (q.day IS NULL OR r.valid_from IS NULL OR r.valid_from <= q.day)
        UNION ALL
        SELECT r.id, r.level FROM layers_boundaryversion v JOIN layers_region r ON r.code = v.code
        WHERE q.day IS NOT NULL AND v.subject = 'region'
          AND v.boundary && q.pt AND ST_Covers(v.boundary, q.pt)
          AND (v.valid_from IS NULL OR v.valid_from <= q.day) AND q.day < v.valid_to
    ) r
    WHERE s.id IS NULL AND r.level IN ('community', 'street', 'district')
    ORDER BY {_REGION_RANK}, r.id
    LIMIT 1
) found ON TRUE
LEFT JOIN layers_region r0 ON r0.id = coalesce(s.community_id, found.id)
LEFT JOIN layers_region r1 ON r1.id = r0.parent_id
LEFT JOIN layers_region r2 ON r2.id = r1.parent_id
LEFT JOIN LATERAL (
    SELECT k.code, k.full_text, k.distance_m
    FROM (
        SELECT ad.code, ad.full_text, ST_Distance(ad.location::geography, q.pt::geography) AS distance_m
        FROM layers_address ad
        ORDER BY ad.location <-> q.pt
        LIMIT {_KNN_CANDIDATES}
    ) k
    WHERE k.distance_m <= $4
    ORDER BY k.distance_m
    LIMIT 1
) a ON TRUE
LEFT JOIN LATERAL (
    SELECT min(ST_Distance(n.boundary::geography, q.pt::geography)) AS distance_m
    FROM (
        SELECT g.boundary FROM layers_grid g
        WHERE s.id IS NULL AND g.level = 'small'
          AND (q.day IS NULL OR g.valid_from IS NULL OR g.valid_from <= q.day)
        ORDER BY g.boundary <-> q.pt
        LIMIT 4
    ) n
) near ON TRUE
"""

_STATEMENT = "minqing_grid_locate"
# Which database sessions hold the prepared statement: keyed by the DB-API connection object, so
# a reconnect (a new object) prepares again and a closed one drops out of the map.
_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

OUTSIDE_MESSAGE = "该点不在任何网格内 (the point is outside every grid)"


@dataclass(frozen=True)
class Area:
    code: str
    name: str


@dataclass(frozen=True)
class NearestAddress:
    code: str
    full_text: str
    distance_m: float


@dataclass(frozen=True)
class Location:
    """Where a point lies. Areas are ``None`` when nothing covers the point.

    ``boundary_distance_m`` is the distance from the point to the edge of its small grid (inside),
    or to the nearest of today's small grids valid on the date asked (outside; ``None`` when there
    is none).
    ``ambiguous`` is true when that distance is below MINQING_LOCATE_AMBIGUOUS_M: a point that
    near an edge may belong to the neighbour, given GPS error.
    """

    inside: bool
    grid_small_id: int | None
    grid_small: Area | None
    grid_medium: Area | None
    grid_large: Area | None
    community: Area | None
    street: Area | None
    district: Area | None
    nearest_address: NearestAddress | None
    boundary_distance_m: float | None
    ambiguous: bool
    message: str = ""

    def as_dict(self) -> dict:
        """JSON-ready: areas as ``{"code", "name"}`` or ``None``; distances rounded to 0.1 m."""
        body = asdict(self)
        del body["grid_small_id"]
        if self.boundary_distance_m is not None:
            body["boundary_distance_m"] = round(self.boundary_distance_m, 1)
        if self.nearest_address is not None:
            body["nearest_address"]["distance_m"] = round(self.nearest_address.distance_m, 1)
        return body


def _area(code: str | None, name: str | None) -> Area | None:
    return Area(code, name) if code is not None else None


def _cursor_execute(cursor, params: list) -> tuple:
    raw = connection.connection
    if raw not in _prepared:
        # PREPARE once per session: planning this statement costs more than running it.
        cursor.execute(f"PREPARE {_STATEMENT} (float8, float8, date, float8) AS {_LOCATE_SQL}")
        _prepared[raw] = True
    cursor.execute(f"EXECUTE {_STATEMENT} (%s, %s, %s, %s)", params)
    return cursor.fetchone()


def grid_locate(
    *, lon: float, lat: float, on_date: dt.date | None = None, ambiguous_within_m: float | None = None
) -> Location:
    """Locate one WGS84 point: grids, regions, nearest address, distance to the grid's edge.

    With ``on_date`` the grids and region boundaries valid on that date answer (today's rows valid
    from then or earlier, and archived shapes valid then). A point outside every grid is not an
    error: ``inside`` is false, regions still come from region boundaries where they exist.
    ``ambiguous_within_m`` defaults to the MINQING_LOCATE_AMBIGUOUS_M setting.
    """
    threshold = settings.MINQING_LOCATE_AMBIGUOUS_M if ambiguous_within_m is None else ambiguous_within_m
    connection.ensure_connection()
    with connection.cursor() as cursor:
        row = _cursor_execute(cursor, [float(lon), float(lat), on_date, NEAREST_ADDRESS_M])
    (grid_id, s_code, s_name, edge_m, m_code, m_name, l_code, l_name, *regions) = row[:17]
    a_code, a_text, a_distance, near_m = row[17:]
    by_level: dict[str, Area] = {}
    for level, code, name in (regions[0:3], regions[3:6], regions[6:9]):
        if level is not None:
            by_level[level] = Area(code, name)
    inside = grid_id is not None
    distance = edge_m if inside else near_m
    return Location(
        inside=inside,
        grid_small_id=grid_id,
        grid_small=_area(s_code, s_name),
        grid_medium=_area(m_code, m_name),
        grid_large=_area(l_code, l_name),
        community=by_level.get("community"),
        street=by_level.get("street"),
        district=by_level.get("district"),
        nearest_address=NearestAddress(a_code, a_text, a_distance) if a_code is not None else None,
        boundary_distance_m=distance,
        ambiguous=distance is not None and distance < threshold,
        message="" if inside else OUTSIDE_MESSAGE,
    )


def location_in_scope(location: Location, *, scope: Scope) -> Location:
    """``location`` as a reader with ``scope`` may see it: the nearest standard address (registry
    data) is dropped when it lies outside the scope; the areas stay (reference data)."""
    if scope.is_city or location.nearest_address is None:
        return location
    in_scope, params = scope.linked("t")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM layers_address t WHERE t.code = %s AND {in_scope})",
            [location.nearest_address.code, *params],
        )
        if cursor.fetchone()[0]:
            return location
    return replace(location, nearest_address=None)


# --- bulk, in process -------------------------------------------------------------------------


@dataclass(frozen=True)
class GridPolygons:
    """Today's small grids, ascending by id, with their polygons prepared for repeated tests."""

    version: tuple
    ids: np.ndarray
    polygons: np.ndarray


# The data version of the small grids: their count and highest id (inserts, deletes), the latest
# valid_from and the archived versions (redraws through grids_upsert/grid_redraw, which always
# archive the old shape), and the sum of vertex counts and bbox corners (a boundary edited in
# place, e.g. in the admin). One pass over 8,700 rows: a few milliseconds.
_VERSION_SQL = """
SELECT (SELECT count(*) FROM layers_grid WHERE level = 'small'),
       (SELECT max(id) FROM layers_grid WHERE level = 'small'),
       (SELECT max(valid_from)::text FROM layers_grid WHERE level = 'small'),
       (SELECT count(*) FROM layers_boundaryversion WHERE subject = 'grid'),
       (SELECT max(id) FROM layers_boundaryversion WHERE subject = 'grid'),
       (SELECT sum(ST_NPoints(boundary))::bigint FROM layers_grid WHERE level = 'small'),
       (SELECT round(sum(ST_XMin(boundary) + ST_YMin(boundary) + ST_XMax(boundary) + ST_YMax(boundary))::numeric, 9)::text
        FROM layers_grid WHERE level = 'small')
"""

_cache: dict[str, GridPolygons] = {}
_cache_lock = threading.Lock()


def small_grid_polygons() -> GridPolygons:
    """The small grids of the current database, loaded in one query (WKB) and cached per process
    until their data version (see ``_VERSION_SQL``) changes."""
    with connection.cursor() as cursor:
        cursor.execute(_VERSION_SQL)
        version = tuple(cursor.fetchone())
        key = connection.settings_dict["NAME"]
        cached = _cache.get(key)
        if cached is not None and cached.version == version:
            return cached
        cursor.execute("SELECT id, ST_AsBinary(boundary) FROM layers_grid WHERE level = 'small' ORDER BY id")
        rows = cursor.fetchall()
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    polygons = shapely.from_wkb([bytes(row[1]) for row in rows])
    shapely.prepare(polygons)
    loaded = GridPolygons(version, ids, polygons)
    with _cache_lock:
        _cache[key] = loaded
    return loaded


def grid_assign_points(*, lon: np.ndarray, lat: np.ndarray, grids: GridPolygons | None = None) -> np.ndarray:
    """The small grid id holding each WGS84 point, or -1; a point on a shared edge gets the lowest id.

    Points on an edge count as inside (``ST_Covers``, as linking does), so a point that
    ``geopandas.sjoin(..., predicate="within")`` leaves out for lying on an edge is assigned here.
    ``grids`` defaults to :func:`small_grid_polygons`.
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if lon.shape != lat.shape or lon.ndim != 1:
        raise ValueError("lon and lat must be one-dimensional arrays of the same length")
    grids = grids if grids is not None else small_grid_polygons()
    result = np.full(len(lon), -1, dtype=np.int64)
    if len(lon) == 0 or len(grids.ids) == 0:
        return result
    # The tree is built on the points and queried with the polygons: each polygon then meets its
    # bbox candidates in one vectorised, prepared test instead of each point probing a tree.
    tree = shapely.STRtree(shapely.points(lon, lat))
    polygon_index, point_index = tree.query(grids.polygons)
    hit = shapely.intersects_xy(grids.polygons[polygon_index], lon[point_index], lat[point_index])
    polygon_index, point_index = polygon_index[hit], point_index[hit]
    # Lowest id wins on shared edges: grids are sorted by id, so the lowest polygon index.
    lowest = np.full(len(lon), len(grids.ids), dtype=np.int64)
    np.minimum.at(lowest, point_index, polygon_index)
    found = lowest < len(grids.ids)
    result[found] = grids.ids[lowest[found]]
    return result


# --- bulk, in the database --------------------------------------------------------------------


def points_to_grids_sql(table: str, point_sql: str) -> str:
    """SELECT (id, grid_id) for every row of ``table`` (alias ``t``, with an ``id`` column) whose
    point ``point_sql`` lies in a small grid; polygon-driven, lowest grid id on shared edges.

    ``point_sql`` must be an indexed point column (GiST) for the plan to stay polygon-driven.
    """
    return hits_sql(PointSource(table, point_sql, point_sql), "TRUE")
