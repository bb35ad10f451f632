"""Heat surfaces of event points: binning, blur, one colour scale, PNG and the Web Mercator grid.

Pure functions over numpy arrays of Web Mercator metres (EPSG:3857); no database. Every tile of
one zoom lies on one global pixel grid (256 pixels per tile), so a point falls in the same
pixel whichever tile is drawn. Each tile is binned with a margin of the blur's reach around it,
so the blurred pixels next to a tile edge see the points across it: neighbouring tiles join
without a seam. The colour scale divides by a reference density of the whole filtered set at
that zoom (:func:`reference_density`), never by the tile's own maximum, so equal densities get
equal colours in every tile.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

TILE_SIZE = 256
#: Half the width of the Web Mercator world, metres.
HALF_WORLD = 20_037_508.342789244
#: Latitude limit of Web Mercator, degrees.
MAX_LATITUDE = 85.0511287798066
#: Blur standard deviation in pixels, at every zoom (a heat dot is always about as big on screen).
SIGMA_PX = 6.0
#: The Gaussian is cut at this many standard deviations (scipy's default), which sets the margin.
TRUNCATE = 4.0

Bounds = tuple[float, float, float, float]  # xmin, ymin, xmax, ymax (metres)


def lonlat_to_mercator(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 degrees to Web Mercator metres (latitude clamped to the projection's limit).

    >>> x, y = lonlat_to_mercator(np.array([0.0, 180.0]), np.array([0.0, 0.0]))
    >>> np.round(x, 3).tolist(), np.abs(np.round(y, 3)).tolist()
    ([0.0, 20037508.343], [0.0, 0.0])
    """
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.clip(np.asarray(lat, dtype=np.float64), -MAX_LATITUDE, MAX_LATITUDE)
    x = lon * (HALF_WORLD / 180.0)
    y = np.log(np.tan(np.radians(90.0 + lat) / 2.0)) * (HALF_WORLD / math.pi)
    return x, y


def mercator_to_lonlat(x: float, y: float) -> tuple[float, float]:
    """Web Mercator metres to WGS84 degrees (one point).

    >>> [round(v, 6) for v in mercator_to_lonlat(0.0, 0.0)]
    [0.0, 0.0]
    """
    lon = x / HALF_WORLD * 180.0
    lat = math.degrees(2.0 * math.atan(math.exp(y / HALF_WORLD * math.pi)) - math.pi / 2.0)
    return lon, lat


def pixel_size(z: int) -> float:
    """Metres per pixel at zoom ``z`` (256-pixel tiles).

    >>> round(pixel_size(0), 4)
    156543.0339
    """
    return 2.0 * HALF_WORLD / (TILE_SIZE * 2**z)


def tile_bounds(z: int, x: int, y: int) -> Bounds:
    """The metre bounds of XYZ tile ``z/x/y`` (y counted from the north).

    >>> [round(v) for v in tile_bounds(1, 0, 0)]
    [-20037508, 0, 0, 20037508]
    """
    size = 2.0 * HALF_WORLD / 2**z
    xmin = -HALF_WORLD + x * size
    ymax = HALF_WORLD - y * size
    return xmin, ymax - size, xmin + size, ymax


def margin_px(sigma_px: float = SIGMA_PX) -> int:
    """Pixels beyond a tile edge that still reach it through the blur.

    >>> margin_px(6.0)
    24
    """
    return int(math.ceil(TRUNCATE * sigma_px))


def bin_counts(x: np.ndarray, y: np.ndarray, *, bounds: Bounds, width: int, height: int) -> np.ndarray:
    """Points per pixel of a ``height`` × ``width`` grid over ``bounds``; row 0 is the north edge.

    A point on a pixel's west or north edge belongs to that pixel; points outside are left out.

    >>> bin_counts(np.array([0.5, 0.5, 1.5]), np.array([1.5, 1.5, 0.5]), bounds=(0, 0, 2, 2), width=2, height=2)
    array([[2., 0.],
           [0., 1.]], dtype=float32)
    """
    xmin, ymin, xmax, ymax = bounds
    col = np.floor((np.asarray(x) - xmin) * (width / (xmax - xmin)))
    row = np.floor((ymax - np.asarray(y)) * (height / (ymax - ymin)))
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    index = row[inside].astype(np.int64) * width + col[inside].astype(np.int64)
    counts = np.bincount(index, minlength=width * height)
    return counts.reshape(height, width).astype(np.float32)


