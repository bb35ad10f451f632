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
