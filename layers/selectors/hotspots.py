"""Per small grid: event counts, rates per 1,000 residents, Getis-Ord Gi* hot spots and early
warnings.

Counts go by the events' precomputed ``grid_id`` (no spatial join at request time); residents by
the persons' ``grid_id``. Hot spots use Getis-Ord Gi* on the counts with this neighbourhood:
a small grid's neighbours are the small grids sharing an edge or a vertex with it (boundaries
within 1e-6°, about 0.1 m, so digitising slivers do not cut a neighbour off), plus the grid
itself; binary weights, row-standardised (Gi*'s z-score is the same under row scaling). The
z-score is read two-sided: |z| ≥ 2.576 is significant at 99 %, |z| ≥ 1.960 at 95 %.

Everything is computed within the reader's data scope (:mod:`layers.protection.scope`): the grids, their
counts, the neighbourhood (neighbours outside the scope are left out) and the mean and spread
Gi* compares against. A hot spot of a street's staff is hot relative to their street, and no
number in a scoped answer depends on a row outside the scope; the city's hot spots are the
command center's and the analysts'.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.special import ndtr

from layers.database.reading import reading
from layers.protection.scope import Scope
from layers.publishing.catalog import data_version, layer_get
from layers.selectors.heat import _condition

#: Two-sided critical values of the standard normal.
Z99, Z95 = 2.576, 1.960
#: Early warning: the last week against the weekly counts of the weeks before it.
BASELINE_WEEKS = 8
WARNING_SD = 3.0
WARNING_MIN_EVENTS = 3


@dataclass(frozen=True)
class GridCounts:
    """Small grids in id order with their event counts and residents."""

    ids: np.ndarray
    codes: list[str]
    names: list[str]
    counts: np.ndarray
    residents: np.ndarray

    @property
    def rates(self) -> np.ndarray:
        """Events per 1,000 residents (NaN where nobody lives)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.residents > 0, 1000.0 * self.counts / self.residents, np.nan)


def grid_event_counts(*, family: str, since: dt.datetime | None, until: dt.datetime | None, scope: Scope) -> GridCounts:
    """Events of ``family`` received in [since, until) and residents, per small grid of
    ``scope`` (every one, zeros included), in one query."""
    events = layer_get("events")
    where, values = _condition(family=family, since=since, until=until, scope=scope)
    persons_in_scope, person_values = scope.linked("t")
    grids_in_scope, grid_values = scope.grids("g")
    sql = f"""
        SELECT g.id, g.code, g.name, coalesce(e.n, 0), coalesce(p.n, 0)
        FROM layers_grid g
        LEFT JOIN (SELECT t.grid_id, count(*) AS n FROM {events.source} WHERE {where} GROUP BY t.grid_id) e
               ON e.grid_id = g.id
        LEFT JOIN (SELECT t.grid_id, count(*) AS n FROM layers_person t
                   WHERE t.grid_id IS NOT NULL AND {persons_in_scope} GROUP BY t.grid_id) p
               ON p.grid_id = g.id
        WHERE g.level = 'small' AND {grids_in_scope}
        ORDER BY g.id"""
    with reading().cursor() as cursor:
        cursor.execute(sql, [*values, *person_values, *grid_values])
        rows = cursor.fetchall()
    return GridCounts(
        ids=np.array([r[0] for r in rows], dtype=np.int64),
        codes=[r[1] for r in rows],
        names=[r[2] for r in rows],
        counts=np.array([r[3] for r in rows], dtype=np.float64),
        residents=np.array([r[4] for r in rows], dtype=np.float64),
    )


# The adjacency of every small grid of the city, per version of the grid table: reference data,
# the same for every reader; a scope takes its rows and columns out of it.
_adjacency_cache: dict[str, tuple[np.ndarray, sparse.csr_matrix]] = {}


