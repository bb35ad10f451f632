"""geocode_addresses: address text → standard address over the whole address table, vs rapidfuzz
``process.extractOne`` brute force over every ``full_text``.

The query set is generated (seeded) from the table's own addresses with the noise clerks and
citizens make: dropped admin levels, 栋/幢/号楼/座 and 单元/门 and 室/房 synonyms, full-width digits,
Chinese numerals, 巷 written 弄, a missing 号, a one-character typo in the road or compound
name, stray spaces and a business name in front. Negatives are addresses in other cities whose
roads share Lanzhou's names (上海普陀区永登路 …) and addresses on roads the city does not have.
Ours is the batch service on 2 worker processes (forked after the index is built, so the build
is timed separately); the peer answers a small sample (it takes ~0.3 s a query at city scale).
"""

from __future__ import annotations

import time

import numpy as np
from rapidfuzz import fuzz, process

from layers.geocoding.addresses import addresses_geocode
from layers.geocoding.index import COLUMN, AddressIndex, address_index, address_index_reset

from .harness import Result, benchmark, median_seconds

WORKERS = 2
QUERIES = 20_000
NEGATIVES = 2_000
PEER_SAMPLE = 30

_CN = "零一二三四五六七八九"
_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
_TYPO_CHARS = "东西南北中华新安平和兴建民福康乐明光金宝嘉泰林园春秋"
_BUSINESSES = ("老马牛肉面", "兴隆超市", "顺丰快递驿站", "小王理发店", "益民大药房", "张记五金")
_FOREIGN = (
    "上海市普陀区",
    "上海黄浦区",
    "济南市历城区",
    "合肥市包河区",
    "西藏拉萨市城关区",
    "拉萨城关区",
    "北京市朝阳区",
    "天水市秦州区",
    "甘肃省庆阳市西峰区",
    "西安市雁塔区",
)


def chinese_number(value: int) -> str:
    """一千零八 style for doors and buildings up to 9,999."""
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
        out.append(("" if digit == 1 and unit == "十" and position == 0 else _CN[digit]) + unit)
    return "".join(out)


def _typo(rng: np.random.Generator, name: str, *, keep_last: bool) -> str:
    if len(name) < 3:
        return name
    at = int(rng.integers(0, len(name) - (1 if keep_last else 0)))
    return name[:at] + _TYPO_CHARS[int(rng.integers(len(_TYPO_CHARS)))] + name[at + 1 :]


def _number(rng: np.random.Generator, value: str, units: tuple[str, ...], *, room: bool = False) -> str:
    unit = units[int(rng.integers(len(units)))]
    if not value.isdigit():
        return value + unit
    draw = rng.random()
    if draw < 0.15:
        text = "".join(_CN[int(d)] for d in value).replace("零", "〇") if room else chinese_number(int(value))
    elif draw < 0.3:
        text = value.translate(_FULL_WIDTH)
    else:
        text = value
    return text + unit


