"""Raster I/O and drawing of basemap tiles: the ONLY module that opens raster files.

Everything here answers one 256 × 256 XYZ tile (Web Mercator) as encoded bytes: a tile out of
an MBTiles file (sqlite3, TMS rows), a window of a GeoTIFF warped to EPSG:3857 on the fly, or
outlines drawn with Pillow from pixel coordinates the database computed.
"""

from __future__ import annotations

import gzip
import io
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from affine import Affine
from PIL import Image, ImageDraw
from pmtiles.reader import Reader as PmtilesReader
from pmtiles.tile import Compression, MagicNumberNotFound, SpecVersionUnsupported, TileType

import rasterio
from rasterio.enums import Resampling
from rasterio.io import MemoryFile
from rasterio.vrt import WarpedVRT

from .tiles import TILE_PIXELS, tile_bounds, tile_count

#: MBTiles ``format`` metadata → (URL extension, Content-Type).
MBTILES_FORMATS = {
    "png": ("png", "image/png"),
    "jpg": ("jpg", "image/jpeg"),
    "jpeg": ("jpg", "image/jpeg"),
    "webp": ("webp", "image/webp"),
    "pbf": ("pbf", "application/vnd.mapbox-vector-tile"),
}


def png_encode(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


@cache
def transparent_png() -> bytes:
    """One fully transparent tile, encoded once (the answer for a tile outside the data)."""
    return png_encode(Image.new("RGBA", (TILE_PIXELS, TILE_PIXELS), (0, 0, 0, 0)))


# --- MBTiles ------------------------------------------------------------------------------------


def _mbtiles_connect(path: Path) -> sqlite3.Connection:
    # Read-only: a served basemap must never be written, and a missing file must not be created.
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)


def mbtiles_format(path: Path) -> str:
    """The file's ``format`` metadata (``png`` when absent, as the MBTiles spec says)."""
    connection = _mbtiles_connect(path)
    try:
        row = connection.execute("SELECT value FROM metadata WHERE name = 'format'").fetchone()
    finally:
        connection.close()
    return (row[0] if row else "png").lower()


def mbtiles_tile(path: Path, z: int, x: int, y: int) -> bytes | None:
    """The stored tile at XYZ ``z/x/y`` (MBTiles rows count from the south: TMS), or None."""
    tms_y = tile_count(z) - 1 - y
    connection = _mbtiles_connect(path)
    try:
        row = connection.execute(
            "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?", (z, x, tms_y)
        ).fetchone()
    finally:
        connection.close()
    return bytes(row[0]) if row else None


# --- GeoTIFF out ---------------------------------------------------------------------------------


def geotiff_bytes(
    surface: np.ndarray, *, west: float, north: float, resolution: float, crs: str, description: str
) -> bytes:
    """A single-band float32 GeoTIFF (deflate) of ``surface`` (rows from the north) whose
    north-west corner is ``west, north`` and whose square pixels are ``resolution`` CRS units."""
    with MemoryFile() as memory:
        with memory.open(
            driver="GTiff",
            width=surface.shape[1],
            height=surface.shape[0],
            count=1,
            dtype="float32",
            crs=crs,
            transform=Affine.translation(west, north) @ Affine.scale(resolution, -resolution),
            nodata=-1.0,
            compress="deflate",
        ) as dataset:
            dataset.write(surface.astype(np.float32), 1)
            dataset.set_band_description(1, description)
        return memory.read()


# --- PMTiles ------------------------------------------------------------------------------------

#: PMTiles tile types → (URL extension, Content-Type).
PMTILES_TYPES = {
    TileType.PNG: ("png", "image/png"),
    TileType.JPEG: ("jpg", "image/jpeg"),
    TileType.WEBP: ("webp", "image/webp"),
    TileType.MVT: ("pbf", "application/vnd.mapbox-vector-tile"),
}


def pmtiles_header(path: Path) -> dict:
    """The archive's header (tile type, compression, zooms); :func:`pmtiles_check` says first
    whether the file is a PMTiles v3 archive."""
    with open(path, "rb") as file:
        return PmtilesReader(lambda offset, length: _read_at(file, offset, length)).header()


def pmtiles_check(path: Path) -> str:
    """What is wrong with the file as a PMTiles basemap, or ``""``."""
    try:
        header = pmtiles_header(path)
    except SpecVersionUnsupported:
        return "is a PMTiles archive of another version; version 3 is supported"
    except (MagicNumberNotFound, UnicodeDecodeError, IndexError, ValueError):
        return "is not a PMTiles archive (no PMTiles v3 header)"
    if header["tile_type"] not in PMTILES_TYPES:
        return f"holds {header['tile_type'].name} tiles; PNG, JPEG, WebP or MVT are served"
    return ""


