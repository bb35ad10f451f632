"""A grid import checks the topology of the communities it touches inside its transaction and
refuses (exit status 4, nothing written) gaps, overlaps and grids outside their parent that it
would bring, naming them with their places, unless told to accept them. Each case is a real
file: GeoJSON, a GeoPackage and a zipped Shapefile (layout: tests/worlds/grid_layout.py)."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

import geopandas as gpd
import shapely

from importers.base import run_import
from importers.grids import GridImporter
from layers.models import Grid
from tests.worlds.grid_layout import COMMUNITY, box, by_code, layout, load, regions, write_geojson

pytestmark = pytest.mark.django_db

C = COMMUNITY
L1, M11, M12 = C + "01", C + "0101", C + "0102"
S1, S2, S3 = C + "010101", C + "010102", C + "010201"
DAY = "2024-01-01"


@pytest.fixture(autouse=True)
def city(settings, tmp_path):
    settings.MINQING_REPORT_DIR = tmp_path / "reports"
    regions()
    load(layout(), DAY)


def write_gpkg(path: Path, rows: list[dict]) -> Path:
    gpd.GeoDataFrame(rows, geometry="geometry", crs=4326).to_file(path, driver="GPKG", engine="pyogrio")
    return path


#: Shapefile field names are at most 10 characters: these files name parent and community so.
SHAPEFILE_FIELDS = {"parent_code": "parent", "community_code": "community"}


def write_shapefile_zip(path: Path, rows: list[dict]) -> Path:
    """A zipped Shapefile, as GIS offices send them."""
    folder = path.parent / "shp"
    folder.mkdir(exist_ok=True)
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=4326).rename(columns=SHAPEFILE_FIELDS)
    frame.to_file(folder / "grids.shp", engine="pyogrio")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in sorted(folder.iterdir()):
            archive.write(part, part.name)
    return path


WRITERS = {
    "geojson": lambda folder, rows: write_geojson(folder / "grids.geojson", rows),
    "gpkg": lambda folder, rows: write_gpkg(folder / "grids.gpkg", rows),
    "shp.zip": lambda folder, rows: write_shapefile_zip(folder / "grids.zip", rows),
}
#: The importer's field options each format needs.
FIELDS = {"geojson": {}, "gpkg": {}, "shp.zip": {"parent_field": "parent", "community_field": "community"}}


def field_arguments(fmt: str) -> list[str]:
    return [part for name, value in FIELDS[fmt].items() for part in (f"--{name.replace('_', '-')}", value)]


def redrawn(**shapes) -> list[dict]:
    """The layout with some grids given new shapes (keyword: grid code → polygon)."""
    rows = layout()
    for code, shape in shapes.items():
        by_code(rows)[code]["geometry"] = shape
    return rows


#: case → (grids redrawn, the problems the refusal names: kind, level, codes, area in m²)
REFUSED = {
    "gap left by a shrunk grid": (
        {S1: box(0, 0, 200, 500)},
        [("gap", "small", (M11,), 25_000)],
    ),
    "overlap of two siblings": (
        {S1: box(0, 0, 300, 500)},
        [("overlap", "small", (S1, S2), 25_000)],
    ),
    "small grid outside its medium grid": (
        {S1: box(0, 0, 250, 550)},
        # S1 now reaches into S3, but they have different parents: not siblings, so no overlap.
        [("outside_parent", "small", (S1, M11), 12_500)],
    ),
    "medium grid outside its large grid": (
        {M11: box(0, 0, 600, 500)},
        # and its small grids no longer cover it
        [("gap", "small", (M11,), 50_000), ("outside_parent", "medium", (M11, L1), 50_000)],
    ),
}


def _names(problems) -> list[tuple]:
    return sorted((p.kind, p.level, p.codes, round(p.area_m2, -2)) for p in problems)


@pytest.mark.parametrize("fmt", WRITERS)
@pytest.mark.parametrize(("shapes", "expected"), REFUSED.values(), ids=REFUSED.keys())
def test_a_grid_import_that_breaks_the_topology_is_refused_and_writes_nothing(tmp_path, fmt, shapes, expected):
    path = WRITERS[fmt](tmp_path, redrawn(**shapes))
    before = {g.code: g.boundary.wkt for g in Grid.objects.all()}
    out = io.StringIO()
    with pytest.raises(CommandError) as refused:
        call_command(
            "import_grids", str(path), "--commit", "--valid-from", "2024-07-01", *field_arguments(fmt), stdout=out,
            verbosity=0,
        )  # fmt: skip
    assert refused.value.returncode == 4
    assert str(refused.value) == (
        f"{path.name}: {len(expected)} topology problem(s) (gaps, overlaps or grids outside their parent) the grids "
        "would bring; nothing was written; fix the grids, or commit them anyway with --accept-topology"
    )
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"{path.name}: failed, nothing written: rows 14, created 0, updated ")
    # Each problem is named with its grids, its area and a place, as check_grids names it.
    named = [line.strip() for line in lines[1:]]
    assert len(named) == len(expected)
    for line, (kind, level, codes, area) in zip(named, sorted(expected), strict=True):
        match = re.fullmatch(rf"{kind} \({level}\) {' / '.join(codes)}: ([\d,]+) m² at (103\.8\d+), (36\.0\d+)", line)
        assert match, line
        assert float(match[1].replace(",", "")) == pytest.approx(area, rel=0.01)
    assert {g.code: g.boundary.wkt for g in Grid.objects.all()} == before
    report = run_import(GridImporter(valid_from="2024-07-01", **FIELDS[fmt]), path, commit=False)
    assert _names(report.topology) == sorted((k, lvl, c, a) for k, lvl, c, a in expected)


@pytest.mark.parametrize(("shapes", "expected"), REFUSED.values(), ids=REFUSED.keys())
def test_accepting_the_topology_commits_it_and_says_so(tmp_path, shapes, expected):
    path = WRITERS["geojson"](tmp_path, redrawn(**shapes))
    out = io.StringIO()
    call_command("import_grids", str(path), "--commit", "--accept-topology", "--valid-from", "2024-07-01", stdout=out)
    assert f"  {len(expected)} topology problem(s) accepted (--accept-topology)" in out.getvalue().splitlines()
    code, shape = next(iter(shapes.items()))
    assert shapely.from_wkt(Grid.objects.get(code=code).boundary.wkt).equals(shape)


#: Imports that keep the topology: (grids redrawn, grids the file leaves out)
KEPT = {
    "an edge moved between two siblings": ({S1: box(0, 0, 150, 500), S2: box(150, 0, 500, 500)}, ()),
    "the same grids again": ({}, ()),
    "a file of one community's small grids only": ({}, (L1, M11, M12)),
}


@pytest.mark.parametrize("fmt", WRITERS)
@pytest.mark.parametrize(("shapes", "left_out"), KEPT.values(), ids=KEPT.keys())
def test_an_import_that_keeps_the_topology_commits(tmp_path, fmt, shapes, left_out):
    rows = [row for row in redrawn(**shapes) if row["code"] not in left_out]
    path = WRITERS[fmt](tmp_path, rows)
    out = io.StringIO()
    call_command(
        "import_grids", str(path), "--commit", "--valid-from", "2024-07-01", *field_arguments(fmt), stdout=out,
        verbosity=0,
    )  # fmt: skip
    assert out.getvalue().splitlines()[0].startswith(f"{path.name}: committed: rows {len(rows)}, ")
    for code, shape in shapes.items():
        assert shapely.from_wkt(Grid.objects.get(code=code).boundary.wkt).equals(shape)


def test_a_problem_the_grids_already_had_does_not_stop_an_import_but_a_bigger_one_does(tmp_path):
    load(redrawn(**{S1: box(0, 0, 200, 500)}), DAY)  # a 50 m gap, stored before the check existed
    unrelated = redrawn(**{S1: box(0, 0, 200, 500), S3: box(0, 500, 200, 1000), C + "010202": box(200, 500, 500, 1000)})
    report = run_import(
        GridImporter(valid_from="2024-07-01"), write_geojson(tmp_path / "a.geojson", unrelated), commit=True
    )
    assert (report.failure, report.topology) == (None, [])
    wider = redrawn(**{S1: box(0, 0, 150, 500), S3: box(0, 500, 200, 1000), C + "010202": box(200, 500, 500, 1000)})
    report = run_import(
        GridImporter(valid_from="2024-08-01"), write_geojson(tmp_path / "b.geojson", wider), commit=True
    )
    assert report.failure.exit_code == 4
    assert _names(report.topology) == [("gap", "small", (M11,), 50_000)]  # was 25,000
    assert shapely.from_wkt(Grid.objects.get(code=S1).boundary.wkt).equals(box(0, 0, 200, 500))


def test_a_dry_run_shows_the_problems_the_relinked_rows_and_what_a_commit_would_do(tmp_path):
    from django.contrib.gis.geos import Point

    from layers.models import Address
    from layers.services.linking import relink_all
    from tests.worlds.grid_layout import lonlat

    Address.objects.create(code="A1", full_text="A1", location=Point(*lonlat(225, 100), srid=4326))
    relink_all()
    path = write_geojson(tmp_path / "grids.geojson", redrawn(**{S1: box(0, 0, 200, 500)}))
    report = run_import(GridImporter(valid_from="2024-07-01"), path, commit=False, preview=True)
    assert report.failure.kind == "topology" and not report.committed
    assert (report.counts["redrawn"], report.counts["relinked"]) == (1, 1)
    roles = [feature["properties"]["role"] for feature in report.preview]
    assert (roles.count("problem"), roles.count("relinked"), roles.count("grid")) == (1, 1, 14)
    moved = next(f for f in report.preview if f["properties"]["role"] == "relinked")
    assert moved["properties"] == {"role": "relinked", "table": "address", "from": S1, "to": ""}
    assert Address.objects.get(code="A1").grid.code == S1
