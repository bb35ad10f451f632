"""Basemaps: the offline outlines over the tiny demo city, an MBTiles file, PMTiles archives
(raster, and gzip-compressed vector tiles), a GeoTIFF orthophoto tiled on the fly, the list, bad
names and tile numbers, and the settings check."""

from __future__ import annotations

import gzip
import io
import re
import sqlite3
from pathlib import Path

import mapbox_vector_tile
import numpy as np
import pytest
from affine import Affine
from django.core.management import call_command
from django.db import connection
from PIL import Image
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import write as pmtiles_write

import rasterio

from basemaps.sources import OFFLINE_OUTLINES, basemaps_check
from basemaps.tiles import lonlat_to_mercator, lonlat_to_tile, tile_bounds

pytestmark = pytest.mark.django_db

#: The orthophoto's extent (WGS84) and its nodata corner (the north-west quarter).
ORTHO = (103.80, 36.04, 103.86, 36.08)
ORTHO_SIZE = (600, 400)  # columns, rows
RED = (255, 0, 0, 255)


def png_pixels(content: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(content))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGBA"))


def tile_pixel(lon: float, lat: float, z: int) -> tuple[int, int, int, int, int]:
    """(x, y) of the tile holding the point and the point's pixel (column, row) in it; and z."""
    x, y = lonlat_to_tile(lon, lat, z)
    xmin, ymin, xmax, ymax = tile_bounds(z, x, y)
    mx, my = lonlat_to_mercator(lon, lat)
    return x, y, int((mx - xmin) / (xmax - xmin) * 256), int((ymax - my) / (ymax - ymin) * 256), z


@pytest.fixture
def geotiff(tmp_path) -> Path:
    """A 3-band gradient: red grows eastwards, green southwards, blue 100; nodata (0) in the
    north-west quarter."""
    columns, rows = ORTHO_SIZE
    red = np.tile(np.linspace(1, 255, columns, dtype=np.float64), (rows, 1))
    green = np.tile(np.linspace(1, 255, rows, dtype=np.float64)[:, np.newaxis], (1, columns))
    data = np.stack([red, green, np.full((rows, columns), 100.0)]).round().astype(np.uint8)
    data[:, : rows // 2, : columns // 2] = 0
    path = tmp_path / "ortho.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=columns,
        height=rows,
        count=3,
        dtype="uint8",
        crs="EPSG:4326",
        transform=Affine((ORTHO[2] - ORTHO[0]) / columns, 0, ORTHO[0], 0, -(ORTHO[3] - ORTHO[1]) / rows, ORTHO[3]),
        nodata=0,
    ) as dataset:
        dataset.write(data)
    return path


@pytest.fixture
def mbtiles(tmp_path) -> Path:
    """One red PNG tile at XYZ 1/0/0 (TMS row 1)."""
    path = tmp_path / "basemap.mbtiles"
    buffer = io.BytesIO()
    Image.new("RGBA", (256, 256), RED).save(buffer, format="PNG")
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        db.execute("CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)")
        db.executemany("INSERT INTO metadata VALUES (?, ?)", [("name", "test"), ("format", "png")])
        db.execute("INSERT INTO tiles VALUES (1, 0, 1, ?)", (buffer.getvalue(),))
    db.close()
    return path


GREEN = (0, 160, 0, 255)


def _pmtiles(path: Path, tiles: dict[tuple[int, int, int], bytes], tile_type: TileType, compression: Compression):
    with pmtiles_write(str(path)) as writer:
        for (z, x, y), data in sorted(tiles.items(), key=lambda item: zxy_to_tileid(*item[0])):
            writer.write_tile(zxy_to_tileid(z, x, y), data)
        header = {"tile_type": tile_type, "tile_compression": compression,
                  "min_lon_e7": -1800000000, "min_lat_e7": -850000000, "max_lon_e7": 1800000000,
                  "max_lat_e7": 850000000, "center_zoom": 0, "center_lon_e7": 0, "center_lat_e7": 0}  # fmt: skip
        writer.finalize(header, {"name": path.stem})
    return path


