"""The map preview of an import: GeoJSON features (WGS84) of what a dry run would write.

The import page draws them over the basemap: the polygons of grids and boundaries (simplified
to about a metre, coordinates to about ten centimetres), the points of addresses and units
(sampled beyond ``MINQING_IMPORT_PREVIEW_FEATURES``), the registry rows a grid redraw would move
to another grid, and the places of topology problems. Every feature has a ``role`` property the
page styles by.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from django.conf import settings

import shapely

#: Upload suffixes of the table importers and of the vector importers.
TABLE_FORMATS = (".csv", ".xlsx")
VECTOR_FORMATS = (".geojson", ".json", ".gpkg", ".zip")

#: Simplification tolerance of previewed polygons, degrees (about a metre).
SIMPLIFY_DEGREES = 1e-5
PRECISION = 6


def _geometry(geometry) -> dict:
    return json.loads(shapely.to_geojson(shapely.set_precision(geometry, 10**-PRECISION)))


def _limit() -> int:
    return settings.MINQING_IMPORT_PREVIEW_FEATURES


def polygon_features(geometries, properties: dict[str, pd.Series], *, role: str) -> list[dict]:
    """Polygons (simplified) with the given per-row properties; at most the preview limit."""
    geometries = np.asarray(geometries, dtype=object)[: _limit()]
    simplified = shapely.simplify(geometries, SIMPLIFY_DEGREES, preserve_topology=True)
    columns = {name: list(values)[: len(geometries)] for name, values in properties.items()}
    return [
        {
            "type": "Feature",
            "properties": {"role": role, **{name: _plain(values[i]) for name, values in columns.items()}},
            "geometry": _geometry(geometry),
        }
        for i, geometry in enumerate(simplified)
        if geometry is not None and not shapely.is_empty(geometry)
    ]


def point_features(lon, lat, properties: dict[str, pd.Series], *, role: str) -> list[dict]:
    """Points, an even sample of them when there are more than the preview limit."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    keep = np.flatnonzero(np.isfinite(lon) & np.isfinite(lat))
    if len(keep) > _limit():
        keep = keep[np.linspace(0, len(keep) - 1, _limit()).astype(int)]
    columns = {name: list(values) for name, values in properties.items()}
    return [
        {
            "type": "Feature",
            "properties": {"role": role, **{name: _plain(values[i]) for name, values in columns.items()}},
            "geometry": {"type": "Point", "coordinates": [round(lon[i], PRECISION), round(lat[i], PRECISION)]},
        }
        for i in keep
    ]


def relinked_features(rows: list[tuple]) -> list[dict]:
    """Registry rows a grid redraw moves: ``(lon, lat, table, old grid id, new grid id)``, with
    the grid codes looked up."""
    if not rows:
        return []
    from layers.models import Grid

    codes = dict(Grid.objects.filter(id__in={r[3] for r in rows} | {r[4] for r in rows}).values_list("id", "code"))
    return [
        {
            "type": "Feature",
            "properties": {
                "role": "relinked",
                "table": table.removeprefix("layers_"),
                "from": codes.get(old, ""),
                "to": codes.get(new, ""),
            },
            "geometry": {"type": "Point", "coordinates": [round(lon, PRECISION), round(lat, PRECISION)]},
        }
        for lon, lat, table, old, new in rows
    ]


def topology_features(problems: list) -> list[dict]:
    """The parts of topology problems (:class:`layers.selectors.topology.Problem`), with their description."""
    return [
        {
            "type": "Feature",
            "properties": {
                "role": "problem",
                "kind": problem.kind,
                "level": problem.level,
                "codes": " / ".join(problem.codes),
                "area_m2": round(problem.area_m2, 1),
                "describe": problem.describe(),
            },
            "geometry": _geometry(shapely.from_wkt(problem.wkt)),
        }
        for problem in problems[: _limit()]
    ]


def _plain(value: object) -> object:
    """A JSON value: numpy scalars as Python ones, missing as null."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value
