"""The OpenAPI 3.0 description of the OGC API – Features at ``/ogc/`` (its ``service-desc``), built
from the catalog so it cannot drift from what the views accept.

It declares the generic paths of OGC API – Features Part 1 (``/collections/{collectionId}/…``)
and, for every collection the reader may read, that collection's own paths with its filters and
property parameters: GDAL's OAPIF driver and QGIS read the ``limit`` parameter's ``default`` and
``maximum`` from there to pick their page size, and the OGC test suites look parameters up by
the collection's path. An anonymous reader gets the generic paths only (a layer the reader may
not see is not named).
"""

from __future__ import annotations

from collections.abc import Iterable

from layers.geocoding.crs import CRS84_URI, OUTPUT_CRS
from layers.publishing.catalog import Field, Filter, Layer

OPENAPI_MEDIA_TYPE = "application/vnd.oai.openapi+json;version=3.0"
GEOJSON = "application/geo+json"
#: Page sizes of items: the default when ``limit`` is absent and the largest accepted.
LIMIT_DEFAULT, LIMIT_MAX = 1_000, 10_000

_FIELD_SCHEMAS = {
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/parameters/{name}"}


def _response(ref: str) -> dict:
    return {"$ref": f"#/components/responses/{ref}"}


def _parameters() -> dict:
    crs_names = list(OUTPUT_CRS)
    return {
        "f": {
            "name": "f",
            "in": "query",
            "required": False,
            "description": "The format of the answer (the Accept header is read when f is absent).",
            "schema": {"type": "string", "enum": ["json", "html"]},
            "style": "form",
            "explode": False,
        },
        "collectionId": {
            "name": "collectionId",
            "in": "path",
            "required": True,
            "description": "A collection's id (a catalog layer).",
            "schema": {"type": "string"},
        },
        "featureId": {
            "name": "featureId",
            "in": "path",
            "required": True,
            "description": "A feature's id.",
            "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
        },
        "limit": {
            "name": "limit",
            "in": "query",
            "required": False,
            "description": "Features per page; pages continue by the `next` link.",
            "schema": {"type": "integer", "minimum": 1, "maximum": LIMIT_MAX, "default": LIMIT_DEFAULT},
            "style": "form",
            "explode": False,
        },
        "after": {
            "name": "after",
            "in": "query",
            "required": False,
            "description": "Keyset continuation written into the `next` link: features with a greater id.",
            "schema": {"type": "integer", "minimum": 0},
            "style": "form",
            "explode": False,
        },
        "bbox": {
            "name": "bbox",
            "in": "query",
            "required": False,
            "description": "Features that intersect the box: min, min, max, max in the axis order of bbox-crs "
            "(CRS84: lon_min,lat_min,lon_max,lat_max).",
            "schema": {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
            "style": "form",
            "explode": False,
        },
        "bbox-crs": {
            "name": "bbox-crs",
            "in": "query",
            "required": False,
            "description": "The CRS of bbox (default CRS84).",
            "schema": {"type": "string", "format": "uri", "enum": crs_names, "default": CRS84_URI},
            "style": "form",
            "explode": False,
        },
        "crs": {
            "name": "crs",
            "in": "query",
            "required": False,
            "description": "The CRS of the geometries in the answer (default CRS84), told back in Content-Crs.",
            "schema": {"type": "string", "format": "uri", "enum": crs_names, "default": CRS84_URI},
            "style": "form",
            "explode": False,
        },
        "datetime": {
            "name": "datetime",
            "in": "query",
            "required": False,
            "description": "An instant or an interval start/end (.. for an open end); a date as an end includes "
            "that whole day.",
            "schema": {"type": "string"},
            "style": "form",
            "explode": False,
        },
    }


def _responses() -> dict:
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/error"}}}
    return {
        "BadRequest": {"description": "A parameter is malformed or unknown; the message names it.", "content": error},
        "NotFound": {"description": "No such collection or feature (or not readable).", "content": error},
        "NotAuthenticated": {"description": "No session or token (Authorization: Token <key>).", "content": error},
        "TooManyRequests": {"description": "Rate limit reached; see Retry-After.", "content": error},
    }


def _schemas() -> dict:
    link = {
        "type": "object",
        "required": ["href"],
        "properties": {
            "href": {"type": "string"},
            "rel": {"type": "string"},
            "type": {"type": "string"},
            "title": {"type": "string"},
        },
    }
    return {
        "link": link,
        "error": {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                }
            },
        },
        "document": {
            "type": "object",
            "properties": {"links": {"type": "array", "items": {"$ref": "#/components/schemas/link"}}},
        },
        "featureCollection": {
            "type": "object",
            "required": ["type", "features"],
            "properties": {
                "type": {"type": "string", "enum": ["FeatureCollection"]},
                "features": {"type": "array", "items": {"$ref": "#/components/schemas/feature"}},
                "links": {"type": "array", "items": {"$ref": "#/components/schemas/link"}},
                "timeStamp": {"type": "string", "format": "date-time"},
                "numberMatched": {"type": "integer", "minimum": 0},
                "numberReturned": {"type": "integer", "minimum": 0},
            },
        },
        "feature": {
            "type": "object",
            "required": ["type", "geometry", "properties"],
            "properties": {
                "type": {"type": "string", "enum": ["Feature"]},
                "id": {"type": "integer"},
                "geometry": {"type": "object", "nullable": True},
                "properties": {"type": "object", "nullable": True},
                "links": {"type": "array", "items": {"$ref": "#/components/schemas/link"}},
            },
        },
    }