@pytest.fixture
def pmtiles_raster(tmp_path) -> Path:
    """One green PNG tile at XYZ 2/1/1 (PMTiles addresses tiles as XYZ, no row flip)."""
    buffer = io.BytesIO()
    Image.new("RGBA", (256, 256), GREEN).save(buffer, format="PNG")
    return _pmtiles(tmp_path / "raster.pmtiles", {(2, 1, 1): buffer.getvalue()}, TileType.PNG, Compression.NONE)


@pytest.fixture
def pmtiles_vector(tmp_path) -> Path:
    """One vector tile at 3/6/3 holding a point named 兰州, stored gzip-compressed."""
    mvt = mapbox_vector_tile.encode(
        [{"name": "places", "features": [{"geometry": "POINT(2048 2048)", "properties": {"name": "兰州"}}]}]
    )
    return _pmtiles(tmp_path / "vector.pmtiles", {(3, 6, 3): gzip.compress(mvt)}, TileType.MVT, Compression.GZIP)


@pytest.fixture
def configured(settings, geotiff, mbtiles):
    settings.MINQING_BASEMAPS = [
        {"name": "offline", "kind": "offline", "title": "离线底图"},
        {"name": "ortho", "kind": "geotiff", "title": "无人机正射影像", "path": str(geotiff), "maxzoom": 20},
        {"name": "mb", "kind": "mbtiles", "title": "MBTiles", "path": str(mbtiles), "maxzoom": 5},
        {
            "name": "osm",
            "kind": "xyz",
            "title": "OpenStreetMap",
            "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
            "attribution": "© OpenStreetMap contributors",
            "maxzoom": 19,
        },
    ]


