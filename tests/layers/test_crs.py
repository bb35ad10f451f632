"""GCJ-02 and BD-09 conversions: round trips to WGS84 under 1e-6° around Lanzhou, the size and
direction of the phone-map shift there, and no shift outside China."""

from __future__ import annotations

import numpy as np
import pytest

from pyproj import Geod

from layers.geocoding.crs import CLIENT_CRS, gcj02_to_bd09, gcj02_to_wgs84, to_wgs84, wgs84_to_gcj02

#: A 0.1° lattice over the Lanzhou urban area (8 × 7 points), as flat arrays.
LON, LAT = (a.ravel() for a in np.meshgrid(np.arange(103.5, 104.3, 0.1), np.arange(35.8, 36.5, 0.1)))
GEOD = Geod(ellps="WGS84")


def test_gcj02_round_trips_to_wgs84():
    lon, lat = gcj02_to_wgs84(*wgs84_to_gcj02(LON, LAT))
    assert np.abs(lon - LON).max() < 1e-6 and np.abs(lat - LAT).max() < 1e-6
    lon, lat = to_wgs84(*wgs84_to_gcj02(LON, LAT), "gcj02")
    assert np.abs(lon - LON).max() < 1e-6 and np.abs(lat - LAT).max() < 1e-6


def test_bd09_round_trips_to_wgs84():
    lon, lat = to_wgs84(*gcj02_to_bd09(*wgs84_to_gcj02(LON, LAT)), "bd09")
    assert np.abs(lon - LON).max() < 1e-6 and np.abs(lat - LAT).max() < 1e-6


def test_the_gcj02_shift_at_lanzhou_is_200_to_260_metres_east():
    gcj_lon, gcj_lat = wgs84_to_gcj02(LON, LAT)
    azimuth, _, distance = GEOD.inv(LON, LAT, gcj_lon, gcj_lat)
    assert distance.min() > 200 and distance.max() < 260
    assert np.all((azimuth > 60) & (azimuth < 120)), azimuth  # east, a little south of it


def test_scalars_work_as_well_as_arrays():
    lon, lat = wgs84_to_gcj02(103.83, 36.06)
    assert (round(float(lon), 5), round(float(lat), 5)) == (103.83241, 36.05968)


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(2.3522, 48.8566), (-74.006, 40.7128), (151.2093, -33.8688), (139.6917, 35.6895), (-0.1278, 51.5074)],
)
def test_points_outside_china_are_not_shifted(lon, lat):
    assert tuple(map(float, wgs84_to_gcj02(lon, lat))) == (lon, lat)
    assert tuple(map(float, gcj02_to_wgs84(lon, lat))) == (lon, lat)


@pytest.mark.parametrize("crs", ["wgs84", "cgcs2000"])
def test_wgs84_and_cgcs2000_pass_unchanged(crs):
    lon, lat = to_wgs84(LON, LAT, crs)
    assert np.array_equal(lon, LON) and np.array_equal(lat, LAT)


def test_an_unknown_crs_is_refused():
    assert CLIENT_CRS == ("wgs84", "cgcs2000", "gcj02", "bd09")
    with pytest.raises(ValueError) as error:
        to_wgs84(103.8, 36.0, "EPSG:3857")
    assert str(error.value) == "unknown CRS 'EPSG:3857'; expected one of wgs84, cgcs2000, gcj02, bd09"
