"""A tiny world for event tests: the seed taxonomy and the factories' community split into a WEST
and an EAST small grid, plus named points and a way to create events in them."""

from __future__ import annotations

import math

from layers.services.events import event_create
from layers.taxonomy import taxonomy_seed
from tests.worlds.factories import ORIGIN, SIZE, grid_tree, region_chain

#: Points inside the WEST and EAST small grids, and one in no grid and no region.
IN_WEST = (ORIGIN[0] + SIZE / 4, ORIGIN[1] + SIZE / 2)
IN_EAST = (ORIGIN[0] + 3 * SIZE / 4, ORIGIN[1] + SIZE / 2)
NOWHERE = (ORIGIN[0] + 1.0, ORIGIN[1] + 1.0)


def world() -> dict:
    """Seed taxonomy (restored after a transactional test flushed it) and the grid tree."""
    taxonomy_seed()
    regions = region_chain()
    return regions | grid_tree(regions["community"])


def east_of(point: tuple[float, float], metres: float) -> tuple[float, float]:
    """The point ``metres`` due east of ``point`` (WGS84)."""
    lon, lat = point
    return lon + metres / (111_320.0 * math.cos(math.radians(lat))), lat


_serial = iter(range(1, 1_000_000))


def report(
    *,
    category: str = "hazard.fire",
    description: str = "楼道堆放杂物",
    at: tuple[float, float] | None = IN_WEST,
    external_id: str | None = None,
    **extra,
):
    """Create an event through the intake service and return it."""
    lon, lat = at if at is not None else (None, None)
    event, _ = event_create(
        channel=extra.pop("channel", "grid_patrol"),
        external_id=external_id if external_id is not None else f"T-{next(_serial)}",
        category_code=category,
        description=description,
        lon=lon,
        lat=lat,
        **extra,
    )
    return event
