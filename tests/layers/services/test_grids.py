"""grids_upsert and grid_redraw: counts, archived boundaries, relinked registry rows, and the
polygon-driven plan of the linking join."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.contrib.gis.geos import GEOSGeometry, Point
from django.db import connection

import shapely

from layers.models import Address, BoundaryVersion, Grid
from layers.services import linking
from layers.services.grids import GridUpsertError, grid_redraw, grids_upsert
from tests.worlds.grid_layout import COMMUNITY, box, by_code, frame, layout, lonlat, regions

DAY1, DAY2 = dt.date(2024, 1, 1), dt.date(2024, 7, 1)
M11 = COMMUNITY + "0101"
WEST, EAST = M11 + "01", M11 + "02"


@pytest.fixture
def community(db):
    return regions()["community"]


def address(code: str, x: float, y: float) -> Address:
    return Address.objects.create(code=code, full_text=code, location=Point(*lonlat(x, y), srid=4326))


def moved_edge() -> list[dict]:
    """The layout with the edge between WEST and EAST moved from 250 m to 150 m east."""
    rows = layout()
    grids = by_code(rows)
    grids[WEST]["geometry"] = box(0, 0, 150, 500)
    grids[EAST]["geometry"] = box(150, 0, 500, 500)
    return rows


@pytest.mark.django_db
def test_upsert_creates_the_tree_then_leaves_identical_rows_alone(community):
    assert grids_upsert(frame=frame(layout()), valid_from=DAY1) | {"envelope": ""} == {
        "created": 14, "updated": 0, "redrawn": 0, "unchanged": 0, "relinked": 0, "envelope": "",
        "topology": [], "relinked_sample": [],
    }  # fmt: skip
    west = Grid.objects.select_related("parent__parent").get(code=WEST)
    assert (west.parent.code, west.parent.parent.code, west.valid_from) == (M11, COMMUNITY + "01", DAY1)
    assert west.boundary.srid == 4326 and west.boundary.geom_type == "MultiPolygon"
    again = grids_upsert(frame=frame(layout()), valid_from=DAY2)
    assert again == {
        "created": 0, "updated": 0, "redrawn": 0, "unchanged": 14, "relinked": 0, "envelope": "",
        "topology": [], "relinked_sample": [],
    }  # fmt: skip
    assert Grid.objects.get(code=WEST).valid_from == DAY1


@pytest.mark.django_db
def test_a_redrawn_grid_is_archived_and_the_addresses_around_it_relinked(community):
    grids_upsert(frame=frame(layout()), valid_from=DAY1)
    moving = address("A-moving", 200, 100)  # west of 250 m, east of 150 m
    address("A-staying", 50, 100)
    far = address("A-far", 900, 900)
    linking.relink_all()
    west, east = Grid.objects.get(code=WEST), Grid.objects.get(code=EAST)
    assert Address.objects.get(pk=moving.pk).grid_id == west.id

    result = grids_upsert(frame=frame(moved_edge()), valid_from=DAY2)

    assert (result["created"], result["updated"], result["redrawn"], result["unchanged"]) == (0, 2, 2, 12)
    assert result["relinked"] == 1
    # old ∪ new of the two redrawn grids: the medium grid they tile
    assert shapely.from_wkt(result["envelope"]).bounds == pytest.approx(box(0, 0, 500, 500).bounds, abs=1e-9)
    links = dict(Address.objects.values_list("code", "grid_id"))
    assert links == {"A-moving": east.id, "A-staying": west.id, "A-far": links["A-far"]}
    assert Address.objects.get(pk=moving.pk).grid_medium_id == Grid.objects.get(code=M11).id
    assert Address.objects.get(pk=far.pk).grid_id == Grid.objects.get(code=COMMUNITY + "020202").id
    versions = BoundaryVersion.objects.filter(subject="grid").order_by("code")
    assert [(v.code, v.level, v.valid_from, v.valid_to) for v in versions] == [
        (WEST, "small", DAY1, DAY2),
        (EAST, "small", DAY1, DAY2),
    ]
    assert shapely.from_wkt(versions[0].boundary.wkt).equals(box(0, 0, 250, 500))
    assert Grid.objects.get(code=WEST).valid_from == DAY2
    assert Grid.objects.get(code=M11).valid_from == DAY1


@pytest.mark.django_db
def test_grid_redraw_archives_and_relinks_one_grid(community):
    rows = layout()
    grids = by_code(rows)
    grids[EAST]["geometry"] = box(300, 0, 500, 500)  # leaves 250–300 m uncovered
    grids_upsert(frame=frame(rows), valid_from=DAY1, accept_topology=True)
    orphan = address("A-orphan", 275, 100)
    linking.relink_all()
    assert Address.objects.get(pk=orphan.pk).grid_id is None

    east = Grid.objects.get(code=EAST)
    result = grid_redraw(grid=east, boundary=GEOSGeometry(box(250, 0, 500, 500).wkt, srid=4326), valid_from=DAY2)

    assert (result["redrawn"], result["relinked"]) == (1, 1)
    assert Address.objects.get(pk=orphan.pk).grid_id == east.id
    [version] = BoundaryVersion.objects.all()
    assert (version.code, version.valid_from, version.valid_to) == (EAST, DAY1, DAY2)
    east.refresh_from_db()
    assert (east.boundary.geom_type, east.valid_from) == ("MultiPolygon", DAY2)
    same = grid_redraw(grid=east, boundary=east.boundary, valid_from=DAY2)
    assert same == {"redrawn": 0, "relinked": 0, "envelope": ""}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("boundary", "valid_from", "message"),
    [
        ("POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))", DAY2, "boundary is invalid: Self-intersection[0.5 0.5]"),
        ("LINESTRING (0 0, 1 1)", DAY2, "boundary must be a non-empty Polygon or MultiPolygon, not LineString"),
        (
            box(0, 0, 100, 100).wkt,
            dt.date(2023, 1, 1),
            f"the current boundary of {WEST} is valid from 2024-01-01, after 2023-01-01",
        ),
    ],
)
def test_grid_redraw_refuses_bad_boundaries_and_dates(community, boundary, valid_from, message):
    grids_upsert(frame=frame(layout()), valid_from=DAY1)
    with pytest.raises(ValueError) as error:
        grid_redraw(grid=Grid.objects.get(code=WEST), boundary=GEOSGeometry(boundary, srid=4326), valid_from=valid_from)
    assert str(error.value) == message
    assert not BoundaryVersion.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"community_code": "620102009999"}, "community 620102009999 is not a community region"),
        ({"parent_code": COMMUNITY + "0109"}, f"parent {COMMUNITY}0109 is not a grid of the level above"),
        ({"parent_code": ""}, "a small grid needs a parent"),
        ({"level": "tiny"}, "level must be large, medium or small"),
    ],
)
def test_upsert_refuses_rows_it_cannot_store_and_writes_nothing(community, change, problem):
    rows = layout()
    by_code(rows)[WEST].update(change)
    with pytest.raises(GridUpsertError) as error:
        grids_upsert(frame=frame(rows), valid_from=DAY1)
    assert error.value.problems == {WEST: problem}
    assert str(error.value) == f"1 grid(s) refused: {WEST}: {problem}"
    assert not Grid.objects.exists()


def _outer_relations(plan: dict) -> list[str]:
    """For every Nested Loop in the plan, the relation its outer side scans."""
    found = []
    if plan["Node Type"] == "Nested Loop":
        outer = next(child for child in plan["Plans"] if child["Parent Relationship"] == "Outer")
        while "Relation Name" not in outer:
            outer = outer["Plans"][0]
        found.append(outer["Relation Name"])
    for child in plan.get("Plans", []):
        found += _outer_relations(child)
    return found


@pytest.mark.django_db
def test_the_linking_join_is_driven_by_the_grid_polygons(community):
    """With thousands of points and a few grids, each grid polygon drives a nested loop into the
    GiST index of the points (linking.py explains why this plan is the fast one)."""
    grids_upsert(frame=frame(layout()), valid_from=DAY1)
    Address.objects.bulk_create(
        Address(
            code=f"A{i:05d}",
            full_text=f"A{i:05d}",
            location=Point(*lonlat(i % 60 * 16.5 + 5, i // 60 * 20 + 5), srid=4326),
        )
        for i in range(3000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE layers_grid")
        cursor.execute("ANALYZE layers_address")
        cursor.execute("EXPLAIN (FORMAT JSON) " + linking.hits_sql(linking.ADDRESS, "TRUE"))
        (plan,) = cursor.fetchone()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    assert _outer_relations(plan[0]["Plan"]) == ["layers_grid"]
    assert linking.link(linking.ADDRESS) == 3000
    assert Address.objects.filter(grid__isnull=True).count() == 0


@pytest.mark.django_db
def test_upsert_refuses_a_redraw_dated_before_the_current_boundary(community):
    grids_upsert(frame=frame(layout()), valid_from=DAY2)
    with pytest.raises(GridUpsertError) as error:
        grids_upsert(frame=frame(moved_edge()), valid_from=DAY1)
    reason = "the current boundary is valid from 2024-07-01, after the new date"
    assert error.value.problems == {WEST: reason, EAST: reason}
    assert not BoundaryVersion.objects.exists()
    assert shapely.from_wkt(Grid.objects.get(code=WEST).boundary.wkt).equals(box(0, 0, 250, 500))