def pmtiles_tile(path: Path, z: int, x: int, y: int) -> bytes | None:
    """The stored tile at XYZ ``z/x/y`` (PMTiles addresses tiles as XYZ), uncompressed, or None.

    Tiles stored gzip-compressed (usual for vector tiles) are inflated here, so the response
    needs no Content-Encoding a client might not expect on a tile."""
    with open(path, "rb") as file:
        reader = PmtilesReader(lambda offset, length: _read_at(file, offset, length))
        data = reader.get(z, x, y)
        if data is None:
            return None
        if reader.header()["tile_compression"] == Compression.GZIP:
            return gzip.decompress(data)
        return bytes(data)


def _read_at(file, offset: int, length: int) -> bytes:
    # Positioned reads of the few directory and tile ranges a lookup needs, not the whole archive.
    file.seek(offset)
    return file.read(length)


# --- GeoTIFF ------------------------------------------------------------------------------------


def geotiff_check(path: Path) -> str:
    """An empty string if rasterio can open the file and it has a CRS, else why not."""
    try:
        with rasterio.open(path) as dataset:
            if dataset.crs is None:
                return "has no coordinate reference system"
    except rasterio.errors.RasterioIOError as error:
        return f"cannot be read as a raster ({error})"
    return ""


def geotiff_tile(path: Path, z: int, x: int, y: int) -> bytes:
    """The tile ``z/x/y`` of the orthophoto as an RGBA PNG, warped to EPSG:3857 on the fly.

    Only the tile's window is read (a warped VRT whose grid is the tile itself, so GDAL reads
    the overlapping source blocks, using overviews when zoomed out). Nodata and everything
    outside the image is transparent. Bands: 1 → grey, 3 or more → the first three as RGB;
    values are clipped to 0–255 (an orthophoto is 8-bit).
    """
    xmin, ymin, xmax, ymax = tile_bounds(z, x, y)
    with rasterio.open(path) as source:
        with WarpedVRT(
            source,
            crs="EPSG:3857",
            transform=Affine((xmax - xmin) / TILE_PIXELS, 0, xmin, 0, -(ymax - ymin) / TILE_PIXELS, ymax),
            width=TILE_PIXELS,
            height=TILE_PIXELS,
            resampling=Resampling.bilinear,
        ) as vrt:
            if not _overlaps(vrt.bounds, _source_bounds_3857(source)):
                return transparent_png()
            indexes = [1, 2, 3] if source.count >= 3 else [1]
            data = vrt.read(indexes)
            mask = vrt.dataset_mask()
    if not mask.any():
        return transparent_png()
    rgb = np.clip(data, 0, 255).astype(np.uint8)
    if rgb.shape[0] == 1:
        rgb = np.repeat(rgb, 3, axis=0)
    rgba = np.concatenate([rgb, mask[np.newaxis].astype(np.uint8)], axis=0)
    return png_encode(Image.fromarray(np.moveaxis(rgba, 0, -1), mode="RGBA"))


def _source_bounds_3857(source) -> tuple[float, float, float, float]:
    from rasterio.warp import transform_bounds

    return transform_bounds(source.crs, "EPSG:3857", *source.bounds, densify_pts=21)


def _overlaps(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# --- Outlines drawn with Pillow -------------------------------------------------------------------


@dataclass(frozen=True)
class Stroke:
    """How one set of outlines is drawn: RGBA colour, line width in pixels, optional fill."""

    color: tuple[int, int, int, int]
    width: int
    fill: tuple[int, int, int, int] | None = None


def outlines_png(layers: Iterable[tuple[Stroke, Iterable[Sequence[Sequence[float]]]]]) -> bytes:
    """A transparent tile with each layer's rings (lists of tile-pixel ``(x, y)``, y down): every
    fill first, then every outline, each in the given order (the last layer's lines on top, so a
    coarse boundary drawn last is never hidden by a finer one along the same edge). A hole is
    filled like its shell (fills are a paper tone under outlines, not data)."""
    image = Image.new("RGBA", (TILE_PIXELS, TILE_PIXELS), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    layers = [(stroke, [[(float(px), float(py)) for px, py in ring] for ring in rings]) for stroke, rings in layers]
    for stroke, rings in layers:
        if stroke.fill is not None:
            for ring in rings:
                if len(ring) >= 3:
                    draw.polygon(ring, fill=stroke.fill)
    for stroke, rings in layers:
        for ring in rings:
            if len(ring) >= 2:
                draw.line(ring, fill=stroke.color, width=stroke.width, joint="curve")
    return png_encode(image)
