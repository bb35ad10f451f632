"""import_persons: residents from CSV (UTF-8 or GBK) or XLSX, their ID numbers checked against
GB 11643, placed at an address or dwelling, upserted by the keyed digest of the ID number.
(What is stored of the ID number and phone is tested in tests/layers/test_personal.py.)"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from django.core.management import CommandError

from importers.base import run_import
from importers.registry import AddressImporter, PersonImporter
from layers.models import Person
from layers.protection.personal import mask_id_number, mask_phone
from layers.services.registry import dwellings_upsert
from tests.worlds.factories import grid_tree, region_chain
from tests.worlds.registry_tables import (
    ADDRESS_HEADER,
    ID_F,
    ID_M,
    IN_EAST,
    address_row,
    id_number,
    rejection_csv,
    run_command,
    write_csv,
    write_xlsx,
)

pytestmark = pytest.mark.django_db

HEADER = ["name", "id_number", "residence", "phone", "care_tags", "address_code", "dwelling_code"]
#: A valid ID number ending in X.
ID_X = "62010219700101008X"
KNOWN_TAGS = "elderly_alone, disabled, low_income, left_behind_child, veteran, key_person"


@pytest.fixture
def places(tmp_path):
    """Grids, address A1 in WEST and A2 in EAST, dwelling D2 at A2."""
    grids = grid_tree(region_chain()["community"])
    path = write_csv(tmp_path / "places.csv", ADDRESS_HEADER, [address_row("A1"), address_row("A2", IN_EAST)])
    run_import(AddressImporter(), path, commit=True)
    dwellings_upsert(
        frame=pd.DataFrame(
            [
                {
                    "code": "D2",
                    "building_code": "",
                    "address_code": "A2",
                    "use": "residential",
                    "occupancy": "owner",
                    "area_m2": 80.0,
                }
            ]
        )  # fmt: skip
    )
    return grids


def row(name: str = "张三", id_number: str = ID_F, **change: str) -> list[str]:
    values = {"name": name, "id_number": id_number, "residence": "户籍", "address_code": "A1"} | change
    return [values.get(column, "") for column in HEADER]


def persons_csv(tmp_path, rows, name="persons.csv", **options):
    return write_csv(tmp_path / name, HEADER, rows, **options)


def test_the_command_refuses_a_file_without_the_id_column(tmp_path, places):
    path = tmp_path / "persons.csv"
    path.write_text("姓名,户籍类型,地址编码\n张三,户籍,A1\n")
    with pytest.raises(CommandError) as error:
        run_command("import_persons", path, "--commit")
    assert str(error.value) == (
        "persons.csv: missing column(s) id_number; the header has name, residence, address_code; nothing was written"
    )


#: extra rows after the good row 2 (ID_F at A1) → expected rejections (row, field, value, reason)
BAD_ROWS = {
    "empty name": ([row("", ID_M)], [(3, "name", "", "required, but empty")]),
    "name too long": ([row("张" * 51, ID_M)], [(3, "name", "张" * 51, "longer than 50 characters")]),
    "empty ID number": ([row("李四", "")], [(3, "id_number", "", "required, but empty")]),
    "bad check digit": (
        [row("李四", "620102199507150039")],
        [(3, "id_number", "620102199507150039", "check digit is 9, expected 8")],
    ),
    "17 characters": (
        [row("李四", "62010219950715003")],
        [(3, "id_number", "62010219950715003", "must be 18 characters, got 17")],
    ),
    "15-digit old number": (
        [row("李四", "620102950715003")],
        [(3, "id_number", "620102950715003", "must be 18 characters, got 15")],
    ),
    "letter inside": (
        [row("李四", "6201021995O7150038")],
        [(3, "id_number", "6201021995O7150038", "must be 17 digits and a digit or X")],
    ),
    "impossible birth date": (
        [row("李四", id_number("62010219950230003"))],
        [(3, "id_number", id_number("62010219950230003"), "birth date 19950230 is not a date")],
    ),
    "birth date in the future": (
        [row("李四", id_number("62010220990101003"))],
        [(3, "id_number", id_number("62010220990101003"), "birth date 20990101 is out of range")],
    ),
    "duplicate ID number": (
        [row("张三三", ID_F)],
        [(3, "id_number", ID_F, "duplicate id_number, first seen on row 2")],
    ),
    "bad residence": (
        [row("李四", ID_M, residence="常住")],
        [(3, "residence", "常住", "must be registered/户籍 or floating/流动")],
    ),
    "empty residence": (
        [row("李四", ID_M, residence="")],
        [(3, "residence", "", "must be registered/户籍 or floating/流动")],
    ),
    "unknown care tag": (
        [row("李四", ID_M, care_tags="独居老人;贫困户")],
        [(3, "care_tags", "独居老人;贫困户", f"unknown care tag '贫困户'; known: {KNOWN_TAGS}")],
    ),
    "phone too short": ([row("李四", ID_M, phone="12345")], [(3, "phone", "12345", "not a phone number")]),
    "phone with a letter": (
        [row("李四", ID_M, phone="139-1234-567a")],
        [(3, "phone", "1391234567a", "not a phone number")],
    ),
    "no address and no dwelling": (
        [row("李四", ID_M, address_code="")],
        [(3, "address_code", "", "address_code or dwelling_code is required")],
    ),
    "unknown address_code": (
        [row("李四", ID_M, address_code="A404")],
        [(3, "address_code", "A404", "no address with this code in the database")],
    ),
    "unknown dwelling_code": (
        [row("李四", ID_M, address_code="", dwelling_code="D404")],
        [(3, "dwelling_code", "D404", "no dwelling with this code in the database")],
    ),
}


def shown_in_report(field: str, value: str) -> str:
    """ID numbers and phones appear masked in rejections: the report is a file on disk."""
    masks = {"id_number": mask_id_number, "phone": mask_phone}
    return masks[field](value) if field in masks and value else value


def test_rejected_personal_values_are_masked_in_the_report_file(tmp_path, places):
    bad_id = "620102199507150039"
    run_command(
        "import_persons",
        persons_csv(tmp_path, [row("赵一", bad_id), row("钱二", ID_M, phone="1391234567x")]),
        "--max-rejected",
        "100%",
    )
    text = (tmp_path / "r.csv").read_text(encoding="utf-8-sig")
    assert bad_id not in text and "1391234567x" not in text
    assert rejection_csv(tmp_path / "r.csv")[1:] == [
        ["2", "id_number", "620102***********9", "check digit is 9, expected 8"],
        ["3", "phone", "139****567x", "not a phone number"],
    ]


@pytest.mark.parametrize(("extra", "expected"), BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_a_bad_row_is_rejected_with_its_reason_and_the_rest_is_written(tmp_path, places, extra, expected):
    report = run_import(
        PersonImporter(), persons_csv(tmp_path, [row(), *extra]), commit=True, report_path=tmp_path / "r.csv"
    )
    assert [(r.row, r.field, r.value, r.reason) for r in report.rejections] == [
        (row_number, field, shown_in_report(field, value), reason) for row_number, field, value, reason in expected
    ]
    assert list(Person.objects.values_list("name", flat=True)) == ["张三"]


def test_a_file_with_many_problems_lists_each_rejected_row_once_in_the_report(tmp_path, places):
    rows = [
        row("赵一", "620102199507150039", residence="外地", phone="1"),  # the ID check comes first
        row("钱二", ID_X.lower(), residence="流动", care_tags="低保户"),  # a lower-case x is accepted
        row("孙三", ID_X),
        row("李四", ID_M, care_tags="vip"),
        row("周五", ID_F, residence="registered", phone="0931-8123456", address_code="", dwelling_code="D2"),
        row("吴六", id_number("62010219600101004"), address_code="A404"),
    ]
    lines = run_command("import_persons", persons_csv(tmp_path, rows), "--commit", "--max-rejected", "4")
    assert lines[0] == "persons.csv: committed: rows 6, created 2, updated 0, rejected 4"
    assert rejection_csv(tmp_path / "r.csv") == [
        ["row", "field", "value", "reason"],
        ["2", "id_number", "620102***********9", "check digit is 9, expected 8"],
        ["4", "id_number", shown_in_report("id_number", ID_X), "duplicate id_number, first seen on row 3"],
        ["5", "care_tags", "vip", f"unknown care tag 'vip'; known: {KNOWN_TAGS}"],
        ["7", "address_code", "A404", "no address with this code in the database"],
    ]
    assert sorted(Person.objects.values_list("name", "residence", "care_tags", "phone_masked")) == [
        ("周五", "registered", [], "0931****3456"),
        ("钱二", "floating", ["low_income"], ""),
    ]


def test_care_tags_take_codes_or_chinese_labels_and_any_separator(tmp_path, places):
    rows = [row(care_tags="独居老人；disabled，低保户, 独居老人")]
    run_command("import_persons", persons_csv(tmp_path, rows), "--commit")
    assert Person.objects.get().care_tags == ["elderly_alone", "disabled", "low_income"]


def test_a_gbk_csv_with_chinese_headers_imports(tmp_path, places):
    header = ["姓名", "公民身份号码", "户籍类型", "联系电话", "关爱标签", "地址编码", "户室编码"]
    rows = [["张三", ID_F, "户籍人口", "13912345678", "残疾人", "A1", ""], ["李四", ID_M, "流动人口", "", "", "", "D2"]]
    path = write_csv(tmp_path / "人口.csv", header, rows, encoding="gbk")
    assert run_command("import_persons", path, "--commit") == [
        "人口.csv: committed: rows 2, created 2, updated 0, rejected 0"
    ]
    zhang, li = Person.objects.get(name="张三"), Person.objects.get(name="李四")
    assert (zhang.residence, zhang.care_tags, zhang.phone_masked, zhang.address.code) == (
        "registered",
        ["disabled"],
        "139****5678",
        "A1",
    )
    assert (li.residence, li.dwelling.code, li.address.code) == ("floating", "D2", "A2")


def test_an_xlsx_workbook_imports(tmp_path, places):
    header = ["姓名", "身份证号", "户籍类型", "地址编码"]
    path = write_xlsx(tmp_path / "persons.xlsx", header, [["张三", ID_F, "户籍", "A1"], ["李四", "123", "户籍", "A1"]])
    assert run_command("import_persons", path, "--commit", "--max-rejected", "50%")[0] == (
        "persons.xlsx: committed: rows 2, created 1, updated 0, rejected 1"
    )
    assert rejection_csv(tmp_path / "r.csv")[1:] == [["3", "id_number", "***", "must be 18 characters, got 3"]]


def test_gender_and_birth_date_come_from_the_id_number(tmp_path, places):
    run_command("import_persons", persons_csv(tmp_path, [row("张三", ID_F), row("李四", ID_M)]), "--commit")
    assert sorted(Person.objects.values_list("name", "gender", "birth_date")) == [
        ("张三", "F", dt.date(1980, 1, 1)),
        ("李四", "M", dt.date(1995, 7, 15)),
    ]


def test_dry_run_then_commit_then_a_second_import_updates_by_id_number(tmp_path, places):
    path = persons_csv(tmp_path, [row("张三", ID_F), row("李四", ID_M, phone="13912345678")])
    assert run_command("import_persons", path) == [
        "persons.csv: dry run (nothing written; pass --commit to write): rows 2, created 2, updated 0, rejected 0"
    ]
    assert not Person.objects.exists()
    assert run_command("import_persons", path, "--commit")[0] == (
        "persons.csv: committed: rows 2, created 2, updated 0, rejected 0"
    )
    pks = dict(Person.objects.values_list("name", "pk"))
    assert run_command("import_persons", path, "--commit")[0] == (
        "persons.csv: committed: rows 2, created 0, updated 2, rejected 0"
    )
    assert dict(Person.objects.values_list("name", "pk")) == pks


def test_strict_stops_at_the_first_bad_row_in_file_order_and_writes_nothing(tmp_path, places):
    rows = [row(), row("李四", ID_M, care_tags="vip"), row("", id_number("62010219700101001"))]
    with pytest.raises(CommandError) as error:
        run_command("import_persons", persons_csv(tmp_path, rows), "--commit", "--strict")
    assert str(error.value) == (
        f"persons.csv: row 3, field care_tags = 'vip': unknown care tag 'vip'; known: {KNOWN_TAGS} "
        "(--strict: nothing was written)"
    )
    assert not Person.objects.exists()
