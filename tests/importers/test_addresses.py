"""import_addresses: standard addresses from CSV (UTF-8 or GBK) or XLSX, checked row by row,
converted from GCJ-02/BD-09, upserted by code and linked to their grids on the way in."""

from __future__ import annotations

import pytest
from django.contrib.gis.geos import Polygon
from django.core.management import CommandError

from importers.base import run_import
from importers.registry import AddressImporter
from layers.geocoding.crs import gcj02_to_bd09, wgs84_to_gcj02
from layers.models import Address, Building
from tests.worlds.factories import ORIGIN, grid_tree, region_chain
from tests.worlds.registry_tables import (
    HALF,
    IN_EAST,
    IN_WEST,
    NO_GRID,
    rejection_csv,
    run_command,
    write_csv,
    write_xlsx,
)

pytestmark = pytest.mark.django_db

HEADER = [
    "code",
    "lon",
    "lat",
    "district",
    "street",
    "road",
    "door_number",
    "compound",
    "building",
    "room",
    "full_text",
    "building_code",
]
CITY = "point is outside the city (102.3,35.5 – 104.6,37.3)"


@pytest.fixture
def grids():
    return grid_tree(region_chain()["community"])


def row(code: str, point: tuple[str, str] = IN_WEST, **change: str) -> list[str]:
    values = {"code": code, "lon": point[0], "lat": point[1], "road": "庆阳路", "door_number": "1号", "full_text": ""}
    values |= change
    return [values.get(column, "") for column in HEADER]


def addresses_csv(tmp_path, rows, name="addresses.csv", **options):
    return write_csv(tmp_path / name, HEADER, rows, **options)


# ---------------------------------------------------------------------------------------------
# Whole-file problems: the command refuses the file and writes nothing.

#: file name → (bytes of the file, extra options, expected CommandError text)
BAD_FILES = {
    "empty": ("addresses.csv", b"", (), "addresses.csv: the file is empty; nothing was written"),
    "blank lines only": ("addresses.csv", b"\n \n", (), "addresses.csv: the file is empty; nothing was written"),
    "header only": (
        "addresses.csv",
        b"code,lon,lat,road\n",
        (),
        "addresses.csv: the file has a header but no data rows; nothing was written",
    ),
    "missing columns": (
        "addresses.csv",
        "地址编码,lon,道路\nA1,103.832,庆阳路\n".encode(),
        (),
        "addresses.csv: missing column(s) lat; the header has code, lon, road; nothing was written",
    ),
    "utf-16": (
        "addresses.csv",
        "code,lon,lat,road\nA1,103.832,36.065,庆阳路\n".encode("utf-16"),
        (),
        "addresses.csv: the file is UTF-16; re-save it as UTF-8 or GBK; nothing was written",
    ),
    "bytes invalid in UTF-8 and GB18030": (
        "addresses.csv",
        b"code,lon,lat,road\nA1,103.832,36.065,ok\nA2,103.832,36.065,\xff\n",
        (),
        "addresses.csv: line 3: bytes are not valid utf-8-sig or gb18030; re-save the file as UTF-8 or GBK "
        "or pass --encoding; nothing was written",
    ),
    "GBK bytes read as the UTF-8 the user named": (
        "addresses.csv",
        "code,lon,lat,road\nA1,103.832,36.065,庆阳路\n".encode("gbk"),
        ("--encoding", "utf-8"),
        "addresses.csv: line 2: bytes are not valid utf-8; re-save the file as UTF-8 or GBK or pass --encoding; "
        "nothing was written",
    ),
    "unknown encoding": (
        "addresses.csv",
        b"code,lon,lat,road\nA1,103.832,36.065,x\n",
        ("--encoding", "klingon"),
        "--encoding: unknown encoding 'klingon'",
    ),
    "unsupported extension": (
        "addresses.json",
        b"[]",
        (),
        "addresses.json: unsupported table format .json; expected .csv or .xlsx; nothing was written",
    ),
    "no extension": (
        "addresses",
        b"code,lon,lat\n",
        (),
        "addresses: unsupported table format (none); expected .csv or .xlsx; nothing was written",
    ),
    "damaged workbook": (
        "addresses.xlsx",
        b"not a zip",
        (),
        "addresses.xlsx: not a readable XLSX workbook (BadZipFile: File is not a zip file); nothing was written",
    ),
    "bad --crs": (
        "addresses.csv",
        b"code,lon,lat,road\nA1,103.832,36.065,x\n",
        ("--crs", "utm50"),
        "--crs must be one of wgs84, cgcs2000, gcj02, bd09, got 'utm50'",
    ),
}


