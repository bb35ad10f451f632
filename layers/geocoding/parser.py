"""Reading an address out of a text as people type it.

:func:`address_read` takes the raw text (a 12345 operator's note, a resident's sentence, a
clerk's form field) and a :class:`~layers.geocoding.gazetteer.Gazetteer`:

1. the text is cut into clauses at sentence punctuation, and each clause normalised
   (:func:`~layers.geocoding.normalize.address_normalize`) and scanned for known names;
2. the clauses that carry the address are kept — those naming a road or compound or holding a
   numbered door, building, entrance or room, with the short admin clauses just before them —
   so 您好，我是…的住户，楼上漏水 keeps only the address;
3. names, numbers and the text between them are given their roles in order: a number with 号
   after a road is the door, after a building or entrance it is the room (2单元301号); a bare
   number after the building is the room; a phone number is nothing;
4. text the gazetteer did not know is read by the rules below (a road ends in 路/街/巷/道, a
   compound sits between the door and the building) and resolved against the index within one
   edit (庆羊路 → 庆阳路);
5. names of places elsewhere in China make the text foreign: a full name (临洮县, 嘉兴市), or a
   short one read as a place by what follows (上海普陀, 天水秦州, 嘉兴 + a road); a name the city
   itself uses (城关区) is the city's unless a foreign parent precedes it (拉萨城关区).

Numbers come out bare ("12", not "12号") so they compare directly with the index's keys.
:func:`address_parse` reads with the city's divisions only (no index), for the parsed view.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings

from . import gazetteer as gz
from .divisions import LEVEL_OF_CODE, foreign_divisions, is_ancestor
from .normalize import address_normalize, chinese_numeral_value

#: Rooms are numbered with at most this many digits; a longer bare number is a phone or ticket.
MAX_ROOM_DIGITS = 5
#: An admin-only clause before the address is kept when it holds at most this many other characters.
ADMIN_CLAUSE_NOISE = 2

# Sentence punctuation and brackets end a clause (金城花园（庆阳路123号）3号楼 keeps the road; a
# remark in brackets with no address in it is left out like any other clause).
_CLAUSE = re.compile(r"(?<!\d)[,。;!?、:…~\n\r\t()\[\]【】《》「」]+|[,。;!?、:…~\n\r\t()\[\]【】《》「」]+(?!\s*\d)")
_TOKEN = re.compile(
    r"(?P<building>[0-9A-Z]+)栋|(?P<entrance>\d+)单元|(?P<floor>\d+)层|(?P<room>\d+)室"
    r"|(?P<door>\d+)[号弄]|(?P<bare>\d+(?:-\d+)*)(?![\d期])|(?P<text>.+?)(?=\d(?!\d*期)|[A-Z]+栋|$)"
)
_STRONG_NUMBERS = frozenset({"door", "building", "entrance", "room"})
# Text that starts a road's name after a place name (兰州 + 路, 天水 + 北路): the place is the road's.
_ROAD_START = re.compile(r"[东南西北中]?(?:大道|大街|路|街(?!道)|巷|弄|道)")
# The rules for text the gazetteer did not know (an unknown road, a typo).
_STREET = re.compile(r"(.{1,8}?街道|(?:(?![路巷弄号街])[\u4e00-\u9fff]){1,6}?[镇乡])")
_COMMUNITY = re.compile(r"[\u4e00-\u9fff]{1,8}?(?:社区|村委会)|(?:(?![路巷弄号街])[\u4e00-\u9fff]){1,8}?村$")
_ROAD = re.compile(r"[\u4e00-\u9fffA-Z]{1,14}?(?:大道|大街|路|街(?!道)|巷|弄|(?<!街)道)")
_ROAD_TAIL = re.compile(r"[\u4e00-\u9fff]{0,4}(?:大道|大街|路|街|巷|弄|道)")


@dataclass
class AddressParts:
    """The components of one address; "" where the text did not say. ``foreign`` names the
    province, city, county or township outside the city the text names."""

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
    prefix: str = ""  # text before the address (a greeting, a business name)
    rest: str = ""  # text the rules did not place
    foreign: str = ""

    def as_dict(self) -> dict[str, str]:
        return {key: value for key, value in vars(self).items() if value}


@dataclass
class Reading:
    """What :func:`address_read` found: the normalised address text, its components, and the
    index codes of the roads and compounds it may mean, each with a similarity (1 exact,
    :data:`~layers.geocoding.gazetteer.HOMOPHONE` or :data:`~layers.geocoding.gazetteer.TYPO`)."""

    normalized: str
    parts: AddressParts
    roads: list[tuple[int, float]] = field(default_factory=list)
    compounds: list[tuple[int, float]] = field(default_factory=list)
    #: Region ids the text names, by level (district, street, community, city).
    regions: dict[str, tuple[int, ...]] = field(default_factory=dict)


# --- items: names, numbers and text, in order ------------------------------------------------------


@dataclass(slots=True)
class _Item:
    kind: str  # "name", one of the number kinds of _TOKEN, or "text"
    text: str
    meanings: tuple[gz.Entity, ...] = ()
    entity: gz.Entity | None = None  # the meaning chosen
    clause: int = 0
    resolved: list[tuple[int, float]] | None = None  # a road or compound read through a typo


def _items(text: str, gazetteer: gz.Gazetteer, clause: int) -> list[_Item]:
    items: list[_Item] = []
    at = 0

    def gap(piece: str) -> None:
        for match in _TOKEN.finditer(piece):
            items.append(_Item(match.lastgroup, match.group(match.lastgroup), clause=clause))

    for start, end, meanings in gazetteer.scan(text):
        if start < at:
            continue  # inside a name extended over its mistyped phase
        if start > at:
            gap(text[at:start])
        item = _Item("name", text[start:end], meanings, clause=clause)
        if any(m.kind == gz.COMPOUND for m in meanings):
            end = _phase(text, start, end, item, gazetteer)
        items.append(item)
        at = end
    if at < len(text):
        gap(text[at:])
    return items


_PHASE = re.compile(r"[^栋单元层室号弄门幢座楼户房#-]{1,3}")


def _phase(text: str, start: int, end: int, item: _Item, gazetteer: gz.Gazetteer) -> int:
    """A compound followed by its phase with a typo (幸福家园 + 5福, 丽景家园 + 1西期): the phased
    compound within one edit, read over the characters it takes; returns where the name ends."""
    match = _PHASE.match(text, end)
    if match is None or match.group(0).isdigit():
        return end  # 幸福家园 + 2栋: no phase at all
    name = text[start:end]
    for stop in range(match.end(), end, -1):
        piece = text[end:stop]
        if piece.isdigit() or (piece[-1].isdigit() and stop < len(text) and not text[stop].isdigit()):
            continue  # digits before a unit word are that unit's number (五泉花园期 | 2栋)
        near = [(c, v) for c, v in gazetteer.compounds.near(name + piece) if gazetteer.compounds.words[c] != name]
        if near:
            item.text, item.resolved = name + piece, near
            return stop
    return end


_PLACES = frozenset({gz.ROAD, gz.COMPOUND})


def _is_strong(item: _Item) -> bool:
    """A road, a compound, or a numbered door, building, entrance or room: the address is here."""
    if item.kind == "name":
        return not _PLACES.isdisjoint(m.kind for m in item.meanings)
    return item.kind in _STRONG_NUMBERS or (item.kind == "bare" and "-" in item.text)


def _clauses(text: str, gazetteer: gz.Gazetteer) -> tuple[list[_Item], str]:
    """The items of the clauses that carry the address, and their normalised text."""
    clauses = []
    for number, raw in enumerate(piece for piece in _CLAUSE.split(text) if piece and not piece.isspace()):
        normalized = address_normalize(raw)
        if normalized:
            clauses.append((normalized, _items(normalized, gazetteer, number)))
    strong, admin = [], []
    for _, items in clauses:
        flags = [(item.kind == "name", _is_strong(item)) for item in items]
        strong.append(any(is_strong for _, is_strong in flags))
        admin.append(any(name and not is_strong for name, is_strong in flags))
    if any(strong):
        keep = list(strong)
        for k in range(len(clauses) - 2, -1, -1):
            if keep[k + 1] and not keep[k] and admin[k]:
                noise = sum(len(i.text) for i in clauses[k][1] if i.kind == "text")
                keep[k] = noise <= ADMIN_CLAUSE_NOISE
    elif any(admin):
        keep = admin
    else:
        keep = [True] * len(clauses)
    kept = [clause for clause, wanted in zip(clauses, keep, strict=True) if wanted]
    items = [item for _, clause_items in kept for item in clause_items]
    return items, ",".join(normalized for normalized, _ in kept)


# --- meanings of names ------------------------------------------------------------------------------


def _first(meanings, kind: str) -> gz.Entity | None:
    return next((m for m in meanings if m.kind == kind), None)


def _foreign_child(parent: gz.Entity, item: _Item | None) -> bool:
    """Whether ``item`` names a division under the foreign ``parent`` (上海 → 普陀区)."""
    if item is None or item.kind != "name":
        return False
    child = _first(item.meanings, gz.FOREIGN)
    return child is not None and is_ancestor(parent.codes, child.codes)


_HOME_ADMIN = frozenset({gz.DISTRICT, gz.STREET, gz.COMMUNITY})


def _choose(items: list[_Item], gazetteer: gz.Gazetteer) -> None:
    """Pick one meaning per name from its neighbours; a name that means nothing here becomes text."""
    home_admin = any(m.kind in _HOME_ADMIN and not m.short for i in items if i.kind == "name" for m in i.meanings)
    previous_foreign: gz.Entity | None = None
    for k, item in enumerate(items):
        if item.kind != "name":
            continue
        after = items[k + 1] if k + 1 < len(items) else None
        before = items[k - 1] if k > 0 else None
        abroad = _first(item.meanings, gz.FOREIGN)
        home = next((m for m in item.meanings if m.kind != gz.FOREIGN), None)
        road_next = after is not None and (
            (after.kind == "text" and bool(_ROAD_START.match(after.text)))
            or (after.kind == "name" and bool(_ROAD_START.fullmatch(after.text)))
        )
        if abroad is not None and previous_foreign is not None and is_ancestor(previous_foreign.codes, abroad.codes):
            item.entity = previous_foreign = abroad  # 拉萨 → 城关区: Lhasa's
            continue
        if home is not None and not home.short:
            item.entity = home
            continue
        if road_next:
            item.kind = "text"  # 兰州路, 天水北路: a road named after a place
            continue
        if home is not None and home.kind == gz.DISTRICT:
            # 城关庆阳路, 兰州城关: a district's short form before another name, or after the city.
            named_next = after is not None and after.kind == "name"
            if named_next or (before is not None and before.entity is not None and before.entity.kind == gz.CITY):
                item.entity = home
                continue
        elif home is not None:
            item.entity = home  # 兰州, 甘肃
            continue
        if abroad is None:
            item.kind = "text"
            continue
        if not abroad.short:
            # 临洮县 and 嘉兴市 are places; a township elsewhere counts only where the text names
            # no district or street of the city.
            township = all(LEVEL_OF_CODE[len(code)] == "township" for code in abroad.codes)
            if not (township and home_admin):
                item.entity = previous_foreign = abroad
                continue
        elif _foreign_child(abroad, after):
            item.entity = previous_foreign = abroad  # 上海普陀, 天水秦州, 浙江嘉兴
            continue
        elif (
            before is None or (before.entity is not None and before.entity.kind == gz.PROVINCE)
        ) and after is not None:
            # 嘉兴 + a road of the city: a province's or prefecture's short form opening the
            # address names the place, unless the words after it make a name of the city's.
            upper = any(LEVEL_OF_CODE[len(code)] in ("province", "city") for code in abroad.codes)
            upper = upper or (len(item.text) == 2 and item.text.endswith(("县", "市", "旗")))  # 代县, 环县
            if upper and (after.kind != "text" or not _resolves_with(item, after, gazetteer)):
                item.entity = previous_foreign = abroad
                continue
        item.kind = "text"
    _merge_text(items)


def _resolves_with(item: _Item, after: _Item, gazetteer: gz.Gazetteer) -> bool:
    """Whether a short foreign name and the text after it are a road or compound of the city
    within one edit (天水北露 is 天水北路)."""
    joined = item.text + after.text
    return bool(gazetteer.roads.near(joined) or gazetteer.compounds.near(joined))


def _merge_text(items: list[_Item]) -> None:
    k = 0
    while k < len(items) - 1:
        if items[k].kind == "text" and items[k + 1].kind == "text" and items[k].clause == items[k + 1].clause:
            items[k].text += items.pop(k + 1).text
        else:
            k += 1


_NUMERALS = "零〇○一幺二两三四五六七八九十百千"
_NUMERAL_RUN = re.compile(f"[{_NUMERALS}]+")
# A road and its door in Chinese numerals with no 号 (东湖西巷二十三, 兴里街三).
_ROAD_NUMERAL = re.compile(f"(.*(?:路|街|巷|弄|道))([{_NUMERALS}]+)$")


def _repair(items: list[_Item], gazetteer: gz.Gazetteer) -> None:
    """Names the scan cut short or missed because of a typo:

    * text just before a known road or compound that, with it, is a longer one within one edit
      (金家 + 东街 is 金崖东街, not 东街);
    * a door number in Chinese numerals with no 号 after a road (天水北路二百三十六…).
    """
    k = 0
    while k < len(items):
        item = items[k]
        after = items[k + 1] if k + 1 < len(items) else None
        same = after is not None and after.clause == item.clause
        if item.kind == "text" and same and after.kind == "name" and after.entity is not None:
            lexicon = {gz.ROAD: gazetteer.roads, gz.COMPOUND: gazetteer.compounds}.get(after.entity.kind)
            if lexicon is not None:
                joined = item.text + after.text
                found, at = lexicon.tail(joined)
                if found and at < len(item.text) and min(len(lexicon.words[c]) for c, _ in found) > len(after.text):
                    after.text, after.resolved, item.text = joined[at:], found, item.text[:at]
                    if not item.text:
                        items.pop(k)
                        continue
        elif item.kind == "name" and item.entity is not None and item.entity.kind == gz.ROAD and same:
            if after.kind == "text" and (run := _NUMERAL_RUN.match(after.text)):
                numeral = run.group(0)
                # 二百三十六 or a lone 三 before the next name is a number; 三合家园 is a name.
                if len(numeral) >= 2 or numeral in "十百千" or numeral == after.text:
                    items.insert(k + 1, _Item("door", str(chinese_numeral_value(numeral)), clause=item.clause))
                    after.text = after.text[len(numeral) :]
                    if not after.text:
                        items.pop(k + 2)
        k += 1


# --- roles -------------------------------------------------------------------------------------------


class _Roles:
    """Gives each item its role, in order (see the module docstring)."""

    def __init__(self, gazetteer: gz.Gazetteer | None) -> None:
        self.gazetteer = gazetteer
        self.parts = AddressParts()
        self.roads: list[tuple[int, float]] = []
        self.compounds: list[tuple[int, float]] = []
        self.regions: dict[str, tuple[int, ...]] = {}
        self.last = ""  # role of the previous item
        self.started = False  # an address item was seen (text before it is the prefix)
        self.rest: list[str] = []
        self.road_has_door = False

    # names
    def name(self, item: _Item) -> None:
        parts = self.parts
        entity, surface = item.entity, item.text
        kind = entity.kind
        self.started = True
        if kind == gz.FOREIGN:
            self.foreign(entity)
            self.last = "admin"
        elif kind in (gz.PROVINCE, gz.CITY, gz.DISTRICT, gz.STREET, gz.COMMUNITY):
            if not getattr(parts, kind):
                setattr(parts, kind, entity.value)
                if entity.regions:
                    self.regions[kind] = entity.regions
            self.last = "admin"
        elif kind == gz.ROAD:
            if not parts.road or not self.road_has_door:
                # A later road replaces one without a door (酒泉路街到庆阳路123号: a typo in the street).
                parts.road, self.roads = surface, item.resolved or [(int(entity.value), 1.0)]
            self.last = "road"
        elif kind == gz.COMPOUND:
            if not parts.compound:
                parts.compound, self.compounds = surface, item.resolved or [(int(entity.value), 1.0)]
            self.last = "compound"

    def foreign(self, entity: gz.Entity) -> None:
        parts = self.parts
        level = LEVEL_OF_CODE[len(entity.codes[0])]
        name = str(entity.value)
        component = {"province": "province", "city": "city", "county": "district", "township": "street"}[level]
        if not getattr(parts, component):
            setattr(parts, component, name)
        if not parts.foreign:
            parts.foreign = name

    # numbers
    def number(self, kind: str, value: str) -> None:
        parts = self.parts
        self.started = True
        if kind == "door":
            if self.last == "road" and not parts.door:
                parts.door, self.road_has_door, self.last = value, True, "door"
            elif not parts.building and not parts.entrance:
                parts.building, self.last = value, "building"
            elif not parts.room:
                parts.room, self.last = value, "room"  # 2单元301号
            else:
                self.rest.append(value)
        elif kind in ("building", "entrance", "floor", "room"):
            if not getattr(parts, kind):
                setattr(parts, kind, value)
                self.last = kind
            else:
                self.rest.append(value)
        else:
            self.bare(value)

    def bare(self, value: str) -> None:
        parts = self.parts
        numbers = value.split("-")
        if len(numbers) >= 3 and not parts.building:
            parts.building, parts.entrance, parts.room = numbers[:3]
        elif len(numbers) >= 2 and parts.building and not parts.entrance:
            parts.entrance, parts.room = numbers[:2]
        elif len(numbers) == 2 and not parts.building:
            parts.building, parts.room = numbers
        elif len(numbers) > 1 or len(numbers[0]) > MAX_ROOM_DIGITS:
            self.rest.append(value)  # a phone number, a date, a ticket
            return
        elif self.last == "road" and not parts.door:
            parts.door, self.road_has_door, self.last = numbers[0], True, "door"  # 麻启街39幸福嘉园: no 号
            return
        elif (parts.building or parts.entrance or parts.floor) and not parts.room:
            parts.room = numbers[0]
        elif parts.compound and not parts.building:
            parts.building = numbers[0]
        else:
            self.rest.append(value)
            return
        self.last = "number"

    # text
    def text(self, value: str, after: _Item | None) -> None:
        parts = self.parts
        door_next = after is not None and (after.kind == "door" or (after.kind == "bare" and "-" not in after.text))
        building_next = after is not None and after.kind == "building"
        if not self.started and after is not None and after.kind == "name":
            compound_next = after.entity is not None and after.entity.kind == gz.COMPOUND
            if not (compound_next and self.road_with_number(value)):
                self.prefix(value)  # 您好我是 | 城关区…, 老马牛肉面 | 兰州市…
            return
        if not self.started:
            self.head(value, door_next=door_next, building_next=building_next)
            return
        if parts.door and not parts.compound and not parts.building and self.last == "door":
            self.compound_text(value)  # between the door and the building: the compound
            return
        if not parts.road and not parts.compound and (after is None or after.kind != "name"):
            self.head(value, door_next=door_next, building_next=building_next)
            return
        self.rest.append(value)

    def head(self, value: str, *, door_next: bool, building_next: bool) -> None:
        """Text before the first number the gazetteer did not read: a road or compound with a
        typo, one it does not know, or words before the address."""
        gazetteer = self.gazetteer
        if self.road_with_number(value):
            return
        if gazetteer is not None and not self.parts.road and not self.parts.compound:
            roads, road_at = gazetteer.roads.tail(value) if not building_next else ([], len(value))
            compounds, compound_at = gazetteer.compounds.tail(value) if not door_next or not roads else ([], len(value))
            if roads and (door_next or not compounds or road_at <= compound_at):
                self.parts.road, self.roads = value[road_at:], roads
                self.prefix(value[:road_at])
                self.last, self.started = "road", True
                return
            if compounds:
                before = value[:compound_at]
                if not self.road_with_number(before):
                    self.prefix(before)  # 东湖西巷二十三 | 万达名苑2期: the road and door were before it
                self.parts.compound, self.compounds = value[compound_at:], compounds
                self.last, self.started = "compound", True
                return
        self.rules(value, door_next=door_next, building_next=building_next)

    def road_with_number(self, value: str) -> bool:
        """A known road (within one edit) ending ``value`` with a door in Chinese numerals after
        it, the words before it the prefix: 广园门路十二 | 电力嘉园 is 广武门路 12号."""
        match = _ROAD_NUMERAL.match(value)
        if self.gazetteer is None or self.parts.road or match is None:
            return False
        roads, at = self.gazetteer.roads.tail(match.group(1))
        if not roads:
            return False
        self.parts.road, self.roads = match.group(1)[at:], roads
        self.prefix(match.group(1)[:at])
        self.parts.door, self.road_has_door = str(chinese_numeral_value(match.group(2))), True
        self.last, self.started = "door", True
        return True

    def prefix(self, value: str) -> None:
        if value and not self.parts.prefix:
            self.parts.prefix = value

    def rules(self, value: str, *, door_next: bool, building_next: bool = False) -> None:
        """An unknown road or compound, read by its shape (the parsed view says what it was)."""
        parts = self.parts
        span = value
        if not parts.street and (match := _STREET.match(span)):
            parts.street, span = match.group(0), span[match.end() :]
        if (
            not parts.community
            and (match := _COMMUNITY.match(span))
            and not (building_next and match.end() == len(span))
        ):
            # An unknown name ending in 村 with a building number after it is a compound (…新村5号楼).
            parts.community, span = match.group(0), span[match.end() :]
        if not span:
            return
        if not parts.road and (match := _ROAD.search(span)):
            if match.start() > 0 and not self.started:
                self.prefix(span[: match.start()])
            parts.road, span = match.group(0), span[match.end() :]
            if door_next and _ROAD_TAIL.fullmatch(span):
                parts.road, span = parts.road + span, ""  # 车道东街61号: a road word in the name
            self.last, self.started = "road", True
            if span:
                parts.compound = parts.compound or span
            return
        if door_next and not parts.road:
            parts.road, self.last, self.started = span, "road", True  # 张苏滩553号: a place numbering doors
            return
        if not self.started:
            parts.compound, self.last, self.started = span, "compound", True
        else:
            self.rest.append(span)

    def compound_text(self, value: str) -> None:
        gazetteer = self.gazetteer
        if gazetteer is not None:
            compounds, at = gazetteer.compounds.tail(value)
            if compounds:
                self.parts.compound, self.compounds = value[at:], compounds
                self.last = "compound"
                return
        self.parts.compound, self.last = value, "compound"


def address_read(text: str, gazetteer: gz.Gazetteer) -> Reading:
    """Read the address in ``text`` (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text)
    items, normalized = _clauses(text, gazetteer)
    _choose(items, gazetteer)
    _repair(items, gazetteer)
    roles = _Roles(gazetteer)
    for k, item in enumerate(items):
        after = items[k + 1] if k + 1 < len(items) else None
        if item.kind == "name":
            roles.name(item)
        elif item.kind == "text":
            roles.text(item.text, after)
        else:
            roles.number(item.kind, item.text)
    parts = roles.parts
    parts.rest = "".join(roles.rest)
    return Reading(normalized, parts, roles.roads, roles.compounds, roles.regions)