def _content(schema: str, *, media_type: str = "application/json") -> dict:
    return {
        media_type: {"schema": {"$ref": f"#/components/schemas/{schema}"}},
        "text/html": {"schema": {"type": "string"}},
    }


def _operation(
    operation_id: str,
    summary: str,
    parameters: list,
    schema: str,
    *,
    media_type: str = "application/json",
    may_miss: bool = True,
) -> dict:
    """A GET operation; ``may_miss``: it answers 404 for a collection or feature it cannot find."""
    responses = {
        "200": {"description": summary, "content": _content(schema, media_type=media_type)},
        "400": _response("BadRequest"),
        "401": _response("NotAuthenticated"),
        "429": _response("TooManyRequests"),
    }
    if may_miss:
        responses["404"] = _response("NotFound")
    return {"get": {"operationId": operation_id, "summary": summary, "parameters": parameters, "responses": responses}}


def _filter_parameter(layer_filter: Filter) -> dict:
    schema: dict = {"type": "string"}
    if layer_filter.parser == "choice":
        schema["enum"] = list(layer_filter.choices)
    elif layer_filter.parser == "datetime":
        schema["format"] = "date-time"
    return {
        "name": layer_filter.name,
        "in": "query",
        "required": False,
        "description": layer_filter.description,
        "schema": schema,
        "style": "form",
        "explode": False,
    }


def _property_parameter(field: Field) -> dict:
    return {
        "name": field.name,
        "in": "query",
        "required": False,
        "description": f"Features whose {field.title_en} ({field.title}) equals the value.",
        "schema": _FIELD_SCHEMAS.get(field.type, {"type": "string"}),
        "style": "form",
        "explode": False,
    }


ITEMS_COMMON = ("f", "limit", "after", "bbox", "bbox-crs", "crs", "datetime")


def _layer_paths(layer: Layer, fields: tuple[Field, ...]) -> dict:
    base = f"/collections/{layer.id}"
    items_parameters = [_ref(name) for name in ITEMS_COMMON if name != "datetime" or layer.datetime_sql]
    items_parameters += [_filter_parameter(f) for f in layer.filters]
    filter_names = {f.name for f in layer.filters} | set(ITEMS_COMMON)
    items_parameters += [_property_parameter(f) for f in fields if f.name not in filter_names]
    return {
        base: _operation(f"describe_{layer.id}", f"{layer.title_en} ({layer.title})", [_ref("f")], "document"),
        f"{base}/items": _operation(
            f"get_{layer.id}_items",
            f"Features of {layer.title_en}",
            items_parameters,
            "featureCollection",
            media_type=GEOJSON,
        ),
        f"{base}/items/{{featureId}}": _operation(
            f"get_{layer.id}_item",
            f"One feature of {layer.title_en}",
            [_ref("featureId"), _ref("f"), _ref("crs")],
            "feature",
            media_type=GEOJSON,
        ),
    }


def ogc_openapi(*, server_url: str, layers: Iterable[tuple[Layer, tuple[Field, ...]]]) -> dict:
    """The OpenAPI 3.0 document of the OGC API served at ``server_url`` (the ``/ogc`` root,
    no trailing slash), with the paths of ``layers`` (each with the fields the reader reads)."""
    paths = {
        "/": _operation("landing", "Landing page", [_ref("f")], "document", may_miss=False),
        "/conformance": _operation("conformance", "Conformance classes", [_ref("f")], "document", may_miss=False),
        "/collections": _operation("collections", "The collections", [_ref("f")], "document", may_miss=False),
        "/collections/{collectionId}": _operation(
            "describe_collection", "One collection", [_ref("collectionId"), _ref("f")], "document"
        ),
        "/collections/{collectionId}/items": _operation(
            "get_items",
            "Features of a collection (each collection's own path lists its filters)",
            [_ref("collectionId"), *(_ref(name) for name in ITEMS_COMMON)],
            "featureCollection",
            media_type=GEOJSON,
        ),
        "/collections/{collectionId}/items/{featureId}": _operation(
            "get_item",
            "One feature",
            [_ref("collectionId"), _ref("featureId"), _ref("f"), _ref("crs")],
            "feature",
            media_type=GEOJSON,
        ),
    }
    for layer, fields in layers:
        paths.update(_layer_paths(layer, fields))
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "民情地图 OGC API – Features",
            "version": "1.0.0",
            "description": "Minqing Map layers as OGC API – Features Part 1 (Core, GeoJSON, HTML, OpenAPI 3.0) "
            "and Part 2 (CRS by reference). Authenticate with a session or `Authorization: Token <key>`.",
        },
        "servers": [{"url": server_url}],
        "components": {
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "Authorization"},
                "session": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
            },
            "parameters": _parameters(),
            "responses": _responses(),
            "schemas": _schemas(),
        },
        "security": [{"token": []}, {"session": []}],
        "paths": paths,
    }
