"""import_units: businesses and organisations from CSV or XLSX, keyed by their GB 32100 unified
social credit code, located by their own lon/lat or by a standard address."""

from __future__ import annotations

import pytest
from django.core.management import CommandError

from importers.base import run_import
from importers.registry import AddressImporter, UnitImporter
from layers.geocoding.crs import wgs84_to_gcj02
from layers.models import Unit
from tests.worlds.factories import grid_tree, region_chain
from tests.worlds.registry_tables import (
    ADDRESS_HEADER,
    CREDIT_A,
    CREDIT_B,
    HALF,
    IN_EAST,
    IN_WEST,
    address_row,
    credit_code,
    rejection_csv,
    run_command,
    write_csv,
    write_xlsx,
)

pytestmark = pytest.mark.django_db

HEADER = ["credit_code", "name", "kind", "address_code", "address_text", "lon", "lat"]
KINDS = "enterprise, individual, government, institution, social, other"
CITY = "point is outside the city (102.3,35.5 – 104.6,37.3)"
CREDIT_C = credit_code("92620102MA7ABCDE1")


@pytest.fixture
def places(tmp_path):
    """Grids and address A2 in EAST."""
    grids = grid_tree(region_chain()["community"])
    path = write_csv(tmp_path / "places.csv", ADDRESS_HEADER, [address_row("A2", IN_EAST, road="张掖路", door="8号")])
    run_import(AddressImporter(), path, commit=True)
    return grids


def row(
    code: str = CREDIT_A, name: str = "兰州某某商贸有限公司", point: tuple[str, str] = IN_WEST, **change: str
) -> list[str]:
    values = {"credit_code": code, "name": name, "lon": point[0], "lat": point[1]} | change
    return [values.get(column, "") for column in HEADER]


def units_csv(tmp_path, rows, name="units.csv"):
    return write_csv(tmp_path / name, HEADER, rows)


#: extra rows after the good row 2 (CREDIT_A) → expected rejections (row, field, value, reason)
BAD_ROWS = {
    "empty credit code": ([row("")], [(3, "credit_code", "", "required, but empty")]),
    "empty name": ([row(CREDIT_B, "")], [(3, "name", "", "required, but empty")]),
    "name too long": ([row(CREDIT_B, "店" * 201)], [(3, "name", "店" * 201, "longer than 200 characters")]),
    "bad check character": (
        [row(CREDIT_B[:-1] + "J")],
        [(3, "credit_code", CREDIT_B[:-1] + "J", "check character is J, expected H")],
    ),
    "forbidden letter": (
        [row("91620102MA7ABCOE0J")],
        [
            (
                3,
                "credit_code",
                "91620102MA7ABCOE0J",
                "character 'O' is not allowed (GB 32100 uses 0-9 and A-Y without I, O, S, V, Z)",
            )
        ],
    ),
    "17 characters": ([row(CREDIT_B[:-1])], [(3, "credit_code", CREDIT_B[:-1], "must be 18 characters, got 17")]),
    "duplicate credit code (any case)": (
        [row(CREDIT_A.lower())],
        [(3, "credit_code", CREDIT_A, "duplicate credit_code, first seen on row 2")],
    ),
    "unknown kind": ([row(CREDIT_B, kind="startup")], [(3, "kind", "startup", f"must be one of {KINDS}")]),
    "no location and no address": (
        [row(CREDIT_B, point=("", ""))],
        [(3, "lon", "", "lon/lat or address_code is required")],
    ),
    "lon without lat": ([row(CREDIT_B, point=(IN_WEST[0], ""))], [(3, "lat", "", "not a number")]),
    "swapped lon/lat": (
        [row(CREDIT_B, point=(IN_WEST[1], IN_WEST[0]))],
        [(3, "lon", IN_WEST[1], "longitude and latitude look swapped")],
    ),
    "outside the city": ([row(CREDIT_B, point=("121.47", "31.23"))], [(3, "lon", "121.47", CITY)]),
    "unknown address_code": (
        [row(CREDIT_B, point=("", ""), address_code="A404")],
        [(3, "address_code", "A404", "no address with this code in the database")],
    ),
}


