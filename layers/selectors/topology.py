"""Topology of the three-level grids: overlaps, gaps and shapes outside their parent, in SQL.

A problem is reported per connected part, so one bad edge gives one line with its own place
on the map. Parts narrower than ``tolerance_m`` (digitising slivers along shared edges, which
a negative buffer of half the tolerance erases) or smaller than ``tolerance_m``² are ignored.
Areas are measured on the geography (spheroid); the width test runs in the UTM zone of each
part, a metric CRS that is right wherever the city is.
"""

from __future__ import annotations

from dataclasses import dataclass

from layers.services.bulk import fetch

KINDS = ("overlap", "gap", "outside_parent", "outside_community")


@dataclass(frozen=True)
class Problem:
    """One part of a topology problem.

    ``codes``: for an overlap the two sibling grids; for a gap the parent grid (or the
    community, for large grids) whose area is not covered; for outside_parent the grid and its
    parent; for outside_community the large grid and its community.
    """

    kind: str
    level: str
    codes: tuple[str, ...]
    area_m2: float
    lon: float
    lat: float
    wkt: str

    def describe(self) -> str:
        return (
            f"{self.kind} ({self.level}) {' / '.join(self.codes)}: {self.area_m2:,.0f} m² "
            f"at {self.lon:.6f}, {self.lat:.6f}"
        )


# Shapes are repaired on the fly only when invalid (GEOS refuses to intersect invalid ones);
# the sibling and parent joins are equality joins on ids, so no spatial index is needed.
_SQL = """
WITH picked AS MATERIALIZED (
    SELECT g.id FROM layers_grid g JOIN layers_region c ON c.id = g.community_id
    WHERE %(communities)s::text[] IS NULL OR c.code = ANY(%(communities)s::text[])
),
-- the picked grids and their parents (a parent is looked at, not checked itself)
shapes AS MATERIALIZED (
    SELECT g.id, g.code, g.level, g.parent_id, g.community_id, c.code AS community_code,
           g.id IN (SELECT id FROM picked) AS picked,
           CASE WHEN ST_IsValid(g.boundary) THEN g.boundary ELSE ST_MakeValid(g.boundary) END AS boundary
    FROM layers_grid g JOIN layers_region c ON c.id = g.community_id
    WHERE %(communities)s::text[] IS NULL OR g.id IN (SELECT id FROM picked)
       OR g.id IN (SELECT parent_id FROM layers_grid WHERE id IN (SELECT id FROM picked))
),
grids AS (
    SELECT * FROM shapes WHERE picked
),
communities AS (
    SELECT c.id, c.code,
           CASE WHEN ST_IsValid(c.boundary) THEN c.boundary ELSE ST_MakeValid(c.boundary) END AS boundary
    FROM layers_region c
    WHERE c.boundary IS NOT NULL AND c.id IN (SELECT community_id FROM grids WHERE level = 'large')
),
found AS (
    -- siblings: same parent, or for large grids the same community
    SELECT 'overlap' AS kind, a.level, ARRAY[a.code, b.code] AS codes, ST_Intersection(a.boundary, b.boundary) AS shape
    FROM grids a
    JOIN grids b ON b.level = a.level AND b.code > a.code
        AND coalesce(b.parent_id, -b.community_id) = coalesce(a.parent_id, -a.community_id)
    WHERE a.boundary && b.boundary AND ST_Relate(a.boundary, b.boundary, '2********')
    UNION ALL
    -- a parent grid's area its children leave uncovered (parents without children are skipped:
    -- a level not imported yet is not a gap)
    SELECT 'gap', k.level, ARRAY[p.code], ST_Difference(p.boundary, k.cover)
    FROM (SELECT parent_id, level, ST_Union(boundary) AS cover FROM grids WHERE parent_id IS NOT NULL
          GROUP BY parent_id, level) k
    JOIN shapes p ON p.id = k.parent_id
    UNION ALL
    SELECT 'gap', 'large', ARRAY[c.code], ST_Difference(c.boundary, k.cover)
    FROM (SELECT community_id, ST_Union(boundary) AS cover FROM grids WHERE level = 'large'
          GROUP BY community_id) k
    JOIN communities c ON c.id = k.community_id
    UNION ALL
    SELECT 'outside_parent', g.level, ARRAY[g.code, p.code], ST_Difference(g.boundary, p.boundary)
    FROM grids g JOIN shapes p ON p.id = g.parent_id
    WHERE NOT ST_CoveredBy(g.boundary, p.boundary)
    UNION ALL
    SELECT 'outside_community', 'large', ARRAY[g.code, c.code], ST_Difference(g.boundary, c.boundary)
    FROM grids g JOIN communities c ON c.id = g.community_id
    WHERE g.level = 'large' AND NOT ST_CoveredBy(g.boundary, c.boundary)
),
parts AS (
    SELECT f.kind, f.level, f.codes, d.geom AS shape
    FROM found f, ST_Dump(ST_CollectionExtract(f.shape, 3)) d
    WHERE %(level)s::text IS NULL OR f.level = %(level)s
),
measured AS (
    SELECT p.*, ST_Area(p.shape::geography) AS area_m2,
           -- UTM north zone of the part: a metric CRS for the width test
           32600 + least(60, floor((ST_X(ST_Centroid(p.shape)) + 180) / 6)::int + 1) AS utm
    FROM parts p
)
SELECT m.kind, m.level, m.codes, m.area_m2, ST_X(pt.geom), ST_Y(pt.geom), ST_AsText(m.shape, 7)
FROM measured m, LATERAL (SELECT ST_PointOnSurface(m.shape) AS geom) pt
WHERE m.area_m2 > %(min_area)s
  AND NOT ST_IsEmpty(ST_Buffer(ST_Transform(m.shape, m.utm), -%(half_width)s))
ORDER BY m.kind, m.level, m.codes, m.area_m2 DESC
"""


