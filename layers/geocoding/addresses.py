"""Address text → standard address: the geocoding services.

:func:`address_geocode` answers one text, :func:`addresses_geocode` a batch (optionally over
several processes, which share the memory-mapped index). An answer carries the normalised
address text, the components read from it, and candidates ranked by score (0–100) with the
precision they reach and which components agree or differ, so every answer can be explained.

``no_match_reason`` says why there is no confident match: a text naming a place elsewhere in
China, no known road or compound, a best score under
:data:`~layers.geocoding.matcher.MATCH_SCORE`, or candidates in several small grids that are
equally likely (``ambiguous``: each grid's best is listed). The answer and its first candidate
never depend on ``limit``: event intake (one candidate) and the API (five) agree.

A reader's answer holds only the standard addresses of their data scope (:mod:`layers.protection.scope`):
the others are dropped before the decision, and a text whose every candidate lies outside answers
"no known road or compound". A region matched at admin precision is reference data and stays.
The services (event intake, re-geocoding) geocode for the whole city.
"""

from __future__ import annotations

import gc
import multiprocessing
from dataclasses import asdict, dataclass, field
from functools import partial

import numpy as np

from layers.protection.scope import CITY, Scope

from .index import AddressIndex, address_index
from .matcher import (
    AMBIGUITY_MARGIN,
    MATCH_SCORE,
    PRECISIONS,
    Scored,
    admin_match,
    candidates_score,
    decide,
    empty_chain,
    grid_chain,
    per_grid,
    ranked,
    region_chain,
)
from .parser import address_read


@dataclass
class GeocodeCandidate:
    code: str
    full_text: str
    score: float
    precision: str
    lon: float | None
    lat: float | None
    grids: dict[str, dict[str, str] | None]
    agrees: list[str] = field(default_factory=list)  # components of the text this address has
    differs: list[str] = field(default_factory=list)  # components of the text it does not


@dataclass
class GeocodeAnswer:
    query: str
    normalized: str
    parsed: dict[str, str]
    candidates: list[GeocodeCandidate] = field(default_factory=list)
    no_match_reason: str = ""
    method: str = ""
    ambiguous: bool = False

    @property
    def matched(self) -> bool:
        return not self.no_match_reason

    @property
    def best(self) -> GeocodeCandidate | None:
        return self.candidates[0] if self.candidates and self.matched else None

    def as_dict(self) -> dict:
        return asdict(self) | {"matched": self.matched}


def _in_scope(index: AddressIndex, scored: Scored, scope: Scope) -> Scored:
    """The scored candidates that lie in ``scope``."""
    street_district = None
    if scope.district_codes:
        # The index keeps no district per address: a district scope goes by the rows' streets.
        street_district = {
            rid: index.regions.get(region[2], ("",))[0]
            for rid, region in index.regions.items()
            if region[3] == "street"
        }
    links = index.links[scored.rows]
    keep = scope.mask(
        grid_id=links[:, 0], community_id=links[:, 1], street_id=links[:, 2], street_district=street_district
    )
    return scored.take(keep)


def _candidate(index: AddressIndex, row: int, score: float, precision: str, agrees, differs) -> GeocodeCandidate:
    lon, lat = (float(v) for v in index.lonlat[row])
    return GeocodeCandidate(
        code=index.address_code(row),
        full_text=index.full_text(row),
        score=round(score, 1),
        precision=precision,
        lon=lon,
        lat=lat,
        grids=grid_chain(index, row),
        agrees=list(agrees),
        differs=list(differs),
    )


def _listed(index: AddressIndex, scored: Scored, at: int) -> GeocodeCandidate:
    agrees = [c for c, values in scored.agree.items() if values[at]]
    differs = [c for c, values in scored.agree.items() if not values[at]]
    precision = next((p for p in PRECISIONS if p in scored.agree and scored.agree[p][at]), "")
    return _candidate(index, int(scored.rows[at]), float(scored.scores[at]), precision, agrees, differs)


def _admin(index: AddressIndex, answer: GeocodeAnswer, reading) -> GeocodeAnswer:
    admin = admin_match(index, reading)
    if admin is None:
        answer.no_match_reason = "没有找到道路或小区 (no known road or compound in the text)"
        return answer
    answer.method = "admin"
    for region_id in admin.regions:
        code, name = index.regions[region_id][:2]
        chain = region_chain(index, region_id, empty_chain())
        answer.candidates.append(GeocodeCandidate(code, name, 100.0, admin.level, None, None, chain, [admin.level]))
    parts = reading.parts
    if parts.road or parts.compound or parts.door:
        for candidate in answer.candidates:
            candidate.score = 0.0
        name = answer.candidates[0].full_text
        answer.no_match_reason = f"只匹配到{name} (only the {admin.level} matched; road or compound unknown)"
    elif len(admin.regions) > 1:
        answer.ambiguous = True
        answer.no_match_reason = (
            f"有{len(admin.regions)}个同名的{admin.level} (ambiguous: {len(admin.regions)} regions of that name)"
        )
    return answer


