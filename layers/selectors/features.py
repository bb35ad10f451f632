"""Features of a catalog layer as GeoJSON, built in PostGIS: one page, one feature, or a stream.

Every statement is narrowed to the reader's data scope (:mod:`layers.protection.scope`, as the layer's
``scope`` rule says): ``scope`` is a required argument of every reader here, so no surface can
forget it. Every statement is composed from the layer's catalog description only (``source``,
``where``, ``id_sql``, ``geometry_sql``, the fields' ``sql``) and the reader's fields; values
always travel as parameters, so a filter value with SQL in it is only a value that matches nothing.

Paging is by keyset on the layer's id (``id > after ORDER BY id LIMIT n + 1``), never OFFSET: a
page deep in a collection costs what the first one costs. The number of matching features is
counted only up to ``MINQING_OGC_COUNT_LIMIT`` rows and remembered per data version, scope and
filters (:func:`features_count_cached`): exact where that is cheap, unknown (``None``) beyond, as
counting a filtered 1.7 M-row layer on every page would cost more than the page itself.

Geometries are served in the CRS the caller names (:class:`layers.geocoding.crs.OutputCrs`, CRS84 unless
told), transformed and put in that CRS's axis order by PostGIS as the last step.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connections, transaction

from layers.database.reading import reading
from layers.geocoding.crs import CRS84, STORAGE_SRID, OutputCrs
from layers.protection.scope import Scope
from layers.publishing.catalog import Field, Filter, Layer, data_version

#: Rows fetched per round trip of a streamed export.
STREAM_BATCH = 5_000


@dataclass(frozen=True)
class Selection:
    """The SQL of a layer's rows narrowed by the request's filters: ``FROM … WHERE …`` and its
    parameters, plus the layer's expressions for the id and the geometry."""

    layer: Layer
    from_where: str
    params: tuple

    @property
    def id_sql(self) -> str:
        return self.layer.id_sql


def _literal(name: str) -> str:
    # Field names come from the catalog (identifiers we wrote), never from a request.
    return "'" + name.replace("'", "''") + "'"


def _geometry_json(layer: Layer, crs: OutputCrs) -> str:
    """The GeoJSON of the row's geometry in ``crs``. Rings follow RFC 7946's right-hand rule
    (exterior rings counterclockwise, holes clockwise) whatever the order they were drawn in;
    they are turned on the stored longitude/latitude, before any change of axis order."""
    return f"ST_AsGeoJSON({crs.geometry_sql(f'ST_ForcePolygonCCW({layer.geometry_sql})')}, {crs.decimals})"


def feature_sql(layer: Layer, fields: Sequence[Field], crs: OutputCrs = CRS84) -> str:
    """A ``json_build_object`` expression for one GeoJSON Feature of ``layer``'s row ``t``, its
    geometry in ``crs``."""
    properties = ", ".join(f"{_literal(f.name)}, {f.sql}" for f in fields)
    return (
        f"json_build_object('type', 'Feature', 'id', {layer.id_sql}, "
        f"'geometry', {_geometry_json(layer, crs)}::json, "
        f"'properties', json_build_object({properties}))"
    )


def feature_text_sql(layer: Layer, fields: Sequence[Field], crs: OutputCrs = CRS84) -> str:
    """The same Feature as :func:`feature_sql`, byte for byte, as ``text`` built by concatenation:
    the geometry's GeoJSON is pasted in as text, never parsed into ``json`` and printed again
    (work that a whole-layer export would do 1.7 M times). Rows must have a geometry."""
    properties = ", ".join(f"{_literal(f.name)}, {f.sql}" for f in fields)
    return (
        f"""'{{"type" : "Feature", "id" : ' || to_json({layer.id_sql})::text"""
        f"""|| ', "geometry" : ' || {_geometry_json(layer, crs)}"""
        f"""|| ', "properties" : ' || json_build_object({properties})::text || '}}'"""
    )