def grid_topology_problems(
    *,
    level: str | None = None,
    community_code: str | None = None,
    community_codes: list[str] | None = None,
    tolerance_m: float = 1.0,
) -> list[Problem]:
    """Every overlap, gap, outside_parent and outside_community part of the grids.

    ``level`` keeps the problems of grids of that level (a gap's level is the level of the
    children that leave it); ``community_code`` keeps those of one community's grids,
    ``community_codes`` those of several (an import checks the communities it touches). Sorted
    by kind, level and codes.
    """
    if tolerance_m < 0:
        raise ValueError(f"tolerance_m must be zero or more, not {tolerance_m}")
    communities = list(community_codes) if community_codes is not None else None
    if community_code is not None:
        communities = [*(communities or []), community_code]
    rows = fetch(
        _SQL,
        {
            "level": level,
            "communities": communities,
            "min_area": tolerance_m * tolerance_m,
            "half_width": tolerance_m / 2,
        },
    )
    return [
        Problem(kind, level, tuple(codes), float(area), float(lon), float(lat), wkt)
        for kind, level, codes, area, lon, lat, wkt in rows
    ]


def problems_added(before: list[Problem], after: list[Problem], *, tolerance_m: float = 1.0) -> list[Problem]:
    """The parts of ``after`` that a change brought: problems of grids (kind, level, codes) that
    ``before`` did not have, or whose area grew by more than ``tolerance_m``².

    >>> old = Problem("gap", "small", ("M1",), 50.0, 0, 0, "")
    >>> grown, other = Problem("gap", "small", ("M1",), 80.0, 0, 0, ""), Problem("overlap", "small", ("A", "B"), 9.0, 0, 0, "")
    >>> [p.kind for p in problems_added([old], [grown, other])], problems_added([grown], [old])
    (['gap', 'overlap'], [])
    """
    area_before: dict[tuple, float] = {}
    for problem in before:
        key = (problem.kind, problem.level, problem.codes)
        area_before[key] = area_before.get(key, 0.0) + problem.area_m2
    area_after: dict[tuple, float] = {}
    for problem in after:
        key = (problem.kind, problem.level, problem.codes)
        area_after[key] = area_after.get(key, 0.0) + problem.area_m2
    grown = {
        key for key, area in area_after.items() if key not in area_before or area > area_before[key] + tolerance_m**2
    }
    return [problem for problem in after if (problem.kind, problem.level, problem.codes) in grown]


def problems_geojson(problems: list[Problem]) -> dict:
    """A GeoJSON FeatureCollection (WGS84) of the problem parts, for QGIS or the map."""
    import shapely

    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {
                    "kind": p.kind,
                    "level": p.level,
                    "codes": " / ".join(p.codes),
                    "area_m2": round(p.area_m2, 1),
                    "lon": round(p.lon, 7),
                    "lat": round(p.lat, 7),
                },
                "geometry": shapely.geometry.mapping(shapely.from_wkt(p.wkt)),
            }
            for p in problems
        ],
    }
