"""Chinese address normalisation: one canonical spelling for the many ways a clerk types an address.

Pure functions, no database. :func:`address_normalize` is the only entry point the parser uses:
full-width → half-width (NFKC), 號 → 号, Chinese numerals → digits where they count doors,
buildings, entrances, floors and rooms, unit synonyms folded to one token each, remarks in
brackets, whitespace and punctuation dropped.
"""

from __future__ import annotations

import re
import unicodedata

#: Canonical unit words the parser reads; every synonym is folded into one of these.
BUILDING, ENTRANCE, FLOOR, ROOM, DOOR = "栋", "单元", "层", "室", "号"

_DIGITS = {
    "零": 0,
    "〇": 0,
    "○": 0,
    "一": 1,
    "幺": 1,  # 1 as it is spoken in numbers (三零幺室)
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_NUMERAL = "零〇○一幺二两三四五六七八九十百千"
# A Chinese numeral is only a number where a counting unit follows it: 三单元, 五〇一室,
# 一千零八号, and the phase of a compound (二期 and 2期 are one compound). Elsewhere it is part of
# a name (七里河, 五泉山, 二十里铺) and stays as written.
_POSITIONAL = re.compile(rf"第?([{_NUMERAL}]+)(?=号|號|栋|幢|座|楼|单|门|层|室|房|户|弄|#|期)")
_TRADITIONAL = str.maketrans({"號": "号", "樓": "楼", "門": "门", "層": "层", "單": "单", "區": "区", "縣": "县"})
_REMARK = re.compile(r"[（(\[【][^）)\]】]*[）)\]】]")
_HASH_BUILDING = re.compile(r"([0-9A-Z]+)#楼?")
_SPLIT = re.compile(r"(?<=\d)[^0-9A-Z\u3400-\u9fff]+(?=\d)")
_NOISE = re.compile(r"[^0-9A-Z\u3007\u3400-\u9fff-]+")
# A hyphen joins numbers (2-1-301); elsewhere (92号-碧桂佳园) it only separates words.
_LONE_HYPHEN = re.compile(r"(?<![0-9A-Z])-+|-+(?![0-9A-Z])")
# A room number left without its 室 at the end (…1单元五〇二).
_TRAILING = re.compile(rf"(单元|单|门|层|栋|幢|座|楼|号)([{_NUMERAL}]+)$")
_HAS_NUMERAL = re.compile(f"[{_NUMERAL}]")
# Every unit word folded to one token each, in one pass. At one place the first alternative that
# fits wins: 号楼 before 号, 单元/单/门 before 楼.
_UNIT = re.compile(
    r"(?P<building>[0-9A-Z]+)(?:号楼|栋|幢|座)"
    # 3号院 is the courtyard, i.e. the door of the compound.
    r"|(?P<door>\d+)号院"
    # 单 alone is the short way to write 单元 (3单502室).
    r"|(?P<entrance>\d+)(?:单元|单|门)"
    # N楼 followed by an entrance is a building (3楼2单元); elsewhere (黄河印象25楼) a floor.
    r"|(?P<building_floor>\d+)楼(?=\d+(?:单元|单|门))"
    # …104楼道堆放杂物: 楼道, 楼梯, 楼上 are words of their own, not a floor.
    r"|(?P<floor>\d+)(?:层|楼(?![道梯上下顶前后里外]))"
    r"|(?P<room>\d+)(?:室|房|户)"
)
_UNIT_WORD = {
    "building": BUILDING,
    "door": DOOR,
    "entrance": ENTRANCE,
    "building_floor": BUILDING,
    "floor": FLOOR,
    "room": ROOM,
}


def _unit(match: re.Match) -> str:
    return match.group(match.lastgroup) + _UNIT_WORD[match.lastgroup]


def chinese_numeral_value(numeral: str) -> int:
    """The value of a Chinese numeral, positional (五〇一) or with units (一千零八).

    >>> [chinese_numeral_value(n) for n in ("十二", "二十三", "三", "五〇一", "一千零八", "十", "两百")]
    [12, 23, 3, 501, 1008, 10, 200]
    """
    if not any(ch in _UNITS for ch in numeral):
        return int("".join(str(_DIGITS[ch]) for ch in numeral))
    total, digit = 0, 0
    for ch in numeral:
        if ch in _UNITS:
            total += (digit or 1) * _UNITS[ch]
            digit = 0
        else:
            digit = _DIGITS[ch]
    return total + digit


def address_normalize(text: str) -> str:
    """The canonical spelling of an address.

    >>> address_normalize("甘肃省兰州市 城关区 庆阳路１２３號金城花园三幢二单元五〇一房")
    '甘肃省兰州市城关区庆阳路123号金城花园3栋2单元501室'
    >>> address_normalize("七里河区西园街道兰州路二十六号新城家属院二期2号楼1门一千零八室")
    '七里河区西园街道兰州路26号新城家属院2期2栋1单元1008室'
    >>> address_normalize("五泉花园六期二#楼1单元九 〇二")
    '五泉花园6期2栋1单元902'
    >>> address_normalize("兰州市雁宁路399号（甘肃省自考综合办公楼12层）")
    '兰州市雁宁路399号'
    >>> address_normalize("绿地之窗云峰a座 7112， 3楼2单元")
    '绿地之窗云峰A栋7112-3栋2单元'
    """
    # (Each step is skipped when the text holds nothing it changes: this runs on every query.)
    text = unicodedata.normalize("NFKC", text).upper().translate(_TRADITIONAL)
    if "(" in text or "[" in text or "【" in text:
        text = _REMARK.sub("", text)
    # Stray spaces go first, so 九 〇二室 and 60 2室 read as one number; a comma still separates.
    text = "".join(text.split())
    if _HAS_NUMERAL.search(text):
        text = _POSITIONAL.sub(lambda m: str(chinese_numeral_value(m.group(1))), text)
        text = _TRAILING.sub(lambda m: m.group(1) + str(chinese_numeral_value(m.group(2))), text)
    if "#" in text:
        text = _HASH_BUILDING.sub(r"\1" + BUILDING, text)  # 3#楼, 3#: the building
    # Punctuation between two numbers still separates them (7112, 3楼): keep a hyphen there.
    text = _NOISE.sub("", _SPLIT.sub("-", text))
    if "-" in text:
        text = _LONE_HYPHEN.sub("", text)
    return _UNIT.sub(_unit, text)


def road_key(road: str) -> str:
    """The road as the matcher indexes it: 弄 and 巷 are one suffix (lanes are written either way).

    >>> road_key("北园弄"), road_key("北园巷"), road_key("庆阳路")
    ('北园巷', '北园巷', '庆阳路')
    """
    return road[:-1] + "巷" if road.endswith("弄") else road


def number_key(value: str) -> str:
    """The number of a door, building, entrance, floor or room without its unit word.

    >>> number_key("12号"), number_key("3号楼"), number_key("A座"), number_key("501室"), number_key("")
    ('12', '3', 'A', '501', '')
    """
    value = unicodedata.normalize("NFKC", value).upper()
    value = _POSITIONAL.sub(lambda m: str(chinese_numeral_value(m.group(1))), value)
    match = re.search(r"[0-9A-Z]+", value)
    if not match:
        return ""
    number = match.group(0)
    return (number.lstrip("0") or "0") if number.isdigit() else number
