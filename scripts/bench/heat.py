"""heat_tile: the in-process heat render (the path tiles at z ≤ 12 take), vs datashader
``Canvas.points`` + ``tf.shade`` on the same points.

Ten million synthetic event points (seeded, clustered like a city: 400 Gaussian clusters of
varied spread over 兰州 plus a uniform tenth) in Web Mercator metres, never inserted into the
database. Each path draws a 1,024 × 1,024 region (4 × 4 tiles of 256) at z10 and at z12 over
the city centre, to RGBA pixels (PNG encoding left out of both). Ours is the path of
:mod:`layers.selectors.heat`'s cached point set: the zoom's count blocks (256 × 256 per occupied tile,
binned once at z12 per filter and data version and summed 2 × 2 down to z10; that build is
timed apart and reported in the note, not in the render), copied into the region with the blur
margin → Gaussian blur → the shared colour scale. So ours does not touch the points per render
and the peer does: the peer bins all ten million points each time with numba (its canvas
filters by range itself) and shades linearly from yellow to red; it does no blur. Both warm
(one untimed run first). Unit: million input points per second of render.
"""

from __future__ import annotations

import time

import numpy as np

from basemaps import heat as surfaces
from layers.selectors.heat import CACHE_MAX_ZOOM, PointSet

from .harness import Result, benchmark, median_seconds

POINTS = 10_000_000
SIDE = 1024
CENTRE = (103.83, 36.06)  # 兰州 城关区


def synthetic_points(n: int = POINTS, *, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``n`` clustered points around :data:`CENTRE` in Web Mercator metres."""
    rng = np.random.default_rng(seed)
    cx, cy = surfaces.lonlat_to_mercator(np.array([CENTRE[0]]), np.array([CENTRE[1]]))
    clusters = 400
    centres = rng.normal((cx[0], cy[0]), 12_000, (clusters, 2))
    spread = rng.uniform(100, 2_000, clusters)
    weights = rng.pareto(1.5, clusters) + 1
    uniform = n // 10
    which = rng.choice(clusters, n - uniform, p=weights / weights.sum())
    x = np.empty(n)
    y = np.empty(n)
    x[:-uniform] = centres[which, 0] + rng.normal(0, 1, n - uniform) * spread[which]
    y[:-uniform] = centres[which, 1] + rng.normal(0, 1, n - uniform) * spread[which]
    x[-uniform:] = rng.uniform(cx[0] - 40_000, cx[0] + 40_000, uniform)
    y[-uniform:] = rng.uniform(cy[0] - 40_000, cy[0] + 40_000, uniform)
    return x, y


def region(z: int) -> surfaces.Bounds:
    """The 4 × 4 tiles at zoom ``z`` whose north-west tile holds :data:`CENTRE`, shifted so the
    centre is in the middle."""
    cx, cy = surfaces.lonlat_to_mercator(np.array([CENTRE[0]]), np.array([CENTRE[1]]))
    tile = 2 * surfaces.HALF_WORLD / 2**z
    tx = int((cx[0] + surfaces.HALF_WORLD) // tile) - 2
    ty = int((surfaces.HALF_WORLD - cy[0]) // tile) - 2
    west, _, _, north = surfaces.tile_bounds(z, tx, ty)
    return west, north - 4 * tile, west + 4 * tile, north


def render_ours(points: PointSet, z: int, bounds: surfaces.Bounds) -> np.ndarray:
    if z > CACHE_MAX_ZOOM:
        raise ValueError(f"z{z} is above the cached zooms (≤ {CACHE_MAX_ZOOM}); production queries per tile")
    size = surfaces.pixel_size(z)
    col0 = round((bounds[0] + surfaces.HALF_WORLD) / size)
    row0 = round((surfaces.HALF_WORLD - bounds[3]) / size)
    surface = points.region_surface(z, col0=col0, row0=row0, width=SIDE, height=SIDE)
    return surfaces.colourise(surface, reference=points.reference(z))


@benchmark("heat_tile")
def heat_tile(*, repeats: int, rows: int) -> list[Result]:
    import datashader as ds
    import datashader.transfer_functions as tf
    import pandas as pd

    x, y = synthetic_points()
    order = np.argsort(x)
    points = PointSet(key=("bench",), x=x[order], y=y[order])
    frame = pd.DataFrame({"x": x, "y": y})

    def render_peer(bounds: surfaces.Bounds):
        canvas = ds.Canvas(
            plot_width=SIDE, plot_height=SIDE, x_range=(bounds[0], bounds[2]), y_range=(bounds[1], bounds[3])
        )
        return tf.shade(canvas.points(frame, "x", "y"), cmap=["yellow", "red"], how="linear")

    started = time.perf_counter()
    points.pixel_blocks(CACHE_MAX_ZOOM)
    top_s = time.perf_counter() - started
    started = time.perf_counter()
    points.pixel_blocks(10)
    down_s = time.perf_counter() - started
    results = []
    for z in (10, 12):
        bounds = region(z)
        path = (
            f"count blocks of z{z}, copied: built once per filter and data version, not timed here "
            f"(z{CACHE_MAX_ZOOM} binned from the points in {top_s:.2f} s, z{CACHE_MAX_ZOOM - 1}–z10 "
            f"summed 2 × 2 in {down_s:.2f} s)"
        )
        ours_image, peer_image = render_ours(points, z, bounds), render_peer(bounds)  # warm (numba compiles)
        inside = int(((x >= bounds[0]) & (x < bounds[2]) & (y >= bounds[1]) & (y < bounds[3])).sum())
        if ours_image.shape[:2] != peer_image.shape or not ours_image[:, :, 3].any():
            raise AssertionError(f"heat_tile z{z}: ours {ours_image.shape}, peer {peer_image.shape}")
        ours_s = median_seconds(lambda b=bounds, z=z: render_ours(points, z, b), repeats=repeats)
        peer_s = median_seconds(lambda b=bounds: render_peer(b), repeats=repeats)
        results.append(
            Result(
                name=f"heat_tile_z{z}",
                unit="Mpoints/s",
                ours=POINTS / ours_s / 1e6,
                peer_name="datashader Canvas.points + tf.shade",
                peer=POINTS / peer_s / 1e6,
                target_ratio=0.67,
                scale=f"{POINTS:,} points, {SIDE}×{SIDE} px region ({inside:,} points inside)",
                note=(
                    f"ours {ours_s * 1000:.1f} ms ({path}, Gaussian blur σ "
                    f"{surfaces.SIGMA_PX:g} px, shared scale, colour), datashader {peer_s * 1000:.1f} ms "
                    "(numba binning of all points, linear shade, no blur); PNG encoding left out of both"
                ),
            )
        )
    return results
