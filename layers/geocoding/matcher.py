"""Scoring the addresses a reading may mean, and deciding what to answer.

**Candidates.** The rows of each (road, door) block the reading names and of each compound it
names (exact or within one edit); only when neither gives rows, every row of the named roads.

**Score.** Each component the text names counts with its weight (:data:`WEIGHTS`), times the
row's agreement: 1 for an equal code, the similarity of a road or compound read through a typo
(:data:`~layers.geocoding.gazetteer.HOMOPHONE`, :data:`~layers.geocoding.gazetteer.TYPO`),
the string similarity of a street or compound the index does not know, 0 otherwise; the sum is
scaled to 0–100. A row that has a building, entrance or room the text does not name loses half a
point for each, so the coarser address wins when the text is coarser.

**Decision** (:func:`decide`), independent of how many candidates are asked for:

* the rows with the best score tie; one row is the answer; rows of one building are answered by
  the building's own address (precision ``building``: 3栋2单元 with no room names no room, and
  neither does a room that happens to be the only one left), rows of one compound by its first
  building (``door`` or ``compound``);
* the answer is **ambiguous** — no match, every grid's best listed — when a row in another small
  grid scores within :data:`AMBIGUITY_MARGIN` of it: a confident answer in the wrong grid is the
  worst outcome, worse than asking a person;
* below :data:`MATCH_SCORE` there is no match either, nor when neither the road nor the compound
  is read surely enough (:data:`ANCHOR`); the candidates are listed with their precision all the
  same, so a fallback is reported, never hidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz

from .index import COLUMN, AddressIndex
from .parser import Reading

#: Weight of each component in the 0–100 score (only components the text names count).
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
PRECISIONS = ("room", "building", "door", "compound", "road", "community", "street", "district", "city")
#: The least score a best candidate needs to count as a match.
MATCH_SCORE = 75.0
#: How far a confident answer's score must stand above the best candidate in any other small
#: grid. One component of the text left unmatched costs at least this much (a floor excepted).
AMBIGUITY_MARGIN = 5.0
#: Similarity of a road one edit from a road the text names exactly, where the named compound
#: or door lies (a typo that made one road's name of another's): the text named a real road, so
#: this reading needs the rest of the address to agree.
NEIGHBOUR = 0.5
#: A confident answer needs its road or its compound read at least this surely: exact, or
#: through one typo (:data:`~layers.geocoding.gazetteer.TYPO`); a road guessed twice over (words
#: cut off before a typo, or a real road's neighbour) is not enough on its own.
ANCHOR = 0.8
#: Points a row loses for each of its building, entrance and room the text does not name.
COARSER_BONUS = 0.5
#: A wanted code that no row has (components the text does not name).
_UNWANTED = -3
_NUMBERS = ("door", "building", "entrance", "floor", "room")
_SAME_BUILDING = [COLUMN[c] for c in ("district", "road", "door", "compound", "building")]
_SAME_COMPOUND = [COLUMN[c] for c in ("district", "road", "door", "compound")]


@dataclass
class Scored:
    """Candidate rows (distinct, in no particular order), their scores, and per named component
    whether each agrees."""

    rows: np.ndarray
    scores: np.ndarray
    agree: dict[str, np.ndarray]
    method: str
    anchor: np.ndarray  # per row, how surely its road or compound is the one named (0–1)

    def take(self, keep: np.ndarray) -> Scored:
        agree = {k: v[keep] for k, v in self.agree.items()}
        return Scored(self.rows[keep], self.scores[keep], agree, self.method, self.anchor[keep])


def _pieces(index: AddressIndex, reading: Reading) -> tuple[list[np.ndarray], str, list[tuple[int, float]]]:
    """The candidate rows in disjoint pieces, how they were found, and the roads they were
    found on with their similarity."""
    parts = reading.parts
    door = index.code("door", parts.door)
    roads = reading.roads
    pieces: list[np.ndarray] = []
    method = ""
    typo = any(s < 1 for _, s in roads)
    blocks: list[tuple[int, int]] = []
    if door >= 0 and roads:
        blocks = [index.block_rows(road, door) for road, _ in roads]
        if not any(end > start for start, end in blocks) and all(s == 1 for _, s in roads):
            # A known road without that door: a typo may have made one road's name of another's
            # (北山路 for 中山路); the roads one edit away that have the door.
            near = [(road, NEIGHBOUR) for road, _ in index.gazetteer.roads.near(index.words["road"][roads[0][0]])]
            near_blocks = [index.block_rows(road, door) for road, _ in near]
            roads = roads + [r for r, (start, end) in zip(near, near_blocks, strict=True) if end > start]
            blocks += near_blocks
            typo = any(end > start for start, end in near_blocks)
        blocks = [(start, end) for start, end in blocks if end > start]
        pieces += [np.arange(start, end) for start, end in blocks]
        method = "road_door" if blocks else ""
    # A compound found in the named road's block is the one meant: rows of compounds of that
    # name elsewhere (other districts) lack the road and the door, and can only lose.
    on_road = bool(blocks) and _compound_on_road(index, blocks, reading.compounds)
    outside = 0
    for compound, _ in reading.compounds if not on_road else ():
        rows = index.compound_positions(compound)
        for start, end in blocks:  # a compound's rows are mostly inside its (road, door) block
            rows = rows[(rows < start) | (rows >= end)]
        pieces.append(rows.astype(np.int64))
        outside += len(rows)
        method = method or "compound"
    if outside and len(roads) == 1 and roads[0][1] == 1:
        # The compound lies on another road: one a typo away from the named one still counts
        # for something (北山路 typed for 中山路), but far less than the road named exactly.
        near = index.gazetteer.roads.near(index.words["road"][roads[0][0]])
        roads = roads + [(road, NEIGHBOUR) for road, _ in near]
    if not pieces:
        for road, _ in roads:
            start, end = index.road_rows(road)
            pieces.append(np.arange(start, end))
        method = "road" if pieces else ""
    if method and (typo if method != "compound" else any(s < 1 for _, s in reading.compounds)):
        method += "_typo"
    return pieces, method, roads


def _compound_on_road(index: AddressIndex, blocks: list[tuple[int, int]], compounds: list[tuple[int, float]]) -> bool:
    """Whether one of the named compounds is in the named road's blocks."""
    column = COLUMN["compound"]
    return any((index.matrix[start:end, column] == code).any() for start, end in blocks for code, _ in compounds)


