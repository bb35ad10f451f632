"""Reads for the exports that are not streamed: how many rows a selection holds, and its rows as
a GeoDataFrame, with the layer's personal fields decrypted for an export that may hold them."""

from __future__ import annotations

import pandas as pd

import geopandas as gpd
import shapely

from layers.database.reading import reading
from layers.geocoding.crs import CRS84, OutputCrs
from layers.protection import personal
from layers.protection.scope import Scope
from layers.publishing.catalog import Field, Layer
from layers.selectors.features import Selection, features_rows_sql, selection_build


def selection_count(*, selection: Selection) -> int:
    """The rows ``selection`` holds (an exact count: exports cap and report it)."""
    with reading().cursor() as cursor:
        cursor.execute(f"SELECT count(*) {selection.from_where}", selection.params)
        return cursor.fetchone()[0]


def features_frame(
    *, layer: Layer, fields: tuple[Field, ...], scope: Scope, chosen: dict, crs: OutputCrs = CRS84
) -> gpd.GeoDataFrame:
    """The layer's rows in ``scope`` that ``chosen`` (the parsed filters) keeps, in id order, as a
    GeoDataFrame in ``crs`` (x = easting, as files keep it). Times are ISO 8601 text: Shapefile
    has no date-time type, and GeoPackage dates want one form. Personal fields among ``fields``
    come decrypted (AES-GCM has no SQL counterpart here: one value at a time, so the caller caps
    the rows)."""
    selection = selection_build(layer=layer, scope=scope, **chosen)
    sql = features_rows_sql(
        selection=selection, fields=fields, geometry="ST_AsBinary({g}) AS geometry", crs=crs.in_gis_order()
    )
    with reading().cursor() as cursor:
        cursor.execute(sql, selection.params)
        frame = pd.DataFrame(cursor.fetchall(), columns=[c.name for c in cursor.description])
    geometry = shapely.from_wkb([bytes(g) if g is not None else None for g in frame.pop("geometry")])
    for field in fields:
        if field.type in ("datetime", "date"):
            frame[field.name] = frame[field.name].map(lambda v: v.isoformat() if v is not None else None)
        if field.personal:
            frame[field.name] = [personal.decrypt(value) if value else "" for value in frame[field.name]]
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=crs.srid)
