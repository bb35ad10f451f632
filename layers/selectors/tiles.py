"""Mapbox vector tiles of catalog layers, built by PostGIS in one SQL statement.

Hand-written SQL because ST_AsMVT is the fast path: the geometry never leaves the database
until it is an encoded tile (see performance-anchors §4). The statement is built only from the
catalog's description of the layer (source, where, geometry, id, fields, filters); every value
from a request travels as a query parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from basemaps.tiles import TILE_PIXELS, pixel_size, tile_bounds, tile_lonlat_bounds
from layers.database.reading import reading
from layers.protection.scope import Scope
from layers.publishing.catalog import Field, Layer

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
    from ``layer.filters``). At a zoom where the layer is clustered, the clusters'
    statement (:func:`cluster_tile_sql`)."""
    if clustered(layer, z):
        return cluster_tile_sql(layer=layer, z=z, x=x, y=y, filters=filters, fields=fields, scope=scope)
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


#: Earth's radius of Web Mercator (EPSG:3857), metres.
_MERCATOR_RADIUS = 6378137.0


def clustered(layer: Layer, z: int) -> bool:
    """Whether tiles of ``layer`` at zoom ``z`` carry clusters instead of points."""
    return layer.geometry_type == "Point" and z <= layer.cluster_maxzoom


def cluster_tile_sql(
    *,
    layer: Layer,
    z: int,
    x: int,
    y: int,
    filters: Mapping[str, object],
    fields: Sequence[Field],
    scope: Scope,
) -> tuple[str, list]:
    """As :func:`tile_sql`, for a zoom where the layer's points are clustered: the points that
    lie in the tile itself (west and south edges in, east and north out, so that every point is
    counted by exactly one tile of a zoom) are grouped by cells of ``layer.cluster_pixels``
    screen pixels, and each cell becomes one point at its members' mean position with the
    property ``count``; a cell of one point also keeps that point's id and fields.

    Tile coordinates are computed from longitude and latitude with Web Mercator's formulas in
    SQL (cheaper than ``ST_Transform`` per point, and exact for a point: the projection maps the
    tile to an axis-parallel box of degrees)."""
    xmin, ymin, xmax, ymax = tile_bounds(z, x, y)
    lon_min, lat_min, lon_max, lat_max = tile_lonlat_bounds(z, x, y)
    scale = EXTENT / (xmax - xmin)
    g = layer.geometry_sql
    params: list = [lon_min, EXTENT / (lon_max - lon_min), ymax, scale]
    point_columns = [
        f"{layer.id_sql} AS mvt_id",
        f"(ST_X({g}) - %s) * %s AS tx",
        f"(%s - {_MERCATOR_RADIUS} * ln(tan(pi() / 4 + radians(ST_Y({g})) / 2))) * %s AS ty",
    ]
    conditions = [
        f"({layer.where})",
        f"{g} && ST_MakeEnvelope(%s, %s, %s, %s, 4326)",
        f"ST_X({g}) >= %s AND ST_X({g}) < %s AND ST_Y({g}) > %s AND ST_Y({g}) <= %s",
    ]
    params += [lon_min, lat_min, lon_max, lat_max, lon_min, lon_max, lat_min, lat_max]
    in_scope, scope_params = scope.condition(layer)
    conditions.append(in_scope)
    params += scope_params
    for name, value in filters.items():
        condition = layer.filter(name)
        if condition is None:
            raise ValueError(f"layer {layer.id!r} has no filter {name!r}")
        conditions.append(f"({condition.sql})")
        params += [value] * condition.sql.count("%s")
    cell = EXTENT / TILE_PIXELS * layer.cluster_pixels
    # Cells are grouped from the points' ids and positions only (the joins the fields need are
    # left out by the planner, and no field is aggregated per point); a lone point's fields are
    # read afterwards by its id, the lateral read skipped for every cell of more than one.
    lone = [f'{_ENCODE[f.type].format(f.sql)} AS "{f.name}"' for f in fields if f.name != "count"]
    lone_columns = "".join(f", f.{_quoted(f.name)}" for f in fields if f.name != "count")
    lone_join = (
        f" LEFT JOIN LATERAL (SELECT {', '.join(lone)} FROM {layer.source} "
        f"WHERE k.n = 1 AND {layer.id_sql} = k.id) f ON TRUE"
        if lone
        else ""
    )
    sql = (
        f"SELECT ST_AsMVT(q, %s, {EXTENT}, 'mvt_geom', 'mvt_id') FROM ("
        "SELECT ST_MakePoint(round(k.x), round(k.y)) AS mvt_geom, "
        f'CASE WHEN k.n = 1 THEN k.id END AS mvt_id, k.n::integer AS "count"{lone_columns} '
        "FROM (SELECT avg(p.tx) AS x, avg(p.ty) AS y, count(*) AS n, min(p.mvt_id) AS id "
        f"FROM (SELECT {', '.join(point_columns)} FROM {layer.source} WHERE {' AND '.join(conditions)}) p "
        f"GROUP BY floor(p.tx / {cell}), floor(p.ty / {cell})) k{lone_join}) q"
    )
    return sql, [layer.id, *params]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


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