def selection_build(
    *,
    layer: Layer,
    scope: Scope,
    bbox: tuple[float, float, float, float] | None = None,
    bbox_srid: int = STORAGE_SRID,
    datetime_range: tuple[dt.datetime | None, dt.datetime | None] | None = None,
    filters: Sequence[tuple[Filter, object]] = (),
    property_filters: Sequence[tuple[Field, object]] = (),
) -> Selection:
    """The layer's rows in the reader's ``scope`` that intersect ``bbox`` (x/y order of
    ``bbox_srid``, WGS84 longitude/latitude unless told), whose time
    lies in ``datetime_range`` (both ends inclusive, ``None`` open), that pass each layer filter
    and equal each property value. The caller checks the layer has a time before passing a range."""
    in_scope, params = scope.condition(layer)
    conditions = [f"({layer.where})", f"{layer.geometry_sql} IS NOT NULL", in_scope]
    if bbox is not None:
        envelope = f"ST_MakeEnvelope(%s, %s, %s, %s, {int(bbox_srid)})"
        if bbox_srid != STORAGE_SRID:
            # The box's edges, densified every ~100 m (or 0.001°), stay where they are meant to be
            # once the box is moved into the stored CRS; the index still serves the constant shape.
            step = 0.001 if bbox_srid == 4490 else 100
            envelope = f"ST_Transform(ST_Segmentize({envelope}, {step}), {STORAGE_SRID})"
        conditions.append(f"ST_Intersects({layer.geometry_sql}, {envelope})")
        params += list(bbox)
    if datetime_range is not None:
        start, end = datetime_range
        if start is not None:
            conditions.append(f"{layer.datetime_sql} >= %s")
            params.append(start)
        if end is not None:
            conditions.append(f"{layer.datetime_sql} <= %s")
            params.append(end)
    for layer_filter, value in filters:
        conditions.append(f"({layer_filter.sql})")
        params += [value] * layer_filter.sql.count("%s")
    for prop, value in property_filters:
        # Strings compare as they are (the column's index stays usable); other types by their text.
        expression = prop.sql if prop.type == "string" else f"({prop.sql})::text"
        conditions.append(f"{expression} = %s")
        params.append(str(value))
    return Selection(layer, f"FROM {layer.source} WHERE {' AND '.join(conditions)}", tuple(params))


def features_page(
    *,
    layer: Layer,
    fields: Sequence[Field],
    scope: Scope,
    bbox: tuple[float, float, float, float] | None = None,
    bbox_srid: int = STORAGE_SRID,
    datetime_range: tuple[dt.datetime | None, dt.datetime | None] | None = None,
    filters: Sequence[tuple[Filter, object]] = (),
    property_filters: Sequence[tuple[Field, object]] = (),
    limit: int,
    after_id: int | None = None,
    crs: OutputCrs = CRS84,
) -> tuple[str, int, int | None, int | None]:
    """Up to ``limit`` features with an id above ``after_id``, in id order and in ``crs``, as the
    JSON text of an array; their count; the id to continue after (``None`` on the last page);
    and the number of features matching the filters on all pages, when cheap to know (see
    :func:`features_count_cached`). One statement for the page: the page plus one row tells
    whether another page follows."""
    selection = selection_build(
        layer=layer,
        scope=scope,
        bbox=bbox,
        bbox_srid=bbox_srid,
        datetime_range=datetime_range,
        filters=filters,
        property_filters=property_filters,
    )
    keyset = f" AND {layer.id_sql} > %s" if after_id is not None else ""
    params = [*selection.params, *([after_id] if after_id is not None else [])]
    limit = int(limit)
    sql = f"""
        WITH page AS (
            SELECT {layer.id_sql} AS id, {feature_sql(layer, fields, crs)} AS feature
            {selection.from_where}{keyset}
            ORDER BY {layer.id_sql} LIMIT {limit + 1})
        SELECT coalesce(string_agg(feature::text, ',' ORDER BY id) FILTER (WHERE n <= {limit}), ''),
               count(*) FILTER (WHERE n <= {limit}),
               CASE WHEN count(*) > {limit} THEN max(id) FILTER (WHERE n <= {limit}) END
        FROM (SELECT id, feature, row_number() OVER (ORDER BY id) AS n FROM page) p"""
    with reading().cursor() as cursor:
        cursor.execute(sql, params)
        text, returned, next_after = cursor.fetchone()
    if after_id is None and next_after is None:
        # The first page is the whole answer: its length is the count, for free.
        matched = returned
    else:
        matched = features_count_cached(selection=selection, scope=scope)
    return f"[{text}]", returned, next_after, matched


def features_count_cached(*, selection: Selection, scope: Scope) -> int | None:
    """How many rows ``selection`` holds, counted up to ``MINQING_OGC_COUNT_LIMIT`` rows and
    remembered in the default cache until the layer's tables change; ``None`` above the limit
    (the count would cost more than a page). Keyed by the statement and its values, so every
    page of one scan shares one count."""
    layer = selection.layer
    cap = int(settings.MINQING_OGC_COUNT_LIMIT)
    digest = hashlib.sha256(repr((selection.from_where, selection.params, cap)).encode()).hexdigest()[:32]
    key = f"count:{layer.id}:{data_version(layer)}:{scope.key if layer.scope else 'all'}:{digest}"
    found = cache.get(key)
    if found is None:
        with reading().cursor() as cursor:
            cursor.execute(
                f"SELECT count(*) FROM (SELECT 1 {selection.from_where} LIMIT {cap + 1}) s", selection.params
            )
            (count,) = cursor.fetchone()
        found = count if count <= cap else -1
        cache.set(key, found, 3600)
    return None if found < 0 else found