def heat_surface(
    x: np.ndarray, y: np.ndarray, *, bounds: Bounds, width: int, height: int, sigma_px: float = SIGMA_PX
) -> np.ndarray:
    """Blurred counts over ``bounds`` (``height`` × ``width`` pixels): binned with a margin of
    the blur's reach so that points just outside still count, blurred, then cropped. A region
    drawn whole equals the same region drawn as tiles side by side."""
    pad = margin_px(sigma_px)
    xmin, ymin, xmax, ymax = bounds
    px, py = (xmax - xmin) / width, (ymax - ymin) / height
    padded = (xmin - pad * px, ymin - pad * py, xmax + pad * px, ymax + pad * py)
    counts = bin_counts(x, y, bounds=padded, width=width + 2 * pad, height=height + 2 * pad)
    return blur_counts(counts, sigma_px=sigma_px)


def blur_counts(counts: np.ndarray, *, sigma_px: float = SIGMA_PX) -> np.ndarray:
    """Blur a count grid that carries a margin of :func:`margin_px` on every side, and crop the
    margin off."""
    pad = margin_px(sigma_px)
    height, width = counts.shape[0] - 2 * pad, counts.shape[1] - 2 * pad
    if not counts.any():
        return np.zeros((height, width), dtype=np.float32)
    blurred = gaussian_filter(counts, sigma=sigma_px, mode="constant", cval=0.0, truncate=TRUNCATE)
    return blurred[pad : pad + height, pad : pad + width]