@pytest.mark.parametrize(("name", "content", "options", "message"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_file_that_cannot_be_used_is_refused_with_its_name(tmp_path, grids, name, content, options, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CommandError) as error:
        run_command("import_addresses", path, "--commit", *options)
    assert str(error.value) == message
    assert not Address.objects.exists()
    assert not (tmp_path / "r.csv").exists()


def test_a_missing_file_is_refused(tmp_path, grids):
    with pytest.raises(CommandError) as error:
        run_command("import_addresses", tmp_path / "nowhere.csv", "--commit")
    assert str(error.value) == "nowhere.csv: no such file; nothing was written"


def test_a_bad_crs_is_refused_before_the_file_is_read(tmp_path):
    with pytest.raises(CommandError) as error:
        run_command("import_addresses", tmp_path / "nowhere.csv", "--crs", "EPSG:3857")
    assert str(error.value) == "--crs must be one of wgs84, cgcs2000, gcj02, bd09, got 'EPSG:3857'"


# ---------------------------------------------------------------------------------------------
# Row problems: each bad row is rejected with its field, value and reason; the rest is written.

#: extra rows after the good row 2 → expected rejections (row, field, value, reason)
BAD_ROWS = {
    "empty code": ([row("")], [(3, "code", "", "required, but empty")]),
    "code too long": ([row("A" * 33)], [(3, "code", "A" * 33, "longer than 32 characters")]),
    "door number too long": (
        [row("A2", door_number="9" * 21)],
        [(3, "door_number", "9" * 21, "longer than 20 characters")],
    ),
    "full_text too long": (
        [row("A2", full_text="路" * 301)],
        [(3, "full_text", "路" * 301, "longer than 300 characters")],
    ),
    "composed full_text too long": (
        [
            row(
                "A2",
                road="路" * 50,
                door_number="号" * 20,
                compound="区" * 100,
                district="县" * 50,
                street="街" * 50,
                room="室" * 20,
                building="楼" * 20,
            )
        ],
        [
            (
                3,
                "full_text",
                "县" * 50 + "街" * 50 + "路" * 50 + "号" * 20 + "区" * 100 + "楼" * 20 + "室" * 20,
                "longer than 300 characters",
            )
        ],
    ),  # fmt: skip
    "duplicate code": ([row("A1", IN_EAST)], [(3, "code", "A1", "duplicate code, first seen on row 2")]),
    "lon not a number": ([row("A2", ("103,83", IN_WEST[1]))], [(3, "lon", "103,83", "not a number")]),
    "lon empty": ([row("A2", ("", IN_WEST[1]))], [(3, "lon", "", "not a number")]),
    "lat not a number": ([row("A2", (IN_WEST[0], "北纬36"))], [(3, "lat", "北纬36", "not a number")]),
    "swapped lon/lat": (
        [row("A2", (IN_WEST[1], IN_WEST[0]))],
        [(3, "lon", IN_WEST[1], "longitude and latitude look swapped")],
    ),
    "outside the city": ([row("A2", ("116.397", "39.909"))], [(3, "lon", "116.397", CITY)]),
    "latitude outside the city": ([row("A2", ("103.832", "38.5"))], [(3, "lon", "103.832", CITY)]),
    "no full_text and no road": (
        [row("A2", road="", full_text="")],
        [(3, "full_text", "", "full_text or road is required")],
    ),
    "unknown building_code": (
        [row("A2", building_code="B404")],
        [(3, "building_code", "B404", "no building with this code in the database")],
    ),
}


@pytest.mark.parametrize(("extra", "expected"), BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_a_bad_row_is_rejected_with_its_reason_and_the_rest_is_written(tmp_path, grids, extra, expected):
    path = addresses_csv(tmp_path, [row("A1"), *extra])
    report = run_import(AddressImporter(), path, commit=True, report_path=tmp_path / "r.csv")
    assert [(r.row, r.field, r.value, r.reason) for r in report.rejections] == expected
    assert list(Address.objects.values_list("code", flat=True)) == ["A1"]
    assert report.counts["rejected"] == 1


def test_a_row_with_several_problems_gets_one_reason_and_the_report_lists_rows_in_file_order(tmp_path, grids):
    path = addresses_csv(
        tmp_path,
        [
            row("A1", ("x", "y"), road=""),  # lon, lat and text all bad: the first check in order wins
            row("A2"),
            row("", ("36.06", "103.83")),
            row("A2", IN_EAST),
            row("A3", NO_GRID, road="", full_text="兰州市城关区某地"),
            row("A4", ("103.832", "36.065"), building_code="B404"),
            row("A5", ("0", "0")),
        ],
    )
    lines = run_command("import_addresses", path, "--commit", "--max-rejected", "5")
    assert lines[0] == ("addresses.csv: committed: rows 7, created 2, updated 0, outside_grids 1, rejected 5")
    assert lines[1] == f"  rejected rows listed in {tmp_path / 'r.csv'}"
    assert rejection_csv(tmp_path / "r.csv") == [
        ["row", "field", "value", "reason"],
        ["2", "full_text", "", "full_text or road is required"],
        ["4", "code", "", "required, but empty"],
        ["5", "code", "A2", "duplicate code, first seen on row 3"],
        ["7", "building_code", "B404", "no building with this code in the database"],
        ["8", "lon", "0", CITY],
    ]
    assert lines[2:] == [
        "  addresses.csv: row 2, field full_text = '': full_text or road is required",
        "  addresses.csv: row 4, field code = '': required, but empty",
        "  addresses.csv: row 5, field code = 'A2': duplicate code, first seen on row 3",
        "  addresses.csv: row 8, field lon = '0': " + CITY,
        "  addresses.csv: row 7, field building_code = 'B404': no building with this code in the database",
    ]
    assert sorted(Address.objects.values_list("code", flat=True)) == ["A2", "A3"]


def test_a_known_building_code_links_the_address_to_its_building(tmp_path, grids):
    lon, lat = ORIGIN
    building = Building.objects.create(code="B1", footprint=Polygon.from_bbox((lon, lat, lon + 0.001, lat + 0.001)))
    run_command("import_addresses", addresses_csv(tmp_path, [row("A1", building_code="B1")]), "--commit")
    assert Address.objects.get().building == building


# ---------------------------------------------------------------------------------------------
# Formats: GBK with the Chinese headers of government exports, XLSX.

CHINESE_HEADER = ["地址编码", "经度", "纬度", "区县", "街道", "道路", "门牌号", "小区", "楼栋", "单元", "楼层", "房号"]
CHINESE_ROWS = [
    ["GS-0001", *IN_WEST, "城关区", "酒泉路街道", "庆阳路", "１２号", "畅家巷小区", "3号楼", "2单元", "5层", "501室"],
    ["GS-0002", *IN_EAST, "", "", "张掖路", "8号", "", "", "", "", ""],
]


@pytest.mark.parametrize(
    "options", [(), ("--encoding", "gbk"), ("--encoding", "gb18030")], ids=["sniffed", "gbk", "gb18030"]
)
def test_a_gbk_csv_with_chinese_headers_imports(tmp_path, grids, options):
    path = write_csv(tmp_path / "地址.csv", CHINESE_HEADER, CHINESE_ROWS, encoding="gbk")
    lines = run_command("import_addresses", path, "--commit", *options)
    assert lines == ["地址.csv: committed: rows 2, created 2, updated 0, outside_grids 0, rejected 0"]
    first = Address.objects.get(code="GS-0001")
    assert (first.district_name, first.street_name, first.road, first.door_number) == (
        "城关区",
        "酒泉路街道",
        "庆阳路",
        "１２号",
    )
    assert (first.compound_name, first.building_number, first.entrance, first.floor, first.room) == (
        "畅家巷小区",
        "3号楼",
        "2单元",
        "5层",
        "501室",
    )
    # Without a full_text column the standard address is composed from its parts.
    assert first.full_text == "城关区酒泉路街道庆阳路１２号畅家巷小区3号楼2单元5层501室"
    assert Address.objects.get(code="GS-0002").full_text == "张掖路8号"
    assert first.grid == grids["west"] and Address.objects.get(code="GS-0002").grid == grids["east"]


def test_a_utf8_csv_with_a_bom_imports(tmp_path, grids):
    path = addresses_csv(tmp_path, [row("A1", full_text="庆阳路1号")], encoding="utf-8-sig")
    assert run_command("import_addresses", path, "--commit")[0].endswith(
        "created 1, updated 0, outside_grids 0, rejected 0"
    )
    assert Address.objects.get().full_text == "庆阳路1号"


def test_an_xlsx_workbook_imports_with_its_row_numbers(tmp_path, grids):
    path = write_xlsx(
        tmp_path / "addresses.xlsx", CHINESE_HEADER, [*CHINESE_ROWS, ["GS-0003", "abc", *CHINESE_ROWS[0][2:]]]
    )
    lines = run_command("import_addresses", path, "--commit", "--max-rejected", "1")
    assert lines[0] == "addresses.xlsx: committed: rows 3, created 2, updated 0, outside_grids 0, rejected 1"
    assert rejection_csv(tmp_path / "r.csv")[1:] == [["4", "lon", "abc", "not a number"]]
    assert Address.objects.get(code="GS-0001").location.coords == pytest.approx(tuple(map(float, IN_WEST)), abs=1e-9)


# ---------------------------------------------------------------------------------------------
# Coordinates from phone maps: converted to WGS84 before linking.

#: A true point 0.0005° (≈ 45 m) west of the WEST/EAST boundary: in WEST.
TRUE_POINT = (HALF - 0.0005, ORIGIN[1] + 0.005)


@pytest.mark.parametrize(
    ("crs", "shift"),
    [("gcj02", wgs84_to_gcj02), ("bd09", lambda lon, lat: gcj02_to_bd09(*wgs84_to_gcj02(lon, lat)))],
)
def test_phone_map_coordinates_land_in_the_grid_of_the_true_point(tmp_path, grids, crs, shift):
    lon, lat = (float(v) for v in shift(*TRUE_POINT))
    assert lon > HALF  # taken as WGS84, the shifted point would be in EAST
    path = addresses_csv(tmp_path, [row("A1", (f"{lon:.9f}", f"{lat:.9f}"))])
    run_command("import_addresses", path, "--commit", "--crs", crs)
    address = Address.objects.get()
    assert address.grid == grids["west"]
    assert address.location.coords == pytest.approx(TRUE_POINT, abs=1e-7)
    assert address.location.srid == 4326


def test_the_same_shifted_point_taken_as_wgs84_lands_in_the_wrong_grid(tmp_path, grids):
    lon, lat = (float(v) for v in wgs84_to_gcj02(*TRUE_POINT))
    run_command("import_addresses", addresses_csv(tmp_path, [row("A1", (f"{lon:.9f}", f"{lat:.9f}"))]), "--commit")
    assert Address.objects.get().grid == grids["east"]


# ---------------------------------------------------------------------------------------------
# Dry run, commit, updates, --strict.


def test_a_dry_run_reports_what_a_commit_would_do_and_writes_nothing(tmp_path, grids):
    path = addresses_csv(tmp_path, [row("A1"), row("A2", IN_EAST), row("A3", NO_GRID)])
    lines = run_command("import_addresses", path)
    assert lines == [
        "addresses.csv: dry run (nothing written; pass --commit to write): "
        "rows 3, created 3, updated 0, outside_grids 1, rejected 0"
    ]
    assert not Address.objects.exists()
    lines = run_command("import_addresses", path, "--commit")
    assert lines == ["addresses.csv: committed: rows 3, created 3, updated 0, outside_grids 1, rejected 0"]
    assert Address.objects.count() == 3


def test_a_second_import_updates_by_code_and_changes_nothing_else(tmp_path, grids):
    path = addresses_csv(tmp_path, [row("A1"), row("A2", IN_EAST)])
    run_command("import_addresses", path, "--commit")
    before = {a.code: (a.pk, a.full_text, a.location.coords, a.grid_id) for a in Address.objects.all()}
    lines = run_command("import_addresses", path, "--commit")
    assert lines == ["addresses.csv: committed: rows 2, created 0, updated 2, outside_grids 0, rejected 0"]
    assert {a.code: (a.pk, a.full_text, a.location.coords, a.grid_id) for a in Address.objects.all()} == before


def test_an_update_moves_the_address_and_its_links(tmp_path, grids):
    run_command("import_addresses", addresses_csv(tmp_path, [row("A1")]), "--commit")
    pk = Address.objects.get().pk
    moved = addresses_csv(tmp_path, [row("A1", IN_EAST, road="张掖路", door_number="8号"), row("A2")], name="v2.csv")
    lines = run_command("import_addresses", moved, "--commit")
    assert lines == ["v2.csv: committed: rows 2, created 1, updated 1, outside_grids 0, rejected 0"]
    address = Address.objects.get(code="A1")
    assert (address.pk, address.full_text, address.grid) == (pk, "张掖路8号", grids["east"])


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            # Row 3 fails a later check than row 4, but it comes first in the file.
            [row("A1"), row("A2", ("abc", IN_WEST[1])), row("")],
            "addresses.csv: row 3, field lon = 'abc': not a number (--strict: nothing was written)",
        ),
        (
            [row("A1"), row("A2", building_code="B404")],
            "addresses.csv: row 3, field building_code = 'B404': no building with this code in the database "
            "(--strict: nothing was written)",
        ),
    ],
    ids=["checked in python", "checked in the database"],
)
def test_strict_stops_at_the_first_bad_row_and_writes_nothing(tmp_path, grids, rows, message):
    with pytest.raises(CommandError) as error:
        run_command("import_addresses", addresses_csv(tmp_path, rows), "--commit", "--strict")
    assert str(error.value) == message
    assert not Address.objects.exists()
    assert not (tmp_path / "r.csv").exists()


def test_strict_with_clean_rows_commits(tmp_path, grids):
    lines = run_command("import_addresses", addresses_csv(tmp_path, [row("A1")]), "--commit", "--strict")
    assert lines == ["addresses.csv: committed: rows 1, created 1, updated 0, outside_grids 0, rejected 0"]
