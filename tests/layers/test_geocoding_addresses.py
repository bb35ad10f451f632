"""Address text → standard address: the normaliser and parser tables, then the matcher on a
handful of hand-made addresses in the demo city's convention (and one in the bench's), the
foreign-city negatives of the shared CSV, typo fallbacks and precision levels."""

from __future__ import annotations

import csv

import pytest
from django.contrib.gis.geos import Point

from layers.geocoding.addresses import address_geocode, addresses_geocode
from layers.geocoding.index import address_index, address_index_reset
from layers.geocoding.normalize import address_normalize, chinese_numeral_value, number_key, road_key
from layers.geocoding.parser import address_parse
from layers.models import Address
from layers.services import linking
from tests.factories import ORIGIN, grid_tree, region_chain

# ---------------------------------------------------------------- normaliser


@pytest.mark.parametrize(
    ("numeral", "value"),
    [("十二", 12), ("二十三", 23), ("三", 3), ("五〇一", 501), ("一千零八", 1008), ("十", 10), ("两百零五", 205)],
)
def test_chinese_numerals(numeral, value):
    assert chinese_numeral_value(numeral) == value


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("庆阳路１２３號", "庆阳路123号"),  # full-width digits, 號
        ("ＡＢＣ大厦Ｂ座", "ABC大厦B栋"),  # full-width letters, 座
        ("庆阳路十二号", "庆阳路12号"),
        ("金城花园二十三栋", "金城花园23栋"),
        ("三单元五〇一室", "3单元501室"),
        ("庆阳路一千零八号", "庆阳路1008号"),
        ("3幢2门", "3栋2单元"),
        ("3号楼2单元", "3栋2单元"),
        ("3#楼", "3栋"),
        ("3楼2单元", "3栋2单元"),  # N楼 before an entrance: a building
        ("黄河印象25楼", "黄河印象25层"),  # elsewhere a floor
        ("501房", "501室"),
        ("501户", "501室"),
        ("七里河区 西园街道，兰州路", "七里河区西园街道兰州路"),  # spaces and punctuation dropped
        ("雁宁路399号（自考办公楼12层）", "雁宁路399号"),  # remark in brackets dropped
        ("1单元五〇二", "1单元502"),  # a trailing room without 室
        ("五泉花园三期", "五泉花园三期"),  # numerals in names stay
        ("7112， 3楼2单元", "7112-3栋2单元"),  # a comma still separates numbers
    ],
)
def test_normalize(text, normalized):
    assert address_normalize(text) == normalized


@pytest.mark.parametrize(
    ("function", "value", "key"),
    [
        (road_key, "北园弄", "北园巷"),
        (road_key, "北园巷", "北园巷"),
        (number_key, "012号", "12"),
        (number_key, "3号楼", "3"),
        (number_key, "B座", "B"),
        (number_key, "", ""),
    ],
)
def test_keys(function, value, key):
    assert function(value) == key


# ---------------------------------------------------------------- parser


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        (
            "甘肃省兰州市城关区酒泉路街道庆阳路123号金城花园3号楼2单元501室",
            dict(
                province="甘肃省",
                city="兰州市",
                district="城关区",
                street="酒泉路街道",
                road="庆阳路",
                door="123",
                compound="金城花园",
                building="3",
                entrance="2",
                room="501",
            ),
        ),
        ("城关庆阳路123号", dict(district="城关区", road="庆阳路", door="123")),  # district without 区
        ("兰州新区中川镇", dict(district="兰州新区", street="中川镇")),
        ("永登县城关镇南关巷", dict(district="永登县", street="城关镇", road="南关巷")),  # 城关镇 is no district
        ("皋兰路21号", dict(road="皋兰路", door="21")),  # 皋兰路 is a road, not 皋兰县
        ("七里河南路5号", dict(road="七里河南路", door="5")),
        ("青白石街道白道坪村", dict(street="青白石街道", community="白道坪村")),
        ("麻启街39幸福嘉园2栋", dict(road="麻启街", door="39", compound="幸福嘉园", building="2")),  # no 号
        ("庆阳路123号金城花园14期1号楼", dict(road="庆阳路", door="123", compound="金城花园14期", building="1")),
        ("皋兰路2-1-301", dict(road="皋兰路", building="2", entrance="1", room="301")),
        ("庆阳路1号3栋2单元5层501室", dict(road="庆阳路", door="1", building="3", entrance="2", floor="5", room="501")),
        ("老马牛肉面 兰州市城关区皋兰路", dict(prefix="老马牛肉面", city="兰州市", district="城关区", road="皋兰路")),
        ("天庆大道588号", dict(road="天庆大道", door="588")),
        ("上海市普陀区永登路", dict(province="上海市", district="普陀区", road="永登路", foreign="上海市")),
        ("西藏拉萨城关区", dict(province="西藏自治区", city="拉萨市", district="城关区", foreign="西藏自治区")),
        ("济南历城区七里河路", dict(city="济南市", district="历城区", road="七里河路", foreign="济南市")),
        ("包河区兰州路", dict(district="包河区", road="兰州路", foreign="包河区")),
        ("天水北路3号", dict(road="天水北路", door="3")),  # 天水 the road, not the city
    ],
)
def test_parse(text, parts):
    assert address_parse(text).as_dict() == parts


