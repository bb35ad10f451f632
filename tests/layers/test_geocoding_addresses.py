"""Address text → standard address, as people type it.

Tables of texts and the exact answer expected (address code, precision, or the reason there is
none) for every failure family people type — the short ways to write units and rooms, addresses
inside sentences, compound names that hold 村, 路 or a district's name, communities as people
say them, places elsewhere in China from the national division list, nonsense — on a handful of
hand-made addresses in the demo city's convention, in two small grids. Then: answers that do not
depend on ``limit``, ambiguity across grids, and the index shared on disk.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
from django.contrib.gis.geos import Point

from layers.geocoding import index as index_module
from layers.geocoding.addresses import address_geocode, addresses_geocode
from layers.geocoding.divisions import foreign_divisions, is_ancestor, short_name
from layers.geocoding.gazetteer import Lexicon, community_aliases, homophone
from layers.geocoding.index import address_data_version, address_index, address_index_reset
from layers.geocoding.normalize import address_normalize, chinese_numeral_value, number_key, road_key
from layers.geocoding.parser import address_parse
from layers.models import Address
from layers.services import linking
from tests.worlds.factories import ORIGIN, grid_tree, region_chain

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
        ("3栋2单元104楼道堆放杂物", "3栋2单元104楼道堆放杂物"),  # 楼道 is the stairwell, not a floor
        ("501房", "501室"),
        ("501户", "501室"),
        ("3单502室", "3单元502室"),  # 单 for 单元
        ("三单五〇二", "3单元502"),
        ("三零幺室", "301室"),  # 幺: 1 as it is spoken
        ("金昌路11号院3栋", "金昌路11号3栋"),  # 号院 is the courtyard: the door
        ("七里河区 西园街道，兰州路", "七里河区西园街道兰州路"),  # spaces and punctuation dropped
        ("雁宁路399号（自考办公楼12层）", "雁宁路399号"),  # remark in brackets dropped
        ("1单元五〇二", "1单元502"),  # a trailing room without 室
        ("五泉花园三期", "五泉花园3期"),  # a compound's phase: 三期 and 3期 are one
        ("七里河五泉山", "七里河五泉山"),  # numerals in names stay
        ("7112， 3楼2单元", "7112-3栋2单元"),  # a comma still separates numbers
        ("白银路，92号-碧桂佳园", "白银路92号碧桂佳园"),  # a hyphen between words separates nothing
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


# ---------------------------------------------------------------- national divisions and names


@pytest.mark.parametrize(
    ("name", "level", "short"),
    [
        ("上海市", "province", "上海"),
        ("广西壮族自治区", "province", "广西"),
        ("临夏回族自治州", "city", "临夏"),
        ("黔东南苗族侗族自治州", "city", "黔东南"),
        ("嘉兴市", "city", "嘉兴"),
        ("临洮县", "county", "临洮"),
        ("普陀区", "county", "普陀"),
        ("矿区", "county", ""),  # too short to read alone
        ("洮阳镇", "township", ""),  # townships only by their full name
    ],
)
def test_short_names(name, level, short):
    assert short_name(name, level) == short


def test_the_national_list_knows_the_city_from_elsewhere(settings):
    """Every county and township of China is there; the city's own names are home, not foreign."""
    foreign = foreign_divisions(settings.MINQING_CITY_CODE)
    assert (foreign.province, foreign.city) == ("甘肃省", "兰州市")
    assert len(foreign.full) > 35_000
    assert {foreign.names[c] for c in foreign.full["临洮县"]} == {"临洮县"}
    assert foreign.full["普陀区"] == ("310107", "330903")  # Shanghai's and Zhoushan's
    assert {"城关区", "城关", "七里河区", "兰州", "甘肃", "酒泉路街道"} <= foreign.home
    assert "天水" not in foreign.home and "天水市" in foreign.full
    assert is_ancestor(("31",), foreign.full["普陀区"]) and not is_ancestor(("3701",), foreign.full["普陀区"])
    assert {d.name for d in foreign.own if d.level == "county"} == {
        "城关区", "七里河区", "西固区", "安宁区", "红古区", "永登县", "皋兰县", "榆中县", "兰州新区",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "canonical", "aliases"),
    [
        ("畅家巷社区居委会", "畅家巷社区", {"畅家巷社区居委会", "畅家巷居委会", "畅家巷社区"}),
        ("畅家巷社区", "畅家巷社区", {"畅家巷社区", "畅家巷居委会", "畅家巷社区居委会"}),
        ("红沟村民委员会", "红沟村", {"红沟村民委员会", "红沟村委会", "红沟村"}),
        ("白道坪村村民委员会", "白道坪村", {"白道坪村村民委员会", "白道坪村委会", "白道坪村", "白道坪村民委员会"}),
        ("桥头社区委会", "桥头社区", {"桥头社区委会", "桥头社区", "桥头居委会", "桥头社区居委会"}),
    ],
)
def test_communities_as_people_say_them(name, canonical, aliases):
    assert community_aliases(name) == (canonical, aliases)


