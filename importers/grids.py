"""Importer of the three-level grids (三级网格) from GeoJSON, Shapefile or GeoPackage.

Each feature is one grid with the attributes code, name, level, parent_code and community_code
(other attribute names can be mapped). Geometry is reprojected to WGS84 and, when the file was
digitised on a Chinese web map, converted from GCJ-02 or BD-09. Rows are written by
:func:`layers.services.grids.grids_upsert`, which archives redrawn boundaries and relinks the
registry around them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_noop

import geopandas as gpd
import shapely
from pyproj import CRS, Geod
from pyproj.exceptions import CRSError

from layers.geocoding.crs import to_wgs84
from layers.models import Grid, Region
from layers.services.grids import GridTopologyRefused, GridUpsertError, grids_upsert

from . import preview
from .base import Importer, ImportFailed, Option
from .report import ImportReport
from .sources import ROW, SourceError, read_features

#: Canonical attribute names, in the order of the frame the importer passes on.
ATTRIBUTES = ("code", "name", "level", "parent_code", "community_code")

#: Spellings of the levels found in real exports, mapped to Grid.Level values.
LEVELS = {
    "large": "large", "medium": "medium", "small": "small",
    "大网格": "large", "中网格": "medium", "小网格": "small",
    "一级网格": "large", "二级网格": "medium", "三级网格": "small",
}  # fmt: skip

CODE_MAX = Grid._meta.get_field("code").max_length
NAME_MAX = Grid._meta.get_field("name").max_length
CONVERSIONS = ("gcj02", "bd09")
_POLYGONAL = ("Polygon", "MultiPolygon")
_TYPE_NAMES = dict(
    enumerate(
        (
            "Point",
            "LineString",
            "LinearRing",
            "Polygon",
            "MultiPoint",
            "MultiLineString",
            "MultiPolygon",
            "GeometryCollection",
        )
    )
) | {-1: ""}
_ABOVE = {"medium": "large", "small": "medium"}
_GEOD = Geod(ellps="WGS84")


class GridImporter(Importer):
    """Grids from a vector file; options are checked here, before any data is read."""

    kind = "grids"
    formats = preview.VECTOR_FORMATS
    checks_topology = True
    options = (
        Option("valid_from", gettext_noop("Valid from (default today)"), kind="date"),
        Option("convert", gettext_noop("Digitised on a Chinese web map"), kind="choice", choices=("", *CONVERSIONS)),
        Option("source_crs", gettext_noop("CRS of a file that declares none (such as EPSG:4490)")),
        Option("layer", gettext_noop("GeoPackage layer (default the first)")),
        Option(
            "repair", gettext_noop("Repair invalid polygons (within the area tolerance)"), kind="bool", default="true"
        ),
        # Shapefile field names stop at 10 characters (parent_cod, community_): map them here.
        Option("code_field", gettext_noop("Attribute with the grid code"), default="code"),
        Option("name_field", gettext_noop("Attribute with the name"), default="name"),
        Option("level_field", gettext_noop("Attribute with the level"), default="level"),
        Option("parent_field", gettext_noop("Attribute with the parent grid's code"), default="parent_code"),
        Option("community_field", gettext_noop("Attribute with the community code"), default="community_code"),
    )

    def __init__(
        self,
        *,
        valid_from: dt.date | str | None = None,
        source_crs: str | None = None,
        convert: str | None = None,
        layer: str | None = None,
        repair: bool = True,
        code_field: str = "code",
        name_field: str = "name",
        level_field: str = "level",
        parent_field: str = "parent_code",
        community_field: str = "community_code",
        accept_topology: bool = False,
    ) -> None:
        if isinstance(valid_from, str):
            try:
                valid_from = dt.date.fromisoformat(valid_from)
            except ValueError as error:
                raise ValueError(f"--valid-from {valid_from!r}: expected a date as YYYY-MM-DD") from error
        self.valid_from = valid_from or timezone.localdate()
        if source_crs:
            try:
                CRS.from_user_input(source_crs)
            except CRSError as error:
                raise ValueError(f"--source-crs {source_crs!r}: not a known CRS (try EPSG:4490)") from error
        self.source_crs = source_crs
        if convert and convert not in CONVERSIONS:
            raise ValueError(f"--convert {convert!r}: expected one of {', '.join(CONVERSIONS)}")
        self.convert = convert
        self.layer = layer
        self.repair = repair
        self.accept_topology = accept_topology
        self.fields = {
            "code": code_field, "name": name_field, "level": level_field,
            "parent_code": parent_field, "community_code": community_field,
        }  # fmt: skip

    def read(self, path: Path):
        features = read_features(path, layer=self.layer, assume_crs=self.source_crs)
        missing = [source for source in self.fields.values() if source not in features.columns]
        if missing:
            present = ", ".join(c for c in features.columns if c not in ("geometry", ROW))
            raise SourceError(path, f"missing attribute(s) {', '.join(missing)}; the features have {present or 'none'}")
        frame = features[[*self.fields.values(), ROW, "geometry"]].rename(
            columns={source: name for name, source in self.fields.items()}
        )
        for name in ATTRIBUTES:
            frame[name] = _text(frame[name])
        if frame.crs.to_epsg() != 4326:
            frame = frame.to_crs(4326)
        if self.convert:
            # Vectorised over every vertex of every feature at once.
            frame = frame.set_geometry(
                shapely.transform(
                    frame.geometry.values,
                    lambda xy: np.column_stack(to_wgs84(xy[:, 0], xy[:, 1], self.convert)),
                ),
                crs=4326,
            )
        return frame

    def validate(self, frame, report: ImportReport):
        codes = set(frame.code) - {""}
        frame = report.reject_where(frame, frame.code == "", "code", "code is empty")
        frame = report.reject_where(
            frame, frame.code.str.len() > CODE_MAX, "code", f"code is longer than {CODE_MAX} characters"
        )
        frame = _reject_duplicates(frame, report)
        frame = report.reject_where(frame, frame.name == "", "name", "name is empty")
        frame = report.reject_where(
            frame, frame.name.str.len() > NAME_MAX, "name", f"name is longer than {NAME_MAX} characters"
        )
        frame["level"] = frame.level.str.lower().map(LEVELS).fillna(frame.level)
        frame = report.reject_where(
            frame,
            ~frame.level.isin(Grid.Level.values),
            "level",
            "level must be large, medium or small (or 大网格, 中网格, 小网格)",
        )
        frame = _check_community(frame, report)
        frame = self._check_geometry(frame, report)
        return _check_parents(frame, report, codes - set(frame.code))

    def _check_geometry(self, frame, report: ImportReport):
        types = pd.Series(shapely.get_type_id(frame.geometry.values), index=frame.index).map(_TYPE_NAMES)
        empty = shapely.is_missing(frame.geometry.values) | shapely.is_empty(frame.geometry.values)
        frame = _reject_rows(frame, report, empty, "geometry", "geometry is empty", values=types)
        types = types[frame.index]
        frame = _reject_rows(
            frame,
            report,
            ~types.isin(_POLYGONAL),
            "geometry",
            "geometry is a " + types + "; expected a Polygon or MultiPolygon",
            values=types,
        )
        geometry = shapely.force_2d(frame.geometry.values)
        drawn = pd.Series(geometry.copy(), index=frame.index)
        invalid = pd.Series(~shapely.is_valid(geometry), index=frame.index)
        reasons = "invalid geometry: " + pd.Series(shapely.is_valid_reason(geometry), index=frame.index)
        if not self.repair:
            return _reject_rows(frame, report, invalid, "geometry", reasons + " (--no-repair)", values=types)
        # make_valid keeps every vertex; it may add lines or points, which are dropped.
        geometry[invalid.to_numpy()] = _polygonal(shapely.make_valid(geometry[invalid.to_numpy()]))
        frame = frame.assign(geometry=gpd.GeoSeries(geometry, index=frame.index, crs=4326))
        lost = invalid & shapely.is_empty(geometry)
        frame = _reject_rows(
            frame, report, lost, "geometry", reasons + "; nothing polygonal is left after repair", values=types
        )
        # A repair that changes the area much is a different polygon from the one drawn (a
        # bow-tie becomes two triangles and leaves a gap): the surveyor must fix it.
        invalid = invalid[frame.index]
        before = pd.Series(0.0, index=frame.index)
        after = pd.Series(0.0, index=frame.index)
        before[invalid] = [_area_m2(g) for g in drawn[invalid[invalid].index]]
        after[invalid] = [_area_m2(g) for g in frame.geometry[invalid]]
        change = (after - before).abs() / np.maximum(np.maximum(after, before), 1e-9)
        limit = settings.MINQING_REPAIR_MAX_AREA_CHANGE
        frame = _reject_rows(
            frame,
            report,
            invalid & (change > limit),
            "geometry",
            reasons
            + "; repairing it would change its area by "
            + (change * 100).round().astype(int).astype(str)
            + "% ("
            + before.map("{:,.0f}".format)
            + " → "
            + after.map("{:,.0f}".format)
            + f" m², more than {limit:.0%}); fix the polygon",
            values=types,
        )
        fixed = frame.loc[invalid[frame.index], ROW].tolist()
        if fixed:
            report.notes.append(
                f"{len(fixed)} invalid geometr{'y' if len(fixed) == 1 else 'ies'} repaired with make_valid "
                f"(row {', '.join(map(str, fixed))}; area changed by at most {limit:.0%}); "
                "pass --no-repair to reject them instead"
            )
        return frame

    def write(self, frame, report: ImportReport) -> None:
        rows = pd.DataFrame({name: frame[name].to_numpy() for name in ATTRIBUTES})
        rows["boundary_wkb"] = shapely.to_wkb(frame.geometry.values, hex=True, output_dimension=2)
        with self.progress(len(rows), "write grids, check topology, relink") as stage:
            try:
                result = grids_upsert(
                    frame=rows,
                    valid_from=self.valid_from,
                    source=report.source,
                    accept_topology=self.accept_topology,
                    relink_sample=settings.MINQING_IMPORT_PREVIEW_FEATURES // 2,
                )
            except GridUpsertError as error:
                raise ImportFailed(f"{report.source}: {error}; nothing was written") from error
            except GridTopologyRefused as refused:
                result = refused.result
                report.fail(
                    "topology",
                    f"{len(refused.topology)} topology problem(s) (gaps, overlaps or grids outside their parent) "
                    "the grids would bring; nothing was written",
                )
            stage.update(len(rows))
        report.counts.update({key: result[key] for key in ("created", "updated", "redrawn", "unchanged", "relinked")})
        report.topology = result["topology"]
        if result["topology"] and report.failure is None:
            report.notes.append(f"{len(result['topology'])} topology problem(s) accepted (--accept-topology)")
        self._relinked = result["relinked_sample"]

    def preview(self, frame, report: ImportReport) -> list[dict]:
        """The grids as drawn (simplified), the registry rows a redraw moves to another grid, and
        the topology problems with their places."""
        # In drawing order: the grids below, the points and problems on top of them.
        return [
            *preview.polygon_features(
                frame.geometry.values,
                {"code": frame["code"], "name": frame["name"], "level": frame["level"]},
                role="grid",
            ),
            *preview.relinked_features(getattr(self, "_relinked", [])),
            *preview.topology_features(report.topology),
        ]


def _area_m2(geometry) -> float:
    """Area on the WGS84 spheroid (m²) of a polygon in lon/lat; of an invalid one, what its rings
    enclose with their signs (a bow-tie's two lobes cancel out)."""
    area, _ = _GEOD.geometry_area_perimeter(geometry)
    return abs(area)


def _text(column: pd.Series) -> pd.Series:
    """Attribute values as stripped strings, '' for missing; whole floats lose their '.0'
    (a numeric code column read with gaps becomes float64)."""

    def one(value: object) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value).strip()

    return column.map(one).astype(str)


