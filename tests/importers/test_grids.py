"""import_grids: the three-level grids from GeoJSON/GeoPackage, reprojected or converted from
GCJ-02, with every bad feature rejected with its reason (layout: tests/worlds/grid_layout.py)."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pytest
from django.contrib.gis.geos import Point
from django.core.management import CommandError, call_command
from django.db.models import Count

import geopandas as gpd
import shapely

from importers.base import ImportFailed, run_import
from importers.grids import GridImporter
from layers.geocoding.crs import wgs84_to_gcj02
from layers.models import Address, BoundaryVersion, Grid
from layers.services.linking import relink_all
from tests.worlds.grid_layout import COMMUNITY, OTHER_COMMUNITY, box, by_code, layout, lonlat, regions, write_geojson

pytestmark = pytest.mark.django_db

C = COMMUNITY
L1, M11 = C + "01", C + "0101"
S1, S2 = C + "010101", C + "010102"
NEW_SMALL = {"code": C + "010103", "name": "新小网格", "level": "small", "parent_code": M11, "community_code": C,
             "geometry": box(0, 0, 10, 10)}  # fmt: skip
BOWTIE = shapely.Polygon([lonlat(0, 0), lonlat(10, 10), lonlat(10, 0), lonlat(0, 10)])


@pytest.fixture(autouse=True)
def setup(settings, tmp_path):
    settings.MINQING_REPORT_DIR = tmp_path / "reports"
    regions()


def grids_file(tmp_path, rows=None, name="grids.geojson"):
    return write_geojson(tmp_path / name, layout() if rows is None else rows)


def small(**change) -> dict:
    return {**NEW_SMALL, **change}


def test_a_clean_file_creates_the_three_levels_and_a_second_run_changes_nothing(tmp_path):
    path = grids_file(tmp_path)
    report = run_import(GridImporter(valid_from="2024-01-01"), path, commit=True)
    assert report.counts == {
        "rows": 14, "created": 14, "updated": 0, "redrawn": 0, "unchanged": 0, "relinked": 0, "rejected": 0,
    }  # fmt: skip
    assert dict(Grid.objects.values_list("level").annotate(n=Count("id"))) == {"large": 2, "medium": 4, "small": 8}
    s1 = Grid.objects.get(code=S1)
    assert (s1.parent.code, s1.parent.parent.code, s1.community.code, s1.valid_from) == (
        M11,
        L1,
        C,
        dt.date(2024, 1, 1),
    )
    assert s1.boundary.srid == 4326 and s1.boundary.geom_type == "MultiPolygon"
    again = run_import(GridImporter(valid_from="2024-07-01"), path, commit=True)
    assert (again.counts["created"], again.counts["updated"], again.counts["unchanged"]) == (0, 0, 14)


def test_the_command_dry_runs_by_default_and_maps_attribute_names(tmp_path):
    rows = [{("网格编码" if k == "code" else k): v for k, v in row.items()} for row in layout()]
    for row in rows:
        row["code"] = "ignored"  # a column of the canonical name that the mapping must not pick
    path = write_geojson(tmp_path / "grids.geojson", rows)
    out = io.StringIO()
    call_command("import_grids", str(path), "--code-field", "网格编码", stdout=out, verbosity=0)
    assert out.getvalue().splitlines()[0] == (
        "grids.geojson: dry run (nothing written; pass --commit to write): rows 14, created 14, updated 0, "
        "redrawn 0, unchanged 0, relinked 0, rejected 0"
    )
    assert not Grid.objects.exists()
    call_command("import_grids", str(path), "--code-field", "网格编码", "--commit", stdout=out, verbosity=0)
    assert Grid.objects.count() == 14


#: (extra rows appended as rows 15, 16, … after the valid layout; expected rejections)
BAD = {
    "empty code": ([small(code="")], [(15, "code", "", "code is empty")]),
    "code too long": (
        [small(code=C + "0101030000000")],
        [(15, "code", C + "0101030000000", "code is longer than 24 characters")],
    ),
    "duplicate code": (
        [small(code=S1)],
        [
            (7, "code", S1, "code appears more than once in the file (rows 7, 15)"),
            (15, "code", S1, "code appears more than once in the file (rows 7, 15)"),
        ],
    ),
    "empty name": ([small(name="")], [(15, "name", "", "name is empty")]),
    "bad level": (
        [small(level="huge")],
        [(15, "level", "huge", "level must be large, medium or small (or 大网格, 中网格, 小网格)")],
    ),
    "empty community": ([small(community_code="")], [(15, "community_code", "", "community_code is empty")]),
    "unknown community": (
        [small(community_code="620102001999")],
        [(15, "community_code", "620102001999", "no community with this code in the database")],
    ),
    "street is not a community": (
        [small(community_code="620102001000")],
        [(15, "community_code", "620102001000", "no community with this code in the database")],
    ),
    "code outside its community": (
        [small(code=OTHER_COMMUNITY + "010103")],
        [(15, "code", OTHER_COMMUNITY + "010103", f"code does not start with its community code {C}")],
    ),
    "code without serial": ([small(code=C)], [(15, "code", C, "code needs a serial after the community code")]),
    "no geometry": ([small(geometry=None)], [(15, "geometry", "", "geometry is empty")]),
    "point geometry": (
        [small(geometry=shapely.Point(lonlat(5, 5)))],
        [(15, "geometry", "Point", "geometry is a Point; expected a Polygon or MultiPolygon")],
    ),
    "large with a parent": (
        [small(code=C + "03", level="large", parent_code=L1)],
        [(15, "parent_code", L1, "a large grid has no parent; leave parent_code empty")],
    ),
    "medium without a parent": (
        [small(code=C + "0103", level="medium", parent_code="")],
        [(15, "parent_code", "", "parent_code is empty; a medium grid needs its large grid")],
    ),
    "medium under a small grid": (
        [small(code=C + "0103", level="medium", parent_code=S1)],
        [(15, "parent_code", S1, "parent grid is a small grid; a medium grid's parent must be a large grid")],
    ),
    "small under a large grid": (
        [small(parent_code=L1)],
        [(15, "parent_code", L1, "parent grid is a large grid; a small grid's parent must be a medium grid")],
    ),
    "unknown parent": (
        [small(parent_code=C + "0109")],
        [(15, "parent_code", C + "0109", "parent grid is neither in the file nor in the database")],
    ),
    "parent in another community": (
        [
            small(code=OTHER_COMMUNITY + "01", level="large", parent_code="", community_code=OTHER_COMMUNITY),
            small(code=C + "0103", level="medium", parent_code=OTHER_COMMUNITY + "01"),
        ],
        [(16, "parent_code", OTHER_COMMUNITY + "01", f"parent grid belongs to community {OTHER_COMMUNITY}, not {C}")],
    ),
    "rejected parent and grandparent": (
        [
            small(code=C + "03", level="huge", parent_code=""),
            small(code=C + "0301", level="medium", parent_code=C + "03"),
            small(code=C + "030101", level="small", parent_code=C + "0301"),
        ],
        [
            (15, "level", "huge", "level must be large, medium or small (or 大网格, 中网格, 小网格)"),
            (16, "parent_code", C + "03", "parent grid was rejected"),
            (17, "parent_code", C + "0301", "parent grid was rejected"),
        ],
    ),
}


@pytest.mark.parametrize(("extra", "expected"), BAD.values(), ids=BAD.keys())
def test_bad_features_are_rejected_with_their_reason_and_the_rest_is_imported(tmp_path, extra, expected):
    rows = layout() + extra
    # A rejected row may leave a gap (the duplicated small grid); accepted here, see test_grid_topology.py.
    report = run_import(GridImporter(accept_topology=True), grids_file(tmp_path, rows), commit=True)
    assert [(r.row, r.field, r.value, r.reason) for r in report.rejections] == expected
    rejected = {row for row, *_ in expected}
    assert Grid.objects.count() == len(rows) - len(rejected)
    assert report.counts["rejected"] == len(rejected)
    assert report.notes[-1] == f"rejected rows listed in {report.report_path}"
    assert open(report.report_path, encoding="utf-8-sig").readline().strip() == "row,field,value,reason"


#: S1 redrawn with its last vertex a metre below the south-west corner: the closing edge crosses
#: the first one, a half-square-metre loop. Repairing it changes the area by next to nothing.
NEARLY_S1 = shapely.Polygon([lonlat(0, 0), lonlat(250, 0), lonlat(250, 500), lonlat(0, 500), lonlat(1, -1)])


def test_invalid_polygons_are_repaired_within_the_area_tolerance_and_rejected_with_no_repair(tmp_path):
    rows = layout()
    by_code(rows)[S1]["geometry"] = NEARLY_S1
    path = grids_file(tmp_path, rows)
    reason = shapely.is_valid_reason(NEARLY_S1)
    assert reason.startswith("Self-intersection[")
    report = run_import(GridImporter(repair=False), path, commit=False)
    assert [(r.row, r.field, r.value, r.reason) for r in report.rejections] == [
        (7, "geometry", "Polygon", f"invalid geometry: {reason} (--no-repair)")
    ]
    report = run_import(GridImporter(), path, commit=True)
    assert (report.rejections, report.failure, report.topology) == ([], None, [])
    assert report.notes == [
        "1 invalid geometry repaired with make_valid (row 7; area changed by at most 1%); "
        "pass --no-repair to reject them instead"
    ]
    repaired = Grid.objects.get(code=S1).boundary
    assert repaired.valid and repaired.geom_type == "MultiPolygon" and len(repaired) == 2


def test_a_repair_that_changes_the_area_is_a_rejection_with_the_reason(tmp_path):
    """A bow-tie's lobes cancel out: drawn area 0, repaired into two triangles of 50 m²."""
    path = grids_file(tmp_path, layout() + [small(geometry=BOWTIE)])
    reason = shapely.is_valid_reason(BOWTIE)
    report = run_import(GridImporter(), path, commit=True)
    assert [(r.row, r.field, r.value, r.reason) for r in report.rejections] == [
        (
            15,
            "geometry",
            "Polygon",
            f"invalid geometry: {reason}; repairing it would change its area by 100% (0 → 50 m², more than 1%); "
            "fix the polygon",
        )
    ]
    assert not Grid.objects.filter(code=NEW_SMALL["code"]).exists()


