"""Event points for heat maps, read from PostGIS through the ``events`` layer of the catalog.

Two paths: a tile at zoom > :data:`CACHE_MAX_ZOOM` reads its own points with one SQL query
(envelope plus the blur margin, the GiST index on the location prefilters); a tile at a lower
zoom covers so much of the city that it reads from an in-process array of every matching
point, loaded once per (family, since, until, data version) and kept sorted by x (the export
takes a contiguous slice). Per cached zoom it also keeps the point counts as dense 256 × 256
blocks, one per occupied tile (a pyramid binned once at the top cached zoom and summed 2 × 2
downwards), so a tile is assembled by copying a few blocks, then blurred and coloured: its
cost follows its area, not the number of points. The reference density of each zoom (the
shared colour scale) is computed once from that array too.

Every read is narrowed to the reader's data scope (:mod:`layers.protection.scope`): the points, and so the
colour scale, are those of the scope only, and the point sets are cached per scope key. A
scoped reader's heat map therefore depends on no event outside their scope (not even through
the colour scale); the city's scale is the command center's.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from basemaps import heat
from layers.database.reading import reading
from layers.protection.scope import Scope
from layers.publishing.catalog import data_version, layer_get

#: Tiles at this zoom or below read the cached count blocks instead of querying. At z12 a city
#: of ~100 km holds ~150 occupied blocks of 256 KB (about 40 MB); each zoom down a quarter of it.
CACHE_MAX_ZOOM = 12
#: Point sets kept in memory at once: at most this many (filters × scopes) …
CACHE_ENTRIES = 64
#: … holding at most this many points together (a city-wide set of ten million points costs a
#: few hundred MB with its blocks; a grid worker's a few kB, so many scopes fit beside the city's).
CACHE_POINTS = 40_000_000
FAMILIES = ("dispute", "hazard")

#: One WKB point inside a multipoint: byte order, type, x, y.
_WKB_POINT = np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])


@dataclass
class PointSet:
    """Every matching point in Web Mercator metres, sorted by x, and its per-zoom references."""

    key: tuple
    x: np.ndarray
    y: np.ndarray
    references: dict[int, float] = field(default_factory=dict)
    #: Per zoom ≤ CACHE_MAX_ZOOM: count blocks of the occupied tiles, keyed by (tile x, tile y).
    blocks: dict[int, dict[tuple[int, int], heat.Block]] = field(default_factory=dict)

    def within(self, bounds: heat.Bounds) -> tuple[np.ndarray, np.ndarray]:
        xmin, ymin, xmax, ymax = bounds
        start, stop = np.searchsorted(self.x, [xmin, xmax], side="left")
        x, y = self.x[start:stop], self.y[start:stop]
        keep = (y >= ymin) & (y <= ymax)
        return x[keep], y[keep]

    def pixel_blocks(self, z: int) -> dict[tuple[int, int], heat.Block]:
        """Count blocks of zoom ``z`` (≤ CACHE_MAX_ZOOM): the top zoom binned from the points,
        each lower one summed from the one above (exact: a coarse pixel is 2 × 2 fine ones)."""
        if z not in self.blocks:
            if z >= CACHE_MAX_ZOOM:
                self.blocks[z] = heat.pixel_blocks(*heat.global_pixels(self.x, self.y, z=z))
            else:
                self.blocks[z] = heat.coarser_blocks(self.pixel_blocks(z + 1))
        return self.blocks[z]

    def region_surface(self, z: int, *, col0: int, row0: int, width: int, height: int) -> np.ndarray:
        """The blurred surface of the ``height`` × ``width`` pixels of zoom ``z`` whose north-west
        pixel is global (col0, row0), read from the count blocks (margin included)."""
        pad = heat.margin_px()
        counts = heat.blocks_to_grid(
            self.pixel_blocks(z), col0=col0 - pad, row0=row0 - pad, width=width + 2 * pad, height=height + 2 * pad
        )
        return heat.blur_counts(counts)

    def reference(self, z: int) -> float:
        if z not in self.references:
            self.references[z] = heat.reference_density(self.x, self.y, z=z)
        return self.references[z]


_cache: OrderedDict[tuple, PointSet] = OrderedDict()
_lock = threading.Lock()


def _condition(*, family: str, since: dt.datetime | None, until: dt.datetime | None, scope: Scope) -> tuple[str, list]:
    """The WHERE clause (over the events layer's source) and its parameters: the layer's rows of
    the family and time window, in ``scope``."""
    layer = layer_get("events")
    in_scope, values = scope.condition(layer)
    clauses = [layer.where, in_scope]
    for name, value in (("category", family), ("since", since), ("until", until)):
        if value is None:
            continue
        sql = layer.filter(name).sql
        clauses.append(sql)
        values += [value] * sql.count("%s")
    return " AND ".join(f"({clause})" for clause in clauses), values


def _read_points(
    *, family: str, since, until, scope: Scope, lonlat_box: tuple | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Matching points as Web Mercator arrays: one query answering one multipoint WKB, read by
    numpy without a Python object per row."""
    layer = layer_get("events")
    where, values = _condition(family=family, since=since, until=until, scope=scope)
    if lonlat_box is not None:
        where += f" AND {layer.geometry_sql} && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
        values += list(lonlat_box)
    sql = f"SELECT ST_AsBinary(ST_Collect({layer.geometry_sql}), 'NDR') FROM {layer.source} WHERE {where}"
    with reading().cursor() as cursor:
        cursor.execute(sql, values)
        wkb = cursor.fetchone()[0]
    if wkb is None:
        return np.empty(0), np.empty(0)
    wkb = bytes(wkb)
    count = int.from_bytes(wkb[5:9], "little")
    if wkb[1:5] == b"\x01\x00\x00\x00":  # one point collects to a point, not a multipoint
        points = np.frombuffer(wkb, dtype=_WKB_POINT, count=1)
    else:
        points = np.frombuffer(wkb, dtype=_WKB_POINT, count=count, offset=9)
    return heat.lonlat_to_mercator(points["x"], points["y"])


def heat_point_set(*, family: str, since: dt.datetime | None, until: dt.datetime | None, scope: Scope) -> PointSet:
    """Every event of ``family`` received in [since, until) in ``scope``, cached per filter,
    scope key and data version (a write to the events table makes the next call reload). The
    data version is the key's last item."""
    key = (family, since, until, scope.key, data_version(layer_get("events")))
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    x, y = _read_points(family=family, since=since, until=until, scope=scope)
    order = np.argsort(x, kind="stable")
    points = PointSet(key=key, x=np.ascontiguousarray(x[order]), y=np.ascontiguousarray(y[order]))
    with _lock:
        _cache[key] = points
        # Least recently used first out, until both bounds hold (the newest set always stays).
        while len(_cache) > 1 and (
            len(_cache) > CACHE_ENTRIES or sum(len(kept.x) for kept in _cache.values()) > CACHE_POINTS
        ):
            _cache.popitem(last=False)
    return points


def heat_tile(
    *, family: str, since: dt.datetime | None, until: dt.datetime | None, scope: Scope, z: int, x: int, y: int
) -> tuple[bytes, str]:
    """The PNG of heat tile ``z/x/y`` of the events in ``scope`` and the data version it was
    drawn from (for the ETag, with the scope key)."""
    points = heat_point_set(family=family, since=since, until=until, scope=scope)
    reference = points.reference(z)
    if z <= CACHE_MAX_ZOOM:
        size = heat.TILE_SIZE
        surface = points.region_surface(z, col0=x * size, row0=y * size, width=size, height=size)
        return heat.encode_png(heat.colourise(surface, reference=reference)), points.key[-1]
    bounds = _padded(heat.tile_bounds(z, x, y), z)
    west, south = heat.mercator_to_lonlat(bounds[0], bounds[1])
    east, north = heat.mercator_to_lonlat(bounds[2], bounds[3])
    px, py = _read_points(family=family, since=since, until=until, scope=scope, lonlat_box=(west, south, east, north))
    return heat.heat_tile_png(px, py, z=z, tx=x, ty=y, reference=reference), points.key[-1]


def _padded(bounds: heat.Bounds, z: int) -> heat.Bounds:
    """A tile's bounds grown by the blur margin (plus one pixel against rounding)."""
    pad = (heat.margin_px() + 1) * heat.pixel_size(z)
    xmin, ymin, xmax, ymax = bounds
    return xmin - pad, ymin - pad, xmax + pad, ymax + pad


def heat_raster(
    *,
    family: str,
    since: dt.datetime | None,
    until: dt.datetime | None,
    scope: Scope,
    bounds: heat.Bounds,
    resolution_m: float,
) -> np.ndarray:
    """The blurred count surface of the events in ``scope`` over ``bounds`` (metres) at
    ``resolution_m`` metres per pixel (row 0 north), for export; the blur is
    :data:`basemaps.heat.SIGMA_PX` pixels."""
    width = int(round((bounds[2] - bounds[0]) / resolution_m))
    height = int(round((bounds[3] - bounds[1]) / resolution_m))
    points = heat_point_set(family=family, since=since, until=until, scope=scope)
    pad = (heat.margin_px() + 1) * resolution_m
    px, py = points.within((bounds[0] - pad, bounds[1] - pad, bounds[2] + pad, bounds[3] + pad))
    return heat.heat_surface(px, py, bounds=bounds, width=width, height=height)