def _city_adjacency() -> tuple[np.ndarray, sparse.csr_matrix]:
    """All small grid ids (ascending) and their binary queen adjacency, self included: two SQL
    queries, cached per version of the grid table."""
    version = data_version(layer_get("grids_small"))
    cached = _adjacency_cache.get(version)
    if cached is not None:
        return cached
    with reading().cursor() as cursor:
        cursor.execute("SELECT id FROM layers_grid WHERE level = 'small' ORDER BY id")
        ids = np.array([row[0] for row in cursor.fetchall()], dtype=np.int64)
        cursor.execute(
            """SELECT a.id, b.id FROM layers_grid a JOIN layers_grid b
                 ON b.level = 'small' AND a.id < b.id AND ST_DWithin(a.boundary, b.boundary, 1e-6)
               WHERE a.level = 'small'"""
        )
        pairs = np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, 2)
    position = np.searchsorted(ids, pairs)
    n = len(ids)
    rows = np.concatenate([position[:, 0], position[:, 1], np.arange(n)])
    cols = np.concatenate([position[:, 1], position[:, 0], np.arange(n)])
    matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _adjacency_cache.clear()
    _adjacency_cache[version] = (ids, matrix)
    return ids, matrix


def grid_adjacency(ids: np.ndarray) -> sparse.csr_matrix:
    """Binary queen adjacency of the small grids ``ids`` (ascending) among themselves, self
    included: the rows and columns of the city's adjacency (grids outside ``ids`` are no one's
    neighbours here)."""
    city_ids, matrix = _city_adjacency()
    position = np.searchsorted(city_ids, ids)
    if len(ids) and (position.max() >= len(city_ids) or not np.array_equal(city_ids[position], ids)):
        # A grid newer than the cached version (its statistics not flushed yet): read again.
        _adjacency_cache.clear()
        city_ids, matrix = _city_adjacency()
        position = np.searchsorted(city_ids, ids)
    if len(ids) == len(city_ids):
        return matrix
    return matrix[position][:, position]