@pytest.fixture
def reader(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reader"))
    return client


def test_list(reader, configured):
    response = reader.get("/basemaps/")
    assert response.status_code == 200
    basemaps = response.json()["basemaps"]
    assert [b["name"] for b in basemaps] == ["offline", "ortho", "mb", "osm"]
    assert basemaps[0] == {
        "name": "offline",
        "kind": "offline",
        "title": "离线底图",
        "attribution": "",
        "minzoom": 0,
        "maxzoom": 22,
        "url": "/basemaps/offline/{z}/{x}/{y}.png",
        "public": True,
    }
    assert basemaps[2]["url"] == "/basemaps/mb/{z}/{x}/{y}.png"
    assert [b["public"] for b in basemaps] == [True, False, False, False]
    # The external template goes to the client as it is: the server never fetches it.
    assert basemaps[3]["url"] == "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


def test_login_required_but_for_a_public_basemaps_tiles(client, configured, settings):
    """The offline basemap (our own outlines) is public by default: the residents' pages draw on
    it; a file (an orthophoto may be licensed) needs a login unless its entry says public."""
    assert client.get("/basemaps/").status_code == 401
    refused = client.get("/basemaps/mb/1/0/0.png")
    assert (refused.status_code, refused["WWW-Authenticate"]) == (401, 'Token realm="api"')
    offline = client.get("/basemaps/offline/1/0/0.png")
    assert (offline.status_code, offline["Cache-Control"]) == (200, "public, max-age=300")
    settings.MINQING_BASEMAPS = [
        {**entry, "public": True} if entry["name"] == "mb" else entry for entry in settings.MINQING_BASEMAPS
    ]
    shared = client.get("/basemaps/mb/1/0/0.png")
    assert (shared.status_code, shared["Cache-Control"]) == (200, "public, max-age=86400")
    settings.MINQING_BASEMAPS = [{**settings.MINQING_BASEMAPS[0], "public": "yes"}]
    from basemaps.sources import basemaps_check

    assert [error.msg for error in basemaps_check()] == [
        "MINQING_BASEMAPS[0] ('offline'): public must be true or false, got 'yes'"
    ]


def test_mbtiles_tile_with_tms_rows(reader, configured):
    response = reader.get("/basemaps/mb/1/0/0.png")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert int(response["Content-Length"]) == len(response.content)
    assert response["Cache-Control"] == "private, max-age=86400"
    assert (png_pixels(response.content) == RED).all()
    # The same tile again with its ETag: 304, no body.
    again = reader.get("/basemaps/mb/1/0/0.png", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304 and again.content == b""
    # XYZ row 1 is TMS row 0, which the file lacks.
    missing = reader.get("/basemaps/mb/1/0/1.png")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "The basemap mb has no tile 1/0/1"


def test_pmtiles_raster_and_vector_archives(reader, settings, pmtiles_raster, pmtiles_vector):
    settings.MINQING_BASEMAPS = [
        {"name": "pm", "kind": "pmtiles", "title": "PMTiles 影像", "path": str(pmtiles_raster)},
        {"name": "pmv", "kind": "pmtiles", "title": "PMTiles 矢量", "path": str(pmtiles_vector)},
    ]
    listed = {b["name"]: b["url"] for b in reader.get("/basemaps/").json()["basemaps"]}
    assert listed == {"pm": "/basemaps/pm/{z}/{x}/{y}.png", "pmv": "/basemaps/pmv/{z}/{x}/{y}.pbf"}
    raster_tile = reader.get("/basemaps/pm/2/1/1.png")
    assert raster_tile.status_code == 200 and raster_tile["Content-Type"] == "image/png"
    assert (png_pixels(raster_tile.content) == GREEN).all()
    assert reader.get("/basemaps/pm/2/1/2.png").status_code == 404
    vector_tile = reader.get("/basemaps/pmv/3/6/3.pbf")
    assert vector_tile["Content-Type"] == "application/vnd.mapbox-vector-tile"
    assert "Content-Encoding" not in vector_tile  # inflated on the server
    (place,) = mapbox_vector_tile.decode(vector_tile.content)["places"]["features"]
    assert place["properties"] == {"name": "兰州"}


def test_geotiff_tile_follows_the_gradient(reader, configured):
    lon, lat = 103.845, 36.05  # south-east quarter: data
    x, y, column, row, z = tile_pixel(lon, lat, 16)
    response = reader.get(f"/basemaps/ortho/{z}/{x}/{y}.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert int(response["Content-Length"]) == len(response.content)
    pixels = png_pixels(response.content)
    red, green, blue, alpha = (int(v) for v in pixels[row, column])
    expected_red = 1 + 254 * (lon - ORTHO[0]) / (ORTHO[2] - ORTHO[0])
    expected_green = 1 + 254 * (ORTHO[3] - lat) / (ORTHO[3] - ORTHO[1])
    assert abs(red - expected_red) <= 3 and abs(green - expected_green) <= 3 and blue == 100 and alpha == 255
    # Red grows eastwards across the tile.
    assert pixels[128, 250, 0] > pixels[128, 5, 0]


def test_geotiff_nodata_and_outside_are_transparent(reader, configured):
    x, y, column, row, z = tile_pixel(103.81, 36.075, 16)  # north-west quarter: nodata
    pixels = png_pixels(reader.get(f"/basemaps/ortho/{z}/{x}/{y}.png").content)
    assert pixels[row, column, 3] == 0
    x, y, *_ = tile_pixel(100.0, 30.0, 16)  # far away
    pixels = png_pixels(reader.get(f"/basemaps/ortho/16/{x}/{y}.png").content)
    assert (pixels[..., 3] == 0).all()
    # A tile across the image's east edge: opaque inside, transparent beyond.
    x, y, column, row, z = tile_pixel(ORTHO[2], 36.05, 14)
    pixels = png_pixels(reader.get(f"/basemaps/ortho/{z}/{x}/{y}.png").content)
    assert pixels[row, column - 5, 3] == 255 and pixels[row, column + 5, 3] == 0


@pytest.fixture
def tiny_city():
    call_command("generate_demo_city", "--scale", "tiny", "--seed", "1", verbosity=0)


def test_offline_draws_district_outlines(reader, configured, tiny_city):
    with connection.cursor() as cursor:
        # A vertex of the district's outline and a point well inside it.
        cursor.execute(
            """SELECT ST_X(p), ST_Y(p), ST_X(c), ST_Y(c) FROM (
                   SELECT ST_PointN(ST_ExteriorRing(ST_GeometryN(boundary, 1)), 1) AS p,
                          ST_PointOnSurface(boundary) AS c
                   FROM layers_region WHERE level = 'district' AND boundary IS NOT NULL LIMIT 1) s"""
        )
        lon, lat, inside_lon, inside_lat = cursor.fetchone()
    district_color = OFFLINE_OUTLINES[-1][2].color
    x, y, column, row, z = tile_pixel(lon, lat, 12)
    response = reader.get(f"/basemaps/offline/{z}/{x}/{y}.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "public, max-age=300"
    pixels = png_pixels(response.content)
    around = pixels[max(row - 2, 0) : row + 3, max(column - 2, 0) : column + 3].reshape(-1, 4)
    assert any(tuple(p) == district_color for p in around)
    # Far from the city the tile is empty.
    x, y, *_ = tile_pixel(90.0, 30.0, 12)
    assert (png_pixels(reader.get(f"/basemaps/offline/12/{x}/{y}.png").content)[..., 3] == 0).all()
    # Inside the district: the paper fill (or a finer outline over it), opaque.
    x, y, column, row, z = tile_pixel(inside_lon, inside_lat, 11)
    pixels = png_pixels(reader.get(f"/basemaps/offline/{z}/{x}/{y}.png").content)
    assert pixels[row, column, 3] == 255


@pytest.mark.parametrize(
    "path, status, message",
    [
        ("/basemaps/../offline/1/0/0.png", 400, "name: must be 1-40 characters of a-z, 0-9, _ and -, got '../offline'"),
        (
            "/basemaps/..%2F..%2Fetc/1/0/0.png",
            400,
            "name: must be 1-40 characters of a-z, 0-9, _ and -, got '../../etc'",
        ),
        ("/basemaps/Ortho/1/0/0.png", 400, "name: must be 1-40 characters of a-z, 0-9, _ and -, got 'Ortho'"),
        ("/basemaps/ortho.tif/1/0/0.png", 400, "name: must be 1-40 characters of a-z, 0-9, _ and -, got 'ortho.tif'"),
        ("/basemaps/nope/1/0/0.png", 404, "No such basemap: nope"),
        (
            "/basemaps/osm/1/0/0.png",
            404,
            "The basemap osm is fetched by the client: https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        ),
        ("/basemaps/ortho/a/0/0.png", 400, "z: must be an integer, got 'a'"),
        ("/basemaps/ortho/23/0/0.png", 400, "z: must be between 0 and 22, got 23"),
        # A well-formed address of a tile the basemap does not have is a 404, as tile servers answer.
        ("/basemaps/mb/6/0/0.png", 404, "The basemap mb has no tile 6/0/0"),
        ("/basemaps/ortho/1/2/0.png", 404, "The basemap ortho has no tile 1/2/0"),
        ("/basemaps/ortho/1/0/-1.png", 400, "y: must be between 0 and 4194303, got -1"),
        ("/basemaps/ortho/1/0/0x1.png", 400, "y: must be an integer, got '0x1'"),
        ("/basemaps/ortho/1/0/0.jpg", 404, "The basemap ortho has no tile 1/0/0"),
    ],
)
def test_bad_requests(reader, configured, path, status, message):
    response = reader.get(path)
    assert response.status_code == status, response.content
    assert response.json()["error"]["message"] == message


def _check_messages(settings, entries) -> list[str]:
    settings.MINQING_BASEMAPS = entries
    return [error.msg for error in basemaps_check()]


@pytest.mark.parametrize(
    "entry, message",
    [
        ("offline", "MINQING_BASEMAPS[0]: must be a dict, got str"),
        ({"kind": "offline"}, "MINQING_BASEMAPS[0]: name must be 1-40 characters of a-z, 0-9, _ and -, got None"),
        (
            {"name": "../x", "kind": "offline"},
            "MINQING_BASEMAPS[0]: name must be 1-40 characters of a-z, 0-9, _ and -, got '../x'",
        ),
        (
            {"name": "ortho", "kind": "tiff"},
            "MINQING_BASEMAPS[0] ('ortho'): unknown kind 'tiff'; expected one of geotiff, mbtiles, offline, pmtiles, xyz",
        ),
        (
            {"name": "ortho"},
            "MINQING_BASEMAPS[0] ('ortho'): unknown kind None; expected one of geotiff, mbtiles, offline, pmtiles, xyz",
        ),
        ({"name": "ortho", "kind": "geotiff"}, "MINQING_BASEMAPS[0] ('ortho'): kind geotiff needs a path"),
        (
            {"name": "ortho", "kind": "geotiff", "path": "/nowhere/ortho.tif"},
            "MINQING_BASEMAPS[0] ('ortho'): file not found: /nowhere/ortho.tif",
        ),
        (
            {"name": "mb", "kind": "mbtiles", "path": "/nowhere/a.mbtiles"},
            "MINQING_BASEMAPS[0] ('mb'): file not found: /nowhere/a.mbtiles",
        ),
        ({"name": "osm", "kind": "xyz"}, "MINQING_BASEMAPS[0] ('osm'): kind xyz needs a url"),
        (
            {"name": "osm", "kind": "xyz", "url": "https://t.example/{z}/{x}.png"},
            "MINQING_BASEMAPS[0] ('osm'): url must contain {y}: https://t.example/{z}/{x}.png",
        ),
        (
            {"name": "offline", "kind": "offline", "minzoom": 5, "maxzoom": 3},
            "MINQING_BASEMAPS[0] ('offline'): minzoom and maxzoom must be integers with 0 <= minzoom <= maxzoom <= 22",
        ),
    ],
)
def test_check_rejects_bad_entries(settings, entry, message):
    assert _check_messages(settings, [entry]) == [message]


def test_check_rejects_unreadable_files_and_twice_used_names(settings, tmp_path, geotiff, mbtiles, pmtiles_raster):
    not_pmtiles = tmp_path / "notes.pmtiles"
    not_pmtiles.write_bytes(b"PMTiles\x02" + bytes(200))
    also_not = tmp_path / "short.pmtiles"
    also_not.write_bytes(b"\xff\xfe")
    assert _check_messages(
        settings,
        [
            {"name": "p", "kind": "pmtiles", "path": str(not_pmtiles)},
            {"name": "q", "kind": "pmtiles", "path": str(also_not)},
            {"name": "r", "kind": "pmtiles", "path": str(pmtiles_raster)},
        ],
    ) == [
        f"MINQING_BASEMAPS[0] ('p'): {not_pmtiles} is a PMTiles archive of another version; version 3 is supported",
        f"MINQING_BASEMAPS[1] ('q'): {also_not} is not a PMTiles archive (no PMTiles v3 header)",
    ]
    not_a_tiff = tmp_path / "notes.tif"
    not_a_tiff.write_text("not a raster")
    not_mbtiles = tmp_path / "notes.mbtiles"
    not_mbtiles.write_text("not a database")
    messages = _check_messages(
        settings,
        [
            {"name": "a", "kind": "geotiff", "path": str(not_a_tiff)},
            {"name": "b", "kind": "mbtiles", "path": str(not_mbtiles)},
            {"name": "c", "kind": "geotiff", "path": str(geotiff)},
            {"name": "c", "kind": "mbtiles", "path": str(mbtiles)},
        ],
    )
    assert messages[0].startswith(f"MINQING_BASEMAPS[0] ('a'): {not_a_tiff} cannot be read as a raster (")
    assert messages[1] == f"MINQING_BASEMAPS[1] ('b'): not an MBTiles file: {not_mbtiles} (file is not a database)"
    assert messages[2:] == ["MINQING_BASEMAPS[3]: name 'c' is used twice"]


def test_the_default_settings_pass_the_check():
    from django.core import checks

    assert [e for e in checks.run_checks(tags=["basemaps"]) if e.id.startswith("basemaps.")] == []


def test_no_template_loads_anything_from_the_internet():
    """Every JS/CSS asset is served locally: no template of ours names an http(s) source."""
    root = Path(__file__).resolve().parents[2]
    templates = [p for p in root.glob("*/templates/**/*.html") if ".venv" not in p.parts]
    assert templates
    remote = re.compile(r"""(src|href|url)\s*[=(]\s*["']?(https?:)?//""", re.IGNORECASE)
    offending = [
        f"{p}: {line.strip()}" for p in templates for line in p.read_text().splitlines() if remote.search(line)
    ]
    assert offending == []