@pytest.mark.parametrize(
    ("text", "near"),
    [
        ("庆羊路", [("庆阳路", 0.9)]),  # a homophone
        ("庆马路", [("庆阳路", 0.8)]),  # another character
        ("阳庆路", [("庆阳路", 0.8)]),  # two swapped
        ("庆阳大路", [("庆阳路", 0.8)]),  # one too many
        ("前街东接", [("前街东街", 0.9)]),
        ("前街东", [("前街东街", 0.8)]),  # one left out
        ("阳路", []),  # too short to guess
    ],
)
def test_one_edit_lookup(text, near):
    lexicon = Lexicon(["", "庆阳路", "前街东街", "张掖路"])
    assert [(lexicon.words[code], similarity) for code, similarity in lexicon.near(text)] == near


@pytest.mark.parametrize(
    ("text", "found", "start", "similarity"),
    [
        ("老马牛肉面庆阳路", ["庆阳路"], 5, 1.0),  # a business name before the road
        ("庆羊路", ["庆阳路"], 0, 0.9),  # a homophone
        ("我是庆羊路", ["庆阳路"], 2, 0.8),  # a homophone behind other words: a weaker reading
        ("我是庆马路", ["庆阳路"], 2, 0.5),  # another typo behind other words: two guesses
        ("金家东街", ["金崖东街"], 0, 0.8),  # a longer road within one edit beats the road 东街 at its end
        ("张记五金南昌路", ["南昌路"], 4, 1.0),  # 金南昌路 is not 金昌路 with a character too many
        ("无此路", [], 3, None),
    ],
)
def test_the_name_ending_a_text(text, found, start, similarity):
    lexicon = Lexicon(["东街", "金崖东街", "庆阳路", "南昌路", "金昌路"])
    words, at = lexicon.tail(text)
    assert ([lexicon.words[code] for code, _ in words], at) == (found, start)
    assert {value for _, value in words} == ({similarity} if found else set())


def test_homophones():
    assert homophone("庆羊路", "庆阳路") and homophone("城关去", "城关区")
    assert not homophone("庆马路", "庆阳路") and not homophone("庆阳", "庆阳路")


# ---------------------------------------------------------------- reading the text (no index)


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
        ("天水北路3号", dict(road="天水北路", door="3")),  # 天水 the road, not the city
        ("兰州路8号", dict(road="兰州路", door="8")),  # 兰州 the road, not the city
        # Units and rooms written the short way.
        ("3单502室", dict(entrance="3", room="502")),
        ("2单元301号", dict(entrance="2", room="301")),  # 号 after the entrance is the room
        ("3栋502号", dict(building="3", room="502")),
        ("庆阳路123号3号2单元", dict(road="庆阳路", door="123", building="3", entrance="2")),  # 号 after the door
        # An address inside a sentence: the greeting, the complaint and the phone are left out.
        (
            "您好，我是城关区金昌路11号3栋2单元的住户，楼上漏水，已经三天了",
            dict(district="城关区", road="金昌路", door="11", building="3", entrance="2", prefix="我是", rest="的住户"),
        ),
        (
            "地址：庆阳路123号金城花园3号楼501室，联系电话13912345678",
            dict(road="庆阳路", door="123", compound="金城花园", building="3", room="501"),
        ),
        # Places elsewhere: full names, and short ones read by what follows them.
        ("上海市普陀区永登路", dict(province="上海市", district="普陀区", road="永登路", foreign="上海市")),
        ("西藏拉萨城关区", dict(province="西藏自治区", city="拉萨市", district="城关区", foreign="西藏自治区")),
        ("济南历城区七里河路", dict(city="济南市", district="历城区", road="七里河路", foreign="济南市")),
        ("上海普陀永登路5号", dict(province="上海市", district="普陀区", road="永登路", door="5", foreign="上海市")),
        ("天水秦州民主路3号", dict(city="天水市", district="秦州区", road="民主路", door="3", foreign="天水市")),
        ("包河区兰州路", dict(district="包河区", road="兰州路", foreign="包河区")),
        (
            "临洮县洮阳镇庆阳路23号",
            dict(district="临洮县", street="洮阳镇", road="庆阳路", door="23", foreign="临洮县"),
        ),
        ("嘉兴庆阳路5号", dict(city="嘉兴市", road="庆阳路", door="5", foreign="嘉兴市")),
    ],
)
def test_parse(text, parts):
    assert address_parse(text).as_dict() == parts


