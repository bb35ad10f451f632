"""Tiny named geometries and rows for tests: a region chain and one community split into grids.

The community ``ORIGIN`` square is 0.01° (≈ 900 m × 1,110 m) just east of 兰州 城关区's centre.
Its one large grid holds one medium grid split into two small grids, WEST and EAST.
"""

from __future__ import annotations

from django.contrib.gis.geos import MultiPolygon, Polygon

from layers.models import Grid, Region

ORIGIN = (103.83, 36.06)
SIZE = 0.01


def box(lon0: float, lat0: float, lon1: float, lat1: float) -> MultiPolygon:
    return MultiPolygon(Polygon.from_bbox((lon0, lat0, lon1, lat1)), srid=4326)


def region_chain() -> dict[str, Region]:
    city = Region.objects.create(code="620100000000", name="兰州市", level="city")
    district = Region.objects.create(code="620102000000", name="城关区", level="district", parent=city)
    street = Region.objects.create(code="620102001000", name="酒泉路街道", level="street", parent=district)
    lon, lat = ORIGIN
    community = Region.objects.create(
        code="620102001001",
        name="畅家巷社区",
        level="community",
        parent=street,
        boundary=box(lon, lat, lon + SIZE, lat + SIZE),
    )
    return {"city": city, "district": district, "street": street, "community": community}


def grid_tree(community: Region) -> dict[str, Grid]:
    """Large ⊃ medium ⊃ {west, east} small grids tiling the community square."""
    lon, lat = ORIGIN
    half = lon + SIZE / 2
    large = Grid.objects.create(
        code=community.code + "01",
        name="一大网格",
        level="large",
        community=community,
        boundary=box(lon, lat, lon + SIZE, lat + SIZE),
    )
    medium = Grid.objects.create(
        code=community.code + "0101",
        name="一中网格",
        level="medium",
        parent=large,
        community=community,
        boundary=box(lon, lat, lon + SIZE, lat + SIZE),
    )
    west = Grid.objects.create(
        code=community.code + "010101",
        name="西小网格",
        level="small",
        parent=medium,
        community=community,
        boundary=box(lon, lat, half, lat + SIZE),
    )
    east = Grid.objects.create(
        code=community.code + "010102",
        name="东小网格",
        level="small",
        parent=medium,
        community=community,
        boundary=box(half, lat, lon + SIZE, lat + SIZE),
    )
    return {"large": large, "medium": medium, "west": west, "east": east}
