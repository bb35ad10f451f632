"""Address text → standard address: the geocoding services.

:func:`address_geocode` answers one text, :func:`addresses_geocode` a batch (optionally over
several processes, which inherit the built index by fork). An answer always carries the
normalised text and parsed components; its candidates are ranked by score (0–100) with the
precision they reach. ``no_match_reason`` says why there is no match: a text in another province,
city or district, no block for its road or compound, or a best score under ``MATCH_SCORE``. Low
candidates are still listed (with their precision), so a fallback is reported, never hidden.

A reader's answer holds only the standard addresses of their data scope (:mod:`layers.scope`):
the others are dropped before ranking, and a text whose every candidate lies outside answers "no
match within your scope". A region matched at admin precision is reference data and stays. The
services (event intake, re-geocoding) geocode for the whole city.
"""

from __future__ import annotations

import gc
import multiprocessing
from dataclasses import asdict, dataclass, field
from functools import partial

import numpy as np

from ..scope import CITY, Scope
from .matcher import (
    AddressIndex,
    Scored,
    address_index,
    admin_match,
    candidates_score,
    grid_chain,
    precision_of,
)
from .normalize import address_normalize
from .parser import address_parse_normalized

#: The least score a best candidate needs to count as a match.
MATCH_SCORE = 75.0


@dataclass
class GeocodeCandidate:
    code: str
    full_text: str
    score: float
    precision: str
    lon: float | None
    lat: float | None
    grids: dict[str, dict[str, str] | None]


@dataclass
class GeocodeAnswer:
    query: str
    normalized: str
    parsed: dict[str, str]
    candidates: list[GeocodeCandidate] = field(default_factory=list)
    no_match_reason: str = ""
    method: str = ""

    @property
    def matched(self) -> bool:
        return not self.no_match_reason

    @property
    def best(self) -> GeocodeCandidate | None:
        return self.candidates[0] if self.candidates and self.matched else None

    def as_dict(self) -> dict:
        return asdict(self) | {"matched": self.matched}


def _in_scope(index: AddressIndex, scored: Scored, scope: Scope) -> Scored:
    """The scored candidates that lie in ``scope``, their arrays cut alike."""
    rows = scored.rows
    street_district = None
    if scope.district_codes:
        # The index keeps no district per address: a district scope goes by the rows' streets.
        street_district = {
            rid: index.regions.get(region[2], ("",))[0]
            for rid, region in index.regions.items()
            if region[3] == "street"
        }
    keep = scope.mask(
        grid_id=index.grid_id[rows],
        community_id=index.community_id[rows],
        street_id=index.street_id[rows],
        street_district=street_district,
    )
    return Scored(rows[keep], scored.scores[keep], {k: v[keep] for k, v in scored.matched.items()}, scored.method)


def _answer(index: AddressIndex, text: str, limit: int, scope: Scope = CITY) -> GeocodeAnswer:
    normalized = address_normalize(text)
    parts = address_parse_normalized(normalized)
    answer = GeocodeAnswer(query=text, normalized=normalized, parsed=parts.as_dict())
    if parts.foreign:
        answer.no_match_reason = f"外地地址 (outside Lanzhou): {parts.foreign}"
        return answer
    scored = candidates_score(index, parts)
    if scored is not None and not scope.is_city:
        scored = _in_scope(index, scored, scope)
        if len(scored.rows) == 0:
            # Answered as if no address matched: that one exists outside the reader's scope is
            # itself something the scope keeps from them.
            scored = None
    if scored is None:
        admin = admin_match(index, parts)
        if admin is None:
            answer.no_match_reason = "没有找到道路或小区 (no known road or compound in the text)"
            return answer
        # The region itself, at its level; it has no point of its own.
        answer.method = "admin"
        answer.candidates = [GeocodeCandidate(admin.code, admin.name, 100.0, admin.level, None, None, admin.chain)]
        if parts.road or parts.compound or parts.door:
            answer.candidates[0].score = 0.0
            answer.no_match_reason = f"只匹配到{admin.name} (only the {admin.level} matched; road or compound unknown)"
        return answer
    answer.method = scored.method
    count = min(limit, len(scored.rows))
    # Best first; equal scores keep table order (the lower id), so answers are stable.
    top = np.argpartition(-scored.scores, count - 1)[:count] if count < len(scored.rows) else np.arange(count)
    top = top[np.lexsort((scored.rows[top], -scored.scores[top]))]
    for at in top:
        row = int(scored.rows[at])
        answer.candidates.append(
            GeocodeCandidate(
                code=index.code[row].as_py(),
                full_text=index.full_text[row].as_py(),
                score=round(float(scored.scores[at]), 1),
                precision=precision_of(parts, scored.matched, int(at)),
                lon=float(index.lon[row]),
                lat=float(index.lat[row]),
                grids=grid_chain(index, row),
            )
        )
    best = answer.candidates[0]
    if best.score < MATCH_SCORE:
        answer.no_match_reason = (
            f"最佳候选分数 {best.score:g} 低于 {MATCH_SCORE:g} (best candidate scores {best.score:g}, "
            f"below {MATCH_SCORE:g}; precision {best.precision})"
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
    texts are shared out between this process and ``workers - 1`` forked ones, which reuse this
    process's index (forked after it is built, so nothing is rebuilt or copied up front)."""
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