def _resolved(values: np.ndarray, resolved: list[tuple[int, float]]) -> np.ndarray:
    """The similarity of each row's code: its best in ``resolved``, else 0."""
    if len(resolved) == 1:
        return np.where(values == resolved[0][0], resolved[0][1], 0.0)
    best: dict[int, float] = {}
    for code, value in resolved:
        best[code] = max(value, best.get(code, 0.0))
    distinct, inverse = np.unique(values, return_inverse=True)
    return np.array([best.get(code, 0.0) for code in distinct.tolist()])[inverse]


def _fuzzy(values: np.ndarray, words: list[str], text: str) -> np.ndarray:
    distinct, inverse = np.unique(values, return_inverse=True)
    return np.array([fuzz.ratio(text, words[c]) / 100 for c in distinct.tolist()])[inverse]


def candidates_score(index: AddressIndex, reading: Reading) -> Scored | None:
    """Every candidate row of the reading, scored 0–100; None when it names no known road or
    compound (see the module docstring)."""
    pieces, method, roads = _pieces(index, reading)
    if not pieces:
        return None
    # The pieces are disjoint: blocks of different roads, compound rows outside those blocks,
    # or whole roads when there is nothing else.
    rows = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
    if len(rows) == 0:
        return None
    parts = reading.parts
    contiguous = int(rows[-1]) - int(rows[0]) + 1 == len(rows) and int(rows[-1]) >= int(rows[0])
    block = index.matrix[int(rows[0]) : int(rows[-1]) + 1] if contiguous else index.matrix[rows]
    # Components compared by code go through one comparison of the whole block with a row of
    # wanted codes and one product with their weights; the others (a name read through a typo,
    # a community, a name the index does not know) one by one.
    wanted = np.full(len(COLUMN), _UNWANTED, dtype=np.int32)
    weights = np.zeros(len(COLUMN))
    named: list[str] = []
    others: list[tuple[str, float, np.ndarray, float]] = []  # component, weight, similarity, agrees from
    total = 0.0
    for component, weight in WEIGHTS.items():
        value = getattr(parts, component)
        if not value:
            continue
        total += weight
        resolved = roads if component == "road" else reading.compounds if component == "compound" else None
        if resolved and (len(resolved) > 1 or resolved[0][1] < 1):
            similarity = _resolved(block[:, COLUMN[component]], resolved)
            others.append((component, weight, similarity, 1e-9))
        elif component == "community":
            communities = index.links[rows, 1]
            found = np.zeros(len(rows), dtype=bool)
            for region in reading.regions.get("community", ()):
                found |= communities == region
            others.append((component, weight, found.astype(float), 1.0))
        else:
            code = resolved[0][0] if resolved else index.code(component, value)
            if resolved or code >= 0 or component in _NUMBERS or component == "district":
                wanted[COLUMN[component]], weights[COLUMN[component]] = code, weight
                named.append(component)
            else:  # a street, road or compound the index does not know: how alike the names are
                similarity = _fuzzy(block[:, COLUMN[component]], index.words[component], value)
                others.append((component, weight, similarity, 0.999))
    scale = 100.0 / total if total else 0.0
    weights *= scale
    # A row's building, entrance or room the text does not name costs COARSER_BONUS: counted in
    # the same product as a bonus for having none, less that bonus for every such part.
    coarser = [COLUMN[c] for c in ("building", "entrance", "room") if not getattr(parts, c)]
    for column in coarser:
        wanted[column], weights[column] = index.empties[column], COARSER_BONUS
    equal = block == wanted
    score = equal @ weights - COARSER_BONUS * len(coarser)
    agree: dict[str, np.ndarray] = {name: equal[:, COLUMN[name]] for name in named}
    anchor = np.zeros(len(rows))
    for component in ("road", "compound"):
        if component in agree:
            np.maximum(anchor, agree[component], out=anchor)
    for component, weight, similarity, least in others:
        score += weight * scale * similarity
        agree[component] = similarity >= least
        if component in ("road", "compound"):
            np.maximum(anchor, similarity, out=anchor)
    return Scored(rows, score, agree, method, anchor)