def _reject_rows(frame, report: ImportReport, mask, field_name: str, reasons, *, values=None):
    """Like ImportReport.reject_where, with a reason (a string or one per row) and, optionally,
    the values to report (default: the field's)."""
    mask = pd.Series(np.asarray(mask, dtype=bool), index=frame.index)
    if mask.any():
        # Values and reasons may be given for more rows than are left (earlier checks dropped some).
        reasons = (
            reasons.reindex(frame.index) if isinstance(reasons, pd.Series) else pd.Series(reasons, index=frame.index)
        )
        values = frame[field_name] if values is None else values.reindex(frame.index)
        for row, value, reason in zip(frame.loc[mask, ROW], values[mask], reasons[mask], strict=True):
            report.reject(row, field_name, value, reason)
    return frame.loc[~mask]


def _reject_duplicates(frame, report: ImportReport):
    """Every row of a code that appears twice is rejected: the file does not say which is right."""
    duplicated = frame.code.duplicated(keep=False)
    if not duplicated.any():
        return frame
    rows = frame.loc[duplicated].groupby("code")[ROW].transform(lambda r: ", ".join(map(str, r)))
    reasons = ("code appears more than once in the file (rows " + rows + ")").reindex(frame.index)
    return _reject_rows(frame, report, duplicated, "code", reasons)