def _answer(index: AddressIndex, text: str, limit: int, scope: Scope = CITY) -> GeocodeAnswer:
    reading = address_read(text, index.gazetteer)
    parts = reading.parts
    answer = GeocodeAnswer(query=text, normalized=reading.normalized, parsed=parts.as_dict())
    if parts.foreign:
        answer.no_match_reason = f"外地地址 (outside Lanzhou): {parts.foreign}"
        return answer
    scored = candidates_score(index, reading)
    if scored is not None and not scope.is_city:
        scored = _in_scope(index, scored, scope)
        # Answered as if no address matched: that one exists outside the reader's scope is
        # itself something the scope keeps from them.
        scored = scored if len(scored.rows) else None
    if scored is None:
        return _admin(index, answer, reading)
    answer.method = scored.method
    decision = decide(index, scored)
    if decision.ambiguous:
        answer.ambiguous = True
        shown = per_grid(index, scored, limit)
        answer.candidates = [_listed(index, scored, int(at)) for at in shown]
        grids = len(np.unique(index.links[scored.rows[scored.scores > decision.score - AMBIGUITY_MARGIN], 0]))
        answer.no_match_reason = (
            f"{grids}个网格的候选同样可能 (ambiguous: candidates in {grids} small grids score within "
            f"{AMBIGUITY_MARGIN:g} of the best, {decision.score:.1f})"
        )
        return answer
    answer.candidates.append(
        _candidate(index, decision.row, decision.score, decision.precision, decision.agrees, decision.differs)
    )
    if limit > 1:
        exclude = np.union1d(decision.tied, np.flatnonzero(scored.rows == decision.row))
        answer.candidates += [_listed(index, scored, int(at)) for at in ranked(scored, limit - 1, exclude=exclude)]
    best = answer.candidates[0]
    if best.score < MATCH_SCORE:
        answer.no_match_reason = (
            f"最佳候选分数 {best.score:g} 低于 {MATCH_SCORE:g} (best candidate scores {best.score:g}, "
            f"below {MATCH_SCORE:g}; precision {best.precision})"
        )
    elif not decision.anchored:
        answer.no_match_reason = (
            f"道路和小区都只是猜测 (neither the road nor the compound is certain: {parts.road or parts.compound} "
            f"may be {best.full_text}; best candidate scores {best.score:g})"
        )
    return answer


def address_geocode(*, text: str, limit: int = 5, scope: Scope = CITY) -> GeocodeAnswer:
    """The standard addresses ``text`` may mean, best first (at most ``limit``), among those in
    ``scope`` (a reader's; the default, the city, is for the services)."""
    return _answer(address_index(), text, limit, scope)


def _batch(texts: list[str], limit: int = 1) -> list[GeocodeAnswer]:
    index = address_index(check=False)
    return [_answer(index, text, limit) for text in texts]


def addresses_geocode(*, texts: list[str], workers: int = 1, limit: int = 1) -> list[GeocodeAnswer]:
    """Answers for many texts, in order, ``limit`` candidates each. With ``workers`` > 1 the
    texts are shared out between this process and ``workers - 1`` forked ones, which read the
    same index (memory-mapped pages, or this process's memory copy-on-write)."""
    index = address_index()
    if workers <= 1 or len(texts) < 1000:
        return [_answer(index, text, limit) for text in texts]
    share = -(-len(texts) // workers)
    own, rest = texts[:share], texts[share:]
    chunks = [rest[i : i + share] for i in range(0, len(rest), share)]
    # Frozen objects are left alone by the collector, so the children do not copy the pages
    # that hold them (copy-on-write) just to update GC bookkeeping.
    gc.freeze()
    try:
        with multiprocessing.get_context("fork").Pool(workers - 1) as pool:
            pending = pool.map_async(partial(_batch, limit=limit), chunks)
            answers = [_answer(index, text, limit) for text in own]
            for chunk in pending.get():
                answers += chunk
    finally:
        gc.unfreeze()
    return answers