@dataclass
class Decision:
    """What to answer: the row (``rows[at]`` of the scored candidates, or a building's own row),
    its score and precision, the rows it stands for, and whether another grid is as likely."""

    row: int
    score: float
    precision: str
    tied: np.ndarray  # positions in the scored arrays the answer stands for
    ambiguous: bool
    anchored: bool  # its road or compound is named exactly or through a plain typo
    agrees: list[str] = field(default_factory=list)
    differs: list[str] = field(default_factory=list)


def _precision(agree: dict[str, np.ndarray], at: int, finest: str) -> str:
    for level in PRECISIONS[PRECISIONS.index(finest) :]:
        if level in agree and agree[level][at]:
            return level
    return ""


def _building_row(index: AddressIndex, scored: Scored, at: int) -> int:
    """The building's own address (no entrance, no room) among the candidates, else ``at``'s row."""
    block = index.matrix[scored.rows]
    same = (block[:, _SAME_BUILDING] == index.matrix[scored.rows[at], _SAME_BUILDING]).all(axis=1)
    own = same & (block[:, COLUMN["entrance"]] == index.empty("entrance"))
    own &= block[:, COLUMN["room"]] == index.empty("room")
    found = np.flatnonzero(own)
    return int(scored.rows[found].min()) if len(found) else int(scored.rows[at])


def decide(index: AddressIndex, scored: Scored) -> Decision:
    """The answer among the scored candidates (see the module docstring)."""
    best = float(scored.scores.max())
    tied = np.flatnonzero(scored.scores >= best - 1e-6)
    at = int(tied[np.argmin(scored.rows[tied])])  # the lowest row: the same whatever the order
    finest = "room"
    row = int(scored.rows[at])
    if len(tied) > 1:
        values = index.matrix[scored.rows[tied]]
        if (values[:, _SAME_BUILDING] == values[0, _SAME_BUILDING]).all():
            row, finest = _building_row(index, scored, at), "building"
        elif (values[:, _SAME_COMPOUND] == values[0, _SAME_COMPOUND]).all():
            finest = "door"
        else:
            finest = "road"
    elif "room" not in scored.agree and index.matrix[row, COLUMN["room"]] != index.empty("room"):
        # One room fits a text that names none (its building's only room in that entrance):
        # still the building, not the room.
        row, finest = _building_row(index, scored, at), "building"
    grid = index.links[scored.rows, 0]
    others = scored.scores[grid != index.links[row, 0]]
    ambiguous = len(others) > 0 and best - float(others.max()) < AMBIGUITY_MARGIN
    agrees = [c for c, values in scored.agree.items() if values[at]]
    differs = [c for c, values in scored.agree.items() if not values[at]]
    anchored = bool(scored.anchor[at] >= ANCHOR)
    return Decision(row, best, _precision(scored.agree, at, finest), tied, ambiguous, anchored, agrees, differs)