@pytest.mark.parametrize(("extra", "expected"), BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_a_bad_row_is_rejected_with_its_reason_and_the_rest_is_written(tmp_path, places, extra, expected):
    report = run_import(
        UnitImporter(), units_csv(tmp_path, [row(), *extra]), commit=True, report_path=tmp_path / "r.csv"
    )
    assert [(r.row, r.field, r.value, r.reason) for r in report.rejections] == expected
    assert list(Unit.objects.values_list("credit_code", flat=True)) == [CREDIT_A]


def test_kinds_take_codes_or_chinese_labels_and_default_to_enterprise(tmp_path, places):
    rows = [row(CREDIT_A, kind=""), row(CREDIT_B, kind="事业单位"), row(CREDIT_C.lower(), kind="individual")]
    lines = run_command("import_units", units_csv(tmp_path, rows), "--commit", "--max-rejected", "3")
    assert lines == ["units.csv: committed: rows 3, created 3, updated 0, rejected 0"]
    assert dict(Unit.objects.values_list("credit_code", "kind")) == {
        CREDIT_A: "enterprise",
        CREDIT_B: "institution",
        CREDIT_C: "individual",
    }


def test_a_file_with_many_problems_writes_the_rejection_report(tmp_path, places):
    rows = [
        row(CREDIT_A[:-1] + "0", kind="startup"),  # the credit code check comes first
        row(CREDIT_B, point=("", ""), address_code="A2"),
        row(CREDIT_C, "个体店", point=("", "")),
        row(CREDIT_B, "重复"),
    ]
    lines = run_command("import_units", units_csv(tmp_path, rows), "--commit", "--max-rejected", "3")
    assert lines[0] == "units.csv: committed: rows 4, created 1, updated 0, rejected 3"
    assert rejection_csv(tmp_path / "r.csv") == [
        ["row", "field", "value", "reason"],
        ["2", "credit_code", CREDIT_A[:-1] + "0", f"check character is 0, expected {CREDIT_A[-1]}"],
        ["4", "lon", "", "lon/lat or address_code is required"],
        ["5", "credit_code", CREDIT_B, "duplicate credit_code, first seen on row 3"],
    ]


def test_chinese_headers_in_an_xlsx_workbook_import(tmp_path, places):
    header = ["统一社会信用代码", "单位名称", "单位类型", "地址", "经度", "纬度"]
    path = write_xlsx(
        tmp_path / "单位.xlsx", header, [[CREDIT_A, "兰州某某商贸有限公司", "企业", "庆阳路1号", *IN_WEST]]
    )
    assert run_command("import_units", path, "--commit") == [
        "单位.xlsx: committed: rows 1, created 1, updated 0, rejected 0"
    ]
    unit = Unit.objects.get()
    assert (unit.kind, unit.address_text, unit.grid) == ("enterprise", "庆阳路1号", places["west"])


def test_gcj02_coordinates_are_converted(tmp_path, places):
    true_point = (HALF - 0.0005, float(IN_WEST[1]))
    lon, lat = (float(v) for v in wgs84_to_gcj02(*true_point))
    run_command(
        "import_units", units_csv(tmp_path, [row(point=(f"{lon:.9f}", f"{lat:.9f}"))]), "--commit", "--crs", "gcj02"
    )
    unit = Unit.objects.get()
    assert unit.location.coords == pytest.approx(true_point, abs=1e-7)
    assert unit.grid == places["west"]


def test_dry_run_then_commit_then_a_second_import_updates_by_credit_code(tmp_path, places):
    path = units_csv(tmp_path, [row(), row(CREDIT_B, "兰州某某医院", IN_EAST, kind="institution")])
    assert run_command("import_units", path) == [
        "units.csv: dry run (nothing written; pass --commit to write): rows 2, created 2, updated 0, rejected 0"
    ]
    assert not Unit.objects.exists()
    run_command("import_units", path, "--commit")
    renamed = units_csv(tmp_path, [row(name="兰州新名称有限公司")], name="v2.csv")
    assert run_command("import_units", renamed, "--commit") == [
        "v2.csv: committed: rows 1, created 0, updated 1, rejected 0"
    ]
    assert dict(Unit.objects.values_list("credit_code", "name")) == {
        CREDIT_A: "兰州新名称有限公司",
        CREDIT_B: "兰州某某医院",
    }


def test_strict_stops_at_the_first_bad_row_and_writes_nothing(tmp_path, places):
    rows = [row(), row(CREDIT_B, point=("", ""), address_code="A404"), row(CREDIT_C, kind="startup")]
    with pytest.raises(CommandError) as error:
        run_command("import_units", units_csv(tmp_path, rows), "--commit", "--strict")
    # The python checks run before the database ones: row 4 stops the run before row 3 is looked up.
    assert str(error.value) == (
        f"units.csv: row 4, field kind = 'startup': must be one of {KINDS} (--strict: nothing was written)"
    )
    assert not Unit.objects.exists()
