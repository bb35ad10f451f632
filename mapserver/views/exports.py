"""``GET /exports/<layer>.<format>``: a whole layer (or the part the filters keep) as a file.

The filters are the OGC items' (``bbox``, ``datetime``, the layer's filters, equality on the
reader's fields) and the fields are the reader's. GeoJSON streams from a server-side cursor in
constant memory (chunked, no Content-Length); CSV is PostgreSQL's own ``COPY … CSV``; GeoPackage
and zipped Shapefile are written by pyogrio from one query into a temporary file, then sent.

``GET /exports/grid/<code>.html``: a self-contained folium map of one grid or street / community
for printing and offline sharing (:mod:`basemaps.printmap`).
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import pandas as pd
from django.db import connection
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.views import APIView

import geopandas as gpd
import pyogrio
import shapely

from basemaps import printmap
from layers.catalog import Field, Layer
from layers.features import features_rows_sql, features_stream, selection_build

from ..errors import BadParameter
from .ogc import FILTER_PARAMETERS, parse_feature_filters, readable_layer, reader_fields, reader_roles

FORMATS = ("geojson", "gpkg", "csv", "shp")
CONTENT_TYPES = {
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "csv": "text/csv; charset=utf-8",
    "shp": "application/zip",
}


def _attachment(response, filename: str):
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _csv_file(layer: Layer, fields: tuple[Field, ...], chosen: dict):
    """COPY … TO STDOUT WITH CSV HEADER into a temporary file: points as lon/lat columns, other
    geometries as WKT."""
    selection = selection_build(layer=layer, **chosen)
    geometry = (
        "round(ST_X({g})::numeric, 7) AS lon, round(ST_Y({g})::numeric, 7) AS lat"
        if layer.geometry_type == "Point"
        else "ST_AsText({g}) AS wkt"
    )
    sql = features_rows_sql(selection=selection, fields=fields, geometry=geometry)
    target = tempfile.TemporaryFile()
    target.write("\ufeff".encode())  # a BOM, so that spreadsheet programs read the Chinese as UTF-8
    with connection.cursor() as cursor:
        bound = cursor.mogrify(sql, selection.params).decode()
        cursor.copy_expert(f"COPY ({bound}) TO STDOUT WITH (FORMAT csv, HEADER, ENCODING 'UTF8')", target)
    target.seek(0)
    return target


def _frame(layer: Layer, fields: tuple[Field, ...], chosen: dict) -> gpd.GeoDataFrame:
    """One query, read as a GeoDataFrame (geometry from WKB)."""
    selection = selection_build(layer=layer, **chosen)
    sql = features_rows_sql(selection=selection, fields=fields, geometry="ST_AsBinary({g}) AS geometry")
    with connection.cursor() as cursor:
        cursor.execute(sql, selection.params)
        frame = pd.DataFrame(cursor.fetchall(), columns=[c.name for c in cursor.description])
    geometry = shapely.from_wkb([bytes(g) if g is not None else None for g in frame.pop("geometry")])
    for f in fields:
        if f.type in ("datetime", "date"):
            # Shapefile has no date-time type and GeoPackage dates want one form: ISO 8601 text.
            frame[f.name] = frame[f.name].map(lambda v: v.isoformat() if v is not None else None)
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=4326)


def _file(layer: Layer, fields: tuple[Field, ...], chosen: dict, fmt: str):
    frame = _frame(layer, fields, chosen)
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        if fmt == "gpkg":
            path = folder / f"{layer.id}.gpkg"
            pyogrio.write_dataframe(frame, path, layer=layer.id, driver="GPKG")
        else:
            pyogrio.write_dataframe(frame, folder / f"{layer.id}.shp", driver="ESRI Shapefile", encoding="UTF-8")
            path = folder / f"{layer.id}.zip"
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
                for part in sorted(folder.glob(f"{layer.id}.*")):
                    if part.suffix != ".zip":
                        archive.write(part, part.name)
        # Opened before the directory goes: the open file outlives its name until it is sent.
        handle = open(path, "rb")  # noqa: SIM115  (FileResponse closes it)
    return handle


@extend_schema(exclude=True)
class Export(APIView):
    def get(self, request: Request, layer_id: str, fmt: str):
        layer = readable_layer(request, layer_id, what="layer")
        if fmt not in FORMATS:
            raise BadParameter("format", f"must be one of {', '.join(FORMATS)}, got {fmt[:20]!r}")
        fields = reader_fields(request, layer)
        chosen = parse_feature_filters(request.query_params, layer, fields, accepted=FILTER_PARAMETERS)
        if fmt == "geojson":
            response = StreamingHttpResponse(
                features_stream(layer=layer, fields=fields, **chosen), content_type=CONTENT_TYPES[fmt]
            )
            return _attachment(response, f"{layer.id}.geojson")
        handle = _csv_file(layer, fields, chosen) if fmt == "csv" else _file(layer, fields, chosen, fmt)
        size = os.fstat(handle.fileno()).st_size
        response = FileResponse(handle, content_type=CONTENT_TYPES[fmt])
        response["Content-Length"] = str(size)
        return _attachment(response, f"{layer.id}.{'zip' if fmt == 'shp' else fmt}")


@extend_schema(exclude=True)
class PrintMap(APIView):
    """One grid (any level) or street / community region as a folium HTML page that loads nothing
    from the network."""

    def get(self, request: Request, code: str) -> HttpResponse:
        if request.query_params:
            raise BadParameter(sorted(request.query_params)[0], "is not a parameter here; this export takes none")
        area = printmap.print_area_get(code=code)
        if area is None:
            raise NotFound(f"no grid, street or community with code {code[:30]!r}")
        roles, superuser = reader_roles(request)
        page = printmap.print_map_html(area=area, roles=roles, superuser=superuser)
        response = HttpResponse(page, content_type="text/html; charset=utf-8")
        return _attachment(response, f"{area.code}.html")
