"""Basemaps: one registry of kinds, configured in ``settings.MINQING_BASEMAPS``.

Kinds:

- ``offline`` (the default): drawn on the server from our own layers (district, street and
  community outlines; small-grid outlines when zoomed in), PNG tiles; needs no internet.
- ``xyz``: a URL template on someone else's server (Tianditu with a key, OSM). The server only
  hands the template to the client; it never proxies and never goes on the internet itself.
- ``mbtiles``: a local MBTiles file, served at ``/basemaps/<name>/<z>/<x>/<y>.<format>``.
- ``pmtiles``: a local PMTiles (v3) archive, served the same way (raster or vector tiles).
- ``geotiff``: an orthophoto (drone imagery) tiled on the fly with rasterio windowed reads.

Tile archives and raster files are opened only by :mod:`basemaps.raster`.
Every entry is checked at start-up by :func:`basemaps_check` (a Django system check), so a bad
entry stops ``manage.py check``/``runserver`` with a message naming it.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from django.conf import settings
from django.core import checks
from django.db import connection

from layers.publishing.catalog import layer_get

from . import raster
from .tiles import MAX_ZOOM, TILE_PIXELS, tile_lonlat_bounds

#: A basemap name: also a URL segment, so nothing that could climb out of it.
NAME_PATTERN = re.compile(r"[a-z0-9_-]{1,40}")

KINDS: dict[str, type[Basemap]] = {}


def kind(name: str) -> Callable[[type[Basemap]], type[Basemap]]:
    """Class decorator registering a Basemap subclass under its kind name."""

    def decorate(cls: type[Basemap]) -> type[Basemap]:
        cls.kind = name
        KINDS[name] = cls
        return cls

    return decorate


@dataclass(frozen=True)
class Tile:
    """An encoded tile and its Content-Type."""

    content: bytes
    content_type: str


@dataclass(frozen=True)
class Basemap:
    """A basemap the map client can show under the layers.

    The contract every kind keeps:

    - :meth:`describe` returns the JSON the client needs (``url`` is an XYZ template with
      ``{z}``, ``{x}``, ``{y}``, either ours or, for ``xyz``, the configured external one);
    - :attr:`served` says whether this server answers its tiles; if so, :attr:`extension` is the
      URL extension and :meth:`tile` returns the tile at valid ``z/x/y`` (already checked against
      the zoom range and the tile count by the caller) or None when there is none;
    - :meth:`config_errors` lists what is wrong with a settings entry of this kind, as exact
      messages, without building it.
    """

    name: str
    title: str
    attribution: str = ""
    minzoom: int = 0
    maxzoom: int = MAX_ZOOM
    #: Whether anyone may fetch its tiles without a login (the residents' and the public map's
    #: pages draw on it). Default: the offline basemap (our own outlines, reference data) is,
    #: any other (an orthophoto, a licensed file) is not unless its entry says ``"public": True``.
    public: bool = False
    kind: ClassVar[str] = ""
    served: ClassVar[bool] = True
    #: Seconds a client or proxy may keep a tile.
    max_age: ClassVar[int] = 86400

    @property
    def extension(self) -> str:
        return "png"

    def url(self) -> str:
        return f"/basemaps/{self.name}/{{z}}/{{x}}/{{y}}.{self.extension}"

    def describe(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "title": self.title,
            "attribution": self.attribution,
            "minzoom": self.minzoom,
            "maxzoom": self.maxzoom,
            "url": self.url(),
            "public": self.public,
        }

    def tile(self, z: int, x: int, y: int) -> Tile | None:
        raise NotImplementedError

    @classmethod
    def config_errors(cls, entry: Mapping) -> list[str]:
        return []

    @classmethod
    def from_entry(cls, entry: Mapping) -> Basemap:
        """Build from a settings entry that :func:`basemap_entry_errors` accepted."""
        return cls(**_common(entry))


def _common(entry: Mapping) -> dict:
    return {
        "name": entry["name"],
        "title": entry.get("title", entry["name"]),
        "attribution": entry.get("attribution", ""),
        "minzoom": entry.get("minzoom", 0),
        "maxzoom": entry.get("maxzoom", MAX_ZOOM),
        "public": entry.get("public", entry.get("kind") == "offline"),
    }


@dataclass(frozen=True)
class FileBasemap(Basemap):
    """A basemap read from a local file (``path`` in the entry)."""

    path: Path = Path()

    @classmethod
    def config_errors(cls, entry: Mapping) -> list[str]:
        path = entry.get("path")
        if not path:
            return [f"kind {cls.kind} needs a path"]
        if not Path(path).is_file():
            return [f"file not found: {path}"]
        return cls.file_errors(Path(path))

    @classmethod
    def file_errors(cls, path: Path) -> list[str]:
        return []

    @classmethod
    def from_entry(cls, entry: Mapping) -> Basemap:
        return cls(**_common(entry), path=Path(entry["path"]))


@kind("xyz")
@dataclass(frozen=True)
class XyzBasemap(Basemap):
    """Tiles from an external XYZ server; the client fetches them, this server never does."""

    template: str = ""
    served: ClassVar[bool] = False

    def url(self) -> str:
        return self.template

    def tile(self, z: int, x: int, y: int) -> Tile | None:
        return None

    @classmethod
    def config_errors(cls, entry: Mapping) -> list[str]:
        url = entry.get("url")
        if not url:
            return ["kind xyz needs a url"]
        missing = [part for part in ("{z}", "{x}", "{y}") if part not in url]
        if missing:
            return [f"url must contain {', '.join(missing)}: {url}"]
        return []

    @classmethod
    def from_entry(cls, entry: Mapping) -> Basemap:
        return cls(**_common(entry), template=entry["url"])


@kind("mbtiles")
@dataclass(frozen=True)
class MbtilesBasemap(FileBasemap):
    """Tiles stored in a local MBTiles file (rows counted from the south, TMS)."""

    @property
    def extension(self) -> str:
        return raster.MBTILES_FORMATS[raster.mbtiles_format(self.path)][0]

    def tile(self, z: int, x: int, y: int) -> Tile | None:
        data = raster.mbtiles_tile(self.path, z, x, y)
        if data is None:
            return None
        return Tile(data, raster.MBTILES_FORMATS[raster.mbtiles_format(self.path)][1])

    @classmethod
    def file_errors(cls, path: Path) -> list[str]:
        try:
            found = raster.mbtiles_format(path)
        except sqlite3.DatabaseError as error:
            return [f"not an MBTiles file: {path} ({error})"]
        if found not in raster.MBTILES_FORMATS:
            return [f"unsupported MBTiles format {found!r} in {path}"]
        return []


@kind("pmtiles")
@dataclass(frozen=True)
class PmtilesBasemap(FileBasemap):
    """Tiles stored in a local PMTiles v3 archive (one file, tiles addressed as XYZ)."""

    @property
    def extension(self) -> str:
        return raster.PMTILES_TYPES[raster.pmtiles_header(self.path)["tile_type"]][0]

    def tile(self, z: int, x: int, y: int) -> Tile | None:
        data = raster.pmtiles_tile(self.path, z, x, y)
        if data is None:
            return None
        return Tile(data, raster.PMTILES_TYPES[raster.pmtiles_header(self.path)["tile_type"]][1])

    @classmethod
    def file_errors(cls, path: Path) -> list[str]:
        problem = raster.pmtiles_check(path)
        return [f"{path} {problem}"] if problem else []


@kind("geotiff")
@dataclass(frozen=True)
class GeotiffBasemap(FileBasemap):
    """An orthophoto tiled on the fly (windowed reads warped to Web Mercator); nodata is
    transparent."""

    def tile(self, z: int, x: int, y: int) -> Tile | None:
        return Tile(raster.geotiff_tile(self.path, z, x, y), "image/png")

    @classmethod
    def file_errors(cls, path: Path) -> list[str]:
        problem = raster.geotiff_check(path)
        return [f"{path} {problem}"] if problem else []


#: The offline basemap's outlines, finest first (coarser lines are drawn over finer ones along a
#: shared edge): (catalog layer, lowest zoom drawn, stroke). Districts are filled in paper tone.
OFFLINE_OUTLINES = (
    ("grids_small", 15, raster.Stroke((174, 182, 191, 255), 1)),
    ("regions_community", 12, raster.Stroke((133, 146, 158, 255), 1)),
    ("regions_street", 10, raster.Stroke((93, 109, 126, 255), 2)),
    ("regions_district", 0, raster.Stroke((31, 78, 121, 255), 3, fill=(245, 243, 236, 255))),
)


@kind("offline")
@dataclass(frozen=True)
class OfflineBasemap(Basemap):
    """Drawn from our own layers: the city's districts filled in paper colour, district, street
    and community outlines, and small grids from zoom 15. Needs no file and no internet."""

    max_age: ClassVar[int] = 300  # boundaries can be edited; a few minutes stale at most

    def tile(self, z: int, x: int, y: int) -> Tile | None:
        drawn = [
            (stroke, _tile_rings(layer_id, z, x, y)) for layer_id, lowest, stroke in OFFLINE_OUTLINES if z >= lowest
        ]
        return Tile(raster.outlines_png(drawn), "image/png")


def _tile_rings(layer_id: str, z: int, x: int, y: int) -> list[list[list[float]]]:
    """The rings of a catalog layer's polygons in tile pixels (y down), clipped to the tile with a
    small margin and simplified to a pixel, all in one query."""
    layer = layer_get(layer_id)
    lon_min, lat_min, lon_max, lat_max = tile_lonlat_bounds(z, x, y, buffer=0.05)
    sql = f"""
        WITH shapes AS (
            SELECT ST_AsMVTGeom(ST_Transform({layer.geometry_sql}, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s),
                                %(extent)s, 8, TRUE) AS g
            FROM {layer.source}
            WHERE ({layer.where}) AND {layer.geometry_sql} && ST_MakeEnvelope(%(w)s, %(s)s, %(e)s, %(n)s, 4326))
        SELECT ST_AsGeoJSON(g, 0) FROM shapes WHERE g IS NOT NULL"""
    values = {"z": z, "x": x, "y": y, "extent": TILE_PIXELS, "w": lon_min, "s": lat_min, "e": lon_max, "n": lat_max}
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        rows = cursor.fetchall()
    rings: list[list[list[float]]] = []
    for (text,) in rows:
        shape = json.loads(text)
        polygons = shape["coordinates"] if shape["type"] == "MultiPolygon" else [shape["coordinates"]]
        if shape["type"] in ("Polygon", "MultiPolygon"):
            rings.extend(ring for polygon in polygons for ring in polygon)
    return rings


# --- configuration ------------------------------------------------------------------------------


def _entries() -> list:
    return list(getattr(settings, "MINQING_BASEMAPS", []))


def basemap_entry_errors(index: int, entry: object) -> list[str]:
    """Exact messages for what is wrong with ``MINQING_BASEMAPS[index]`` (empty: nothing)."""
    if not isinstance(entry, Mapping):
        return [f"MINQING_BASEMAPS[{index}]: must be a dict, got {type(entry).__name__}"]
    name = entry.get("name")
    where = f"MINQING_BASEMAPS[{index}] ({name!r})"
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        return [f"MINQING_BASEMAPS[{index}]: name must be 1-40 characters of a-z, 0-9, _ and -, got {name!r}"]
    cls = KINDS.get(entry.get("kind"))
    if cls is None:
        return [f"{where}: unknown kind {entry.get('kind')!r}; expected one of {', '.join(sorted(KINDS))}"]
    errors = []
    low, high = entry.get("minzoom", 0), entry.get("maxzoom", MAX_ZOOM)
    if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high <= MAX_ZOOM):
        errors.append(f"{where}: minzoom and maxzoom must be integers with 0 <= minzoom <= maxzoom <= {MAX_ZOOM}")
    if not isinstance(entry.get("public", False), bool):
        errors.append(f"{where}: public must be true or false, got {entry.get('public')!r}")
    return errors + [f"{where}: {message}" for message in cls.config_errors(entry)]


def basemaps_configured() -> dict[str, Basemap]:
    """The usable basemaps by name, in settings order (entries with errors left out: the system
    check has already reported them)."""
    found: dict[str, Basemap] = {}
    for index, entry in enumerate(_entries()):
        if not basemap_entry_errors(index, entry) and entry["name"] not in found:
            found[entry["name"]] = KINDS[entry["kind"]].from_entry(entry)
    return found


def basemap_get(name: str) -> Basemap | None:
    return basemaps_configured().get(name)


def basemap_public() -> Basemap | None:
    """The first basemap anyone may fetch (the residents' and the public map's pages), if any."""
    return next((basemap for basemap in basemaps_configured().values() if basemap.public), None)


def basemaps_check(app_configs=None, **kwargs) -> list[checks.Error]:
    """System check: every MINQING_BASEMAPS entry is usable and names are unique."""
    errors = []
    seen: set[str] = set()
    for index, entry in enumerate(_entries()):
        errors += [checks.Error(message, id="basemaps.E001") for message in basemap_entry_errors(index, entry)]
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if name in seen:
            errors.append(checks.Error(f"MINQING_BASEMAPS[{index}]: name {name!r} is used twice", id="basemaps.E002"))
        seen.add(name)
    return errors
