"""The in-process address index and the matcher that scores candidates against it.

The index is read from ``layers_address`` by one ``COPY (SELECT …) TO STDOUT`` into Arrow
columns; every component becomes an integer code (its own vocabulary), and rows are sorted by
(road, door) so a block is a slice. It is cached per process and rebuilt when
:func:`address_table_version` changes: the table's file node (TRUNCATE), its ``max(id)`` and
the insert/update/delete counters of the statistics collector, committed and of the current
transaction. Committed counters reach the collector at most a second after the commit, so
another process's edits show within about a second; a process's own edits show at once.

Matching: parse → resolve the road (exact, a known road ending the text for business-name
prefixes, then rapidfuzz edit distance ≤ 1 over the road dictionary) → the (road, door) block,
else the road's block, else the compound's (exact or fuzzy) → a vectorised weighted score of
every row in the block → ranked candidates with a precision level.
"""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
from django.db import connection
from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

from .normalize import number_key, road_key
from .parser import AddressParts

#: Weight of each component in the 0–100 score (only components the query names count).
WEIGHTS = {
    "district": 8.0,
    "street": 6.0,
    "community": 3.0,
    "road": 20.0,
    "door": 18.0,
    "compound": 14.0,
    "building": 14.0,
    "entrance": 8.0,
    "floor": 2.0,
    "room": 10.0,
}
#: Precision levels, finest first.
PRECISIONS = ("room", "building", "door", "compound", "road", "community", "street", "district")
#: Components compared by equality of their codes; the others (street, road, compound) fuzzily.
_EXACT = ("district", "door", "building", "entrance", "floor", "room")
#: Column of each component in :attr:`AddressIndex.matrix`.
_COLUMN = {c: j for j, c in enumerate(("district", "street", "road", "door", "compound", *_EXACT[2:]))}
_COLUMNS = (
    "code district_name street_name road door_number compound_name building_number entrance floor room full_text"
).split()
_MISSING = -2  # a query value the index does not know: matches no row


def address_table_version() -> tuple:
    """A cheap key that changes whenever ``layers_address`` does (see the module docstring)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT current_database(), pg_relation_filenode('layers_address'),
                   (SELECT max(id) FROM layers_address),
                   pg_stat_get_tuples_inserted(t.oid) + pg_stat_get_tuples_updated(t.oid)
                     + pg_stat_get_tuples_deleted(t.oid),
                   pg_stat_get_xact_tuples_inserted(t.oid) + pg_stat_get_xact_tuples_updated(t.oid)
                     + pg_stat_get_xact_tuples_deleted(t.oid)
            FROM (SELECT 'layers_address'::regclass::oid AS oid) t
            """
        )
        return tuple(cursor.fetchone())


@dataclass
class Vocabulary:
    codes: np.ndarray  # one int32 code per row
    words: list[str]  # code → key
    index: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, column: pa.Array, key=lambda v: v) -> Vocabulary:
        """Codes for a string column, its values folded by ``key`` (done once per distinct value)."""
        encoded = column.dictionary_encode()
        raw = [key(v or "") for v in encoded.dictionary.to_pylist()]
        words = sorted(set(raw))
        index = {w: i for i, w in enumerate(words)}
        remap = np.array([index[w] for w in raw] or [0], dtype=np.int32)
        indices = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
        return cls(remap[indices] if len(raw) else np.zeros(len(column), np.int32), words, index)

    @property
    def code_of_empty(self) -> int:
        return self.index.get("", _MISSING)

    def code(self, value: str) -> int:
        return self.index.get(value, _MISSING) if value else -1