# ---------------------------------------------------------------- the matcher on hand-made addresses

WEST = (ORIGIN[0] + 0.002, ORIGIN[1] + 0.005)
EAST = (ORIGIN[0] + 0.007, ORIGIN[1] + 0.005)

ROWS = [
    # code, road, door, compound, building, entrance, floor, room, grid
    ("A1", "庆阳路", "123号", "金城花园", "3号楼", "2单元", "5层", "501室", WEST),
    ("A2", "庆阳路", "123号", "金城花园", "3号楼", "2单元", "5层", "502室", WEST),
    ("A3", "庆阳路", "123号", "金城花园", "3号楼", "", "", "", WEST),
    ("A4", "庆阳路", "125号", "金城花园二期", "1号楼", "1单元", "1层", "101室", WEST),
    ("A5", "北园巷", "82号", "碧桂花园", "6号楼", "1单元", "1层", "101室", WEST),
    ("A6", "永登路", "5号", "兰石家属院", "1号楼", "1单元", "1层", "101室", WEST),
    ("A7", "七里河路", "2号", "科技佳苑", "7号楼", "1单元", "7层", "701室", WEST),
    ("A8", "兰州路", "8号", "青网家园", "8号楼", "3单元", "3层", "301室", WEST),
    ("A9", "皋兰路", "21号", "", "1号楼", "1单元", "1层", "101室", WEST),  # the old bench's shape: no compound
    # A compound ending in 村, one named like a district, one holding 路, a road holding 街.
    ("B1", "枣林街", "63号", "黄河新村", "5号楼", "", "", "", WEST),
    ("B2", "枣林街", "63号", "黄河新村", "5号楼", "1单元", "1层", "101室", WEST),
    ("B3", "枣林街", "63号", "黄河新村", "5号楼", "1单元", "1层", "102室", WEST),
    ("C1", "西津东路", "27号", "皋兰佳园二期", "1号楼", "", "", "", WEST),
    ("C2", "西津东路", "27号", "皋兰佳园二期", "1号楼", "2单元", "3层", "301室", WEST),
    ("D1", "拱星墩路", "42号", "铁路佳园二期", "1号楼", "", "", "", EAST),
    ("D2", "拱星墩路", "42号", "铁路佳园二期", "1号楼", "1单元", "1层", "101室", EAST),
    ("E1", "前街东街", "19号", "铂悦花园三期", "1号楼", "", "", "", EAST),
    ("E2", "前街东街", "19号", "铂悦花园三期", "1号楼", "1单元", "1层", "101室", EAST),
    # One compound name in both grids, on different roads.
    ("F1", "张苏东街", "11号", "幸福家园", "2号楼", "", "", "", WEST),
    ("F2", "张苏东街", "11号", "幸福家园", "2号楼", "1单元", "1层", "101室", WEST),
    ("G1", "东湖街", "30号", "幸福家园", "2号楼", "", "", "", EAST),
    ("G2", "东湖街", "30号", "幸福家园", "2号楼", "1单元", "1层", "101室", EAST),
    # A building with many rooms and no room named: the 601室, 202室, 102室 or 101室.
    ("H1", "金昌路", "11号", "雁滩苑四期", "3号楼", "", "", "", WEST),
    ("H2", "金昌路", "11号", "雁滩苑四期", "3号楼", "1单元", "1层", "101室", WEST),
    ("H3", "金昌路", "11号", "雁滩苑四期", "3号楼", "2单元", "1层", "101室", WEST),
    ("H4", "金昌路", "11号", "雁滩苑四期", "3号楼", "2单元", "1层", "102室", WEST),
    ("H5", "金昌路", "11号", "雁滩苑四期", "3号楼", "2单元", "2层", "202室", WEST),
    ("H6", "金昌路", "11号", "雁滩苑四期", "3号楼", "2单元", "6层", "601室", WEST),
]


