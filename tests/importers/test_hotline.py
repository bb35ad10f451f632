"""import_hotline_events: a 12345-hotline export with Chinese headers (GBK CSV or XLSX) becomes
events on the hotline channel, located, dispatched, idempotent per ticket; bad rows are rejected
with exact reasons and personal values masked in the report."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError

from importers.base import run_import
from importers.hotline import HotlineImporter
from layers.models import Event, EventTransition
from layers.taxonomy import taxonomy_seed
from tests.worlds.factories import grid_tree, region_chain
from tests.worlds.registry_tables import IN_EAST, IN_WEST, NO_GRID, rejection_csv, run_command, write_csv, write_xlsx

pytestmark = pytest.mark.django_db

HEADER = ["工单编号", "来电时间", "诉求内容", "事项分类", "事发地址", "经度", "纬度", "来电号码", "联系人"]
TZ = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def grids():
    taxonomy_seed()
    return grid_tree(region_chain()["community"])


def ticket(number: str = "GD001", **change: str) -> list[str]:
    values = {
        "工单编号": number,
        "来电时间": "2025-03-01 08:15:00",
        "诉求内容": "小区楼道堆放杂物，存在火灾隐患",
        "事项分类": "安全隐患/消防隐患",
        "事发地址": "城关区庆阳路1号",
        "经度": IN_WEST[0],
        "纬度": IN_WEST[1],
        "来电号码": "13912345678",
        "联系人": "张三",
    } | change
    return [values[column] for column in HEADER]


def test_a_gbk_export_becomes_hotline_events(tmp_path, grids):
    path = write_csv(
        tmp_path / "12345.csv",
        HEADER,
        [
            ticket("GD001"),
            ticket("GD002", 事项分类="噪声扰民", 经度=IN_EAST[0], 纬度=IN_EAST[1], 来电时间="2025/7/2 22:05"),
            ticket("GD003", 事项分类="dispute", 经度="", 纬度="", 事发地址="不知道在哪里", 来电号码="", 联系人=""),
        ],
        encoding="gbk",
    )
    lines = run_command("import_hotline_events", path, "--commit")
    assert lines == ["12345.csv: committed: rows 3, created 3, existing 0, needs_location 1, rejected 0"]
    west, east, nowhere = Event.objects.order_by("external_id")
    assert (west.channel, west.category.code, west.grid_id, west.status) == (
        "hotline",
        "hazard.fire",
        grids["west"].pk,
        "assigned",
    )
    assert west.reported_at == dt.datetime(2025, 3, 1, 8, 15, tzinfo=TZ)
    assert (west.reporter_phone_masked, west.reporter_name_masked) == ("139****5678", "张*")
    assert west.department.code == "fire"
    assert (east.category.code, east.grid_id) == ("environment.noise", grids["east"].pk)
    assert east.reported_at == dt.datetime(2025, 7, 2, 22, 5, tzinfo=TZ)
    assert (nowhere.category.code, nowhere.needs_location, nowhere.status) == ("dispute", True, "received")
    assert EventTransition.objects.filter(event=west).count() == 3


def test_reimport_changes_nothing(tmp_path, grids):
    path = write_csv(tmp_path / "12345.csv", HEADER, [ticket("GD001"), ticket("GD002")])
    run_import(HotlineImporter(), path, commit=True)
    before = list(Event.objects.values_list("id", "version").order_by("id"))
    report = run_import(HotlineImporter(), path, commit=True)
    assert report.counts == {"rows": 2, "created": 0, "existing": 2, "needs_location": 0, "rejected": 0}
    assert list(Event.objects.values_list("id", "version").order_by("id")) == before
    assert EventTransition.objects.count() == 6


def test_dry_run_writes_nothing(tmp_path, grids):
    path = write_csv(tmp_path / "12345.csv", HEADER, [ticket("GD001")])
    lines = run_command("import_hotline_events", path)
    assert lines[0] == (
        "12345.csv: dry run (nothing written; pass --commit to write): "
        "rows 1, created 1, existing 0, needs_location 0, rejected 0"
    )
    assert not Event.objects.exists()


def test_xlsx_with_the_call_type_column_beside_the_subject(tmp_path, grids):
    """An export with both 诉求类别 (投诉/咨询: the kind of call) and 事项分类 (the subject) reads
    the subject."""
    header = [*HEADER, "诉求类别"]
    path = write_xlsx(tmp_path / "12345.xlsx", header, [[*ticket("GD009", 事项分类="路灯"), "投诉"]])
    report = run_import(HotlineImporter(), path, commit=True)
    assert report.counts["created"] == 1
    assert Event.objects.get().category.code == "municipal.streetlight"


def test_gcj02_coordinates_are_converted(tmp_path, grids):
    from layers.geocoding.crs import wgs84_to_gcj02

    lon, lat = (f"{float(v):.7f}" for v in wgs84_to_gcj02(float(IN_EAST[0]), float(IN_EAST[1])))
    path = write_csv(tmp_path / "12345.csv", HEADER, [ticket("GD001", 经度=lon, 纬度=lat)])
    run_import(HotlineImporter(crs="gcj02"), path, commit=True)
    assert Event.objects.get().grid_id == grids["east"].pk


UNKNOWN_CATEGORY = (
    "unknown category; expected a category name or code such as 消防隐患, 安全隐患/消防隐患 or hazard.fire"
)


@pytest.mark.parametrize(
    "change, field, value, reason",
    [
        ({"工单编号": ""}, "external_id", "", "required, but empty"),
        ({"工单编号": "G" * 65}, "external_id", "G" * 65, "longer than 64 characters"),
        ({"来电时间": ""}, "reported_at", "", "required, but empty"),
        ({"来电时间": "昨天下午"}, "reported_at", "昨天下午", "not a date-time; expected YYYY-MM-DD HH:MM[:SS]"),
        ({"来电时间": "2025-02-30 08:00"}, "reported_at", "2025-02-30 08:00",
         "not a date-time; expected YYYY-MM-DD HH:MM[:SS]"),
        ({"来电时间": "2099-01-01 08:00"}, "reported_at", "2099-01-01 08:00", "lies in the future"),
        ({"诉求内容": ""}, "description", "", "required, but empty"),
        ({"诉求内容": "很" * 10_001}, "description", "很" * 10_001, "longer than 10000 characters"),
        ({"事项分类": "外星人入侵"}, "category", "外星人入侵", UNKNOWN_CATEGORY),
        ({"事项分类": ""}, "category", "", "required, but empty"),
        ({"事发地址": "路" * 301}, "address", "路" * 301, "longer than 300 characters"),
        ({"来电号码": "call me"}, "reporter_phone", "******", "not a phone number"),
        ({"来电号码": "1391234567890123"}, "reporter_phone", "139****0123", "not a phone number"),
        ({"联系人": "张" * 51}, "reporter_name", "张" + "*" * 50, "longer than 50 characters"),
        ({"经度": "abc"}, "lon", "abc", "not a number"),
        ({"经度": IN_WEST[1], "纬度": IN_WEST[0]}, "lon", IN_WEST[1], "longitude and latitude look swapped"),
        ({"经度": "116.4", "纬度": "39.9"}, "lon", "116.4",
         "point is outside the city (102.3,35.5 – 104.6,37.3)"),
    ],
)  # fmt: skip
def test_bad_rows(tmp_path, grids, change, field, value, reason):
    """One bad row among good ones: rejected with its reason (personal values masked), the rest
    imported."""
    path = write_csv(tmp_path / "12345.csv", HEADER, [ticket("GD001"), ticket("GD002", **change)], encoding="gb18030")
    report = run_import(HotlineImporter(), path, commit=True, report_path=tmp_path / "r.csv")
    assert [(r.row, r.field, r.value, r.reason) for r in report.rejections] == [(3, field, value, reason)]
    assert rejection_csv(tmp_path / "r.csv") == [["row", "field", "value", "reason"], ["3", field, value, reason]]
    assert list(Event.objects.values_list("external_id", flat=True)) == ["GD001"]


def test_a_repeated_ticket_names_its_first_row(tmp_path, grids):
    path = write_csv(tmp_path / "12345.csv", HEADER, [ticket("GD001"), ticket("GD001")])
    report = run_import(HotlineImporter(), path, commit=True)
    assert [(r.row, r.field, r.reason) for r in report.rejections] == [
        (3, "external_id", "duplicate external_id, first seen on row 2")
    ]


def test_strict_stops_and_writes_nothing(tmp_path, grids):
    path = write_csv(tmp_path / "12345.csv", HEADER, [ticket("GD001"), ticket("GD002", 事项分类="外星人入侵")])
    with pytest.raises(CommandError) as error:
        run_command("import_hotline_events", path, "--commit", "--strict")
    assert str(error.value) == (
        f"12345.csv: row 3, field category = '外星人入侵': {UNKNOWN_CATEGORY} (--strict: nothing was written)"
    )
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    "options, message",
    [
        (("--encoding", "klingon"), "--encoding: unknown encoding 'klingon'"),
        (("--crs", "mars"), "--crs must be one of wgs84, cgcs2000, gcj02, bd09, got 'mars'"),
    ],
)
def test_bad_options_are_refused_before_reading(tmp_path, grids, options, message):
    with pytest.raises(CommandError) as error:
        run_command("import_hotline_events", tmp_path / "absent.csv", *options)
    assert str(error.value) == message


def test_a_file_without_the_ticket_column(tmp_path, grids):
    path = tmp_path / "12345.csv"
    path.write_text("来电时间,诉求内容,事项分类\n2025-03-01 08:00,漏水,供水\n", encoding="utf-8")
    with pytest.raises(CommandError) as error:
        run_command("import_hotline_events", path)
    assert str(error.value) == (
        "12345.csv: missing column(s) external_id; the header has reported_at, description, category; "
        "nothing was written"
    )


def test_an_unlocatable_point_outside_grids_is_still_stored(tmp_path, grids):
    path = write_csv(tmp_path / "12345.csv", HEADER, [ticket("GD001", 经度=NO_GRID[0], 纬度=NO_GRID[1])])
    run_import(HotlineImporter(), path, commit=True)
    event = Event.objects.get()
    assert (event.grid_id, event.needs_location, event.location is not None) == (None, False, True)