@dataclass
class AddressIndex:
    version: tuple
    build_seconds: float
    size: int
    code: pa.Array
    full_text: pa.Array
    lon: np.ndarray
    lat: np.ndarray
    grid_id: np.ndarray
    community_id: np.ndarray
    street_id: np.ndarray
    vocab: dict[str, Vocabulary]
    matrix: np.ndarray  # rows × components (see _COLUMN), int32 codes
    by_road: np.ndarray  # row numbers sorted by (road, door)
    road_slices: dict[int, tuple[int, int]]
    block_slices: dict[tuple[int, int], tuple[int, int]]
    by_compound: np.ndarray
    compound_slices: dict[int, tuple[int, int]]
    grids: dict[int, tuple[str, str, int | None]]  # id → code, name, parent id
    regions: dict[int, tuple[str, str, int | None, str]]  # id → code, name, parent id, level


def _slices(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(keys) == 0:
        return np.array([], np.int64), np.array([], np.int64)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return starts, np.r_[starts[1:], len(keys)]


def address_index_build() -> AddressIndex:
    """Reads the address table (one COPY) and builds the blocking index."""
    started = time.perf_counter()
    version = address_table_version()
    buffer = io.BytesIO()
    columns = ", ".join(_COLUMNS)
    with connection.cursor() as cursor:
        cursor.copy_expert(
            f"COPY (SELECT {columns}, ST_X(location) AS lon, ST_Y(location) AS lat, "
            f"coalesce(grid_id, -1) AS grid_id, coalesce(community_id, -1) AS community_id, "
            f"coalesce(street_id, -1) AS street_id FROM layers_address ORDER BY id) "
            f"TO STDOUT WITH (FORMAT csv, HEADER true)",
            buffer,
        )
        cursor.execute("SELECT id, code, name, parent_id FROM layers_grid")
        grids = {row[0]: (row[1], row[2], row[3]) for row in cursor.fetchall()}
        cursor.execute("SELECT id, code, name, parent_id, level FROM layers_region")
        regions = {row[0]: (row[1], row[2], row[3], row[4]) for row in cursor.fetchall()}
    buffer.seek(0)
    types = {c: pa.string() for c in _COLUMNS} | {"lon": pa.float64(), "lat": pa.float64()}
    table = pa_csv.read_csv(
        buffer,
        convert_options=pa_csv.ConvertOptions(column_types=types, strings_can_be_null=False),
    ).combine_chunks()
    del buffer

    def column(name: str) -> pa.Array:
        return table.column(name).combine_chunks()

    vocab = {
        "district": Vocabulary.of(column("district_name")),
        "street": Vocabulary.of(column("street_name")),
        "road": Vocabulary.of(column("road"), road_key),
        "door": Vocabulary.of(column("door_number"), number_key),
        "compound": Vocabulary.of(column("compound_name")),
        "building": Vocabulary.of(column("building_number"), number_key),
        "entrance": Vocabulary.of(column("entrance"), number_key),
        "floor": Vocabulary.of(column("floor"), number_key),
        "room": Vocabulary.of(column("room"), number_key),
    }
    road, door = vocab["road"].codes, vocab["door"].codes
    by_road = np.lexsort((door, road))
    road_sorted, door_sorted = road[by_road].astype(np.int64), door[by_road].astype(np.int64)
    starts, ends = _slices(road_sorted)
    road_slices = {int(road_sorted[s]): (int(s), int(e)) for s, e in zip(starts, ends, strict=True)}
    starts, ends = _slices(road_sorted * (len(vocab["door"].words) + 1) + door_sorted)
    block_slices = {
        (int(road_sorted[s]), int(door_sorted[s])): (int(s), int(e)) for s, e in zip(starts, ends, strict=True)
    }
    compound = vocab["compound"].codes
    by_compound = np.argsort(compound, kind="stable")
    starts, ends = _slices(compound[by_compound])
    compound_slices = {int(compound[by_compound[s]]): (int(s), int(e)) for s, e in zip(starts, ends, strict=True)}
    return AddressIndex(
        version=version,
        build_seconds=time.perf_counter() - started,
        size=table.num_rows,
        code=column("code"),
        full_text=column("full_text"),
        lon=column("lon").to_numpy(zero_copy_only=False),
        lat=column("lat").to_numpy(zero_copy_only=False),
        grid_id=column("grid_id").to_numpy(zero_copy_only=False),
        community_id=column("community_id").to_numpy(zero_copy_only=False),
        street_id=column("street_id").to_numpy(zero_copy_only=False),
        vocab=vocab,
        matrix=np.column_stack([vocab[c].codes for c in _COLUMN]),
        by_road=by_road,
        road_slices=road_slices,
        block_slices=block_slices,
        by_compound=by_compound,
        compound_slices=compound_slices,
        grids=grids,
        regions=regions,
    )


_cache: dict[str, AddressIndex] = {}
_lock = threading.Lock()


def address_index(*, check: bool = True) -> AddressIndex:
    """This process's index, rebuilt first if the table changed (``check=False`` skips the
    version query, for a batch that already checked)."""
    alias = connection.alias
    index = _cache.get(alias)
    if index is not None and not check:
        return index
    version = address_table_version()
    if index is None or index.version != version:
        with _lock:
            index = _cache.get(alias)
            if index is None or index.version != version:
                index = _cache[alias] = address_index_build()
    return index


def address_index_reset() -> None:
    """Forget the cached index (tests; after a bulk load in the same process)."""
    _cache.clear()


@dataclass
class Scored:
    rows: np.ndarray
    scores: np.ndarray
    matched: dict[str, np.ndarray]  # component → bool per row
    method: str


def _roads(index: AddressIndex, parts: AddressParts) -> tuple[list[tuple[int, float]], str]:
    """The road codes the query may mean, with their similarity, and how they were found."""
    vocab = index.vocab["road"]
    key = road_key(parts.road)
    if not key:
        return [], ""
    if key in vocab.index:
        return [(vocab.index[key], 1.0)], "road"
    # A typo: every road one edit away (a 3-character name has many), the block scores decide.
    found = process.extract(key, vocab.words, scorer=Levenshtein.distance, score_cutoff=1, limit=50)
    if found:
        return [(i, 1.0 - d / len(key)) for _, d, i in found], "road_typo"
    # A business name or remark run into the road (老马牛肉面麻启街): a known road ends the text.
    for start in range(1, len(key) - 1):
        if key[start:] in vocab.index:
            return [(vocab.index[key[start:]], 1.0)], "road_suffix"
    return [], ""


def _compounds(index: AddressIndex, name: str) -> list[tuple[int, float]]:
    vocab = index.vocab["compound"]
    if not name:
        return []
    if name in vocab.index:
        return [(vocab.index[name], 1.0)]
    found = process.extract(name, vocab.words, scorer=fuzz.ratio, score_cutoff=80, limit=3)
    return [(i, s / 100) for _, s, i in found]


def candidates_score(index: AddressIndex, parts: AddressParts) -> Scored | None:
    """Every row of the query's block, scored 0–100; None when no block was found."""
    blocks: list[tuple[np.ndarray, dict[str, float]]] = []
    roads, method = _roads(index, parts)
    door = index.vocab["door"].code(parts.door)
    if len(roads) > 1 and door >= 0 and any((road, door) in index.block_slices for road, _ in roads):
        # Of the roads a typo may mean, those with the query's door number.
        roads = [(road, similarity) for road, similarity in roads if (road, door) in index.block_slices]
    for road, similarity in roads:
        if door >= 0 and (road, door) in index.block_slices:
            start, end = index.block_slices[road, door]
            method = method if method != "road" else "road_door"
        else:
            start, end = index.road_slices[road]
        blocks.append((index.by_road[start:end], {"road": similarity}))
    if not blocks:
        for compound, similarity in _compounds(index, parts.compound):
            start, end = index.compound_slices[compound]
            blocks.append((index.by_compound[start:end], {"compound": similarity}))
            method = "compound"
    if not blocks:
        return None
    rows = np.concatenate([b[0] for b in blocks])
    fixed = [np.full(len(block), sims.get("road", sims.get("compound", 1.0))) for block, sims in blocks]
    fixed_component = "road" if "road" in blocks[0][1] else "compound"
    total = 0.0
    score = np.zeros(len(rows))
    matched: dict[str, np.ndarray] = {}
    block = index.matrix[rows]  # one gather: every component code of every candidate
    for component, weight in WEIGHTS.items():
        value = getattr(parts, component)
        if not value:
            continue
        total += weight
        if component == fixed_component:
            similarity = np.concatenate(fixed)
            matched[component] = similarity > 0
        elif component == "community":
            ids = [i for i, r in index.regions.items() if r[3] == "community" and r[1] == value]
            similarity = matched[component] = np.isin(index.community_id[rows], ids)
        elif component in _EXACT:
            similarity = matched[component] = block[:, _COLUMN[component]] == index.vocab[component].code(value)
        else:  # street, compound, road of a compound block: fuzzy, once per distinct value
            words = index.vocab[component].words
            codes = block[:, _COLUMN[component]]
            if len(codes) <= 512:
                table: dict[int, float] = {}
                similarity = np.array(
                    [
                        table[c] if c in table else table.setdefault(c, fuzz.ratio(value, words[c]) / 100)
                        for c in codes.tolist()
                    ]
                )
            else:
                distinct, inverse = np.unique(codes, return_inverse=True)
                similarity = np.array([fuzz.ratio(value, words[c]) / 100 for c in distinct])[inverse]
            matched[component] = similarity >= 0.999
        score += weight * similarity
    score = 100 * score / total if total else score
    for component in ("building", "entrance", "room"):
        if not getattr(parts, component):
            # A level the query leaves out prefers the address that has none (a building's door
            # address over its rooms), by less than any real difference.
            score -= 0.5 * (block[:, _COLUMN[component]] != index.vocab[component].code_of_empty)
    return Scored(rows, score, matched, method)


def precision_of(parts: AddressParts, matched: dict[str, np.ndarray], at: int) -> str:
    """The finest level the query named and the candidate agrees with."""
    for level in PRECISIONS:
        if level in matched and matched[level][at]:
            return level
    return ""


def _region_chain(index: AddressIndex, region_id: int, chain: dict) -> dict:
    region = index.regions.get(region_id)
    while region is not None and region[3] != "city":
        chain[region[3]] = {"code": region[0], "name": region[1]}
        region = index.regions.get(region[2]) if region[2] else None
    return chain


def _empty_chain() -> dict[str, dict[str, str] | None]:
    return dict.fromkeys(("district", "street", "community", "grid_large", "grid_medium", "grid_small"))


def grid_chain(index: AddressIndex, row: int) -> dict[str, dict[str, str] | None]:
    """The areas of one address: district, street, community and the three grids."""
    chain = _empty_chain()
    grid = index.grids.get(int(index.grid_id[row]))
    for level in ("grid_small", "grid_medium", "grid_large"):
        if grid is None:
            break
        chain[level] = {"code": grid[0], "name": grid[1]}
        grid = index.grids.get(grid[2]) if grid[2] else None
    region_id = int(index.community_id[row])
    return _region_chain(index, region_id if region_id >= 0 else int(index.street_id[row]), chain)


@dataclass
class AdminMatch:
    level: str
    code: str
    name: str
    chain: dict[str, dict[str, str] | None]


def admin_match(index: AddressIndex, parts: AddressParts) -> AdminMatch | None:
    """For a query that names no known road or compound: the finest region it names."""
    for level in ("community", "street", "district"):
        name = getattr(parts, level)
        for region_id, region in index.regions.items() if name else ():
            if region[3] == level and region[1] == name:
                return AdminMatch(level, region[0], region[1], _region_chain(index, region_id, _empty_chain()))
    return None