@pytest.fixture
def addresses(db):
    regions = region_chain()
    grids = grid_tree(regions["community"])
    rows = []
    for code, road, door, compound, building, entrance, floor, room, (lon, lat) in ROWS:
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
                location=Point(lon, lat, srid=4326),
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
    assert (best.lon, best.lat) == pytest.approx(WEST)
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
    assert (answer.method, answer.ambiguous) == ("road_door", False)
    # Explained: what agrees, what does not.
    assert best.agrees == ["district", "street", "road", "door", "compound", "building", "entrance", "room"]
    assert (answer.candidates[1].agrees[-1], answer.candidates[1].differs) == ("entrance", ["room"])


@pytest.mark.parametrize(
    ("text", "code", "precision"),
    [
        # Units and rooms written the short way.
        ("庆阳路123号金城花园3号楼2单501室", "A1", "room"),
        ("城关区庆阳路123号金城花园3号楼2单元502号", "A2", "room"),
        ("庆阳路123号金城花园3栋2门501户", "A1", "room"),
        ("庆阳路123号金城花园3-2-502", "A2", "room"),
        ("庆阳路123号金城花园3幢二单元五〇一", "A1", "room"),
        ("庆阳路123号金城花园3幢2单元五零幺室", "A1", "room"),
        ("庆阳路１２３号金城花园３＃楼２单元５０２室", "A2", "room"),
        ("庆阳路一百二十三号金城花园三号楼二单元五〇二室", "A2", "room"),
        ("金城花园3号2单元502室", "A2", "room"),  # 号 after a compound: the building
        ("庆阳路123号金城花园3号楼2单元", "A3", "building"),  # no room: the building, not a room of it
        ("庆阳路123号金城花园3号楼", "A3", "building"),
        ("庆阳路123号金城花园3号楼901室", "A3", "building"),  # a room the building does not have
        # Addresses inside sentences.
        ("您好，我是城关区金昌路11号3栋2单元的住户，楼上漏水，已经三天了", "H1", "building"),
        ("投诉：金昌路11号雁滩苑四期3幢2门601楼道堆放杂物", "H6", "room"),
        ("地址：枣林街63号黄河新村5号楼1单元102室，联系电话13912345678", "B3", "room"),
        ("请问庆阳路123号金城花园3号楼这里的供暖什么时候恢复？", "A3", "building"),
        ("喂，你好，我在金昌路11号3号楼，有只狗一直叫", "H1", "building"),
        # Compound names that hold 村, 路, 街 or a district's name.
        ("黄河新村5号楼", "B1", "building"),
        ("黄河新村5号楼1单元102室", "B3", "room"),
        ("皋兰佳园二期1号楼2单元301室", "C2", "room"),
        ("城关区皋兰佳园2期1号楼", "C1", "building"),
        ("铁路佳园二期1号楼1单元101室", "D2", "room"),
        ("铁路佳园二期1号楼", "D1", "building"),
        ("前街东接19号", "E1", "door"),  # a typo in a road whose name holds 街
        ("前街东街19号铂悦花园三期1号楼1单元101室", "E2", "room"),
        # Typos, homophones, dropped parts.
        ("庆羊路123号金城花园3号楼2单元502室", "A2", "room"),
        ("庆阳路123号金成花园3号楼2单元502室", "A2", "room"),
        ("庆阳路123号金城花圆3号楼2单元502室", "A2", "room"),
        ("金城花园二期1号楼1单元101室", "A4", "room"),
        ("兰州市庆阳路125号1号楼1单元101室", "A4", "room"),
        ("城关区北园弄82号碧桂花园6号楼1单元101室", "A5", "room"),  # 巷 written 弄
        ("金城超市 庆阳路123号金城花园3号楼2单元502室", "A2", "room"),  # a business name in front
        ("庆阳路 123号  金城花园 3号楼 2单元 502室", "A2", "room"),
        ("庆阳路/123号|金城花园、3号楼·2单元\n502室", "A2", "room"),
        ("皋兰路21号1号楼1单元101室", "A9", "room"),
        ("兰州市城关区永登路5号兰石家属院1号楼1单元101室", "A6", "room"),  # roads named after places
        ("兰州路8号青网家园8号楼3单元301室", "A8", "room"),
        ("七里河路2号科技佳苑7号楼1单元701室", "A7", "room"),
        # Coarser texts answer at their level.
        ("庆阳路123号", "A3", "door"),
        ("庆阳路125号金城花园二期", "A4", "door"),
        ("金城花园二期", "A4", "compound"),
        ("城关区庆阳路", "A3", "road"),
        # Regions as people say them.
        ("城关区", "620102000000", "district"),
        ("酒泉路街道", "620102001000", "street"),
        ("畅家巷社区", "620102001001", "community"),
        ("畅家巷居委会", "620102001001", "community"),
        ("酒泉路街道畅家巷社区", "620102001001", "community"),
        ("兰州市", "620100000000", "city"),
        ("甘肃省兰州市", "620100000000", "city"),
    ],
)
def test_texts_as_people_type_them(addresses, text, code, precision):
    assert _best(text) == (code, precision)


