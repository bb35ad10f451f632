"""Coordinate systems a client may send, and the conversions of the Chinese map offsets.

We store WGS84 (EPSG:4326); CGCS2000 (EPSG:4490) equals it within about a metre. Phone maps
send GCJ-02 (AMap, Tencent) or BD-09 (Baidu), shifted 200–500 m from the true position: enough
to land in the wrong grid, so they are converted at the edge. GCJ-02 is an obfuscation with no
closed-form inverse; the inverse here iterates the forward transform to sub-centimetre accuracy.
All functions take and return numpy arrays (or scalars) in degrees.
"""

from __future__ import annotations

import math

import numpy as np

#: Client CRS names accepted anywhere a coordinate enters the system (the allow-list).
CLIENT_CRS = ("wgs84", "cgcs2000", "gcj02", "bd09")

_A = 6378245.0  # Krasovsky 1940 semi-major axis, used by the GCJ-02 obfuscation
_EE = 0.00669342162296594323  # its first eccentricity squared
_BD_X_PI = math.pi * 3000.0 / 180.0


def _in_china(lon, lat):
    # GCJ-02 is applied only inside a rough box around China; outside it leaves points unchanged.
    return (lon > 72.004) & (lon < 137.8347) & (lat > 0.8293) & (lat < 55.8271)


def _delta(lon, lat):
    x, y = lon - 105.0, lat - 35.0
    dlat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * np.sqrt(np.abs(x))
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * np.sqrt(np.abs(x))
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    rad_lat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon, lat):
    """Shift true coordinates the way Chinese phone maps display them.

    >>> [round(float(v), 5) for v in wgs84_to_gcj02(103.83, 36.06)]
    [103.83241, 36.05968]
    """
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    dlon, dlat = _delta(lon, lat)
    inside = _in_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def gcj02_to_wgs84(lon, lat):
    """Undo :func:`wgs84_to_gcj02` by fixed-point iteration (error < 1 cm after 5 rounds).

    >>> [round(float(v), 6) for v in gcj02_to_wgs84(*wgs84_to_gcj02(103.83, 36.06))]
    [103.83, 36.06]
    """
    gcj_lon, gcj_lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    guess_lon, guess_lat = gcj_lon.copy(), gcj_lat.copy()
    for _ in range(5):
        shifted_lon, shifted_lat = wgs84_to_gcj02(guess_lon, guess_lat)
        guess_lon = guess_lon - (shifted_lon - gcj_lon)
        guess_lat = guess_lat - (shifted_lat - gcj_lat)
    return guess_lon, guess_lat


def bd09_to_gcj02(lon, lat):
    """Baidu's BD-09 on top of GCJ-02, undone (error < 1 mm).

    >>> [round(float(v), 7) for v in bd09_to_gcj02(*gcj02_to_bd09(103.83, 36.06))]
    [103.83, 36.06]
    """
    bd_lon, bd_lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    # Baidu's published inverse is off by up to ~1e-6° (≈ 12 cm at Lanzhou); two rounds of
    # fixed-point correction through the exact forward transform remove that.
    x, y = bd_lon - 0.0065, bd_lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _BD_X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _BD_X_PI)
    guess_lon, guess_lat = z * np.cos(theta), z * np.sin(theta)
    for _ in range(2):
        shifted_lon, shifted_lat = gcj02_to_bd09(guess_lon, guess_lat)
        guess_lon, guess_lat = guess_lon - (shifted_lon - bd_lon), guess_lat - (shifted_lat - bd_lat)
    return guess_lon, guess_lat


def gcj02_to_bd09(lon, lat):
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _BD_X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _BD_X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def to_wgs84(lon, lat, crs: str):
    """Convert client coordinates in one of :data:`CLIENT_CRS` to WGS84.

    >>> [round(float(v), 6) for v in to_wgs84(*wgs84_to_gcj02(103.83, 36.06), "gcj02")]
    [103.83, 36.06]
    """
    if crs in ("wgs84", "cgcs2000"):
        return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    if crs == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if crs == "bd09":
        return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))
    raise ValueError(f"unknown CRS {crs!r}; expected one of {', '.join(CLIENT_CRS)}")