def feature_get(
    *, layer: Layer, fields: Sequence[Field], scope: Scope, feature_id: int, crs: OutputCrs = CRS84
) -> str | None:
    """One feature's GeoJSON text (geometry in ``crs``), or ``None`` when the layer has no such
    id in ``scope`` (a feature outside the scope is not told apart from one that does not exist)."""
    selection = selection_build(layer=layer, scope=scope)
    with reading().cursor() as cursor:
        cursor.execute(
            f"SELECT {feature_sql(layer, fields, crs)}::text {selection.from_where} AND {layer.id_sql} = %s",
            [*selection.params, feature_id],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def features_stream(
    *,
    layer: Layer,
    fields: Sequence[Field],
    scope: Scope,
    bbox: tuple[float, float, float, float] | None = None,
    bbox_srid: int = STORAGE_SRID,
    datetime_range: tuple[dt.datetime | None, dt.datetime | None] | None = None,
    filters: Sequence[tuple[Filter, object]] = (),
    property_filters: Sequence[tuple[Field, object]] = (),
    crs: OutputCrs = CRS84,
    batch: int = STREAM_BATCH,
    on_rows: Callable[[int], None] | None = None,
) -> Iterator[str]:
    """A whole GeoJSON FeatureCollection as text chunks, read through a server-side cursor
    ``batch`` rows at a time: memory stays flat whatever the layer's size. The features come
    in id order; each row arrives as finished Feature text, so Python only joins batches.
    ``on_rows`` is told how many features each chunk holds, before it is handed out."""
    selection = selection_build(
        layer=layer,
        scope=scope,
        bbox=bbox,
        bbox_srid=bbox_srid,
        datetime_range=datetime_range,
        filters=filters,
        property_filters=property_filters,
    )
    sql = f"SELECT {feature_text_sql(layer, fields, crs)} {selection.from_where} ORDER BY {layer.id_sql}"
    # The database is chosen now, while the request's read routing holds; the chunks are made
    # later, when the server sends them (with the connection of the thread that sends them).
    # Outside CRS84 the collection names its CRS (GeoJSON 2008's "crs" member, which GDAL reads).
    named = "" if crs.uri == CRS84.uri else f'"crs":{{"type":"name","properties":{{"name":"{crs.uri}"}}}},'
    return _text_chunks(
        reading().alias,
        sql,
        selection.params,
        head='{"type":"FeatureCollection",' + named + '"features":[\n',
        separator=",\n",
        tail="\n]}\n",
        batch=batch,
        on_rows=on_rows,
    )


def _csv_value(expression: str, field_type: str = "string") -> str:
    """An SQL expression for one CSV cell's text before quoting: booleans ``t``/``f`` as
    PostgreSQL's ``COPY … CSV`` writes them, everything else as text."""
    if field_type == "boolean":
        return f"CASE WHEN ({expression}) THEN 't' WHEN NOT ({expression}) THEN 'f' END"
    return f"({expression})::text"


def _csv_quoted(column: str) -> str:
    """An SQL expression quoting the text ``column`` as ``COPY … CSV`` does: NULL empty, an empty
    text or one holding a quote, comma or line break quoted, quotes doubled."""
    return (
        f"CASE WHEN {column} IS NULL THEN '' "
        f"""WHEN {column} = '' OR {column} ~ '[",\r\n]' THEN '"' || replace({column}, '"', '""') || '"' """
        f"ELSE {column} END"
    )


def features_csv_stream(
    *,
    layer: Layer,
    fields: Sequence[Field],
    scope: Scope,
    geometry_columns: Sequence[tuple[str, str]],
    bbox: tuple[float, float, float, float] | None = None,
    bbox_srid: int = STORAGE_SRID,
    datetime_range: tuple[dt.datetime | None, dt.datetime | None] | None = None,
    filters: Sequence[tuple[Filter, object]] = (),
    property_filters: Sequence[tuple[Field, object]] = (),
    batch: int = STREAM_BATCH,
    on_rows: Callable[[int], None] | None = None,
    crs: OutputCrs = CRS84,
) -> Iterator[str]:
    """The layer as CSV text chunks (a header line, then one line per row in id order: ``id``,
    the fields, then ``geometry_columns``, (name, SQL template holding ``{g}`` for the geometry
    in ``crs``)), read through a server-side cursor ``batch`` rows at a time as
    :func:`features_stream` reads GeoJSON: each line is made by PostgreSQL, memory stays flat."""
    selection = selection_build(
        layer=layer,
        scope=scope,
        bbox=bbox,
        bbox_srid=bbox_srid,
        datetime_range=datetime_range,
        filters=filters,
        property_filters=property_filters,
    )
    geometry = crs.geometry_sql(layer.geometry_sql)
    values = [
        _csv_value(layer.id_sql),
        *(_csv_value(f.sql, f.type) for f in fields),
        *(_csv_value(template.format(g=geometry)) for _, template in geometry_columns),
    ]
    names = ["id", *(f.name for f in fields), *(name for name, _ in geometry_columns)]
    header = ",".join(names) + "\n"
    columns = [f"c{i}" for i in range(len(values))]
    # Each cell's value is computed once in the inner SELECT and quoted outside it; OFFSET 0 keeps
    # the planner from folding the inner SELECT back in, which would evaluate every value (casts,
    # the formula guard's regexp) once per test of the quoting CASE, four or five times.
    sql = (
        f"SELECT concat_ws(',', {', '.join(_csv_quoted(c) for c in columns)}) FROM ("
        f"SELECT {layer.id_sql} AS k, {', '.join(f'{v} AS {c}' for v, c in zip(values, columns, strict=True))} "
        f"{selection.from_where} ORDER BY {layer.id_sql} OFFSET 0) cells ORDER BY k"
    )
    return _text_chunks(
        reading().alias, sql, selection.params, head=header, separator="\n", tail="\n", batch=batch, on_rows=on_rows
    )


def _text_chunks(
    alias: str,
    sql: str,
    params: Sequence,
    *,
    head: str,
    separator: str,
    tail: str,
    batch: int,
    on_rows: Callable[[int], None] | None,
) -> Iterator[str]:
    """``head``, the text of each row of ``sql`` joined by ``separator``, then ``tail`` (nothing
    between the last row and ``tail`` when there is no row), in chunks of ``batch`` rows."""
    yield head
    source = connections[alias]
    # A named (server-side) cursor lives in a transaction; leaving the generator early (a client
    # that hangs up) rolls it back and closes the cursor.
    with transaction.atomic(using=alias):
        source.ensure_connection()
        with source.connection.cursor(name=f"features_{uuid.uuid4().hex}") as cursor:
            cursor.itersize = batch
            cursor.execute(sql, params)
            before = ""
            while rows := cursor.fetchmany(batch):
                if on_rows is not None:
                    on_rows(len(rows))
                # One string per batch: the separators cost a join here, not a window in SQL.
                yield before + separator.join([row[0] for row in rows])
                before = separator
            if not before and tail == separator:
                return  # no row: the head alone
    yield tail


def features_rows_sql(*, selection: Selection, fields: Sequence[Field], geometry: str, crs: OutputCrs = CRS84) -> str:
    """``SELECT id, <fields…>, <geometry>`` over a selection, in id order, for the file exports.
    ``geometry`` is an SQL template holding ``{g}`` for the layer's geometry expression, in
    ``crs`` (and its axis order: pass ``crs.in_gis_order()`` for a file)."""
    layer = selection.layer
    columns = ", ".join(f'{f.sql} AS "{f.name}"' for f in fields)
    return (
        f"SELECT {layer.id_sql} AS id{', ' if columns else ''}{columns}, "
        f"{geometry.format(g=crs.geometry_sql(layer.geometry_sql))} {selection.from_where} ORDER BY {layer.id_sql}"
    )


def layer_extent(
    *, layer: Layer, scope: Scope
) -> tuple[tuple[float, float, float, float] | None, tuple[str, str] | None]:
    """The bounding box (WGS84) of the layer's rows in ``scope`` and, for a layer with a time,
    their first and last instant (ISO 8601, UTC); ``None`` when there are none. Callers cache it
    by data version and scope key."""
    selection = selection_build(layer=layer, scope=scope)
    time = f"min({layer.datetime_sql}), max({layer.datetime_sql})" if layer.datetime_sql else "NULL, NULL"
    with reading().cursor() as cursor:
        cursor.execute(
            f"""SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), t0, t1 FROM (
                    SELECT ST_Extent({layer.geometry_sql}), {time} {selection.from_where}) x(e, t0, t1)""",
            selection.params,
        )
        xmin, ymin, xmax, ymax, t0, t1 = cursor.fetchone()
    bbox = (xmin, ymin, xmax, ymax) if xmin is not None else None
    interval = None
    if t0 is not None:
        interval = (
            t0.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            t1.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        )
    return bbox, interval


def layer_extent_cached(
    *, layer: Layer, scope: Scope
) -> tuple[tuple[float, float, float, float] | None, tuple[str, str] | None]:
    """:func:`layer_extent`, kept in the default cache until the layer's tables change.

    The extent reads the whole layer (as the scope sees it); the scope key is part of the cache
    key of a scoped layer, because an extent tells where the data lies."""
    key = f"extent:{layer.id}:{data_version(layer)}:{scope.key if layer.scope else 'all'}"
    extent = cache.get(key)
    if extent is None:
        extent = layer_extent(layer=layer, scope=scope)
        cache.set(key, extent, 24 * 3600)
    return extent