# ---------------------------------------------------------------- matcher

LON, LAT = ORIGIN[0] + 0.002, ORIGIN[1] + 0.005  # inside the WEST small grid

ROWS = [
    # code, road, door, compound, building, entrance, floor, room
    ("A1", "庆阳路", "123号", "金城花园", "3号楼", "2单元", "5层", "501室"),
    ("A2", "庆阳路", "123号", "金城花园", "3号楼", "2单元", "5层", "502室"),
    ("A3", "庆阳路", "123号", "金城花园", "3号楼", "", "", ""),
    ("A4", "庆阳路", "125号", "金城花园二期", "1号楼", "1单元", "1层", "101室"),
    ("A5", "北园巷", "82号", "碧桂花园", "6号楼", "1单元", "1层", "101室"),
    ("A6", "永登路", "5号", "兰石家属院", "1号楼", "1单元", "1层", "101室"),
    ("A7", "七里河路", "2号", "科技佳苑", "7号楼", "1单元", "7层", "701室"),
    ("A8", "兰州路", "8号", "青网家园", "8号楼", "3单元", "3层", "301室"),
    ("A9", "皋兰路", "21号", "", "1号楼", "1单元", "1层", "101室"),  # the bench's shape: no compound
]


@pytest.fixture
def addresses(db):
    regions = region_chain()
    grids = grid_tree(regions["community"])
    rows = []
    for code, road, door, compound, building, entrance, floor, room in ROWS:
        street = "基准街道" if code == "A9" else "酒泉路街道"
        rows.append(
            Address(
                code=code,
                district_name="城关区",
                street_name=street,
                road=road,
                door_number=door,
                compound_name=compound,
                building_number=building,
                entrance=entrance,
                floor=floor,
                room=room,
                full_text=f"甘肃省兰州市城关区{street}{road}{door}{compound}{building}{entrance}{room}",
                location=Point(LON, LAT, srid=4326),
            )
        )
    Address.objects.bulk_create(rows)
    linking.relink_all()
    address_index_reset()
    return {**regions, **grids}


def _best(text: str) -> tuple[str, str]:
    answer = address_geocode(text=text)
    assert answer.matched, answer.no_match_reason
    return answer.candidates[0].code, answer.candidates[0].precision


def test_exact_text_answers_room_with_its_grids(addresses):
    answer = address_geocode(text="甘肃省兰州市城关区酒泉路街道庆阳路123号金城花园3号楼2单元501室", limit=3)
    best = answer.candidates[0]
    assert (best.code, best.score, best.precision) == ("A1", 100.0, "room")
    assert (best.lon, best.lat) == pytest.approx((LON, LAT))
    assert best.grids == {
        "district": {"code": "620102000000", "name": "城关区"},
        "street": {"code": "620102001000", "name": "酒泉路街道"},
        "community": {"code": "620102001001", "name": "畅家巷社区"},
        "grid_large": {"code": addresses["large"].code, "name": "一大网格"},
        "grid_medium": {"code": addresses["medium"].code, "name": "一中网格"},
        "grid_small": {"code": addresses["west"].code, "name": "西小网格"},
    }
    assert [c.code for c in answer.candidates] == ["A1", "A2", "A3"]
    assert answer.candidates[1].grids == best.grids  # every candidate carries its areas
    assert answer.candidates[1].score < 100
    assert answer.method == "road_door"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("城关区庆阳路１２３号金城花园３栋２单元５０１室", "A1"),  # full-width digits
        ("庆阳路一百二十三号金城花园三幢二单元五〇一室", "A1"),  # Chinese numerals
        ("庆阳路123号金城花园3座2门501房", "A1"),  # synonyms
        ("庆阳路123金城花园3号楼2单元501", "A1"),  # missing 号 and 室
        ("庆阳路 123号  金城花园 3号楼 2单元 502室", "A2"),  # extra spaces
        ("金城超市 庆阳路123号金城花园3号楼2单元502室", "A2"),  # business name in front
        ("城关区北园弄82号碧桂花园6号楼1单元101室", "A5"),  # 巷 written 弄
        ("庆羊路123号金城花园3号楼2单元502室", "A2"),  # typo in the road
        ("庆阳路123号金成花园3号楼2单元502室", "A2"),  # typo in the compound
        ("兰州市庆阳路125号1号楼1单元101室", "A4"),  # dropped district, street and compound
        ("皋兰路21号1号楼1单元101室", "A9"),  # the bench's shape
        ("兰州市城关区永登路5号兰石家属院1号楼1单元101室", "A6"),  # a road named after a county
    ],
)
def test_noisy_text_finds_its_address(addresses, text, code):
    assert _best(text)[0] == code


