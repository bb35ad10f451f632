"""Grid topology checks on the 1 km test community (tests/worlds/grid_layout.py)."""

from __future__ import annotations

import datetime as dt
import io
import json
import re

import pytest
from django.core.management import CommandError, call_command

import shapely

from layers.selectors.topology import grid_topology_problems
from tests.worlds.grid_layout import COMMUNITY, OTHER_COMMUNITY, box, by_code, layout, load, regions

DAY = dt.date(2024, 1, 1)
L1, L2 = COMMUNITY + "01", COMMUNITY + "02"
M11, M12, M21 = L1 + "01", L1 + "02", L2 + "01"
S111, S112, S121, S211 = M11 + "01", M11 + "02", M12 + "01", M21 + "01"


def broken_layout() -> list[dict]:
    """The layout with one overlap (S111 reaches 100 m × 100 m into S112), one gap (S121 loses
    its 100 m × 100 m north-west corner) and one grid outside its parent (S211 reaches 100 m ×
    100 m south of the community)."""
    rows = layout()
    grids = by_code(rows)
    grids[S111]["geometry"] = shapely.union(grids[S111]["geometry"], box(250, 0, 350, 100))
    grids[S121]["geometry"] = shapely.difference(grids[S121]["geometry"], box(0, 900, 100, 1000))
    grids[S211]["geometry"] = shapely.union(grids[S211]["geometry"], box(500, -100, 600, 0))
    return rows


@pytest.fixture
def community(db):
    return regions()["community"]


@pytest.mark.django_db
def test_a_clean_tiling_has_no_problems(community):
    """Grids that tile their parents and the community exactly: nothing reported, even though
    the shared edges are not bit-identical after the metre → degree conversion."""
    load(layout(), DAY)
    assert grid_topology_problems() == []


@pytest.mark.django_db
def test_overlap_gap_and_outside_parent_are_reported_with_codes_and_areas(community):
    load(broken_layout(), DAY)
    problems = grid_topology_problems()
    assert [(p.kind, p.level, p.codes) for p in problems] == [
        ("gap", "small", (M12,)),
        ("outside_parent", "small", (S211, M21)),
        ("overlap", "small", (S111, S112)),
    ]
    for problem in problems:
        assert problem.area_m2 == pytest.approx(10_000, rel=0.02)
        location = shapely.Point(problem.lon, problem.lat)
        assert shapely.from_wkt(problem.wkt).covers(location)
    gap, outside, overlap = problems
    assert box(0, 900, 100, 1000).covers(shapely.Point(gap.lon, gap.lat))
    assert box(500, -100, 600, 0).covers(shapely.Point(outside.lon, outside.lat))
    assert box(250, 0, 350, 100).covers(shapely.Point(overlap.lon, overlap.lat))


@pytest.mark.django_db
def test_large_grids_are_checked_against_the_community_boundary(community):
    """L2 shrinks by 100 m on its east side (a gap in the community, and its children now stick
    out of it) while L1 reaches 100 m west of the community (its children leave that strip bare)."""
    rows = layout()
    grids = by_code(rows)
    grids[L2]["geometry"] = box(500, 0, 900, 1000)
    grids[L1]["geometry"] = box(-100, 0, 500, 1000)
    load(rows, DAY)
    problems = grid_topology_problems(level="large")
    assert [(p.kind, p.codes, round(p.area_m2, -3)) for p in problems] == [
        ("gap", (COMMUNITY,), 100_000),
        ("outside_community", (L1, COMMUNITY), 100_000),
    ]
    medium = grid_topology_problems(level="medium")
    assert [(p.kind, p.codes, round(p.area_m2, -3)) for p in medium] == [
        ("gap", (L1,), 100_000),
        ("outside_parent", (M21, L2), 50_000),
        ("outside_parent", (L2 + "02", L2), 50_000),
    ]


@pytest.mark.django_db
def test_large_grids_of_one_community_overlap_and_others_do_not_count(community):
    """Overlaps are between siblings only: a large grid of another community on top of ours is
    not an overlap here (communities are checked by the region importer)."""
    rows = layout()
    grids = by_code(rows)
    grids[L1]["geometry"] = box(0, 0, 520, 1000)
    rows.append(
        {
            **grids[L2],
            "code": OTHER_COMMUNITY + "01",
            "community_code": OTHER_COMMUNITY,
            "geometry": box(900, 0, 1500, 1000),
        }
    )
    load(rows, DAY)
    problems = grid_topology_problems(level="large", community_code=COMMUNITY)
    # L1's extra 20 m strip lies inside the community: an overlap, nothing outside.
    assert [(p.kind, p.codes, round(p.area_m2, -3)) for p in problems] == [("overlap", (L1, L2), 20_000)]
    assert grid_topology_problems(community_code=OTHER_COMMUNITY) == []


@pytest.mark.django_db
def test_slivers_narrower_than_the_tolerance_are_ignored(community):
    """A 0.5 m wide, 500 m long overlap (250 m²) is digitising noise at 1 m, a problem at 0.1 m."""
    rows = layout()
    grids = by_code(rows)
    grids[S111]["geometry"] = box(0, 0, 250.5, 500)
    load(rows, DAY)
    assert grid_topology_problems(tolerance_m=1) == []
    [problem] = grid_topology_problems(tolerance_m=0.1)
    assert (problem.kind, problem.codes) == ("overlap", (S111, S112))
    assert problem.area_m2 == pytest.approx(250, rel=0.02)


@pytest.mark.django_db
def test_check_grids_fails_with_a_count_and_writes_a_geojson_report(community, tmp_path):
    load(broken_layout(), DAY)
    report, out = tmp_path / "topology.geojson", io.StringIO()
    with pytest.raises(CommandError, match=rf"^3 topology problem\(s\) found; see {report}$"):
        call_command("check_grids", "--report", str(report), stdout=out)
    collection = json.loads(report.read_text("utf-8"))
    assert [f["properties"]["kind"] for f in collection["features"]] == ["gap", "outside_parent", "overlap"]
    assert collection["features"][2]["properties"]["codes"] == f"{S111} / {S112}"
    assert collection["features"][0]["geometry"]["type"] == "Polygon"
    lines = out.getvalue().splitlines()
    assert re.fullmatch(rf"gap \(small\) {M12}: (9,9\d\d|10,0\d\d) m² at 103\.80\d+, 36\.05\d+", lines[0])
    assert lines[3] == f"report written to {report}"


@pytest.mark.django_db
def test_check_grids_passes_on_a_clean_tiling_and_writes_csv(community, tmp_path, capsys):
    load(layout(), DAY)
    call_command("check_grids", "--community", COMMUNITY, "--report", str(tmp_path / "r.csv"))
    assert capsys.readouterr().out.splitlines()[-1] == "no topology problems"
    assert (tmp_path / "r.csv").read_text("utf-8-sig").splitlines() == ["kind,level,codes,area_m2,lon,lat,wkt"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--community", "620102009999"], "--community 620102009999: no community with this code"),
        (["--tolerance-m", "-1"], "--tolerance-m -1.0: expected zero or more metres"),
    ],
)
def test_check_grids_refuses_bad_options(community, arguments, message):
    with pytest.raises(CommandError) as error:
        call_command("check_grids", *arguments)
    assert str(error.value) == message