@lru_cache(maxsize=1)
def divisions_gazetteer() -> gz.Gazetteer:
    """A gazetteer of the city's own divisions and of China's, without roads or compounds."""
    foreign = foreign_divisions(settings.MINQING_CITY_CODE)
    level = {"county": gz.DISTRICT, "township": gz.STREET}
    regions = [(0, d.code, d.name, level[d.level]) for d in foreign.own]
    return gz.Gazetteer(regions=regions, roads=(), compounds=(), foreign=foreign, normalize=address_normalize)


def address_parse(text: str) -> AddressParts:
    """The components of ``text`` read with the divisions only (no address index).

    >>> address_parse("甘肃省兰州市城关区酒泉路街道庆阳路123号金城花园3号楼2单元501室").as_dict()
    {'province': '甘肃省', 'city': '兰州市', 'district': '城关区', 'street': '酒泉路街道', 'road': '庆阳路', \
'door': '123', 'compound': '金城花园', 'building': '3', 'entrance': '2', 'room': '501'}
    >>> address_parse("七里河西园街道兰州路二十六号新城家属院二期2幢1门16楼1603").as_dict()
    {'district': '七里河区', 'street': '西园街道', 'road': '兰州路', 'door': '26', 'compound': '新城家属院2期', \
'building': '2', 'entrance': '1', 'floor': '16', 'room': '1603'}
    >>> address_parse("上海市普陀区永登路金环汇智天地277弄2号楼").as_dict()
    {'province': '上海市', 'district': '普陀区', 'road': '永登路', 'door': '277', 'compound': '金环汇智天地', \
'building': '2', 'foreign': '上海市'}
    >>> address_parse("西藏拉萨城关区").foreign, address_parse("包河区兰州路青网科技园8号楼301室").foreign
    ('西藏自治区', '包河区')
    >>> address_parse("您好，我是城关区金昌路11号3栋2单元的住户，楼上漏水").as_dict()
    {'district': '城关区', 'road': '金昌路', 'door': '11', 'building': '3', 'entrance': '2', 'prefix': '我是', \
'rest': '的住户'}
    >>> address_parse("2单元301号").as_dict(), address_parse("3单502室").as_dict()
    ({'entrance': '2', 'room': '301'}, {'entrance': '3', 'room': '502'})
    """
    return address_read(text, divisions_gazetteer()).parts
