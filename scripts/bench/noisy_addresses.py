"""Labelled noisy address queries for ``geocode_noisy``: the families people type, with truth.

Each positive query starts from a standard address of the registry (a seeded sample of rows, as
the registry spells them) and varies one thing the way 12345 operators and residents do:

============== =====================================================================================
family          what varies
============== =====================================================================================
prefix          the administrative prefix: dropped, shortened, street or community only
building_word   how the building is written (栋, 幢, 号楼, 座, #, …)
entrance_word   how the entrance is written (单, 门, 单元, …)
room_word       how the room is written (室, 号, 户, none, …)
numerals        full-width digits and Chinese numerals
typo            one character of a road, compound or street name: a homophone or another slip
sentence        the address inside a sentence, in several positions, often without its room
compound_build  only the compound and the building (and maybe the room), maybe the district
punctuation     punctuation and spaces between the parts
============== =====================================================================================

and two negative families: ``foreign`` (an address elsewhere in China, from the national list of
divisions, built on the city's own road and compound names) and ``nonsense``.

**Two styles.** ``TUNING`` is the set the matcher was developed against; ``HELD_OUT`` uses other
templates and other noise for every family (other sentence templates, prefix patterns and unit
words, deletions, insertions and swapped characters instead of substitutions, spoken numerals
such as 幺 and 两, other separators, other shapes of foreign addresses, other nonsense), and is
generated with another seed. Both are reported; only the first was looked at while tuning.

**Truth.** A query is labelled by what its text states, not by the row it came from: the rows
consistent with every component the text states are looked up in the index. One row is the
answer; rows of one building mean the building's own address (a text naming no room names the
building); rows of one small grid, any of them; rows in several small grids make the query
ambiguous, and the right answer is to say so.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import connection
from rapidfuzz import process
from rapidfuzz.distance import OSA

from layers.geocoding.divisions import LEVEL_OF_CODE, foreign_divisions, short_name
from layers.geocoding.gazetteer import community_aliases, district_short
from layers.geocoding.index import COLUMN, AddressIndex
from layers.geocoding.normalize import address_normalize, number_key, road_key

POSITIVE = (
    "prefix",
    "building_word",
    "entrance_word",
    "room_word",
    "numerals",
    "typo",
    "sentence",
    "compound_build",
    "punctuation",
)
NEGATIVE = ("foreign", "nonsense")
FAMILIES = POSITIVE + NEGATIVE


@dataclass(frozen=True)
class Style:
    """The templates and noise of one query set (see the module docstring)."""

    name: str
    base_admin: tuple[str, ...]
    prefix: tuple[str, ...]
    building: tuple[str, ...]
    entrance: tuple[str, ...]
    room: tuple[str, ...]
    numerals: tuple[str, ...]
    typos: tuple[str, ...]
    sentences: tuple[str, ...]
    compound_build: tuple[str, ...]
    separators: tuple[str, ...]
    foreign: tuple[str, ...]
    nonsense: tuple[str, ...]


TUNING = Style(
    name="tuning",
    base_admin=("", "{district}", "兰州市{district}", "甘肃省兰州市{district}{street}", "{district}{street}"),
    prefix=(
        "",
        "{district}",
        "{dshort}",
        "兰州市{district}",
        "甘肃省兰州市{district}{street}",
        "{street}",
        "兰州市",
        "{district}{street}",
    ),
    building=("{n}栋", "{n}幢", "{n}号楼", "{n}座", "{n}#", "{n}#楼"),
    entrance=("{n}单", "{n}门", "{n}单元"),
    room=("{n}室", "{n}号", "{n}户", "{n}"),
    numerals=("fullwidth", "chinese"),
    typos=("homophone", "homophone", "substitute"),
    sentences=(
        "您好，我是{addr}的住户，楼上漏水",
        "{addr}附近有人乱扔垃圾，请处理",
        "投诉：{addr}楼道堆放杂物",
        "我家住在{addr}，小区门口路灯坏了",
        "地址：{addr}，联系电话{phone}",
    ),
    compound_build=("{district}{compound}{b}号楼", "{compound}{b}号楼", "{compound}{b}号楼{e}单元{r}室"),
    separators=(" ", "，", ",", "-", "  "),
    foreign=(
        "{province}{city}{county}{road}{door}号",
        "{city_short}{county_short}{road}{door}号{compound}{b}号楼",
        "{county}{road}{door}号",
        "{city}{county}{compound}{b}栋{e}单元{r}室",
    ),
    nonsense=("chars", "complaint", "digits", "mixed"),
)

HELD_OUT = Style(
    name="held_out",
    base_admin=("", "{district}{street}", "兰州{dshort}", "{street}", "甘肃兰州{district}"),
    prefix=(
        "甘肃兰州{district}",
        "兰州{dshort}",
        "{district}{street}{community}",
        "甘肃省",
        "兰州市{street}",
        "{street}{community}",
        "{community}",
    ),
    building=("{n}号", "第{n}栋", "{n}栋楼", "{n}号栋"),
    entrance=("第{n}单元", "{n}单元门", "{cn}单元", "{n}-"),
    room=("{n}房", "{n}号房", "dash", "{n}房间"),
    numerals=("zero_spoken", "liang", "yao", "mixed_width"),
    typos=("delete", "insert", "swap", "homophone_street"),
    sentences=(
        "请问{addr}这里的供暖什么时候恢复？",
        "反映问题：噪音扰民。位置在{addr}。",
        "{addr}，水管爆了！！",
        "喂，你好，我在{addr}，有只狗一直叫",
        "事发地点{addr}，已经三天了",
        "12345转办：市民反映{addr}电梯故障",
    ),
    compound_build=("{street}{compound}{b}栋", "{compound}{b}#{r}", "{dshort}{compound}{b}号楼{e}单元"),
    separators=("/", "|", "、", "\n", "\u3000", "·", ";"),
    foreign=(
        "{province_short}{city_short}{road}{door}号",
        "{county}{township}{road}{door}号",
        "{city}{compound}{b}号楼",
        "{township}{road}{door}号{compound}",
        "{province}{county}{road}",
    ),
    nonsense=("english", "keyboard", "symbols", "unknown_road"),
)

_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
_CN_DIGITS = "零一二三四五六七八九"
_COMPLAINTS = (
    "楼上太吵了怎么办",
    "我要投诉物业不作为",
    "垃圾好几天没人收",
    "路灯坏了晚上很黑",
    "噪音扰民严重",
    "停车位被占了",
    "供暖温度不够",
    "小区电梯经常坏",
)
_ENGLISH = ("hello world", "where is my package", "test test", "please call me back", "no address given")
_SYMBOLS = ("？？？", "……", "😀😀😀", "###", "——", "!!!", "(^_^)")


@dataclass
class Query:
    text: str
    family: str
    code: str = ""  # the expected address ("" for a negative, or any address of ``grid``)
    grid: int = -1  # the expected small grid (-1 for a negative)
    ambiguous: bool = False  # the text fits addresses in several small grids: "ambiguous" is right
    stated: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass
class _Row:
    code: str
    district: str
    street: str
    road: str
    door: str
    compound: str
    building: str
    entrance: str
    room: str
    grid: int
    community: str


def chinese_number(value: int) -> str:
    """二十三 style, for numbers up to 9,999 (十 for 10–19, as spoken)."""
    if value == 0:
        return "零"
    digits, out, zero = [int(d) for d in str(value)], [], False
    units = ["", "十", "百", "千"]
    for position, digit in enumerate(digits):
        unit = units[len(digits) - position - 1]
        if digit == 0:
            zero = True
            continue
        if zero:
            out.append("零")
            zero = False
        out.append(("" if digit == 1 and unit == "十" and position == 0 else _CN_DIGITS[digit]) + unit)
    return "".join(out)


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


class Generator:
    """Queries of one style from one index (see the module docstring)."""

    def __init__(self, index: AddressIndex, style: Style, seed: int) -> None:
        self.index = index
        self.style = style
        self.rng = random.Random(seed)
        self.numbers = np.random.default_rng(seed)
        self.foreign = foreign_divisions(settings.MINQING_CITY_CODE)
        self._pool, self._sounds = _characters(index, self.foreign)
        self._roads = [w for w in index.words["road"] if w]
        self._compounds = [w for w in index.words["compound"] if w]
        self._regions = index.regions

    # --- rows ---------------------------------------------------------------------------------

    def rows(self, count: int) -> list[_Row]:
        """``count`` seeded rows of the registry, as it spells them."""
        positions = self.numbers.choice(self.index.size, size=count, replace=False)
        codes = [self.index.address_code(int(p)) for p in positions]
        with connection.cursor() as cursor:
            cursor.execute(
                """SELECT code, district_name, street_name, road, door_number, compound_name, building_number,
                          entrance, room, coalesce(grid_id, -1), coalesce(community_id, -1)
                   FROM layers_address WHERE code = ANY(%s)""",
                [codes],
            )
            found = {row[0]: row for row in cursor.fetchall()}
        out = []
        for code in codes:
            row = found[code]
            community = self._regions.get(row[10], ("", ""))[1]
            out.append(_Row(*row[:10], community_aliases(community)[0] if community else ""))
        return out

    # --- pieces -------------------------------------------------------------------------------

    def _admin(self, row: _Row, pattern: str) -> tuple[str, dict[str, str]]:
        values = {
            "district": row.district,
            "dshort": district_short(row.district) or row.district,
            "street": row.street,
            "community": row.community,
        }
        stated = {}
        for name, component in (("district", "district"), ("dshort", "district"), ("street", "street")):
            if "{" + name + "}" in pattern:
                stated[component] = row.district if component == "district" else row.street
        if "{community}" in pattern and row.community:
            stated["community"] = row.community
        return pattern.format(**values), stated

    def _number(self, value: str, template: str, style: str = "") -> str:
        n = _digits(value)
        if style == "fullwidth":
            n = n.translate(_FULL_WIDTH)
        elif style == "chinese":
            n = chinese_number(int(n))
        return template.replace("{cn}", chinese_number(int(_digits(value)))).replace("{n}", n)

    def _room_spoken(self, value: str, kind: str) -> str:
        n = _digits(value)
        if kind == "chinese":
            return "".join(_CN_DIGITS[int(d)] for d in n).replace("零", "〇")
        if kind == "zero_spoken":
            return "".join(_CN_DIGITS[int(d)] for d in n)
        if kind == "yao":
            return "".join("幺" if d == "1" else _CN_DIGITS[int(d)] for d in n)
        return n

    def _full(self, row: _Row, *, admin: str, building: str = "{n}号楼", entrance: str = "{n}单元",
              room: str = "{n}室", room_too: bool = True, entrance_too: bool = True,
              separators: tuple[str, ...] = ("",)) -> tuple[str, dict[str, str]]:  # fmt: skip
        """A whole address: admin prefix, road and door, compound, building, entrance, room."""
        prefix, stated = self._admin(row, admin)
        parts = [prefix, row.road, row.door, row.compound, self._number(row.building, building)]
        stated |= {"road": row.road, "door": row.door, "compound": row.compound, "building": row.building}
        if row.entrance and (entrance_too or room_too):
            parts.append(self._number(row.entrance, entrance))
            stated["entrance"] = row.entrance
        if row.room and room_too:
            parts.append(self._number(row.room, room))
            stated["room"] = row.room
        pieces = [p for p in parts if p]
        text = pieces[0]
        for piece in pieces[1:]:
            text += self.rng.choice(separators) + piece
        return text, stated

    # --- families -----------------------------------------------------------------------------

    def positive(self, family: str, row: _Row) -> Query:
        style, rng = self.style, self.rng
        base = rng.choice(style.base_admin)
        if family == "prefix":
            text, stated = self._full(row, admin=rng.choice(style.prefix))
        elif family == "building_word":
            text, stated = self._full(row, admin=base, building=rng.choice(style.building))
        elif family == "entrance_word":
            word = rng.choice(style.entrance)
            text, stated = self._full(row, admin=base, entrance=word)
            if word == "{n}-" and row.entrance and row.room:  # 3栋2-502
                text = text.replace(self._number(row.entrance, "{n}-") + self._number(row.room, "{n}室"),
                                    self._number(row.entrance, "{n}-") + _digits(row.room))  # fmt: skip
        elif family == "room_word":
            word = rng.choice(style.room)
            if word == "dash" and row.entrance and row.room:
                prefix, stated = self._admin(row, base)
                text = f"{prefix}{row.road}{row.door}{row.compound}"
                text += f"{_digits(row.building)}-{_digits(row.entrance)}-{_digits(row.room)}"
                stated |= {"road": row.road, "door": row.door, "compound": row.compound, "building": row.building,
                           "entrance": row.entrance, "room": row.room}  # fmt: skip
            else:
                text, stated = self._full(row, admin=base, room="{n}室" if word == "dash" else word)
        elif family == "numerals":
            text, stated = self._numerals(row, base, rng.choice(style.numerals))
        elif family == "typo":
            text, stated = self._typo(row, base, rng.choice(style.typos))
        elif family == "sentence":
            text, stated = self._sentence(row, base)
        elif family == "compound_build":
            text, stated = self._compound_build(row)
        elif family == "punctuation":
            text, stated = self._full(row, admin=base, separators=style.separators)
        else:
            raise ValueError(family)
        return self.label(Query(text, family, stated=stated), row)

    def _numerals(self, row: _Row, admin: str, kind: str) -> tuple[str, dict[str, str]]:
        prefix, stated = self._admin(row, admin)
        stated |= {"road": row.road, "door": row.door, "compound": row.compound, "building": row.building}
        door = _digits(row.door)
        if kind == "fullwidth":
            door_text, building = door.translate(_FULL_WIDTH) + "号", self._number(row.building, "{n}号楼", "fullwidth")
            entrance = self._number(row.entrance, "{n}单元", "fullwidth") if row.entrance else ""
            room = self._number(row.room, "{n}室", "fullwidth") if row.room else ""
        elif kind == "chinese":
            door_text, building = chinese_number(int(door)) + "号", self._number(row.building, "{n}栋", "chinese")
            entrance = self._number(row.entrance, "{n}单元", "chinese") if row.entrance else ""
            room = self._room_spoken(row.room, "chinese") + "室" if row.room else ""
        elif kind == "mixed_width":
            door_text = "".join(d.translate(_FULL_WIDTH) if i % 2 else d for i, d in enumerate(door)) + "號"
            building = chinese_number(int(_digits(row.building))) + "號樓"
            entrance = self._number(row.entrance, "{n}單元", "fullwidth") if row.entrance else ""
            room = self._room_spoken(row.room, "zero_spoken") + "室" if row.room else ""
        else:  # held-out spoken forms: 零 in rooms, 两 for 2, 幺 for 1
            door_text = chinese_number(int(door)).replace("二", "两", 1) + "号" if kind == "liang" else door + "号"
            building = self._number(row.building, "{n}号楼", "chinese").replace("二", "两")
            entrance = self._number(row.entrance, "{n}单元", "chinese").replace("二", "两") if row.entrance else ""
            room = self._room_spoken(row.room, "yao" if kind == "yao" else "zero_spoken") + "室" if row.room else ""
        if row.entrance:
            stated["entrance"] = row.entrance
        if row.room:
            stated["room"] = row.room
        return f"{prefix}{row.road}{door_text}{row.compound}{building}{entrance}{room}", stated

    def _typo(self, row: _Row, admin: str, kind: str) -> tuple[str, dict[str, str]]:
        if kind == "homophone_street":
            admin = "{district}{street}"
        text, stated = self._full(row, admin=admin)
        if kind == "homophone_street":
            name, at = row.street, text.find(row.street)
        else:
            name = self.rng.choice((row.road, row.compound))
            at = text.rfind(name)  # the road or compound, not a street named after it
        changed = self._mistype(name, "homophone" if kind == "homophone_street" else kind)
        return text[:at] + changed + text[at + len(name) :], stated

    def _mistype(self, name: str, kind: str) -> str:
        rng = self.rng
        # Keep the road or unit word at the end (路, 街, 花园 …): people mistype the name.
        stem = max(1, len(name) - 1)
        at = rng.randrange(stem)
        if kind == "homophone":
            alike = [c for c in self._sounds.get(_reading(name[at]), ()) if c != name[at]]
            if alike:
                return name[:at] + rng.choice(alike) + name[at + 1 :]
            kind = "substitute"
        if kind == "substitute":
            return name[:at] + rng.choice(self._pool) + name[at + 1 :]
        if kind == "delete" and len(name) >= 4:
            return name[:at] + name[at + 1 :]
        if kind == "insert":
            return name[:at] + rng.choice(self._pool) + name[at:]
        if kind in ("swap", "delete") and len(name) >= 3:
            at = min(at, len(name) - 2)
            return name[:at] + name[at + 1] + name[at] + name[at + 2 :]
        return name[:at] + rng.choice(self._pool) + name[at + 1 :]

    def _sentence(self, row: _Row, admin: str) -> tuple[str, dict[str, str]]:
        draw = self.rng.random()
        room_too, entrance_too = draw < 0.25, draw < 0.5
        words = self.rng.choice(
            (("{n}号楼", "{n}单元", "{n}室"), ("{n}栋", "{n}单元", "{n}室"), ("{n}幢", "{n}门", "{n}"))
        )
        address, stated = self._full(
            row, admin=admin, building=words[0], entrance=words[1], room=words[2], room_too=room_too,
            entrance_too=entrance_too,
        )  # fmt: skip
        if self.rng.random() < 0.3:  # residents often leave out the compound
            address = address.replace(row.compound, "", 1)
            stated.pop("compound")
        phone = "139" + "".join(str(self.rng.randrange(10)) for _ in range(8))
        return self.rng.choice(self.style.sentences).format(addr=address, phone=phone), stated

    def _compound_build(self, row: _Row) -> tuple[str, dict[str, str]]:
        template = self.rng.choice(self.style.compound_build)
        prefix_pattern = "".join(p for p in ("{district}", "{dshort}", "{street}") if p in template)
        prefix, stated = self._admin(row, prefix_pattern)
        b, e, r = _digits(row.building), _digits(row.entrance), _digits(row.room)
        if ("{e}" in template or "{r}" in template) and not (e and r):
            template = template.split("{b}")[0] + "{b}号楼"
        body = template
        for name in ("{district}", "{dshort}", "{street}"):
            body = body.replace(name, "")
        text = prefix + body.format(compound=row.compound, b=b, e=e, r=r)
        stated |= {"compound": row.compound, "building": row.building}
        if "{e}" in body:
            stated["entrance"] = row.entrance
        if "{r}" in body:
            stated["room"] = row.room
        return text, stated

    # --- negatives ----------------------------------------------------------------------------

    def negative(self, family: str) -> Query:
        if family == "foreign":
            return Query(self._foreign(), family)
        return Query(self._nonsense(self.rng.choice(self.style.nonsense)), family)

    def _foreign(self) -> str:
        rng = self.rng
        names = self.foreign.names
        while True:
            code = rng.choice(self._foreign_places)
            chain = {
                LEVEL_OF_CODE[len(c)]: names.get(c, "") for c in (code[:2], code[:4], code[:6], code) if c in names
            }
            template = rng.choice(self.style.foreign)
            if "{township}" in template and "township" not in chain:
                continue
            if any("{" + level in template and not chain.get(level) for level in ("province", "city", "county")):
                continue
            break
        values = {level: chain.get(level, "") for level in ("province", "city", "county", "township")} | {
            f"{level}_short": short_name(chain.get(level, ""), level) or chain.get(level, "")
            for level in ("province", "city", "county")
        }
        values |= {
            "road": rng.choice(self._roads),
            "door": rng.randrange(1, 300),
            "compound": rng.choice(self._compounds),
            "b": rng.randrange(1, 12),
            "e": rng.randrange(1, 4),
            "r": rng.choice((101, 202, 301, 502, 1203)),
        }
        return template.format(**values)

    @property
    def _foreign_places(self) -> list[str]:
        if not hasattr(self, "_places"):
            self._places = sorted(code for code in self.foreign.names if len(code) in (6, 9))
        return self._places

    def _nonsense(self, kind: str) -> str:
        rng = self.rng
        if kind == "chars":
            return "".join(rng.choice(self._pool) for _ in range(rng.randrange(4, 16)))
        if kind == "complaint":
            return "".join(rng.sample(_COMPLAINTS, 2))
        if kind == "digits":
            return "".join(str(rng.randrange(10)) for _ in range(rng.randrange(3, 12)))
        if kind == "mixed":
            return f"{rng.choice(self._pool)}{rng.randrange(1, 999)}{rng.choice(self._pool)}{rng.randrange(1, 99)}"
        if kind == "english":
            return rng.choice(_ENGLISH)
        if kind == "keyboard":
            return "".join(rng.choice("asdfghjklqwertyuiop") for _ in range(rng.randrange(5, 12)))
        if kind == "symbols":
            return rng.choice(_SYMBOLS) + rng.choice(_COMPLAINTS)
        # An address on a road and in a compound the city does not have (two edits or more from
        # every road and every compound).
        road = self._unknown(self._roads, ("路", "街", "大道"))
        compound = self._unknown(self._compounds, ("小区", "花园", "家园"))
        return f"{road}{rng.randrange(1, 500)}号{compound}{rng.randrange(1, 9)}号楼"

    def _unknown(self, known: list[str], suffixes: tuple[str, ...]) -> str:
        while True:
            name = self.rng.choice(self._pool) + self.rng.choice(self._pool) + self.rng.choice(suffixes)
            _, distance, _ = process.extractOne(name, known, scorer=OSA.distance)
            if distance >= 2:
                return name

    # --- truth --------------------------------------------------------------------------------

    def label(self, query: Query, row: _Row) -> Query:
        """Sets the expected answer from what the text states (see the module docstring)."""
        index = self.index
        keys = {
            "district": row.district,
            "street": row.street,
            "road": road_key(address_normalize(row.road)),
            "door": number_key(row.door),
            "compound": address_normalize(row.compound),
            "building": number_key(row.building),
            "entrance": number_key(row.entrance),
            "room": number_key(row.room),
        }
        stated = query.stated
        code = {c: index.code(c, keys[c]) for c in keys if c in stated}
        if "road" in code and "door" in code:
            start, end = index.block_rows(code["road"], code["door"])
            rows = np.arange(start, end)
        elif "compound" in code:
            rows = index.compound_positions(code["compound"]).astype(np.int64)
        else:
            start, end = index.road_rows(code["road"])
            rows = np.arange(start, end)
        for component, value in code.items():
            rows = rows[index.matrix[rows, COLUMN[component]] == value]
        if "community" in stated:
            ids = [rid for rid, r in index.regions.items() if r[3] == "community"
                   and community_aliases(r[1])[0] == stated["community"]]  # fmt: skip
            rows = rows[np.isin(index.links[rows, 1], ids)]
        query.grid = row.grid
        grids = set(index.links[rows, 0].tolist())
        if len(rows) == 0:
            raise AssertionError(f"no row fits what {query.text!r} states")
        if len(grids) > 1:
            query.ambiguous = True
            return query
        same = [COLUMN[c] for c in ("district", "road", "door", "compound", "building")]
        values = index.matrix[rows][:, same]
        if len(rows) == 1:
            query.code = index.address_code(int(rows[0]))
        elif (values == values[0]).all():
            # The building's own address: in the building's block, with no entrance and no room.
            road, door = (int(index.matrix[rows[0], COLUMN[c]]) for c in ("road", "door"))
            block = np.arange(*index.block_rows(road, door))
            empty = index.empties
            own = block[(index.matrix[block][:, same] == values[0]).all(axis=1)
                        & (index.matrix[block, COLUMN["entrance"]] == empty[COLUMN["entrance"]])
                        & (index.matrix[block, COLUMN["room"]] == empty[COLUMN["room"]])]  # fmt: skip
            query.code = index.address_code(int(own.min())) if len(own) else ""
        return query


def _reading(char: str) -> str:
    from pypinyin.pinyin_dict import pinyin_dict

    reading = pinyin_dict.get(ord(char), "").split(",")[0]
    return "".join(c for c in unicodedata.normalize("NFD", reading) if not unicodedata.combining(c))


def _characters(index: AddressIndex, foreign) -> tuple[list[str], dict[str, list[str]]]:
    """Characters people type (those of the city's names and of China's divisions), and the
    same grouped by reading, for homophone typos."""
    chars: set[str] = set()
    for words in (index.words["road"], index.words["compound"], index.words["street"], foreign.names.values()):
        for word in words:
            chars.update(ch for ch in word if "\u4e00" <= ch <= "\u9fff")
    pool = sorted(chars)
    sounds: dict[str, list[str]] = {}
    for ch in pool:
        sounds.setdefault(_reading(ch), []).append(ch)
    return pool, sounds


def queries(index: AddressIndex, style: Style, *, seed: int, per_family: int) -> list[Query]:
    """``per_family`` queries of each family in ``style``, shuffled (seeded)."""
    generator = Generator(index, style, seed)
    rows = generator.rows(per_family * len(POSITIVE))
    out = []
    for number, family in enumerate(POSITIVE):
        for row in rows[number * per_family : (number + 1) * per_family]:
            out.append(generator.positive(family, row))
    for family in NEGATIVE:
        out += [generator.negative(family) for _ in range(per_family)]
    generator.rng.shuffle(out)
    return out