def getis_ord_gi_star(values: np.ndarray, weights: sparse.spmatrix) -> np.ndarray:
    """Gi* z-scores of ``values`` under ``weights`` (n × n, self included), row-standardised.

    >>> w = sparse.csr_matrix(np.ones((3, 3)))
    >>> getis_ord_gi_star(np.array([1.0, 2.0, 3.0]), w).round(6).tolist()
    [0.0, 0.0, 0.0]
    """
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    if n < 2:
        return np.zeros(n)
    w = sparse.csr_matrix(weights, dtype=np.float64)
    w = sparse.diags(1.0 / np.maximum(w.sum(axis=1).A1, 1e-300)) @ w  # row-standardise
    mean = x.mean()
    s = np.sqrt(max((x**2).mean() - mean**2, 0.0))
    if s == 0.0:
        return np.zeros(n)
    wsum = w.sum(axis=1).A1
    w2sum = w.multiply(w).sum(axis=1).A1
    numerator = w @ x - mean * wsum
    denominator = s * np.sqrt(np.maximum(n * w2sum - wsum**2, 0.0) / (n - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, 0.0)


def hotspot_class(z: float) -> str:
    """``hot99``, ``hot95``, ``cold95``, ``cold99`` or ``not_significant``.

    >>> [hotspot_class(v) for v in (3.0, 2.0, 0.5, -2.0, -2.6)]
    ['hot99', 'hot95', 'not_significant', 'cold95', 'cold99']
    """
    if z >= Z99:
        return "hot99"
    if z >= Z95:
        return "hot95"
    if z <= -Z99:
        return "cold99"
    if z <= -Z95:
        return "cold95"
    return "not_significant"


def grid_hotspots(*, family: str, since: dt.datetime | None, until: dt.datetime | None, scope: Scope) -> list[dict]:
    """Per small grid of ``scope`` (id order): code, name, count, rate per 1,000 residents, Gi*
    z, two-sided p and class, computed among the scope's grids only."""
    grids = grid_event_counts(family=family, since=since, until=until, scope=scope)
    z = getis_ord_gi_star(grids.counts, grid_adjacency(grids.ids))
    p = 2.0 * ndtr(-np.abs(z))
    rates = grids.rates
    return [
        {
            "id": int(grids.ids[i]),
            "code": grids.codes[i],
            "name": grids.names[i],
            "count": int(grids.counts[i]),
            "residents": int(grids.residents[i]),
            "rate_per_1000": None if np.isnan(rates[i]) else round(float(rates[i]), 2),
            "z": round(float(z[i]), 3),
            "p": round(float(p[i]), 4),
            "class": hotspot_class(z[i]),
        }
        for i in range(len(grids.ids))
    ]


def grid_geometries(ids: list[int]) -> dict[int, str]:
    """GeoJSON text (WGS84, 7 decimals) of the grids ``ids``."""
    with reading().cursor() as cursor:
        cursor.execute("SELECT id, ST_AsGeoJSON(boundary, 7) FROM layers_grid WHERE id = ANY(%s)", [list(ids)])
        return dict(cursor.fetchall())


def grid_early_warnings(*, family: str, now: dt.datetime, scope: Scope) -> list[dict]:
    """Small grids of ``scope`` whose events of the last 7 days before ``now`` are far above their own
    baseline: at least :data:`WARNING_MIN_EVENTS` and at least the mean plus
    :data:`WARNING_SD` standard deviations of their weekly counts over the
    :data:`BASELINE_WEEKS` weeks before (the standard deviation at least the Poisson one,
    √mean, and at least 1/2, so a quiet grid's flat baseline does not alarm on two events).
    Busiest first."""
    events = layer_get("events")
    start = now - dt.timedelta(weeks=BASELINE_WEEKS + 1)
    where, values = _condition(family=family, since=start, until=now, scope=scope)
    sql = f"""
        SELECT t.grid_id, floor(extract(epoch FROM (%s - t.received_at)) / 604800)::int AS week, count(*)
        FROM {events.source} WHERE {where} AND t.grid_id IS NOT NULL GROUP BY 1, 2"""
    with reading().cursor() as cursor:
        cursor.execute(sql, [now, *values])
        rows = cursor.fetchall()
    if not rows:
        return []
    grid_ids = sorted({r[0] for r in rows})
    index = {grid_id: i for i, grid_id in enumerate(grid_ids)}
    weekly = np.zeros((len(grid_ids), BASELINE_WEEKS + 1))
    for grid_id, week, count in rows:
        if 0 <= week <= BASELINE_WEEKS:
            weekly[index[grid_id], week] = count
    current, baseline = weekly[:, 0], weekly[:, 1:]
    mean = baseline.mean(axis=1)
    sd = np.maximum.reduce([baseline.std(axis=1, ddof=1), np.sqrt(mean), np.full_like(mean, 0.5)])
    alarm = (current >= WARNING_MIN_EVENTS) & (current >= mean + WARNING_SD * sd)
    if not alarm.any():
        return []
    chosen = [grid_ids[i] for i in np.flatnonzero(alarm)]
    with reading().cursor() as cursor:
        cursor.execute("SELECT id, code, name FROM layers_grid WHERE id = ANY(%s)", [chosen])
        names = {r[0]: (r[1], r[2]) for r in cursor.fetchall()}
    warnings = [
        {
            "code": names[grid_ids[i]][0],
            "name": names[grid_ids[i]][1],
            "last_7_days": int(current[i]),
            "baseline_mean": round(float(mean[i]), 2),
            "baseline_sd": round(float(sd[i]), 2),
            "z": round(float((current[i] - mean[i]) / sd[i]), 2),
        }
        for i in np.flatnonzero(alarm)
    ]
    return sorted(warnings, key=lambda w: (-w["z"], w["code"]))