def test_a_sentence_answers_the_building_address_in_the_right_grid(addresses):
    """The issue's sentence: the building's own address, with its point and grid, never a room."""
    answer = address_geocode(text="您好，我是城关区金昌路11号3栋2单元的住户，楼上漏水…", limit=3)
    best = answer.candidates[0]
    assert (best.code, best.precision, best.full_text) == (
        "H1",
        "building",
        "甘肃省兰州市城关区酒泉路街道金昌路11号雁滩苑四期3号楼",
    )
    assert best.grids["grid_small"]["code"] == addresses["west"].code
    assert (answer.normalized, answer.parsed["rest"]) == ("我是城关区金昌路11号3栋2单元的住户", "的住户")


@pytest.mark.parametrize(
    "text",
    [
        "金昌路11号3栋2单元",
        "城关区金昌路11号雁滩苑四期3号楼",
        "您好，我是城关区金昌路11号3栋2单元的住户",
        "金昌路11号3栋101室",  # 101室 in two entrances
        "庆阳路123号",
        "幸福家园2号楼1单元101室",
        "城关区庆阳路",
        "金城花园3号楼2单元",
    ],
)
def test_the_answer_does_not_depend_on_limit(addresses, text):
    """Event intake asks for one candidate, the API for five: the same answer, the same first
    candidate, and each shorter list the start of the longer."""
    answers = [address_geocode(text=text, limit=limit) for limit in (1, 2, 3, 5, 20)]
    longest = [c.code for c in answers[-1].candidates]
    for answer in answers:
        assert (answer.matched, answer.ambiguous, answer.no_match_reason) == (
            answers[-1].matched,
            answers[-1].ambiguous,
            answers[-1].no_match_reason,
        )
        assert [c.code for c in answer.candidates] == longest[: len(answer.candidates)]


