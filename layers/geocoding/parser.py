"""A rule-based parser of Lanzhou addresses into components.

Pure functions over :func:`~layers.geocoding.normalize.address_normalize`'s canonical text: the
administrative prefix is read against small dictionaries (Lanzhou's districts, China's provinces,
major cities and the districts elsewhere whose names collide with Lanzhou's places), the rest by
the unit words the normaliser left (街道/镇/乡, 社区/村, 路/街/巷/弄/道, 号, 栋, 单元, 层, 室).
Numbers come out bare ("12", not "12号") so they compare directly with the index's keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .normalize import address_normalize

PROVINCE, CITY = "甘肃省", "兰州市"
LANZHOU_DISTRICTS = ("城关区", "七里河区", "西固区", "安宁区", "红古区", "永登县", "皋兰县", "榆中县", "兰州新区")
_SHORT_DISTRICTS = {name[:-1]: name for name in LANZHOU_DISTRICTS if name != "兰州新区"}

_PROVINCES = (
    "北京市 天津市 上海市 重庆市 河北省 山西省 辽宁省 吉林省 黑龙江省 江苏省 浙江省 安徽省 福建省 江西省 山东省 "
    "河南省 湖北省 湖南省 广东省 海南省 四川省 贵州省 云南省 陕西省 甘肃省 青海省 台湾省 内蒙古自治区 "
    "广西壮族自治区 西藏自治区 宁夏回族自治区 新疆维吾尔自治区 香港特别行政区 澳门特别行政区"
).split()
#: Gansu's other prefectures and China's major cities: a text naming one is not in Lanzhou.
_CITIES = (
    "嘉峪关 金昌 白银 天水 武威 张掖 平凉 酒泉 庆阳 定西 陇南 临夏 甘南 北京 上海 天津 重庆 广州 深圳 杭州 南京 "
    "苏州 济南 青岛 合肥 拉萨 日喀则 西宁 海东 银川 西安 宝鸡 咸阳 成都 武汉 长沙 郑州 洛阳 石家庄 太原 呼和浩特 "
    "包头 沈阳 大连 长春 哈尔滨 福州 厦门 南昌 南宁 海口 贵阳 昆明 乌鲁木齐 宁波 无锡 温州 东莞 佛山 徐州"
).split()
#: Districts of other cities, above all those sharing a name with a Lanzhou place or road
#: (上海普陀区永登路, 上海黄浦区皋兰路, 济南历城区七里河路, 合肥包河区兰州路) or in Gansu's other cities.
_FOREIGN_DISTRICTS = (
    "普陀区 黄浦区 徐汇区 静安区 长宁区 虹口区 杨浦区 闵行区 浦东新区 宝山区 历城区 历下区 槐荫区 天桥区 市中区 "
    "包河区 蜀山区 庐阳区 瑶海区 堆龙德庆区 达孜区 海淀区 朝阳区 东城区 西城区 丰台区 雁塔区 碑林区 莲湖区 未央区 "
    "灞桥区 武侯区 锦江区 青羊区 金牛区 成华区 城中区 城东区 城西区 城北区 兴庆区 金凤区 西峰区 秦州区 麦积区 "
    "甘州区 肃州区 凉州区 崆峒区 安定区 武都区 金川区 白银区 平川区"
).split()

_SUFFIXED = re.compile(r"(省|市|自治区|特别行政区|壮族自治区|回族自治区|维吾尔自治区)$")
_PROVINCE_SHORT = {_SUFFIXED.sub("", name): name for name in _PROVINCES}
_ANCHOR = re.compile(
    "|".join(
        sorted(
            {*_PROVINCES, CITY, *(c + "市" for c in _CITIES), *LANZHOU_DISTRICTS, *_FOREIGN_DISTRICTS},
            key=len,
            reverse=True,
        )
    )
)
# After a short name (西藏, 拉萨, 城关), what shows it is an admin level and not a road (天水北路,
# 城关镇, 皋兰路): a district or county word, or another admin name.
_ADMIN_NEXT = re.compile(r"[\u4e00-\u9fff]{1,4}?(区|县)|" + "|".join(_CITIES))
_NOT_DISTRICT_NEXT = re.compile(r"[东南西北中]?(大道|大街|路|街|巷|弄|道|镇|乡|桥|村|社区|区|县|新区|山|河)")
_STREET = re.compile(r"(.{1,8}?街道|(?:(?![路巷弄号街])[\u4e00-\u9fff]){1,6}?[镇乡])")
# 社区 names may hold a road's name (畅家巷社区); a 村 name may not, or 庆阳路和平村 would lose its road.
_COMMUNITY = re.compile(
    r"[\u4e00-\u9fff]{1,8}?(?:社区居民委员会|社区居委会|社区)"
    r"|(?:(?![路巷弄号街])[\u4e00-\u9fff]){1,8}?(?:村民委员会|村委会|村)"
)
# 街 and 道 end a road, but not as the 街道 of a street name (…五泉街道禄家巷).
_ROAD = re.compile(r"[\u4e00-\u9fffA-Z]{1,14}?(?:大道|大街|路|街(?!道)|巷|弄|(?<!街)道)")
# What is left between a road and its door number that is itself a road's tail (车道 + 东街).
_ROAD_TAIL = re.compile(r"[\u4e00-\u9fff]{0,4}(?:大道|大街|路|街|巷|弄|道)")
_TOKEN = re.compile(
    r"(?P<building>[0-9A-Z]+)栋|(?P<entrance>\d+)单元|(?P<floor>\d+)层|(?P<room>\d+)室"
    r"|(?P<door>\d+)[号弄]|(?P<bare>\d+(?:-\d+)*)|(?P<text>.+?)(?=\d(?!\d*期)|[A-Z]+栋|$)"
)


@dataclass
class AddressParts:
    """The components of one address; "" where the text did not say. ``foreign`` names the
    province, city or district outside Lanzhou the text starts with."""

    province: str = ""
    city: str = ""
    district: str = ""
    street: str = ""
    community: str = ""
    road: str = ""
    door: str = ""
    compound: str = ""
    building: str = ""
    entrance: str = ""
    floor: str = ""
    room: str = ""
    prefix: str = ""  # text before the first admin name (a business name, a remark)
    rest: str = ""  # text the rules did not place
    foreign: str = ""

    def as_dict(self) -> dict[str, str]:
        return {key: value for key, value in vars(self).items() if value}


def _admin(span: str, parts: AddressParts) -> str:
    """Reads province, city and district off the front of ``span``; returns what is left. Text
    before the first full admin name (老马牛肉面甘肃省兰州市…) is set aside as ``prefix``."""
    rest = _admin_front(span, parts)
    if rest == span and (anchor := _ANCHOR.search(span)) and anchor.start() > 0:
        parts.prefix = span[: anchor.start()]
        rest = _admin_front(span[anchor.start() :], parts)
    return rest


def _alternation(names) -> str:
    return "|".join(sorted(names, key=len, reverse=True))


_PROVINCE_RE = re.compile(f"({_alternation(_PROVINCES)})|({_alternation(_PROVINCE_SHORT)})(?={_ADMIN_NEXT.pattern})")
_CITY_RE = re.compile(f"({_alternation(_CITIES)})(?:市|(?={_ADMIN_NEXT.pattern}))")
_DISTRICT_RE = re.compile(
    f"({_alternation((*LANZHOU_DISTRICTS, *_FOREIGN_DISTRICTS))})"
    f"|({_alternation(_SHORT_DISTRICTS)})(?!{_NOT_DISTRICT_NEXT.pattern})"
)


def _admin_front(span: str, parts: AddressParts) -> str:
    if match := _PROVINCE_RE.match(span):
        parts.province = match.group(1) or _PROVINCE_SHORT[match.group(2)]
        span = span[match.end() :]
    if span.startswith("兰州市") or (
        span.startswith("兰州") and not span.startswith("兰州新区") and _admin_next(span[2:])
    ):
        parts.city, span = CITY, span[3 if span.startswith("兰州市") else 2 :]
    elif match := _CITY_RE.match(span):
        parts.city, span = match.group(1) + "市", span[match.end() :]
    if match := _DISTRICT_RE.match(span):
        parts.district = match.group(1) or _SHORT_DISTRICTS[match.group(2)]
        span = span[match.end() :]
    if parts.province and parts.province != PROVINCE:
        parts.foreign = parts.province
    elif parts.city and parts.city != CITY:
        parts.foreign = parts.city
    elif parts.district in _FOREIGN_DISTRICTS:
        parts.foreign = parts.district
    return span


def _admin_next(rest: str) -> bool:
    match = _DISTRICT_RE.match(rest)
    return bool(match) and (match.group(1) or "") in (*LANZHOU_DISTRICTS, "")


def _head(span: str, parts: AddressParts, *, door_follows: bool) -> None:
    """The text before the first number: admin names, street, community, road, compound."""
    span = _admin(span, parts)
    if match := _STREET.match(span):
        parts.street, span = match.group(0), span[match.end() :]
    if match := _COMMUNITY.match(span):
        parts.community, span = match.group(0), span[match.end() :]
    if match := _ROAD.match(span):
        parts.road, span = match.group(0), span[match.end() :]
        if door_follows and _ROAD_TAIL.fullmatch(span):
            # 车道东街61号, 北街西巷29号: the road's name holds a road word of its own.
            parts.road, span = parts.road + span, ""
    elif door_follows:
        # 张苏滩553号, 鱼池子85号: a place name that numbers doors is the road.
        parts.road, span = span, ""
    parts.compound = span


def address_parse(text: str) -> AddressParts:
    """The components of ``text`` (normalised first).

    >>> address_parse("甘肃省兰州市城关区酒泉路街道庆阳路123号金城花园3号楼2单元501室").as_dict()
    {'province': '甘肃省', 'city': '兰州市', 'district': '城关区', 'street': '酒泉路街道', 'road': '庆阳路', \
'door': '123', 'compound': '金城花园', 'building': '3', 'entrance': '2', 'room': '501'}
    >>> address_parse("七里河西园街道兰州路二十六号新城家属院二期2幢1门16楼1603").as_dict()
    {'district': '七里河区', 'street': '西园街道', 'road': '兰州路', 'door': '26', 'compound': '新城家属院二期', \
'building': '2', 'entrance': '1', 'floor': '16', 'room': '1603'}
    >>> address_parse("上海市普陀区永登路金环汇智天地277弄2号楼").as_dict()
    {'province': '上海市', 'district': '普陀区', 'road': '永登路', 'door': '277', 'compound': '金环汇智天地', \
'building': '2', 'foreign': '上海市'}
    >>> address_parse("西藏拉萨城关区").foreign, address_parse("包河区兰州路青网科技园8号楼301室").foreign
    ('西藏自治区', '包河区')
    >>> address_parse("榆中县清水驿乡火车站东路491号五泉花园14期1号楼").as_dict()
    {'district': '榆中县', 'street': '清水驿乡', 'road': '火车站东路', 'door': '491', 'compound': '五泉花园14期', \
'building': '1'}
    >>> address_parse("榆中县车道东街61号").as_dict()
    {'district': '榆中县', 'road': '车道东街', 'door': '61'}
    >>> address_parse("顺丰快递驿站城关五泉街道禄家巷48号").as_dict()
    {'road': '顺丰快递驿站城关五泉街道禄家巷', 'door': '48'}
    >>> address_parse("永登县城关镇南关弄37号").as_dict()
    {'district': '永登县', 'street': '城关镇', 'road': '南关弄', 'door': '37'}
    >>> address_parse("老马牛肉面 兰州市城关区皋兰路2-1-301").as_dict()
    {'city': '兰州市', 'district': '城关区', 'road': '皋兰路', 'building': '2', 'entrance': '1', 'room': '301', \
'prefix': '老马牛肉面'}
    """
    return address_parse_normalized(address_normalize(text))


def address_parse_normalized(normalized: str) -> AddressParts:
    """The components of a text :func:`address_normalize` already normalised."""
    parts = AddressParts()
    tokens = [(m.lastgroup, m.group(m.lastgroup)) for m in _TOKEN.finditer(normalized)]
    rest = []
    for index, (kind, value) in enumerate(tokens):
        after_head = index == 1 or (index == 0 and kind != "text")
        if kind == "text":
            if index == 0:
                following = tokens[1][0] if len(tokens) > 1 else ""
                _head(value, parts, door_follows=following in ("door", "bare"))
            elif parts.door and not parts.compound and not parts.building:
                parts.compound = value
            else:
                rest.append(value)
        elif kind == "door" and not parts.door and not parts.building and not (parts.compound and not after_head):
            parts.door = value
        elif kind in ("door", "building") and not parts.building:
            parts.building = value
        elif kind in ("entrance", "floor", "room") and not getattr(parts, kind):
            setattr(parts, kind, value)
        elif kind == "bare":
            numbers = value.split("-")
            if len(numbers) == 3 and not parts.building:
                parts.building, parts.entrance, parts.room = numbers
            elif len(numbers) == 2 and not parts.building:
                parts.building, parts.room = numbers
            elif after_head and not parts.door and parts.road:
                parts.door = numbers[0]  # 麻启街39幸福嘉园: the 号 was left out
            elif not parts.room:
                parts.room = numbers[0]
            else:
                rest.append(value)
        else:
            rest.append(value)
    parts.rest = "".join(rest)
    return parts
