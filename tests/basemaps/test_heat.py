"""basemaps.heat: binning, seamless tiles on one colour scale, PNG encoding."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from basemaps import heat


def test_binning_equals_histogram2d():
    rng = np.random.default_rng(7)
    x, y = rng.uniform(-50, 150, 20_000), rng.uniform(-20, 120, 20_000)
    bounds = (0.0, 0.0, 100.0, 100.0)
    counts = heat.bin_counts(x, y, bounds=bounds, width=64, height=32)
    # histogram2d bins x along the first axis and counts y from the south; ours is row-major
    # from the north. Its last bins are closed on the right: drop points on the far edges.
    keep = (x < 100) & (y < 100)
    expected, _, _ = np.histogram2d(x[keep], y[keep], bins=(64, 32), range=((0, 100), (0, 100)))
    assert counts.shape == (32, 64)
    assert np.array_equal(counts, np.flipud(expected.T))
    assert counts.sum() == ((x >= 0) & (x < 100) & (y >= 0) & (y < 100)).sum()


def _points(z: int, tx: int, ty: int, n: int = 5_000) -> tuple[np.ndarray, np.ndarray]:
    """Clustered points around the shared edge of tiles (tx, ty) and (tx + 1, ty)."""
    rng = np.random.default_rng(3)
    xmin, ymin, xmax, ymax = heat.tile_bounds(z, tx, ty)
    size = xmax - xmin
    x = rng.normal(xmax, size / 10, n)
    y = rng.normal((ymin + ymax) / 2, size / 6, n)
    return x, y


def test_neighbouring_tiles_join_without_a_seam():
    z, tx, ty = 14, 12_920, 6_400
    x, y = _points(z, tx, ty)
    reference = heat.reference_density(x, y, z=z)
    left = heat.colourise(
        heat.heat_surface(x, y, bounds=heat.tile_bounds(z, tx, ty), width=256, height=256), reference=reference
    )
    right = heat.colourise(
        heat.heat_surface(x, y, bounds=heat.tile_bounds(z, tx + 1, ty), width=256, height=256), reference=reference
    )
    # The two tiles side by side equal the 512-pixel region drawn at once …
    west, south, _, north = heat.tile_bounds(z, tx, ty)
    east = heat.tile_bounds(z, tx + 1, ty)[2]
    whole = heat.colourise(
        heat.heat_surface(x, y, bounds=(west, south, east, north), width=512, height=256), reference=reference
    )
    assert np.array_equal(np.hstack([left, right]), whole)
    # … so the pixels either side of the shared edge match (a dense, smooth cluster sits on it).
    edge_left, edge_right = left[:, -1, :].astype(int), right[:, 0, :].astype(int)
    assert edge_left[:, 3].max() > 0
    assert np.abs(edge_left - edge_right).max() <= 8


def test_tile_png_decodes_and_empty_tile_is_transparent():
    z, tx, ty = 14, 12_920, 6_400
    x, y = _points(z, tx, ty)
    png = heat.heat_tile_png(x, y, z=z, tx=tx, ty=ty, reference=heat.reference_density(x, y, z=z))
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (256, 256))
    assert np.asarray(image)[:, :, 3].max() > 0
    empty = Image.open(io.BytesIO(heat.heat_tile_png(np.empty(0), np.empty(0), z=z, tx=tx, ty=ty, reference=1.0)))
    assert (empty.mode, empty.size) == ("RGBA", (256, 256))
    assert np.asarray(empty)[:, :, 3].max() == 0


def test_scale_is_shared_not_per_tile():
    """A tile with a tenth of the points is paler: the scale comes from the whole set."""
    z, tx, ty = 14, 12_920, 6_400
    xmin, ymin, xmax, ymax = heat.tile_bounds(z, tx, ty)
    centre = ((xmin + xmax) / 2, (ymin + ymax) / 2)
    rng = np.random.default_rng(5)
    dense = rng.normal(centre, 200, (2_000, 2))
    sparse = rng.normal(centre, 200, (200, 2))
    reference = heat.reference_density(dense[:, 0], dense[:, 1], z=z)
    dense_rgba = heat.colourise(
        heat.heat_surface(dense[:, 0], dense[:, 1], bounds=(xmin, ymin, xmax, ymax), width=256, height=256),
        reference=reference,
    )
    sparse_rgba = heat.colourise(
        heat.heat_surface(sparse[:, 0], sparse[:, 1], bounds=(xmin, ymin, xmax, ymax), width=256, height=256),
        reference=reference,
    )
    # At the centre the dense set reaches the top of the ramp (red); the sparse one stays yellower.
    assert dense_rgba[128, 128].tolist()[:3] == [255, 0, 0]
    assert sparse_rgba[128, 128, 1] > 100


def test_mercator_round_trip():
    x, y = heat.lonlat_to_mercator(np.array([103.83]), np.array([36.06]))
    lon, lat = heat.mercator_to_lonlat(float(x[0]), float(y[0]))
    assert (round(lon, 9), round(lat, 9)) == (103.83, 36.06)


def test_pixel_pyramid_draws_what_the_points_draw():
    """The cached path of low zooms (occupied pixels per zoom, merged downwards) gives the
    surface binning the points gives, at the top cached zoom and below it."""
    from layers.selectors.heat import CACHE_MAX_ZOOM, PointSet

    rng = np.random.default_rng(9)
    cx, cy = heat.lonlat_to_mercator(np.array([103.83]), np.array([36.06]))
    x = rng.normal(cx[0], 30_000, 50_000)
    y = rng.normal(cy[0], 30_000, 50_000)
    order = np.argsort(x)
    points = PointSet(key=("test",), x=x[order], y=y[order])
    for z in (CACHE_MAX_ZOOM, CACHE_MAX_ZOOM - 2):
        side = heat.pixel_size(z) * heat.TILE_SIZE
        tx, ty = int((cx[0] + heat.HALF_WORLD) // side), int((heat.HALF_WORLD - cy[0]) // side)
        pyramid = points.region_surface(z, col0=tx * 256, row0=ty * 256, width=256, height=256)
        direct = heat.heat_surface(x, y, bounds=heat.tile_bounds(z, tx, ty), width=256, height=256)
        assert direct.max() > 0
        np.testing.assert_allclose(pyramid, direct, atol=1e-4 * direct.max())


def test_count_blocks_dense_and_sparse_draw_what_the_points_draw():
    """A region spanning dense blocks (the city core) and sparse ones (its thin edge, a few
    stray points), at the top cached zoom and below, equals binning the points directly."""
    from layers.selectors.heat import CACHE_MAX_ZOOM, PointSet

    rng = np.random.default_rng(4)
    cx, cy = heat.lonlat_to_mercator(np.array([103.83]), np.array([36.06]))
    x = np.concatenate([rng.normal(cx[0], 20_000, 200_000), rng.uniform(cx[0] - 90_000, cx[0] + 90_000, 300)])
    y = np.concatenate([rng.normal(cy[0], 20_000, 200_000), rng.uniform(cy[0] - 90_000, cy[0] + 90_000, 300)])
    order = np.argsort(x)
    points = PointSet(key=("test",), x=x[order], y=y[order])
    for z in (CACHE_MAX_ZOOM, CACHE_MAX_ZOOM - 1, 6):
        kinds = {isinstance(block, np.ndarray) for block in points.pixel_blocks(z).values()}
        size = heat.pixel_size(z)
        col0 = int((cx[0] + heat.HALF_WORLD) // size) - 300
        row0 = int((heat.HALF_WORLD - cy[0]) // size) - 200
        blocks = points.region_surface(z, col0=col0, row0=row0, width=700, height=500)
        west, north = -heat.HALF_WORLD + col0 * size, heat.HALF_WORLD - row0 * size
        bounds = (west, north - 500 * size, west + 700 * size, north)
        direct = heat.heat_surface(x, y, bounds=bounds, width=700, height=500)
        assert direct.max() > 0
        np.testing.assert_allclose(blocks, direct, atol=1e-5 * direct.max())
        if z == CACHE_MAX_ZOOM:
            assert kinds == {True, False}  # both kinds of block are exercised