def test_strict_stops_at_the_first_bad_row_and_writes_nothing(tmp_path):
    path = grids_file(tmp_path, layout() + [small(code=""), small(level="huge")])
    with pytest.raises(ImportFailed) as error:
        run_import(GridImporter(), path, commit=True, strict=True)
    assert str(error.value) == "grids.geojson: row 15, field code = '': code is empty (--strict: nothing was written)"
    assert not Grid.objects.exists()


def test_a_file_without_a_needed_attribute_is_refused(tmp_path):
    rows = [{k: v for k, v in row.items() if k != "level"} for row in layout()]
    with pytest.raises(CommandError) as error:
        call_command("import_grids", str(write_geojson(tmp_path / "grids.geojson", rows)), verbosity=0)
    assert str(error.value) == (
        "grids.geojson: missing attribute(s) level; the features have code, name, parent_code, community_code; "
        "nothing was written"
    )


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--valid-from", "2024-13-01"], "--valid-from '2024-13-01': expected a date as YYYY-MM-DD"),
        (["--source-crs", "EPSG:99999999"], "--source-crs 'EPSG:99999999': not a known CRS (try EPSG:4490)"),
    ],
)
def test_bad_options_are_refused_before_the_file_is_read(tmp_path, option, message):
    with pytest.raises(CommandError) as error:
        call_command("import_grids", str(tmp_path / "absent.geojson"), *option, verbosity=0)
    assert str(error.value) == message