def test_same_compound_in_two_grids_is_ambiguous_until_the_text_says_which(addresses):
    answer = address_geocode(text="幸福家园2号楼1单元101室")
    assert (answer.matched, answer.ambiguous, answer.best) == (False, True, None)
    assert answer.no_match_reason == (
        "2个网格的候选同样可能 (ambiguous: candidates in 2 small grids score within 5 of the best, 100.0)"
    )
    assert [(c.code, c.grids["grid_small"]["code"]) for c in answer.candidates] == [
        ("G2", addresses["east"].code),  # equal scores: the index's order (by road), the same every time
        ("F2", addresses["west"].code),
    ]
    assert _best("张苏东街11号幸福家园2号楼1单元101室") == ("F2", "room")
    assert _best("东湖街幸福家园2号楼") == ("G1", "building")
    assert address_geocode(text="幸福家园2号楼").ambiguous


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # Places elsewhere in China, from the national list: full and short forms.
        ("上海普陀区永登路5号", "外地地址 (outside Lanzhou): 上海市"),
        ("上海普陀金昌路11号", "外地地址 (outside Lanzhou): 上海市"),
        ("济南历城区七里河路2号", "外地地址 (outside Lanzhou): 济南市"),
        ("济南历城七里河路2号", "外地地址 (outside Lanzhou): 济南市"),
        ("合肥包河区兰州路8号", "外地地址 (outside Lanzhou): 合肥市"),
        ("包河区兰州路8号8号楼3单元301室", "外地地址 (outside Lanzhou): 包河区"),
        ("拉萨城关区", "外地地址 (outside Lanzhou): 拉萨市"),
        ("上海黄浦区皋兰路21号", "外地地址 (outside Lanzhou): 上海市"),
        ("天水秦州金昌路11号3栋", "外地地址 (outside Lanzhou): 天水市"),
        ("嘉兴市南湖区庆阳路123号", "外地地址 (outside Lanzhou): 嘉兴市"),
        ("嘉兴庆阳路123号金城花园3号楼", "外地地址 (outside Lanzhou): 嘉兴市"),
        ("浙江嘉兴庆阳路123号", "外地地址 (outside Lanzhou): 浙江省"),
        ("襄阳樊城区金昌路11号", "外地地址 (outside Lanzhou): 襄阳市"),
        ("烟台芝罘金昌路11号", "外地地址 (outside Lanzhou): 烟台市"),
        ("临洮县庆阳路123号", "外地地址 (outside Lanzhou): 临洮县"),
        ("陇西县巩昌镇金昌路11号", "外地地址 (outside Lanzhou): 陇西县"),
        ("洮阳镇庆阳路123号", "外地地址 (outside Lanzhou): 洮阳镇"),
        ("代县复兴路46号", "外地地址 (outside Lanzhou): 代县"),
        ("香港东区庆阳路1号", "外地地址 (outside Lanzhou): 香港特别行政区"),
        ("宁德市福鼎市铁路佳园二期1号楼", "外地地址 (outside Lanzhou): 宁德市"),
        # Nonsense and unknown places.
        ("今天天气很好", "没有找到道路或小区 (no known road or compound in the text)"),
        ("楼上太吵了怎么办", "没有找到道路或小区 (no known road or compound in the text)"),
        ("hello world", "没有找到道路或小区 (no known road or compound in the text)"),
        ("13912345678", "没有找到道路或小区 (no known road or compound in the text)"),
        ("？？？", "没有找到道路或小区 (no known road or compound in the text)"),
        ("3单502室", "没有找到道路或小区 (no known road or compound in the text)"),
        ("幸福大路999号", "没有找到道路或小区 (no known road or compound in the text)"),
        ("张掖路街道", "没有找到道路或小区 (no known road or compound in the text)"),  # a name, but not here
        ("城关区幸福大路999号", "只匹配到城关区 (only the district matched; road or compound unknown)"),
        ("庆阳路777号", "最佳候选分数 52.1 低于 75 (best candidate scores 52.1, below 75; precision road)"),
        # Words before a mistyped road: two guesses; the rest agreeing does not make it certain.
        (
            "城关区嘉庆马路123号3号楼2单元502室",
            "道路和小区都只是猜测 (neither the road nor the compound is certain: 庆马路 may be "
            "甘肃省兰州市城关区酒泉路街道庆阳路123号金城花园3号楼2单元502室; best candidate scores 87.2)",
        ),
    ],
)
def test_no_match_says_why(addresses, text, reason):
    answer = address_geocode(text=text)
    assert answer.no_match_reason == reason
    assert answer.best is None


def test_the_citys_own_place_names_are_not_foreign(addresses):
    """Roads and streets named after other cities (天水北路, 兰州路, 永登路, 张掖路街道) stay home."""
    for text in ("天水北路3号", "兰州路8号", "永登路5号", "张掖路街道", "白银路1号", "皋兰路21号", "城关区"):
        assert not address_geocode(text=text).parsed.get("foreign"), text


