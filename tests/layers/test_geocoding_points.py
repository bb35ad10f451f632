"""Point → areas: grid_locate (one point, SQL), grid_assign_points (bulk, in process) and the
polygon-driven in-database path, on the WEST/EAST small grids of tests/worlds/factories.py."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.contrib.gis.geos import Point
from django.db import connection

from layers.geocoding.crs import to_wgs84, wgs84_to_gcj02
from layers.geocoding.points import (
    OUTSIDE_MESSAGE,
    Area,
    grid_assign_points,
    grid_locate,
    points_to_grids_sql,
    small_grid_polygons,
)
from layers.models import Address
from layers.services.grids import grid_redraw
from tests.worlds.factories import ORIGIN, SIZE, box, grid_tree, region_chain

LON, LAT = ORIGIN
HALF = LON + SIZE / 2  # the shared edge of WEST and EAST
MID_LAT = LAT + SIZE / 2


@pytest.fixture
def area(db):
    regions = region_chain()
    grids = grid_tree(regions["community"])
    return {**regions, **grids}


def test_point_inside_west_answers_every_level(area):
    """A point well inside WEST: its three grids, community, street and district, ~ 200 m from its edge."""
    found = grid_locate(lon=LON + 0.002, lat=MID_LAT)
    assert found.inside and found.message == ""
    assert found.grid_small == Area(area["west"].code, "西小网格")
    assert found.grid_medium == Area(area["medium"].code, "一中网格")
    assert found.grid_large == Area(area["large"].code, "一大网格")
    assert found.community == Area("620102001001", "畅家巷社区")
    assert found.street == Area("620102001000", "酒泉路街道")
    assert found.district == Area("620102000000", "城关区")
    # 0.002° of longitude at 36.06° N is ≈ 180 m: the nearest edge is the west one.
    assert found.boundary_distance_m == pytest.approx(180.2, abs=1.0)
    assert found.ambiguous is False
    assert found.nearest_address is None


def test_point_on_shared_edge_goes_to_lowest_id_and_is_ambiguous(area):
    """On the WEST/EAST edge both grids cover the point: the lower id (WEST) wins, distance 0."""
    assert area["west"].id < area["east"].id
    found = grid_locate(lon=HALF, lat=MID_LAT)
    assert found.grid_small.code == area["west"].code
    assert found.boundary_distance_m == pytest.approx(0.0, abs=0.01)
    assert found.ambiguous is True


def test_ambiguous_threshold_follows_the_setting(area, settings):
    """10 m from the edge: ambiguous under the 30 m default, not under a 5 m setting."""
    lon = HALF + 10 / 90_000  # ≈ 10 m east of the shared edge, in EAST
    assert grid_locate(lon=lon, lat=MID_LAT).ambiguous is True
    settings.MINQING_LOCATE_AMBIGUOUS_M = 5
    found = grid_locate(lon=lon, lat=MID_LAT)
    assert found.grid_small.code == area["east"].code
    assert found.ambiguous is False
    assert grid_locate(lon=lon, lat=MID_LAT, ambiguous_within_m=50).ambiguous is True


def test_point_outside_every_grid_answers_regions_from_boundaries(area):
    """Outside the community (and so every grid) but inside the street's boundary: no grids,
    inside false with a message, street and district from the region boundaries."""
    street, district = area["street"], area["district"]
    street.boundary = box(LON - SIZE, LAT - SIZE, LON + 2 * SIZE, LAT + 2 * SIZE)
    street.save()
    district.boundary = box(LON - 5 * SIZE, LAT - 5 * SIZE, LON + 5 * SIZE, LAT + 5 * SIZE)
    district.save()
    found = grid_locate(lon=LON + 1.5 * SIZE, lat=MID_LAT)  # 0.005° east of EAST
    assert found.inside is False
    assert found.message == OUTSIDE_MESSAGE
    assert (found.grid_small, found.grid_medium, found.grid_large, found.community) == (None, None, None, None)
    assert found.street == Area("620102001000", "酒泉路街道")
    assert found.district == Area("620102000000", "城关区")
    assert found.boundary_distance_m == pytest.approx(450.5, abs=2.0)  # to EAST's east edge
    # Only the district's boundary holds this one.
    farther = grid_locate(lon=LON + 4 * SIZE, lat=MID_LAT)
    assert (farther.street, farther.district) == (None, Area("620102000000", "城关区"))


def test_point_outside_everything_is_not_an_error(area):
    found = grid_locate(lon=LON + 1.0, lat=LAT + 1.0)
    assert found.inside is False
    assert (found.district, found.street, found.community, found.grid_small) == (None, None, None, None)
    assert found.ambiguous is False


def test_date_answers_the_grid_valid_then(area):
    """WEST shrinks on 2024-01-01, leaving a strip between it and EAST: a point in that strip
    was in WEST in 2023 and is in no grid today."""
    grid_redraw(
        grid=area["west"], boundary=box(LON, LAT, HALF - 0.002, LAT + SIZE), valid_from=dt.date(2024, 1, 1), source="t"
    )
    strip = {"lon": HALF - 0.001, "lat": MID_LAT}
    assert grid_locate(**strip).inside is False
    assert grid_locate(**strip, on_date=dt.date(2024, 6, 1)).inside is False
    past = grid_locate(**strip, on_date=dt.date(2023, 6, 1))
    assert past.inside is True
    assert past.grid_small.code == area["west"].code
    assert past.grid_medium.code == area["medium"].code
    assert past.community.code == "620102001001"
    # In 2023 the point was ≈ 90 m from the old WEST's east edge.
    assert past.boundary_distance_m == pytest.approx(90.1, abs=1.0)
    # EAST never changed: it answers for every date.
    assert grid_locate(lon=HALF + 0.002, lat=MID_LAT, on_date=dt.date(2023, 6, 1)).grid_small.code == area["east"].code


def test_date_before_a_grid_existed_finds_no_grid(area):
    """A grid valid from 2024 without an archived shape did not exist in 2023."""
    area["east"].valid_from = dt.date(2024, 1, 1)
    area["east"].save()
    assert grid_locate(lon=HALF + 0.002, lat=MID_LAT, on_date=dt.date(2023, 1, 1)).inside is False
    assert grid_locate(lon=HALF + 0.002, lat=MID_LAT, on_date=dt.date(2024, 1, 1)).inside is True


def _address(code: str, lon: float, lat: float) -> Address:
    return Address.objects.create(
        code=code, road="畅家巷", door_number="1号", full_text=f"畅家巷{code}号", location=Point(lon, lat, srid=4326)
    )


def test_nearest_address_within_200_m(area):
    """The nearest address by metres, with its distance; none when all are beyond 200 m."""
    _address("A1", LON + 0.002, MID_LAT)
    _address("A2", LON + 0.002, MID_LAT + 0.003)  # ≈ 333 m north
    found = grid_locate(lon=LON + 0.002, lat=MID_LAT + 0.0005)  # ≈ 55 m north of A1
    assert found.nearest_address.code == "A1"
    assert found.nearest_address.full_text == "畅家巷A1号"
    assert found.nearest_address.distance_m == pytest.approx(55.5, abs=0.5)
    assert grid_locate(lon=LON + 0.008, lat=LAT + 0.0001).nearest_address is None


def test_gcj02_input_lands_in_the_right_grid_after_conversion(area):
    """A point 90 m west of the shared edge, as a phone map shows it (GCJ-02, ≈ 220 m east):
    taken as WGS84 it would land in EAST; converted, it is in WEST."""
    true_lon, true_lat = HALF - 0.001, MID_LAT
    gcj_lon, gcj_lat = (float(v) for v in wgs84_to_gcj02(true_lon, true_lat))
    assert grid_locate(lon=gcj_lon, lat=gcj_lat).grid_small.code == area["east"].code
    lon, lat = (float(v) for v in to_wgs84(gcj_lon, gcj_lat, "gcj02"))
    assert grid_locate(lon=lon, lat=lat).grid_small.code == area["west"].code


def _sql_assignment(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The in-database answer for the same points: ST_Covers, lowest id (points_to_grids_sql)."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE locate_points (id bigint PRIMARY KEY, location geometry(Point, 4326))")
        cursor.execute(
            """INSERT INTO locate_points SELECT i - 1, ST_SetSRID(ST_MakePoint(x, y), 4326)
               FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS u(x, y, i)""",
            [lon.tolist(), lat.tolist()],
        )
        cursor.execute(points_to_grids_sql("locate_points", "t.location"))
        hits = cursor.fetchall()
        cursor.execute("DROP TABLE locate_points")
    answer = np.full(len(lon), -1, dtype=np.int64)
    for point_id, grid_id in hits:
        answer[point_id] = grid_id
    return answer


def test_grid_assign_points_equals_sql_covers_including_edges(area):
    """Random points in and around the community, plus points exactly on the shared edge, the
    outer edges and the corners: the same grid as PostGIS, lowest id on shared edges."""
    rng = np.random.default_rng(3)
    lon = rng.uniform(LON - 0.002, LON + SIZE + 0.002, 400)
    lat = rng.uniform(LAT - 0.002, LAT + SIZE + 0.002, 400)
    edge_lat = rng.uniform(LAT, LAT + SIZE, 20)
    lon = np.concatenate([lon, np.full(20, HALF), np.full(20, LON), [LON, HALF, LON + SIZE, HALF]])
    lat = np.concatenate([lat, edge_lat, edge_lat, [LAT, LAT, LAT + SIZE, LAT + SIZE]])
    ours = grid_assign_points(lon=lon, lat=lat)
    assert np.array_equal(ours, _sql_assignment(lon, lat))
    assert set(ours[400:420]) == {area["west"].id}  # the shared edge: lowest id
    assert (ours == -1).sum() > 0 and (ours == area["east"].id).sum() > 0


def test_grid_assign_points_rejects_mismatched_arrays(area):
    with pytest.raises(ValueError, match="same length"):
        grid_assign_points(lon=np.zeros(3), lat=np.zeros(2))


def test_small_grid_polygons_reload_after_a_redraw(area):
    """The per-process cache answers until the grids' data version changes."""
    before = small_grid_polygons()
    assert small_grid_polygons() is before
    grid_redraw(
        grid=area["west"], boundary=box(LON, LAT, HALF - 0.002, LAT + SIZE), valid_from=dt.date(2024, 1, 1), source="t"
    )
    after = small_grid_polygons()
    assert after is not before
    assert grid_assign_points(lon=np.array([HALF - 0.001]), lat=np.array([MID_LAT]), grids=after)[0] == -1