@pytest.mark.parametrize(
    ("text", "code", "precision"),
    [
        ("庆阳路123号金城花园3号楼2单元501室", "A1", "room"),
        ("庆阳路123号金城花园3号楼", "A3", "building"),  # the building's door address, not a room
        ("庆阳路123号", "A3", "door"),
        ("庆阳路125号金城花园二期", "A4", "door"),
        ("金城花园二期", "A4", "compound"),  # no road: the compound's block
        ("金城花园二期1号楼1单元101室", "A4", "room"),
        ("城关区庆阳路", "A3", "road"),
        ("城关区", "620102000000", "district"),  # only admin levels: the region itself
        ("酒泉路街道", "620102001000", "street"),
        ("畅家巷社区", "620102001001", "community"),
    ],
)
def test_precision_levels(addresses, text, code, precision):
    assert _best(text) == (code, precision)


def test_admin_only_answer_has_no_point_and_its_chain(addresses):
    best = address_geocode(text="酒泉路街道").candidates[0]
    assert (best.full_text, best.lon, best.lat) == ("酒泉路街道", None, None)
    assert best.grids["district"] == {"code": "620102000000", "name": "城关区"}
    assert best.grids["grid_small"] is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("上海普陀区永登路5号", "外地地址 (outside Lanzhou): 上海市"),
        ("济南历城区七里河路2号", "外地地址 (outside Lanzhou): 济南市"),
        ("合肥包河区兰州路8号", "外地地址 (outside Lanzhou): 合肥市"),
        ("包河区兰州路8号8号楼3单元301室", "外地地址 (outside Lanzhou): 包河区"),
        ("拉萨城关区", "外地地址 (outside Lanzhou): 拉萨市"),
        ("上海黄浦区皋兰路21号", "外地地址 (outside Lanzhou): 上海市"),
        ("城关区幸福大路999号", "只匹配到城关区 (only the district matched; road or compound unknown)"),
        ("幸福大路999号", "没有找到道路或小区 (no known road or compound in the text)"),
        ("庆阳路777号", "最佳候选分数 52.1 低于 75 (best candidate scores 52.1, below 75; precision road)"),
    ],
)
def test_no_match_says_why(addresses, text, reason):
    answer = address_geocode(text=text)
    assert answer.no_match_reason == reason
    assert answer.best is None


def test_fallback_precision_is_reported_with_no_match(addresses):
    """A road with an unknown door: the road's addresses are listed at road precision."""
    answer = address_geocode(text="庆阳路777号")
    assert not answer.matched
    assert {c.precision for c in answer.candidates} == {"road"}


@pytest.mark.shared_data
def test_foreign_cities_of_the_shared_cases_do_not_match(addresses, shared_data):
    with shared_data("address", "cpca_addr_gansu_lanzhou_subset.csv").open(encoding="utf-8") as handle:
        texts = [row["原始地址"] for row in csv.DictReader(handle)]
    foreign = [
        t for t in texts if t.strip().startswith(("上海", "西藏", "拉萨", "济南", "历城区", "包河区", "甘肃省庆阳"))
    ]
    assert len(foreign) == 10
    for text in foreign:
        answer = address_geocode(text=text)
        assert answer.no_match_reason.startswith("外地地址 (outside Lanzhou): "), text
        assert answer.candidates == []


def test_index_is_rebuilt_when_the_table_changes(addresses):
    first = address_index()
    assert address_index() is first  # unchanged table: the cached index
    Address.objects.create(
        code="B1",
        district_name="城关区",
        road="民主西路",
        door_number="9号",
        full_text="甘肃省兰州市城关区民主西路9号",
        location=Point(LON, LAT, srid=4326),
    )
    assert _best("民主西路9号") == ("B1", "door")
    assert address_index() is not first


def test_batch_answers_in_order_and_forked_workers_agree(addresses):
    texts = ["庆阳路123号金城花园3号楼2单元501室", "上海普陀区永登路5号", "北园巷82号碧桂花园6号楼1单元101室"] * 400
    single = addresses_geocode(texts=texts)
    assert [a.candidates[0].code if a.matched else None for a in single[:3]] == ["A1", None, "A5"]
    forked = addresses_geocode(texts=texts, workers=2)
    assert [a.as_dict() for a in forked] == [a.as_dict() for a in single]
