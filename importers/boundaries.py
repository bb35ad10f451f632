"""Region boundaries from GeoJSON, Shapefile or GeoPackage polygons.

Each feature carries the code of an existing region of the chosen level, either a 6-digit
adcode (620102, AMap/DataV style) or the 12-digit statistical code. Geometry is transformed
to WGS84 from the CRS the file declares and, for Chinese web-map downloads, converted from
GCJ-02 or BD-09; invalid polygons are repaired (or rejected with ``--no-repair``), oriented
counter-clockwise and stored as MultiPolygons through :func:`region_set_boundary`, which keeps
the replaced boundary in the history.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry
from django.utils import timezone
from django.utils.translation import gettext_noop

import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from layers.geocoding.crs import to_wgs84
from layers.models import Region
from layers.services.areas import region_set_boundary

from . import preview, sources
from .base import Importer, Option
from .report import ImportReport
from .rowchecks import RowChecks

LEVELS = tuple(Region.Level.values)
#: Offsets of Chinese web maps that ``--convert`` undoes (see :mod:`layers.geocoding.crs`).
CONVERSIONS = ("gcj02", "bd09")

#: Below this area (square degrees, about 1 m² at Lanzhou) a polygon is a degenerate sliver:
#: collinear points give a tiny non-zero area in floating point, not an exact 0.
NO_AREA = 1e-10

# Columns of the frame between validate() and write().
CODE, NAME, GEOMETRY, REGION_ID = "_code", "_name", "_geometry", "_region_id"


def code_from_field(value: object) -> str:
    """The 12-digit code in a feature's code field; '' when it holds none.

    >>> [code_from_field(v) for v in (620102, "620102", "620102001000", 620102.0, None, "62-01")]
    ['620102000000', '620102000000', '620102001000', '620102000000', '', '']
    """
    text = _as_text(value).strip()
    text = re.sub(r"\.0$", "", text)  # integer codes read as floats when the column has blanks
    if re.fullmatch(r"\d{6}", text):
        return text + "000000"
    return text if re.fullmatch(r"\d{12}", text) else ""


def _as_text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def polygonal_multipolygon(geometry: shapely.Geometry) -> shapely.MultiPolygon:
    """The polygonal parts of ``geometry`` as one 2D MultiPolygon, exterior rings counter-clockwise.

    >>> square = shapely.Polygon([(0, 0), (0, 1), (1, 1), (1, 0)])  # clockwise
    >>> polygonal_multipolygon(square).wkt
    'MULTIPOLYGON (((0 0, 1 0, 1 1, 0 1, 0 0)))'
    >>> polygonal_multipolygon(shapely.GeometryCollection([square, shapely.LineString([(2, 2), (3, 3)])])).wkt
    'MULTIPOLYGON (((0 0, 1 0, 1 1, 0 1, 0 0)))'
    """
    parts = shapely.get_parts(shapely.force_2d(geometry))
    polygons: list[shapely.Polygon] = []
    for part in parts:
        if isinstance(part, shapely.Polygon):
            polygons.append(part)
        elif isinstance(part, shapely.MultiPolygon | shapely.GeometryCollection):
            polygons.extend(polygonal_multipolygon(part).geoms)
    return shapely.orient_polygons(shapely.MultiPolygon([p for p in polygons if not p.is_empty]), exterior_cw=False)


class BoundariesImporter(Importer):
    """``import_boundaries PATH --level LEVEL …``: set region boundaries from polygon features."""

    kind = "boundaries"
    formats = preview.VECTOR_FORMATS
    options = (
        Option("level", gettext_noop("Level of the regions"), kind="choice", choices=LEVELS, required=True),
        Option("code_field", gettext_noop("Field with the 6-digit adcode or 12-digit code"), default="adcode"),
        Option("name_field", gettext_noop("Field with the name"), default="name"),
        Option("convert", gettext_noop("Digitised on a Chinese web map"), kind="choice", choices=("", *CONVERSIONS)),
        Option("source_crs", gettext_noop("CRS of a file that declares none (such as EPSG:4490)")),
        Option("valid_from", gettext_noop("Valid from (default today)"), kind="date"),
        Option("layer", gettext_noop("GeoPackage layer (default the first)")),
        Option("repair", gettext_noop("Repair invalid polygons"), kind="bool", default="true"),
    )

    def __init__(
        self,
        *,
        level: str,
        code_field: str = "adcode",
        name_field: str = "name",
        source_crs: str | None = None,
        convert: str | None = None,
        valid_from: str | dt.date | None = None,
        layer: str | None = None,
        repair: bool = True,
    ) -> None:
        if level not in LEVELS:
            raise ValueError(f"--level must be one of {', '.join(LEVELS)}; got {level!r}")
        if convert is not None and convert not in CONVERSIONS:
            raise ValueError(f"--convert must be one of {', '.join(CONVERSIONS)}; got {convert!r}")
        if source_crs is not None:
            try:
                CRS.from_user_input(source_crs)
            except CRSError as error:
                raise ValueError(f"--source-crs: unknown CRS {source_crs!r}; give one like EPSG:4490") from error
        if isinstance(valid_from, str):
            try:
                # fromisoformat alone would also take 20240101 or a week date.
                if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", valid_from):
                    raise ValueError(valid_from)
                valid_from = dt.date.fromisoformat(valid_from)
            except ValueError as error:
                raise ValueError(f"--valid-from must be a date YYYY-MM-DD; got {valid_from!r}") from error
        self.level = level
        self.code_field = code_field
        self.name_field = name_field
        self.source_crs = source_crs
        self.convert = convert
        self.valid_from: dt.date = valid_from or timezone.localdate()
        self.layer = layer
        self.repair = repair

    def read(self, path: Path) -> pd.DataFrame:
        """Features in WGS84 (``--convert`` applied), as a frame of code, name and shapely geometry."""
        features = sources.read_features(path, layer=self.layer, assume_crs=self.source_crs)
        if self.code_field not in features.columns:
            fields = ", ".join(c for c in features.columns if c not in (features.geometry.name, sources.ROW))
            raise sources.SourceError(
                path, f"no field {self.code_field!r}; the features have {fields}; pass --code-field"
            )
        features = features.to_crs(4326)
        geometries = features.geometry.values.to_numpy()
        if self.convert:
            convert = self.convert

            # One call over every coordinate of every feature: shapely hands over an (n, 2) array.
            def undo_offset(xy: np.ndarray) -> np.ndarray:
                return np.column_stack(to_wgs84(xy[:, 0], xy[:, 1], convert))

            geometries = shapely.transform(geometries, undo_offset)
        names = (
            features[self.name_field] if self.name_field in features.columns else pd.Series("", index=features.index)
        )
        return pd.DataFrame(
            {
                sources.ROW: features[sources.ROW],
                self.code_field: features[self.code_field].map(_as_text),
                CODE: features[self.code_field].map(code_from_field),
                NAME: names.fillna("").astype(str),
                GEOMETRY: geometries,
            },
            index=features.index,
        )

    def validate(self, frame: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
        checks = RowChecks(frame)
        field, code, geometry = self.code_field, frame[CODE], frame[GEOMETRY].to_numpy()

        checks.fail(code == "", field, "code must be a 6-digit adcode or a 12-digit statistical code")
        first_row = frame.groupby(CODE)[sources.ROW].transform("first")
        checks.fail(code.duplicated(), field, "duplicate code, first seen on feature " + first_row.astype(str))
        regions = dict(Region.objects.filter(code__in=set(code)).values_list("code", "level"))
        other_level = code.map(regions).fillna("")
        checks.fail(
            other_level == "",
            field,
            f"no {self.level} with code " + code + " in the database; import the divisions first",
        )
        checks.fail(
            other_level != self.level,
            field,
            code + " is a " + other_level + ", not a " + self.level,
        )

        kinds = pd.Series(shapely.get_type_id(geometry), index=frame.index)
        kind_names = pd.Series([g.geom_type if g is not None else "none" for g in geometry], index=frame.index)
        checks.fail(
            pd.Series(shapely.is_missing(geometry) | shapely.is_empty(geometry), index=frame.index),
            "geometry",
            "geometry is empty",
            value=kind_names,
        )
        polygonal = kinds.isin([shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON])
        checks.fail(
            ~polygonal, "geometry", kind_names + " is not a polygon; expected Polygon or MultiPolygon", value=kind_names
        )
        west, south, east, north = settings.MINQING_CITY_BBOX
        outside = ~pd.Series(shapely.intersects(geometry, shapely.box(west, south, east, north)), index=frame.index)
        checks.fail(
            outside,
            "geometry",
            f"the polygon lies outside the city ({west},{south} – {east},{north} in WGS84); is the CRS right?",
            value=kind_names,
        )

        invalid = checks.open & ~pd.Series(shapely.is_valid(geometry), index=frame.index)
        reasons = pd.Series(shapely.is_valid_reason(geometry), index=frame.index).fillna("")
        if not self.repair:
            checks.fail(
                invalid,
                "geometry",
                "invalid geometry: " + reasons + " (run without --no-repair to repair it)",
                kind_names,
            )

        # make_valid's "structure" method rebuilds polygons from their rings (the "linework" one
        # can leave lines behind); only polygonal parts are kept, so a spike may leave nothing.
        final = pd.Series(
            [
                polygonal_multipolygon(shapely.make_valid(g, method="structure") if bad else g)
                for g, bad in zip(geometry[checks.open], invalid[checks.open], strict=True)
            ],
            index=frame.index[checks.open],
            dtype=object,
        )
        no_area = pd.Series(shapely.area(final.to_numpy()) < NO_AREA, index=final.index).reindex(
            frame.index, fill_value=False
        )
        checks.fail(
            no_area & invalid, "geometry", "invalid geometry: " + reasons + "; repairing it left no polygon", kind_names
        )
        checks.fail(no_area, "geometry", "the polygon has no area (under 1 m²)", kind_names)
        for index in frame.index[invalid & checks.open]:
            report.notes.append(
                f"feature {frame.at[index, sources.ROW]} ({frame.at[index, NAME] or code[index]}): "
                f"repaired invalid geometry ({reasons[index]})"
            )

        clean = checks.reject_into(report)
        ids = dict(Region.objects.filter(code__in=set(clean[CODE]), level=self.level).values_list("code", "id"))
        return clean.assign(**{GEOMETRY: final[clean.index], REGION_ID: clean[CODE].map(ids)})

    def write(self, frame: pd.DataFrame, report: ImportReport) -> None:
        regions = Region.objects.in_bulk(list(frame[REGION_ID]))
        changed = unchanged = 0
        rows = frame[[sources.ROW, self.code_field, REGION_ID, GEOMETRY]].itertuples(index=False)
        # One region at a time: each may archive its old boundary (few thousand at most).
        with self.progress(len(frame), "boundaries") as bar:
            for row, value, region_id, geometry in rows:
                boundary = GEOSGeometry(memoryview(shapely.to_wkb(geometry)), srid=4326)
                try:
                    updated = region_set_boundary(
                        region=regions[region_id], boundary=boundary, valid_from=self.valid_from, source=report.source
                    )
                except ValueError as error:
                    report.reject(row, self.code_field, value, str(error))
                else:
                    changed += updated
                    unchanged += not updated
                bar.update(1)
        report.counts.update({"changed": changed, "unchanged": unchanged})

    def preview(self, frame: pd.DataFrame, report: ImportReport) -> list[dict]:
        return preview.polygon_features(
            frame[GEOMETRY].to_numpy(), {"code": frame[CODE], "name": frame[NAME]}, role="boundary"
        )