def global_pixels(x: np.ndarray, y: np.ndarray, *, z: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The occupied pixels of zoom ``z``'s global grid: column, row (from the north-west corner
    of the world) and points per pixel. At low zooms a tile then reads thousands of pixels
    instead of millions of points.

    >>> global_pixels(np.array([1.0, 2.0, -1.0]), np.array([-1.0, -2.0, 1.0]), z=0)
    (array([127, 128]), array([127, 128]), array([1, 2]))
    """
    size = pixel_size(z)
    side = TILE_SIZE * 2**z
    col = np.clip(np.floor((np.asarray(x) + HALF_WORLD) / size), 0, side - 1).astype(np.int64)
    row = np.clip(np.floor((HALF_WORLD - np.asarray(y)) / size), 0, side - 1).astype(np.int64)
    keys, counts = np.unique(row * side + col, return_counts=True)
    return keys % side, keys // side, counts


#: A block with fewer occupied pixels than this is kept sparse (pixel index, count): a stray
#: point far from the city then costs a few bytes per zoom, not a 256 KB block.
SPARSE_BELOW = 2_048

#: A block of counts: dense ``TILE_SIZE`` × ``TILE_SIZE`` float32, or sparse (index in the
#: block, row-major; count) for a block with few occupied pixels.
Block = np.ndarray | tuple[np.ndarray, np.ndarray]


def _stored(grid: np.ndarray) -> Block:
    """A dense count block as kept: dense if well occupied, else sparse."""
    flat = grid.reshape(-1)
    occupied = np.flatnonzero(flat)
    if len(occupied) >= SPARSE_BELOW:
        return grid
    return occupied.astype(np.int32), flat[occupied]


def _dense(block: Block) -> np.ndarray:
    if isinstance(block, np.ndarray):
        return block
    grid = np.zeros(TILE_SIZE * TILE_SIZE, dtype=np.float32)
    grid[block[0]] = block[1]
    return grid.reshape(TILE_SIZE, TILE_SIZE)


def pixel_blocks(col: np.ndarray, row: np.ndarray, counts: np.ndarray) -> dict[tuple[int, int], Block]:
    """Occupied pixels as ``TILE_SIZE`` × ``TILE_SIZE`` count blocks keyed by (block column,
    block row): only the tiles that hold a point are stored, so a region is assembled by
    copying slices (its cost follows its area, not the number of points).

    >>> blocks = pixel_blocks(np.array([1, 300]), np.array([2, 2]), np.array([5, 7]))
    >>> sorted(blocks), float(_dense(blocks[(0, 0)])[2, 1]), float(_dense(blocks[(1, 0)])[2, 44])
    ([(0, 0), (1, 0)], 5.0, 7.0)
    """
    col, row = np.asarray(col, dtype=np.int64), np.asarray(row, dtype=np.int64)
    block_col, block_row = col // TILE_SIZE, row // TILE_SIZE
    local = (row % TILE_SIZE) * TILE_SIZE + col % TILE_SIZE
    order = np.lexsort((block_col, block_row))
    block_col, block_row, local, counts = block_col[order], block_row[order], local[order], counts[order]
    changes = np.flatnonzero((np.diff(block_col) != 0) | (np.diff(block_row) != 0)) + 1
    edges = [0, *changes.tolist(), len(order)] if len(order) else []
    blocks = {}
    for start, stop in zip(edges[:-1], edges[1:], strict=True):
        grid = np.bincount(local[start:stop], weights=counts[start:stop], minlength=TILE_SIZE * TILE_SIZE)
        key = (int(block_col[start]), int(block_row[start]))
        blocks[key] = _stored(grid.reshape(TILE_SIZE, TILE_SIZE).astype(np.float32))
    return blocks


def coarser_blocks(blocks: dict[tuple[int, int], Block]) -> dict[tuple[int, int], Block]:
    """The same counts one zoom out: each block sums 2 × 2 pixels of four finer blocks.

    >>> fine = {(1, 0): np.ones((TILE_SIZE, TILE_SIZE), dtype=np.float32)}
    >>> coarse = coarser_blocks(fine)
    >>> list(coarse), float(coarse[(0, 0)][:128, 128:].min()), float(coarse[(0, 0)].sum())
    ([(0, 0)], 4.0, 65536.0)
    """
    half = TILE_SIZE // 2
    children: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for bx, by in blocks:
        children.setdefault((bx // 2, by // 2), []).append((bx, by))
    coarse: dict[tuple[int, int], Block] = {}
    for key, fine in children.items():  # one dense block at a time: the peak stays small
        target = np.zeros((TILE_SIZE, TILE_SIZE), dtype=np.float32)
        for bx, by in fine:
            r, c = (by % 2) * half, (bx % 2) * half
            target[r : r + half, c : c + half] += _dense(blocks[(bx, by)]).reshape(half, 2, half, 2).sum(axis=(1, 3))
        coarse[key] = _stored(target)
    return coarse


def blocks_to_grid(
    blocks: dict[tuple[int, int], Block], *, col0: int, row0: int, width: int, height: int
) -> np.ndarray:
    """The ``height`` × ``width`` count grid whose north-west pixel is global (col0, row0),
    copied from the blocks it overlaps (absent blocks are empty)."""
    grid = np.zeros((height, width), dtype=np.float32)
    for by in range(row0 // TILE_SIZE, (row0 + height - 1) // TILE_SIZE + 1):
        for bx in range(col0 // TILE_SIZE, (col0 + width - 1) // TILE_SIZE + 1):
            block = blocks.get((bx, by))
            if block is None:
                continue
            top, left = by * TILE_SIZE, bx * TILE_SIZE
            if not isinstance(block, np.ndarray):
                r, c = block[0] // TILE_SIZE + top - row0, block[0] % TILE_SIZE + left - col0
                keep = (r >= 0) & (r < height) & (c >= 0) & (c < width)
                grid[r[keep], c[keep]] = block[1][keep]
                continue
            r0, r1 = max(row0, top), min(row0 + height, top + TILE_SIZE)
            c0, c1 = max(col0, left), min(col0 + width, left + TILE_SIZE)
            grid[r0 - row0 : r1 - row0, c0 - col0 : c1 - col0] = block[r0 - top : r1 - top, c0 - left : c1 - left]
    return grid


def point_peak(sigma_px: float = SIGMA_PX) -> float:
    """The blurred value under a lone point: the floor of :func:`reference_density`.

    >>> round(point_peak(6.0), 5)
    0.00442
    """
    return 1.0 / (2.0 * math.pi * sigma_px**2)


def reference_density(x: np.ndarray, y: np.ndarray, *, z: int, sigma_px: float = SIGMA_PX) -> float:
    """The density (points per pixel) that takes the top colour at zoom ``z``: the 99th
    percentile over occupied cells of the whole point set binned at that zoom's resolution,
    in cells of about the blur's width (2σ pixels, so the value is what the blurred surface
    shows there), and never below a lone point's peak (a lone point is visible). Computed once
    per filter, data version and zoom by the caller; every tile of the zoom shares it.

    >>> reference_density(np.array([]), np.array([]), z=3) == point_peak()
    True
    """
    if len(x) == 0:
        return point_peak(sigma_px)
    cell_px = max(1, round(2 * sigma_px))
    cell = pixel_size(z) * cell_px
    ix = np.floor((np.asarray(x) + HALF_WORLD) / cell).astype(np.int64)
    iy = np.floor((HALF_WORLD - np.asarray(y)) / cell).astype(np.int64)
    cells_per_row = int(math.ceil(2 * HALF_WORLD / cell)) + 1
    _, counts = np.unique(iy * cells_per_row + ix, return_counts=True)
    return max(float(np.percentile(counts, 99)) / cell_px**2, point_peak(sigma_px))


def _ramp() -> np.ndarray:
    """256 RGBA colours: transparent → yellow → red, opacity rising with density."""
    t = np.linspace(0.0, 1.0, 256)
    ramp = np.empty((256, 4), dtype=np.uint8)
    ramp[:, 0] = 255
    ramp[:, 1] = np.round(255 * np.clip(2.0 - 2.0 * t, 0.0, 1.0))  # yellow until half, then to red
    ramp[:, 2] = 0
    ramp[:, 3] = np.round(230 * np.clip(0.15 + 1.7 * t, 0.0, 1.0))
    ramp[0] = (0, 0, 0, 0)
    return ramp


RAMP = _ramp()


def colourise(surface: np.ndarray, *, reference: float) -> np.ndarray:
    """RGBA pixels (``uint8``, height × width × 4) of a heat surface on the shared scale: the
    value over ``reference`` picks a ramp colour (above it, the top colour); zero is transparent.

    Values round to the nearest of the 255 steps, so the blur's far tail (under half a step) stays
    transparent: rounding it up drew the square support of the truncated kernel as a faint frame
    around every point, plain to see on the dark wall.

    >>> colourise(np.array([[0.0, 0.5, 2.0]]), reference=1.0)[0, :, 3].tolist()
    [0, 230, 230]
    >>> colourise(np.array([[0.4 / 255, 0.6 / 255]]), reference=1.0)[0, :, 3].tolist()
    [0, 36]
    """
    level = np.rint(np.clip(surface * (255.0 / reference), 0.0, 255.0)).astype(np.uint8)
    return RAMP[level]


def encode_png(rgba: np.ndarray) -> bytes:
    """PNG bytes of RGBA pixels (fast compression: tiles are many and small)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def heat_tile_png(x: np.ndarray, y: np.ndarray, *, z: int, tx: int, ty: int, reference: float) -> bytes:
    """The PNG of heat tile ``z/tx/ty`` for points (metres) on the zoom's shared scale."""
    surface = heat_surface(x, y, bounds=tile_bounds(z, tx, ty), width=TILE_SIZE, height=TILE_SIZE)
    return encode_png(colourise(surface, reference=reference))