def noisy_queries(index: AddressIndex, *, count: int, negatives: int, seed: int = 11) -> list[tuple[str, str]]:
    """``count`` noisy texts of sampled addresses, labelled with their code, and ``negatives``
    texts labelled "" (no match expected), shuffled."""
    rng = np.random.default_rng(seed)

    def word(component: str, row: int) -> str:
        return index.words[component][index.matrix[row, COLUMN[component]]]

    queries: list[tuple[str, str]] = []
    for row in rng.integers(0, index.size, count):
        row = int(row)
        district, street, road = word("district", row), word("street", row), word("road", row)
        door, compound = word("door", row), word("compound", row)
        building, entrance, room = word("building", row), word("entrance", row), word("room", row)
        admin = [
            "甘肃省兰州市" + district + street,
            "兰州市" + district,
            district,
            district[:-1] + street if district.endswith(("区", "县")) else district,
            "",
            street,
        ][int(rng.integers(6))]
        if rng.random() < 0.2:
            road = _typo(rng, road, keep_last=True)
        if road.endswith("巷") and rng.random() < 0.5:
            road = road[:-1] + "弄"
        parts = [admin, road]
        if door:
            parts.append(_number(rng, door, ("号",) * 9 + ("",)))
        if compound:
            parts.append(_typo(rng, compound, keep_last=False) if rng.random() < 0.15 else compound)
        if building:
            parts.append(_number(rng, building, ("号楼", "栋", "幢", "座", "#楼")))
        if entrance:
            parts.append(_number(rng, entrance, ("单元", "单元", "门")))
        if room:
            parts.append(_number(rng, room, ("室", "室", "房", ""), room=True))
        text = "".join(parts)
        if rng.random() < 0.3:
            cut = int(rng.integers(1, len(text)))
            text = text[:cut] + " " * int(rng.integers(1, 3)) + text[cut:]
        if rng.random() < 0.1:
            text = _BUSINESSES[int(rng.integers(len(_BUSINESSES)))] + " " + text
        queries.append((text, index.address_code(row)))
    roads = [road for road in index.words["road"] if road]
    for n in range(negatives):
        door = int(rng.integers(1, 400))
        if n % 2 == 0:
            prefix = _FOREIGN[int(rng.integers(len(_FOREIGN)))]
            text = f"{prefix}{roads[int(rng.integers(len(roads)))]}{door}号"
        else:
            road = "".join(_TYPO_CHARS[int(i)] for i in rng.integers(0, len(_TYPO_CHARS), 3)) + "路"
            while road in index.codes["road"] or process.extractOne(road, roads, scorer=fuzz.ratio, score_cutoff=70):
                road = "".join(_TYPO_CHARS[int(i)] for i in rng.integers(0, len(_TYPO_CHARS), 3)) + "路"
            text = f"兰州市城关区{road}{door}号{_TYPO_CHARS[n % len(_TYPO_CHARS)]}星苑3号楼2单元501室"
        queries.append((text, ""))
    order = rng.permutation(len(queries))
    return [queries[i] for i in order]


@benchmark("geocode_addresses")
def geocode_addresses(*, repeats: int, rows: int) -> list[Result]:
    address_index_reset()
    started = time.perf_counter()
    index = address_index()
    build = time.perf_counter() - started
    queries = noisy_queries(index, count=QUERIES, negatives=NEGATIVES)
    texts = [text for text, _ in queries]
    answers: list = []

    def run() -> None:
        answers[:] = addresses_geocode(texts=texts, workers=WORKERS)

    ours = len(texts) / median_seconds(run, repeats=repeats)
    single = len(texts[:5000]) / median_seconds(lambda: addresses_geocode(texts=texts[:5000]), repeats=1)
    positives = [(a, label) for a, (_, label) in zip(answers, queries, strict=True) if label]
    correct = sum(1 for a, label in positives if a.best is not None and a.best.code == label)
    said_no = [(a, label) for a, (_, label) in zip(answers, queries, strict=True) if not a.matched]
    true_no = sum(1 for _, label in said_no if not label)
    no_precision = true_no / len(said_no) if said_no else 1.0
    no_recall = true_no / NEGATIVES

    full_texts = index.texts.column("full_text").to_pylist()
    sample = [(text, label) for text, label in queries if label][:PEER_SAMPLE]
    started = time.perf_counter()
    peer_hits = 0
    for text, label in sample:
        _, _, at = process.extractOne(text, full_texts, scorer=fuzz.ratio)
        peer_hits += index.address_code(at) == label
    peer = len(sample) / (time.perf_counter() - started)

    accuracy = correct / len(positives)
    note = (
        f"top-1 accuracy {accuracy:.4f} on {len(positives):,} noisy queries (target ≥ 0.95); "
        f"no-match precision {no_precision:.4f}, recall {no_recall:.4f} on {NEGATIVES:,} negatives; "
        f"index ready in {build:.1f} s for {index.size:,} addresses (opened from the shared copy on disk; "
        f"building it took {index.build_seconds:.1f} s); one process {single:,.0f} addresses/s; "
        f"peer top-1 {peer_hits}/{len(sample)} on its sample"
    )
    print(f"bench: geocode_addresses: {note}", flush=True)
    scale = f"{index.size:,} addresses, {len(texts):,} queries, {WORKERS} workers"
    return [
        # The issue's own bar: 10,000 addresses/s on 2 cores (at top-1 ≥ 0.95, in the note).
        Result("geocode_addresses", "addresses/s", ours, "budget 10,000/s", 10_000, 1.0, scale, note),
        Result("geocode_addresses", "addresses/s", ours, "rapidfuzz extractOne brute force", peer, 3000, scale, note),
    ]
