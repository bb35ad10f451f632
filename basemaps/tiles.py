"""Tile maths of the XYZ (Web Mercator, EPSG:3857) scheme: pure functions, no I/O.

Tiles are numbered from the north-west corner, ``x`` eastwards and ``y`` southwards, as in
OSM/Google/MapLibre URLs; zoom ``z`` has ``2**z × 2**z`` tiles. Coordinates in EPSG:3857 are
metres; the world square spans ``±WORLD`` on both axes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

#: Half the side of the Web Mercator world square (metres): π × 6,378,137.
WORLD = math.pi * 6378137.0
#: The deepest zoom served (beyond it a tile is narrower than 5 cm).
MAX_ZOOM = 22
#: The nominal tile size in screen pixels that "pixel" tolerances refer to.
TILE_PIXELS = 256
#: Latitude limit of Web Mercator (degrees).
MAX_LATITUDE = 85.0511287798066


def tile_count(z: int) -> int:
    """Tiles per axis at zoom ``z``.

    >>> tile_count(0), tile_count(14)
    (1, 16384)
    """
    return 1 << z


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """``(xmin, ymin, xmax, ymax)`` of the tile in EPSG:3857 metres.

    >>> tile_bounds(0, 0, 0) == (-WORLD, -WORLD, WORLD, WORLD)
    True
    >>> [round(v) for v in tile_bounds(1, 1, 0)]
    [0, 0, 20037508, 20037508]
    """
    side = 2 * WORLD / tile_count(z)
    xmin = -WORLD + x * side
    ymax = WORLD - y * side
    return xmin, ymax - side, xmin + side, ymax


def pixel_size(z: int) -> float:
    """Metres per screen pixel (of a :data:`TILE_PIXELS` tile) at zoom ``z``, on the equator of
    the projection; the unit of a layer's ``simplify_pixels``.

    >>> round(pixel_size(0), 3), round(pixel_size(14), 3)
    (156543.034, 9.555)
    """
    return 2 * WORLD / (TILE_PIXELS * tile_count(z))


def mercator_to_lonlat(mx: float, my: float) -> tuple[float, float]:
    """EPSG:3857 metres to WGS84 degrees.

    >>> mercator_to_lonlat(0.0, 0.0)
    (0.0, 0.0)
    >>> [round(v, 6) for v in mercator_to_lonlat(WORLD, WORLD)]
    [180.0, 85.051129]
    """
    lon = math.degrees(mx / 6378137.0)
    lat = math.degrees(math.atan(math.sinh(my / 6378137.0)))
    return lon, lat


def lonlat_to_mercator(lon: float, lat: float) -> tuple[float, float]:
    """WGS84 degrees to EPSG:3857 metres (latitude clamped to the projection's limit).

    >>> round(lonlat_to_mercator(180.0, 0.0)[0], 3)
    20037508.343
    """
    lat = max(-MAX_LATITUDE, min(MAX_LATITUDE, lat))
    return math.radians(lon) * 6378137.0, math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * 6378137.0


def lonlat_to_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The tile ``(x, y)`` at zoom ``z`` holding the point.

    >>> lonlat_to_tile(103.835, 36.065, 14)
    (12917, 6430)
    >>> lonlat_to_tile(180.0, -90.0, 1)
    (1, 1)
    """
    mx, my = lonlat_to_mercator(lon, lat)
    n = tile_count(z)
    x = int((mx + WORLD) / (2 * WORLD) * n)
    y = int((WORLD - my) / (2 * WORLD) * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def tile_lonlat_bounds(z: int, x: int, y: int, *, buffer: float = 0.0) -> tuple[float, float, float, float]:
    """``(lon_min, lat_min, lon_max, lat_max)`` of the tile widened by ``buffer`` (a fraction of
    its side) on every side: the exact WGS84 box of the tile, since Web Mercator maps meridians
    and parallels to straight axis-parallel lines. The prefilter on stored 4326 geometry uses it.

    >>> [round(v, 6) for v in tile_lonlat_bounds(1, 0, 0)]
    [-180.0, 0.0, 0.0, 85.051129]
    """
    xmin, ymin, xmax, ymax = tile_bounds(z, x, y)
    pad = (xmax - xmin) * buffer
    lon_min, lat_min = mercator_to_lonlat(max(xmin - pad, -WORLD), max(ymin - pad, -WORLD))
    lon_max, lat_max = mercator_to_lonlat(min(xmax + pad, WORLD), min(ymax + pad, WORLD))
    return lon_min, lat_min, lon_max, lat_max


def tiles_covering(bbox: tuple[float, float, float, float], z: int) -> Iterator[tuple[int, int]]:
    """Every tile ``(x, y)`` at zoom ``z`` that intersects the WGS84 box, row by row.

    >>> list(tiles_covering((-1.0, -1.0, 1.0, 1.0), 1))
    [(0, 0), (1, 0), (0, 1), (1, 1)]
    """
    lon_min, lat_min, lon_max, lat_max = bbox
    x0, y0 = lonlat_to_tile(lon_min, lat_max, z)
    x1, y1 = lonlat_to_tile(lon_max, lat_min, z)
    for y in range(y0, y1 + 1):
        for x in range(x0, x1 + 1):
            yield x, y
