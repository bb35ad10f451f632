"""layers.selectors.hotspots: counts per small grid, Getis-Ord Gi* hot spots on a 5 × 5 field, early warnings."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone

from layers.models import Category, Event, Grid
from layers.protection.scope import CITY
from layers.selectors import hotspots
from layers.taxonomy import taxonomy_seed
from tests.worlds.factories import ORIGIN, box, grid_tree, region_chain

CELL = 0.002  # degrees: 5 × 5 cells tile the factories' community square
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


@pytest.fixture
def field(db) -> dict[tuple[int, int], Grid]:
    """25 small grids in 5 rows × 5 columns, keyed by (row, column), row 0 in the south."""
    taxonomy_seed()
    community = region_chain()["community"]
    tree = grid_tree(community)
    # The factories' two small grids give way to the 25 of the field under the same medium grid.
    Grid.objects.filter(pk__in=[tree["west"].pk, tree["east"].pk]).delete()
    lon, lat = ORIGIN
    cells = {}
    for row in range(5):
        for col in range(5):
            x0, y0 = lon + col * CELL, lat + row * CELL
            cells[row, col] = Grid.objects.create(
                code=f"{community.code}{row}{col:02d}",
                name=f"网格{row}{col}",
                level="small",
                parent=tree["medium"],
                community=community,
                boundary=box(x0, y0, x0 + CELL, y0 + CELL),
            )
    return cells


def plant(cells: dict, counts: dict[tuple[int, int], int], *, family: str = "dispute", at=None) -> None:
    """``counts[cell]`` events of ``family`` in each cell, received at ``at`` (default NOW − 1 day)."""
    category = Category.objects.filter(family=family).order_by("code").first()
    received = at or NOW - dt.timedelta(days=1)
    rows = []
    for (row, col), n in counts.items():
        grid = cells[row, col]
        centre = grid.boundary.centroid
        for _ in range(n):
            rows.append(
                Event(
                    channel="grid_patrol",
                    category=category,
                    description="测试",
                    location=Point(centre.x, centre.y, srid=4326),
                    reported_at=received,
                    received_at=received,
                    grid=grid,
                )
            )
    Event.objects.bulk_create(rows)


def by_code(rows: list[dict]) -> dict[str, dict]:
    return {row["code"]: row for row in rows}


def test_planted_cluster_is_hot(field):
    block = {(r, c) for r in (1, 2, 3) for c in (1, 2, 3)}
    plant(field, {cell: 30 if cell in block else 1 for cell in field})
    plant(field, {cell: 50 for cell in field}, family="hazard")  # another family: not counted
    rows = by_code(hotspots.grid_hotspots(family="dispute", since=None, until=None, scope=CITY))
    centre = rows[field[2, 2].code]
    assert (centre["count"], centre["class"]) == (30, "hot99")
    assert centre["z"] > 2.58 and centre["p"] < 0.01
    # The block's edge-centred cells have 6 of 9 neighbourhood cells in the cluster: hot at 95 %.
    for cell in ((1, 2), (3, 2), (2, 1), (2, 3)):
        assert rows[field[cell].code]["class"] == "hot95", cell
        assert 1.96 <= rows[field[cell].code]["z"] < 2.58
    hot = {code for code, row in rows.items() if row["class"].startswith("hot")}
    assert hot <= {field[cell].code for cell in block}
    assert not any(row["class"].startswith("cold99") for row in rows.values())


def test_no_spatial_structure_is_not_significant(field):
    """A flat field and a checkerboard (high and low alternate; every neighbourhood mixes)."""
    plant(field, dict.fromkeys(field, 4))
    assert {row["class"] for row in hotspots.grid_hotspots(family="dispute", since=None, until=None, scope=CITY)} == {
        "not_significant"
    }
    plant(field, {(r, c): 2 * ((r + c) % 2) for (r, c) in field}, family="hazard")
    rows = hotspots.grid_hotspots(family="hazard", since=None, until=None, scope=CITY)
    assert {row["class"] for row in rows} == {"not_significant"}
    assert max(abs(row["z"]) for row in rows) < 1.96


def test_counts_and_time_window(field):
    plant(field, {(0, 0): 3})
    plant(field, {(0, 0): 2}, at=NOW - dt.timedelta(days=40))
    counts = hotspots.grid_event_counts(family="dispute", since=NOW - dt.timedelta(days=7), until=NOW, scope=CITY)
    assert dict(zip(counts.codes, counts.counts.astype(int).tolist(), strict=True))[field[0, 0].code] == 3
    assert counts.counts.sum() == 3
    assert np.isnan(counts.rates).all()  # nobody lives in the field: no rate, not a division by zero
    rows = by_code(hotspots.grid_hotspots(family="dispute", since=None, until=None, scope=CITY))
    assert rows[field[0, 0].code]["count"] == 5 and rows[field[0, 0].code]["rate_per_1000"] is None


def test_adjacency_is_queen_with_self(field):
    ids = np.array(sorted(grid.id for grid in field.values()))
    matrix = hotspots.grid_adjacency(ids).toarray()
    position = {cell: int(np.searchsorted(ids, grid.id)) for cell, grid in field.items()}
    neighbours = {cell: int(matrix[position[cell]].sum()) for cell in ((0, 0), (0, 2), (2, 2))}
    assert neighbours == {(0, 0): 4, (0, 2): 6, (2, 2): 9}  # corner, edge, interior (self included)
    assert matrix[position[0, 0], position[1, 1]] == 1  # a shared vertex is enough


def test_rates_per_thousand():
    counts = hotspots.GridCounts(
        ids=np.array([1, 2]), codes=["a", "b"], names=["a", "b"], counts=np.array([3.0, 1.0]),
        residents=np.array([1500.0, 0.0]),
    )  # fmt: skip
    assert counts.rates[0] == 2.0 and np.isnan(counts.rates[1])


def test_early_warning_on_a_spike(field):
    week = dt.timedelta(weeks=1)
    for weeks_ago in range(1, 9):
        at = NOW - weeks_ago * week - dt.timedelta(days=3)
        plant(field, {(1, 1): 2, (3, 3): 2}, at=at)
    plant(field, {(1, 1): 12, (3, 3): 3}, at=NOW - dt.timedelta(days=2))  # a spike; and business as usual
    plant(field, {(4, 4): 2}, at=NOW - dt.timedelta(days=2))  # new but too few to alarm
    warnings = hotspots.grid_early_warnings(family="dispute", now=NOW, scope=CITY)
    assert [(w["code"], w["last_7_days"], w["baseline_mean"]) for w in warnings] == [(field[1, 1].code, 12, 2.0)]
    assert warnings[0]["z"] >= 3
    assert hotspots.grid_early_warnings(family="hazard", now=NOW, scope=CITY) == []
    assert hotspots.grid_early_warnings(family="dispute", now=timezone.now() + 100 * week, scope=CITY) == []