def _outer_relation(plan: dict) -> tuple[str, str] | None:
    """(outer, inner) relation names of the first nested loop in a JSON plan."""

    def first_relation(node: dict) -> str:
        while "Relation Name" not in node:
            node = node["Plans"][0]
        return node["Relation Name"]

    if plan["Node Type"] == "Nested Loop":
        return first_relation(plan["Plans"][0]), first_relation(plan["Plans"][1])
    for child in plan.get("Plans", []):
        found = _outer_relation(child)
        if found:
            return found
    return None


def test_in_database_plan_is_polygon_driven(area):
    """With 100 more small grids and 3,000 analysed points, the grid table drives the nested loop
    and the points are probed through their GiST index."""
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO layers_grid (code, name, level, parent_id, community_id, boundary)
               SELECT format('P%%s_%%s', c, r), '测试', 'small', %s, %s,
                      ST_Multi(ST_MakeEnvelope(%s + c * 0.001, %s + r * 0.001, %s + (c + 1) * 0.001,
                                               %s + (r + 1) * 0.001, 4326))
               FROM generate_series(0, 9) c, generate_series(0, 9) r""",
            [area["medium"].id, area["community"].id, LON, LAT + SIZE, LON, LAT + SIZE],
        )
        cursor.execute("CREATE TEMPORARY TABLE plan_points (id bigint PRIMARY KEY, location geometry(Point, 4326))")
        cursor.execute(
            """INSERT INTO plan_points SELECT i, ST_SetSRID(ST_MakePoint(%s + random() * 0.01, %s + random() * 0.02), 4326)
               FROM generate_series(1, 3000) i""",
            [LON, LAT],
        )
        cursor.execute("CREATE INDEX ON plan_points USING gist (location)")
        cursor.execute("ANALYZE plan_points")
        cursor.execute("ANALYZE layers_grid")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {points_to_grids_sql('plan_points', 't.location')}")
        plan = cursor.fetchone()[0][0]["Plan"]
    assert _outer_relation(plan) == ("layers_grid", "plan_points")