# --- CRSs of the OGC API and the exports (OGC API – Features Part 2) ---------------------------


class OutputCrs:
    """A coordinate reference system features can be served in and a ``bbox-crs`` can name.

    ``srid`` is the PostGIS SRID; ``axes_swapped`` says whether the CRS's own axis order is the
    reverse of PostGIS's x/y (EPSG:4326 and EPSG:4490 are latitude first, the Gauss–Krüger
    projections northing first), so coordinates are flipped on the way out and a ``bbox`` in it
    is read in that order; ``decimals`` keeps about a centimetre (7 for degrees, 2 for metres).
    """

    def __init__(self, uri: str, srid: int, *, axes_swapped: bool, decimals: int, title: str) -> None:
        self.uri = uri
        self.srid = srid
        self.axes_swapped = axes_swapped
        self.decimals = decimals
        self.title = title

    def geometry_sql(self, geometry: str) -> str:
        """An SQL expression of ``geometry`` (stored as EPSG:4326, longitude first) in this CRS
        and in its axis order."""
        if self.srid != STORAGE_SRID:
            geometry = f"ST_Transform({geometry}, {self.srid})"
        return f"ST_FlipCoordinates({geometry})" if self.axes_swapped else geometry

    def in_gis_order(self) -> OutputCrs:
        """This CRS with x = easting (longitude), y = northing (latitude), as files keep it
        (GeoPackage, Shapefile, GeoJSON read by GDAL), whatever the CRS's own axis order."""
        return OutputCrs(self.uri, self.srid, axes_swapped=False, decimals=self.decimals, title=self.title)

    @property
    def projected(self) -> bool:
        """Metres rather than degrees."""
        return self.decimals < 7

    def __repr__(self) -> str:
        return f"OutputCrs({self.uri!r})"


#: What the tables hold: WGS84 longitude, latitude.
STORAGE_SRID = 4326
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CRS84 = OutputCrs(CRS84_URI, 4326, axes_swapped=False, decimals=7, title="WGS 84 longitude/latitude (CRS84)")
#: The allow-list, CRS84 first (the default of every OGC request). EPSG:4544 is the CGCS2000
#: 3-degree Gauss–Krüger zone whose central meridian, 105°E, is nearest Lanzhou (~103.8°E).
OUTPUT_CRS: dict[str, OutputCrs] = {
    crs.uri: crs
    for crs in (
        CRS84,
        OutputCrs(
            "http://www.opengis.net/def/crs/EPSG/0/4326", 4326, axes_swapped=True, decimals=7, title="WGS 84 (lat/lon)"
        ),
        OutputCrs(
            "http://www.opengis.net/def/crs/EPSG/0/4490",
            4490,
            axes_swapped=True,
            decimals=7,
            title="CGCS2000 (lat/lon)",
        ),
        OutputCrs(
            "http://www.opengis.net/def/crs/EPSG/0/4544",
            4544,
            axes_swapped=True,
            decimals=2,
            title="CGCS2000 / 3-degree Gauss-Kruger CM 105E (northing/easting, metres)",
        ),
    )
}


def output_crs_lookup(name: str) -> OutputCrs | None:
    """The allowed CRS a client named, by URI (``http://www.opengis.net/def/crs/EPSG/0/4490``),
    safe CURIE (``[EPSG:4490]``) or short name (``EPSG:4490``, ``CRS84``); ``None`` otherwise.

    >>> output_crs_lookup("[EPSG:4544]").srid, output_crs_lookup("crs84").axes_swapped
    (4544, False)
    >>> output_crs_lookup("EPSG:3857") is None
    True
    """
    text = name.strip().removeprefix("[").removesuffix("]")
    if text in OUTPUT_CRS:
        return OUTPUT_CRS[text]
    upper = text.upper()
    if upper in ("CRS84", "OGC:CRS84"):
        return CRS84
    if upper.startswith("EPSG:"):
        return OUTPUT_CRS.get(f"http://www.opengis.net/def/crs/EPSG/0/{upper.removeprefix('EPSG:')}")
    return None
