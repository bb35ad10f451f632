"""A tiny named grid layout for tests, drawn in metres.

One community, 1 km × 1 km, whose south-west corner is ``ORIGIN`` (in 兰州 城关区). It is split
into two large grids (west, east), each into two medium grids (south, north), each into two
small grids (west, east): 2 + 4 + 8 grids tiling it exactly. ``box`` turns metre offsets from
``ORIGIN`` into lon/lat with the local lengths of a degree, so a 100 m × 100 m box measures
≈ 10,000 m² on the spheroid.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

import shapely

from layers.models import Region
from layers.services.grids import grids_upsert

ORIGIN = (103.80, 36.05)
COMMUNITY = "620102001001"
OTHER_COMMUNITY = "620102001002"

_PHI = math.radians(ORIGIN[1])
M_PER_DEG_LAT = 111132.92 - 559.82 * math.cos(2 * _PHI) + 1.175 * math.cos(4 * _PHI)
M_PER_DEG_LON = 111412.84 * math.cos(_PHI) - 93.5 * math.cos(3 * _PHI)


def lonlat(x: float, y: float) -> tuple[float, float]:
    """Metres east and north of ORIGIN as (lon, lat)."""
    return ORIGIN[0] + x / M_PER_DEG_LON, ORIGIN[1] + y / M_PER_DEG_LAT


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """The rectangle between two corners given in metres from ORIGIN, in lon/lat."""
    (lon0, lat0), (lon1, lat1) = lonlat(x0, y0), lonlat(x1, y1)
    return shapely.box(lon0, lat0, lon1, lat1)


def regions() -> dict[str, Region]:
    """City › district › street › two communities; the first has the 1 km square as boundary,
    the second (east of it) has none."""
    city = Region.objects.create(code="620100000000", name="兰州市", level="city")
    district = Region.objects.create(code="620102000000", name="城关区", level="district", parent=city)
    street = Region.objects.create(code="620102001000", name="酒泉路街道", level="street", parent=district)
    community = Region.objects.create(
        code=COMMUNITY, name="畅家巷社区", level="community", parent=street,
        boundary=f"SRID=4326;{shapely.MultiPolygon([box(0, 0, 1000, 1000)]).wkt}",
    )  # fmt: skip
    other = Region.objects.create(code=OTHER_COMMUNITY, name="邻社区", level="community", parent=street)
    return {"city": city, "district": district, "street": street, "community": community, "other": other}


def layout() -> list[dict]:
    """The 14 grids as rows: large (rows 1–2), medium (3–6), small (7–14)."""
    rows = []
    for i, x in enumerate((0, 500), start=1):
        rows.append(_row(f"{COMMUNITY}{i:02d}", "large", "", box(x, 0, x + 500, 1000)))
    for i, x in enumerate((0, 500), start=1):
        for j, y in enumerate((0, 500), start=1):
            rows.append(
                _row(f"{COMMUNITY}{i:02d}{j:02d}", "medium", f"{COMMUNITY}{i:02d}", box(x, y, x + 500, y + 500))
            )
    for i, x in enumerate((0, 500), start=1):
        for j, y in enumerate((0, 500), start=1):
            for k, dx in enumerate((0, 250), start=1):
                code = f"{COMMUNITY}{i:02d}{j:02d}{k:02d}"
                rows.append(_row(code, "small", code[:-2], box(x + dx, y, x + dx + 250, y + 500)))
    return rows


def _row(code: str, level: str, parent_code: str, geometry, community_code: str = COMMUNITY) -> dict:
    return {
        "code": code, "name": f"网格{code[-6:]}", "level": level, "parent_code": parent_code,
        "community_code": community_code, "geometry": geometry,
    }  # fmt: skip


def by_code(rows: list[dict]) -> dict[str, dict]:
    return {row["code"]: row for row in rows}


def frame(rows: list[dict]) -> pd.DataFrame:
    """Rows in the shape grids_upsert takes."""
    table = pd.DataFrame([{k: v for k, v in row.items() if k != "geometry"} for row in rows])
    table["boundary_wkb"] = [shapely.to_wkb(row["geometry"], hex=True) for row in rows]
    return table


def load(rows: list[dict], valid_from) -> dict:
    """Store ``rows`` as they are, topology problems included (tests build broken layouts on purpose)."""
    return grids_upsert(frame=frame(rows), valid_from=valid_from, accept_topology=True)


def write_geojson(path: Path, rows: list[dict]) -> Path:
    """A GeoJSON file of ``rows`` (properties from every key but geometry, which may be None)."""
    features = [
        {
            "type": "Feature",
            "properties": {k: v for k, v in row.items() if k != "geometry"},
            "geometry": None if row["geometry"] is None else json.loads(shapely.to_geojson(row["geometry"])),
        }
        for row in rows
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False), "utf-8")
    return path
