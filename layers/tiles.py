"""Mapbox vector tiles of catalog layers, built by PostGIS in one SQL statement.

Hand-written SQL because ST_AsMVT is the fast path: the geometry never leaves the database
until it is an encoded tile (see performance-anchors §4). The statement is built only from the
catalog's description of the layer (source, where, geometry, id, fields, filters); every value
from a request travels as a query parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from basemaps.tiles import pixel_size, tile_bounds, tile_lonlat_bounds
from layers.catalog import Field, Layer
from layers.scope import Scope

from .reading import reading

#: Tile extent in MVT units and the buffer around it (same units), the usual 4096 / 64.
EXTENT = 4096
BUFFER = 64

#: How each field type is encoded as an MVT value: MVT knows strings, integers, doubles and
#: booleans; times travel as ISO 8601 text in UTC so that no session time zone leaks in.
_ENCODE = {
    "string": "({})::text",
    "integer": "({})::bigint",
    "number": "({})::float8",
    "boolean": "({})::boolean",
    "date": "to_char({}, 'YYYY-MM-DD')",
    "datetime": """to_char(({}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')""",
}


def _polygonal(layer: Layer) -> bool:
    return layer.geometry_type in ("Polygon", "MultiPolygon")


def tile_sql(
    *,
    layer: Layer,
    z: int,
    x: int,
    y: int,
    filters: Mapping[str, object],
    fields: Sequence[Field],
    scope: Scope,
) -> tuple[str, list]:
    """The one statement (psycopg ``%s`` placeholders) and its parameters that return the tile
    of ``layer`` at ``z/x/y`` as one ``bytea``: MVT layer named after the layer id, feature ids
    from ``layer.id_sql``, the given ``fields`` as properties, rows restricted to the reader's
    ``scope`` (as the layer's scope rule says) and by ``filters`` (name → parsed value, names
    from ``layer.filters``)."""
    xmin, ymin, xmax, ymax = tile_bounds(z, x, y)
    # Prefilter on the stored 4326 geometry with the tile (plus its buffer) as a 4326 box, so the
    # GiST index on the geometry column is used; transforming every row first would defeat it.
    lon_min, lat_min, lon_max, lat_max = tile_lonlat_bounds(z, x, y, buffer=BUFFER / EXTENT)
    geometry = f"ST_Transform({layer.geometry_sql}, 3857)"
    params: list = []
    if _polygonal(layer) and layer.simplify_pixels > 0:
        # Per-zoom generalisation: drop detail finer than the layer's pixel tolerance at this zoom.
        geometry = f"ST_SimplifyPreserveTopology({geometry}, %s)"
        params.append(layer.simplify_pixels * pixel_size(z))
    columns = [
        f"ST_AsMVTGeom({geometry}, ST_MakeEnvelope(%s, %s, %s, %s, 3857), {EXTENT}, {BUFFER}, true) AS mvt_geom",
        f"{layer.id_sql} AS mvt_id",
    ]
    params += [xmin, ymin, xmax, ymax]
    columns += [f'{_ENCODE[f.type].format(f.sql)} AS "{f.name}"' for f in fields]
    conditions = [f"({layer.where})", f"{layer.geometry_sql} && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"]
    params += [lon_min, lat_min, lon_max, lat_max]
    in_scope, scope_params = scope.condition(layer)
    conditions.append(in_scope)
    params += scope_params
    for name, value in filters.items():
        condition = layer.filter(name)
        if condition is None:
            raise ValueError(f"layer {layer.id!r} has no filter {name!r}")
        conditions.append(f"({condition.sql})")
        # A filter's SQL may read its value more than once (category: code or family).
        params += [value] * condition.sql.count("%s")
    sql = (
        f"SELECT ST_AsMVT(q, %s, {EXTENT}, 'mvt_geom', 'mvt_id') FROM ("
        f"SELECT {', '.join(columns)} FROM {layer.source} WHERE {' AND '.join(conditions)}"
        ") q WHERE q.mvt_geom IS NOT NULL"
    )
    return sql, [layer.id, *params]


def tile_render(
    *,
    layer: Layer,
    z: int,
    x: int,
    y: int,
    filters: Mapping[str, object],
    fields: Sequence[Field],
    scope: Scope,
) -> bytes:
    """The encoded tile (possibly empty bytes when no feature touches it), from one query."""
    sql, params = tile_sql(layer=layer, z=z, x=x, y=y, filters=filters, fields=fields, scope=scope)
    with reading().cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""