def test_admin_only_answer_has_no_point_and_its_chain(addresses):
    best = address_geocode(text="酒泉路街道").candidates[0]
    assert (best.full_text, best.lon, best.lat) == ("酒泉路街道", None, None)
    assert best.grids["district"] == {"code": "620102000000", "name": "城关区"}
    assert best.grids["grid_small"] is None


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
    assert first.path is None  # this transaction changed the table: a private index, not on disk
    Address.objects.create(
        code="K1",
        district_name="城关区",
        road="民主西路",
        door_number="9号",
        full_text="甘肃省兰州市城关区民主西路9号",
        location=Point(*WEST, srid=4326),
    )
    assert _best("民主西路9号") == ("K1", "door")
    assert address_index() is not first


def test_batch_answers_in_order_and_forked_workers_agree(addresses):
    texts = ["庆阳路123号金城花园3号楼2单元501室", "上海普陀区永登路5号", "北园巷82号碧桂花园6号楼1单元101室"] * 400
    single = addresses_geocode(texts=texts)
    assert [a.candidates[0].code if a.matched else None for a in single[:3]] == ["A1", None, "A5"]
    forked = addresses_geocode(texts=texts, workers=2)
    assert [a.as_dict() for a in forked] == [a.as_dict() for a in single]


# ---------------------------------------------------------------- the index shared on disk


@pytest.fixture
def committed(transactional_db, settings, tmp_path):
    """The hand-made addresses committed (a shared index is only written for committed data),
    and the index directory in a temporary folder."""
    settings.MINQING_GEOCODER_INDEX_DIR = tmp_path
    regions = region_chain()
    grid_tree(regions["community"])
    Address.objects.bulk_create(
        Address(
            code=code,
            district_name="城关区",
            street_name="酒泉路街道",
            road=road,
            door_number=door,
            compound_name=compound,
            building_number=building,
            entrance=entrance,
            floor=floor,
            room=room,
            full_text=f"{road}{door}{compound}{building}{entrance}{room}",
            location=Point(*at, srid=4326),
        )
        for code, road, door, compound, building, entrance, floor, room, at in ROWS
    )
    linking.relink_all()
    address_index_reset()
    yield tmp_path
    address_index_reset()


def test_the_index_is_written_once_and_opened_memory_mapped_by_the_next_process(committed, monkeypatch):
    assert address_data_version().pending == 0
    first = address_index()
    assert first.path == committed / address_data_version().key
    assert sorted(p.name for p in first.path.iterdir()) == [
        "block_keys.npy", "compound_rows.npy", "compound_start.npy", "gazetteer.pickle", "links.npy",
        "lonlat.npy", "matrix.npy", "meta.json", "road_start.npy", "texts.arrow",
    ]  # fmt: skip
    answer = address_geocode(text="金昌路11号3栋2单元").as_dict()

    # A new worker: nothing in its memory, and nothing may be built: it opens the copy on disk.
    address_index_reset()

    def no_build(*args, **kwargs):
        raise AssertionError("the index was built again")

    monkeypatch.setattr(index_module, "address_index_build", no_build)
    opened = address_index()
    assert opened is not first and opened.path == first.path
    assert isinstance(opened.matrix.base, np.memmap) or opened.matrix.base is not None
    np.testing.assert_array_equal(opened.matrix, first.matrix)
    assert address_geocode(text="金昌路11号3栋2单元").as_dict() == answer == {**answer, "ambiguous": False}
    assert answer["candidates"][0]["code"] == "H1"


def test_a_new_data_version_replaces_the_copy_on_disk(committed):
    old = address_index().path
    Address.objects.create(
        code="K1",
        district_name="城关区",
        road="民主西路",
        door_number="9号",
        full_text="民主西路9号",
        location=Point(*WEST, srid=4326),
    )
    assert _best("民主西路9号") == ("K1", "door")
    new = address_index().path
    assert new != old and new.exists() and not old.exists()
    assert [p.name for p in committed.iterdir() if not p.name.startswith(".")] == [new.name]


def test_an_index_directory_that_cannot_be_written_still_answers(committed, settings, caplog):
    """A read-only or full disk: the process answers from an index of its own, and says why."""
    blocked = committed / "not-a-directory"
    blocked.write_text("")
    settings.MINQING_GEOCODER_INDEX_DIR = blocked
    assert _best("金昌路11号3栋2单元601室") == ("H6", "room")
    assert address_index().path is None
    assert f"geocoder: cannot share the index under {blocked}" in caplog.text