def test_convert_must_be_a_known_offset():
    with pytest.raises(ValueError) as error:
        GridImporter(convert="wgs84")
    assert str(error.value) == "--convert 'wgs84': expected one of gcj02, bd09"


def test_levels_in_chinese_and_parents_from_the_database_are_accepted(tmp_path):
    run_import(GridImporter(), grids_file(tmp_path), commit=True)
    path = grids_file(tmp_path, [small(level="小网格")], name="more.geojson")
    # The new grid overlaps S1 (its topology is tested in test_grid_topology.py).
    report = run_import(GridImporter(accept_topology=True), path, commit=True)
    assert (report.rejections, report.counts["created"]) == ([], 1)
    assert Grid.objects.get(code=NEW_SMALL["code"]).parent.code == M11


def test_a_gcj02_file_is_converted_to_wgs84(tmp_path):
    """Digitised on AMap: every vertex is shifted ≈ 300 m; --convert gcj02 puts it back."""
    rows = layout()
    for row in rows:
        row["geometry"] = shapely.transform(
            row["geometry"], lambda xy: np.column_stack(wgs84_to_gcj02(xy[:, 0], xy[:, 1]))
        )
    call_command("import_grids", str(grids_file(tmp_path, rows)), "--convert", "gcj02", "--commit", verbosity=0)
    stored = shapely.from_wkt(Grid.objects.get(code=S1).boundary.wkt)
    truth = by_code(layout())[S1]["geometry"]
    assert shapely.hausdorff_distance(stored, truth) < 1e-7  # degrees: about a centimetre
    assert (
        shapely.hausdorff_distance(shapely.from_wkt(Grid.objects.get(code=S1).boundary.wkt), rows[6]["geometry"]) > 1e-3
    )


def test_a_projected_geopackage_is_reprojected_to_wgs84(tmp_path):
    """CGCS2000 / 3-degree Gauss-Krüger CM 105E (EPSG:4544), as survey offices deliver it."""
    rows = layout()
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=4326).to_crs(4544)
    frame.to_file(tmp_path / "grids.gpkg", driver="GPKG", engine="pyogrio")
    report = run_import(GridImporter(), tmp_path / "grids.gpkg", commit=True)
    assert (report.counts["created"], report.rejections) == (14, [])
    stored = shapely.from_wkt(Grid.objects.get(code=S1).boundary.wkt)
    assert shapely.hausdorff_distance(stored, by_code(layout())[S1]["geometry"]) < 1e-7


def test_reimporting_a_redrawn_grid_archives_it_and_relinks_its_addresses(tmp_path):
    run_import(GridImporter(valid_from="2024-01-01"), grids_file(tmp_path), commit=True)
    Address.objects.create(code="A1", full_text="A1", location=Point(*lonlat(200, 100), srid=4326))
    relink_all()
    assert Address.objects.get(code="A1").grid.code == S1
    rows = layout()
    by_code(rows)[S1]["geometry"] = box(0, 0, 150, 500)
    by_code(rows)[S2]["geometry"] = box(150, 0, 500, 500)
    report = run_import(GridImporter(valid_from="2024-07-01"), grids_file(tmp_path, rows), commit=True)
    assert (report.counts["redrawn"], report.counts["relinked"]) == (2, 1)
    assert Address.objects.get(code="A1").grid.code == S2
    assert sorted(BoundaryVersion.objects.values_list("code", "valid_to")) == [
        (S1, dt.date(2024, 7, 1)),
        (S2, dt.date(2024, 7, 1)),
    ]
