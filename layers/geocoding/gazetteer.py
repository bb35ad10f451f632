"""The names an address text may hold, and where they are in it.

A :class:`Gazetteer` knows the city's own names — its districts (城关区 and 城关), streets,
communities as people say them (畅家巷社区 for 畅家巷社区居委会, 红沟村 for 红沟村民委员会), and the
roads and compounds of the address index — and every division elsewhere in China
(:mod:`layers.geocoding.divisions`). :meth:`Gazetteer.scan` finds them in a normalised text,
leftmost and longest first, so a compound or road that holds another name (皋兰佳园二期, 铁路佳园,
黄河新村, 酒泉路街道) is read whole. A :class:`Lexicon` answers a name within one edit of a
known one (a typo, a homophone, a swapped pair), by shared one-character deletions.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import NamedTuple

from rapidfuzz.distance import OSA

from .divisions import ForeignDivisions, short_name

#: Entity kinds. The city's own: province, city, district, street, community, road, compound;
#: elsewhere: foreign.
PROVINCE, CITY, DISTRICT, STREET, COMMUNITY, ROAD, COMPOUND, FOREIGN = (
    "province city district street community road compound foreign".split()
)
#: Similarity of a name read through a one-character typo: a homophone (庆羊路 for 庆阳路) is the
#: likelier slip of an operator typing pinyin.
HOMOPHONE, TYPO = 0.9, 0.8
#: Similarity of a name read through a typo at the end of other words (嘉 | 安西路 for 定西路).
CUT_TYPO = 0.5

_COMMUNITY_TAILS = ("社区居民委员会", "社区居委会", "居民委员会", "居委会", "委会")
_VILLAGE_TAILS = ("村民委员会", "村委会")


class Entity(NamedTuple):
    """One meaning of a name: its kind, the canonical value (a full name, or the index code of a
    road or compound), region ids where it names the city's regions, whether it was a short
    form, and the national codes of the divisions elsewhere it may mean."""

    kind: str
    value: str | int
    regions: tuple[int, ...] = ()
    short: bool = False
    codes: tuple[str, ...] = ()


#: Readings of the common characters (GB 2312), carried by the gazetteer so that a process that
#: opens the index reads homophones without importing pypinyin's 40,000-character table (0.2 s).
_READINGS: dict[str, str] = {}


def _plain(readings: str) -> set[str]:
    """pīn,yīn → {pin, yin}: the readings without tones."""
    plain = set()
    for reading in readings.split(","):
        decomposed = unicodedata.normalize("NFD", reading)
        plain.add("".join(c for c in decomposed if not unicodedata.combining(c)).replace("ü", "v"))
    return {p for p in plain if p}


def reading_table() -> dict[str, str]:
    """Character → its readings without tones, comma-joined, for the GB 2312 characters."""
    from pypinyin.pinyin_dict import pinyin_dict

    table = {}
    for code, readings in pinyin_dict.items():
        char = chr(code)
        try:
            char.encode("gb2312")
        except UnicodeEncodeError:
            continue
        table[char] = ",".join(sorted(_plain(readings)))
    return table


@lru_cache(maxsize=8192)
def _sounds(char: str) -> frozenset[str]:
    """The readings of one character without tones (阳 → {yang}); empty for non-Han."""
    known = _READINGS.get(char)
    if known is not None:
        return frozenset(known.split(","))
    from pypinyin.pinyin_dict import pinyin_dict  # a rare character: the whole table, once

    return frozenset(_plain(pinyin_dict.get(ord(char), "")))


def homophone(a: str, b: str) -> bool:
    """Whether two strings of one length differ only by characters that may sound alike.

    >>> homophone("庆羊路", "庆阳路"), homophone("庆马路", "庆阳路")
    (True, False)
    """
    if len(a) != len(b):
        return False
    return all(x == y or (_sounds(x) & _sounds(y)) for x, y in zip(a, b, strict=True))


def one_deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


class Lexicon:
    """The words of one kind, by code (the index's vocabulary order): exact and one-edit lookups."""

    #: Words shorter than this get no typo lookup: two characters one edit apart are too many.
    MIN_TYPO_LENGTH = 3

    def __init__(self, words: Sequence[str]) -> None:
        self.words = list(words)
        self.codes: dict[str, int] = {}
        self._deletions: dict[str, list[int]] = {}
        for code, word in enumerate(self.words):
            if not word:
                continue
            self.codes.setdefault(word, code)
            if len(word) >= self.MIN_TYPO_LENGTH:
                for variant in one_deletions(word):
                    self._deletions.setdefault(variant, []).append(code)
        self.max_length = max((len(w) for w in self.words), default=0)

    def near(self, text: str) -> list[tuple[int, float]]:
        """Codes of the words one edit (substitution, insertion, deletion, adjacent swap) from
        ``text``, with their similarity (:data:`HOMOPHONE` or :data:`TYPO`), best first."""
        if len(text) < self.MIN_TYPO_LENGTH:
            return []
        found: set[int] = set()
        if text in self._deletions:  # a character left out of the text
            found.update(self._deletions[text])
        for variant in one_deletions(text):
            if (code := self.codes.get(variant)) is not None:  # a character too many
                found.add(code)
            found.update(self._deletions.get(variant, ()))  # one changed, or two swapped
        out = []
        for code in found:
            word = self.words[code]
            if OSA.distance(text, word, score_cutoff=1) <= 1:
                out.append((code, HOMOPHONE if homophone(text, word) else TYPO))
        out.sort(key=lambda pair: (-pair[1], pair[0]))
        return out

    def tail(self, text: str) -> tuple[list[tuple[int, float]], int]:
        """The words that end ``text`` (a name with a remark or business name before it).
        The longest exact word wins, unless a longer word is within one edit of a longer end of
        the text (金家东街 is 金崖东街, not the road 东街); a word found by leaving out the first
        character of a piece is the exact match of a shorter one, not a typo. Returns them and
        where the name starts in ``text``."""
        exact, exact_length = [], 0
        for length in range(min(len(text), self.max_length), 1, -1):
            if (code := self.codes.get(text[-length:])) is not None:
                exact, exact_length = [(code, 1.0)], length
                break
        for length in range(min(len(text), self.max_length + 1), max(exact_length, self.MIN_TYPO_LENGTH - 1), -1):
            near = [
                (code, similarity)
                for code, similarity in self.near(text[-length:])
                if len(self.words[code]) > exact_length and not text.endswith(self.words[code])
            ]
            if near:
                if length < len(text):
                    # Words cut off before it and a typo in it: two guesses, a weaker reading
                    # (a homophone, the likeliest slip, a little less so).
                    near = [(code, TYPO if similarity >= HOMOPHONE else CUT_TYPO) for code, similarity in near]
                return near, len(text) - length
        return exact, len(text) - exact_length


def community_aliases(name: str) -> tuple[str, set[str]]:
    """How people say a community or village: its canonical name and the other spellings.

    >>> canonical, aliases = community_aliases("畅家巷社区居委会")
    >>> canonical, sorted(aliases)
    ('畅家巷社区', ['畅家巷居委会', '畅家巷社区', '畅家巷社区居委会'])
    >>> canonical, aliases = community_aliases("红沟村民委员会")
    >>> canonical, sorted(aliases)
    ('红沟村', ['红沟村', '红沟村委会', '红沟村民委员会'])
    >>> community_aliases("白道坪村村民委员会")[0], community_aliases("桥头社区委会")[0]
    ('白道坪村', '桥头社区')
    """
    aliases = {name}
    for tail in _VILLAGE_TAILS:
        if name.endswith(tail):
            base = name[: -len(tail)]
            village = base if base.endswith("村") else base + "村"
            return village, aliases | {village, village + "委会", village.removesuffix("村") + "村民委员会"}
    for tail in (*_COMMUNITY_TAILS, ""):
        if name.endswith(tail) and (tail or name.endswith("社区")):
            base = name[: -len(tail)] if tail else name
            community = base if base.endswith("社区") else base + "社区"
            stem = community.removesuffix("社区")
            return community, aliases | {community, stem + "居委会", community + "居委会"}
    if name.endswith("村"):
        return name, aliases | {name + "委会", name.removesuffix("村") + "村民委员会"}
    return name, aliases


def district_short(name: str) -> str:
    """城关区 → 城关, 永登县 → 永登; "" for names that have no short form (兰州新区)."""
    if name.endswith(("区", "县")) and not name.endswith("新区") and len(name) >= 3:
        return name[:-1]
    return ""


class Gazetteer:
    """Every name worth finding in an address text, with its meanings; see the module docstring."""

    def __init__(
        self,
        *,
        regions: Iterable[tuple[int, str, str, str]],
        roads: Sequence[str],
        compounds: Sequence[str],
        foreign: ForeignDivisions,
        normalize,
    ) -> None:
        """``regions`` are (id, code, name, level) rows of the city's own regions; ``roads`` and
        ``compounds`` the index's vocabularies (already normalised keys, by code); ``normalize``
        the normaliser names are folded with."""
        self.foreign = foreign
        self.readings = reading_table()
        _READINGS.update(self.readings)
        self.roads = Lexicon(roads)
        self.compounds = Lexicon(compounds)
        names: dict[str, list[tuple]] = {}

        def add(surface: str, entity: Entity) -> None:
            if len(surface) >= 2:
                names.setdefault(surface, []).append(tuple(entity))

        by_name: dict[tuple[str, str], list[int]] = {}
        for region_id, _code, name, level in regions:
            if level == "community":
                canonical, aliases = community_aliases(name)
                for alias in aliases:
                    by_name.setdefault((COMMUNITY, alias), []).append(region_id)
                by_name.setdefault((COMMUNITY + ":canonical", canonical), []).append(region_id)
            elif level in (STREET, DISTRICT, CITY):
                by_name.setdefault((level, name), []).append(region_id)
        canonical_of: dict[int, str] = {
            rid: name for (kind, name), ids in by_name.items() if kind == COMMUNITY + ":canonical" for rid in ids
        }
        for (kind, name), ids in by_name.items():
            if kind == COMMUNITY:
                add(normalize(name), Entity(COMMUNITY, canonical_of[ids[0]], tuple(sorted(ids))))
            elif kind == STREET:
                for surface in (name, name + "办", name + "办事处"):
                    add(normalize(surface), Entity(STREET, name, tuple(sorted(ids))))
            elif kind == DISTRICT:
                add(name, Entity(DISTRICT, name, tuple(ids)))
                if short := district_short(name):
                    add(short, Entity(DISTRICT, name, tuple(ids), short=True))
            elif kind == CITY:
                add(name, Entity(CITY, name, tuple(ids)))
                add(name.removesuffix("市"), Entity(CITY, name, tuple(ids), short=True))
        for code, word in enumerate(roads):
            if word:
                add(word, Entity(ROAD, code))
        for code, word in enumerate(compounds):
            if word:
                add(word, Entity(COMPOUND, code))
        for surface, codes in foreign.full.items():
            # A two-character full name (环县, 东区) is read as a place only where the words around
            # it say so, as a short form is.
            add(surface, Entity(FOREIGN, foreign.names[codes[0]], short=len(surface) < 3, codes=codes))
        for surface, codes in foreign.short.items():
            add(surface, Entity(FOREIGN, foreign.names[codes[0]], short=True, codes=codes))
        if foreign.province:
            for surface in {foreign.province, short_name(foreign.province, "province")}:
                add(surface, Entity(PROVINCE, foreign.province, short=surface != foreign.province))
        if foreign.city and (CITY, foreign.city) not in by_name:
            add(foreign.city, Entity(CITY, foreign.city))
            add(foreign.city.removesuffix("市"), Entity(CITY, foreign.city, short=True))
        # Plain tuples, made Entities as they are found: every process that opens the index
        # unpickles some 80,000 of them, and tuples load at C speed.
        self.names: dict[str, tuple[tuple, ...]] = {surface: tuple(found) for surface, found in names.items()}
        lengths: dict[str, set[int]] = {}
        for surface in self.names:
            lengths.setdefault(surface[:2], set()).add(len(surface))
        self.lengths = {head: tuple(sorted(found, reverse=True)) for head, found in lengths.items()}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        _READINGS.update(self.readings)

    def scan(self, text: str) -> list[tuple[int, int, tuple[Entity, ...]]]:
        """The names in ``text``, leftmost and longest first, as (start, end, meanings)."""
        hits = []
        i, n = 0, len(text)
        names, lengths = self.names, self.lengths
        while i < n - 1:
            for length in lengths.get(text[i : i + 2], ()):
                if i + length <= n and (found := names.get(text[i : i + length])) is not None:
                    hits.append((i, i + length, tuple(Entity._make(meaning) for meaning in found)))
                    i += length
                    break
            else:
                i += 1
        return hits