def ranked(scored: Scored, count: int, *, exclude: np.ndarray | None = None) -> np.ndarray:
    """Positions of the ``count`` best candidates, best first, ties by row (so the first n of
    a longer list are the list of n), leaving out ``exclude``."""
    scores = scored.scores
    keep = np.ones(len(scores), dtype=bool)
    if exclude is not None:
        keep[exclude] = False
    positions = np.flatnonzero(keep)
    if len(positions) > count:
        # Everything that scores at least the count-th best, ties included, then a stable order.
        threshold = np.partition(scores[positions], len(positions) - count)[len(positions) - count]
        positions = positions[scores[positions] >= threshold]
    order = np.lexsort((scored.rows[positions], -scores[positions]))
    return positions[order][:count]


def per_grid(index: AddressIndex, scored: Scored, count: int) -> np.ndarray:
    """Positions of each small grid's best candidate, best first, at most ``count``."""
    shortlist = ranked(scored, min(len(scored.rows), 50 * count))
    grids = index.links[scored.rows[shortlist], 0]
    _, first = np.unique(grids, return_index=True)
    return shortlist[np.sort(first)][:count]


# --- areas ----------------------------------------------------------------------------------------


def region_chain(index: AddressIndex, region_id: int, chain: dict) -> dict:
    region = index.regions.get(region_id)
    while region is not None and region[3] != "city":
        chain[region[3]] = {"code": region[0], "name": region[1]}
        region = index.regions.get(region[2]) if region[2] else None
    return chain


def empty_chain() -> dict[str, dict[str, str] | None]:
    return dict.fromkeys(("district", "street", "community", "grid_large", "grid_medium", "grid_small"))


def grid_chain(index: AddressIndex, row: int) -> dict[str, dict[str, str] | None]:
    """The areas of one address: district, street, community and the three grids (shared by
    every address of the same links: do not change it)."""
    links = tuple(index.links[row].tolist())
    chain = index.chains.get(links)
    if chain is None:
        chain = index.chains[links] = _grid_chain(index, *links)
    return chain


def _grid_chain(index: AddressIndex, grid_id: int, community_id: int, street_id: int) -> dict:
    chain = empty_chain()
    grid = index.grids.get(grid_id)
    for level in ("grid_small", "grid_medium", "grid_large"):
        if grid is None:
            break
        chain[level] = {"code": grid[0], "name": grid[1]}
        grid = index.grids.get(grid[2]) if grid[2] else None
    return region_chain(index, community_id if community_id >= 0 else street_id, chain)


@dataclass
class AdminMatch:
    """The regions a text names when it names no road or compound: the finest level, and every
    region of that level the text may mean (more than one is ambiguous)."""

    level: str
    regions: list[int]


def admin_match(index: AddressIndex, reading: Reading) -> AdminMatch | None:
    """The finest region level the text names, narrowed by the coarser ones it names."""

    def ancestors(region_id: int) -> set[int]:
        seen = set()
        region = index.regions.get(region_id)
        while region is not None and region[2]:
            seen.add(region[2])
            region = index.regions.get(region[2])
        return seen

    named = reading.regions
    coarser_levels = {"community": ("street", "district"), "street": ("district",), "district": (), "city": ()}
    for level, coarser in coarser_levels.items():
        ids = [i for i in named.get(level, ()) if i in index.regions]
        for other in coarser:
            if named.get(other):
                ids = [i for i in ids if ancestors(i) & set(named[other])] or ids
        if ids:
            return AdminMatch(level, sorted(ids))
    return None