def _check_community(frame, report: ImportReport):
    frame = report.reject_where(frame, frame.community_code == "", "community_code", "community_code is empty")
    known = set(
        Region.objects.filter(level=Region.Level.COMMUNITY, code__in=frame.community_code.unique()).values_list(
            "code", flat=True
        )
    )
    frame = report.reject_where(
        frame, ~frame.community_code.isin(known), "community_code", "no community with this code in the database"
    )
    prefix = pd.Series(
        [code.startswith(community) for code, community in zip(frame.code, frame.community_code, strict=True)],
        index=frame.index,
        dtype=bool,
    )
    frame = _reject_rows(
        frame, report, ~prefix, "code", "code does not start with its community code " + frame.community_code
    )
    return _reject_rows(
        frame,
        report,
        frame.code.str.len() <= frame.community_code.str.len(),
        "code",
        "code needs a serial after the community code",
    )


def _check_parents(frame, report: ImportReport, rejected_codes: set[str]):
    """Large grids have no parent; a medium grid's parent is a large grid and a small grid's a
    medium one, in the same community, found in the file (first) or the database.
    ``rejected_codes`` are codes of rows already rejected: their children are rejected too."""
    frame = _reject_rows(
        frame,
        report,
        (frame.level == "large") & (frame.parent_code != ""),
        "parent_code",
        "a large grid has no parent; leave parent_code empty",
    )
    needs = frame.level.map(_ABOVE)
    frame = _reject_rows(
        frame,
        report,
        (frame.level != "large") & (frame.parent_code == ""),
        "parent_code",
        "parent_code is empty; a " + frame.level + " grid needs its " + needs.fillna("") + " grid",
    )
    file_grids = frame.set_index("code")[["level", "community_code"]]
    database = pd.DataFrame(
        Grid.objects.filter(code__in=frame.parent_code.unique()).values_list("code", "level", "community__code"),
        columns=["code", "level", "community_code"],
    ).set_index("code")
    for level in ("medium", "small"):
        rows = frame.level == level
        # A parent the file holds wins over the database: the file is about to replace it.
        parents = pd.concat([file_grids, database[~database.index.isin(file_grids.index)]])
        parent = parents.reindex(frame.parent_code).set_axis(frame.index)
        reasons = pd.Series(pd.NA, index=frame.index, dtype=object)
        child_community = frame.community_code
        wrong_community = parent.community_code.notna() & (parent.community_code != child_community)
        reasons[rows & wrong_community] = (
            "parent grid belongs to community " + parent.community_code + ", not " + child_community
        )
        reasons[rows & parent.level.notna() & (parent.level != _ABOVE[level])] = (
            "parent grid is a " + parent.level + f" grid; a {level} grid's parent must be a {_ABOVE[level]} grid"
        )
        reasons[rows & parent.level.isna()] = "parent grid is neither in the file nor in the database"
        reasons[rows & frame.parent_code.isin(rejected_codes)] = "parent grid was rejected"
        bad = reasons.notna()
        rejected_codes |= set(frame.loc[bad, "code"])
        frame = _reject_rows(frame, report, bad, "parent_code", reasons)
        file_grids = file_grids[~file_grids.index.isin(rejected_codes)]
    return frame


def _polygonal(geometries: np.ndarray) -> np.ndarray:
    """Keep the polygonal parts of each geometry (make_valid may add lines or points) as a
    MultiPolygon, or an empty geometry when none is left."""
    out = []
    for geometry in geometries:
        parts = [p for p in shapely.get_parts(geometry) if p.geom_type in _POLYGONAL]
        polygons = [q for p in parts for q in shapely.get_parts(p)]
        out.append(shapely.MultiPolygon(polygons) if polygons else shapely.MultiPolygon())
    return np.array(out, dtype=object)
