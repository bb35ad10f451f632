"""OGC API – Features Part 1 (Core) at ``/ogc/``: landing page, conformance, collections, items
and single items, as GeoJSON or HTML. Every collection is a layer of :mod:`layers.catalog`.

Authentication is the API's: a session, or ``Authorization: Token <key>`` — QGIS sends it as a
custom header of its connection, GDAL as ``GDAL_HTTP_HEADERS="Authorization: Token <key>"``.
Items page by keyset: the ``next`` link carries ``after=<last id>`` so a page deep in the
collection costs what the first does. ``numberMatched`` is left out (optional in Part 1; a count
over a large filtered layer would cost more than the page). A ``datetime`` on a collection
without a time is a 400, not silently ignored.

Items, single items and collection extents are narrowed to the reader's data scope
(:mod:`layers.scope`): an item outside it is a 404 like an item that does not exist.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from urllib.parse import urlencode

from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from layers import catalog
from layers.catalog import Field, Filter, Layer
from layers.features import feature_get, features_page, layer_extent_cached
from layers.scope import Scope

from .. import params
from ..errors import BadParameter, NotFound

GEOJSON = "application/geo+json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
)
LIMIT_DEFAULT, LIMIT_MAX = 100, 10_000
#: Query parameters of items besides the layer's filters and property names.
ITEMS_PARAMETERS = ("f", "limit", "after", "bbox", "datetime")
FILTER_PARAMETERS = ("bbox", "datetime")


# --- request parsing, shared with the exports ---------------------------------------------------


def readable_layer(request: Request, layer_id: str, *, what: str = "collection") -> Layer:
    """The catalog layer ``layer_id`` if this reader may read it; a 404 otherwise (a layer the
    reader may not see is not told apart from one that does not exist)."""
    layer = catalog.layer_get(layer_id)
    if layer is None or not request.reader.reads_layer(layer):
        raise NotFound(f"unknown {what} {layer_id[:60]!r}")
    return layer


def reader_scope(request: Request) -> Scope:
    """The data scope of the request's reader."""
    return request.reader.scope


def reader_fields(request: Request, layer: Layer) -> tuple[Field, ...]:
    return request.reader.fields_of(layer)


def parse_datetime_range(query: Mapping, layer: Layer, name: str = "datetime"):
    """OGC ``datetime``: an instant, or ``start/end`` with ``..`` (or nothing) for an open end.
    A bare date as an instant means that whole day. Both ends are inclusive."""
    raw = query.get(name)
    if raw is None or raw.strip() == "":
        return None
    if not layer.datetime_sql:
        raise BadParameter(name, _("collection %(value)s has no time") % {"value": f"{layer.id!r}"})
    raw = raw.strip()
    if "/" not in raw:
        start = params.parse_datetime_param({name: raw}, name)
        if "T" not in raw.upper():
            return start, start + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
        return start, start
    parts = raw.split("/")
    if len(parts) != 2 or all(part.strip() in ("", "..") for part in parts):
        raise BadParameter(
            name, _("must be an instant or start/end (.. for an open end), got %(value)s") % {"value": f"{raw[:40]!r}"}
        )
    start, end = (
        None if part.strip() in ("", "..") else params.parse_datetime_param({name: part}, name) for part in parts
    )
    if start is not None and end is not None and start > end:
        raise BadParameter(name, _("start must not be after end"))
    return start, end


def parse_layer_filter(query: Mapping, layer_filter: Filter) -> object:
    if layer_filter.parser == "choice":
        return params.parse_choice(query, layer_filter.name, layer_filter.choices)
    if layer_filter.parser == "datetime":
        return params.parse_datetime_param(query, layer_filter.name)
    return params.parse_text(query, layer_filter.name, max_length=100)


def parse_feature_filters(
    query: Mapping, layer: Layer, fields: tuple[Field, ...], *, accepted: tuple[str, ...]
) -> dict:
    """The filters every feature surface shares: ``bbox``, ``datetime``, the layer's filters and
    equality on the reader's fields. A parameter outside these and ``accepted`` is a 400."""
    by_name = {f.name: f for f in fields}
    known = set(accepted) | {f.name for f in layer.filters} | set(by_name)
    unknown = sorted(name for name in query if name not in known)
    if unknown:
        raise BadParameter(
            ", ".join(n[:40] for n in unknown),
            _("unknown parameter; %(layer)s accepts %(names)s")
            % {"layer": layer.id, "names": ", ".join(sorted(known))},
        )
    return {
        "bbox": params.parse_bbox(query),
        "datetime_range": parse_datetime_range(query, layer),
        "filters": [(f, parse_layer_filter(query, f)) for f in layer.filters if query.get(f.name, "").strip()],
        "property_filters": [
            (by_name[name], params.parse_text(query, name, max_length=200))
            for name in by_name
            # A layer filter of the same name (events' category: code or family) wins.
            if name in query and name not in FILTER_PARAMETERS and layer.filter(name) is None
        ],
    }


def _format(query: Mapping) -> str:
    return params.parse_choice(query, "f", ("json", "html"), default="json")


def _only(query: Mapping, *names: str) -> None:
    unknown = sorted(name for name in query if name not in names)
    if unknown:
        raise BadParameter(
            ", ".join(n[:40] for n in unknown),
            _("unknown parameter; accepted: %(names)s") % {"names": ", ".join(names)},
        )


# --- documents ------------------------------------------------------------------------------------


def _url(request: Request, name: str, *args, **query) -> str:
    url = request.build_absolute_uri(reverse(name, args=args))
    return f"{url}?{urlencode(query)}" if query else url


def _links(request: Request, name: str, *args, title: str) -> list[dict]:
    return [
        {"href": _url(request, name, *args, f="json"), "rel": "self", "type": "application/json", "title": title},
        {"href": _url(request, name, *args, f="html"), "rel": "alternate", "type": "text/html", "title": title},
    ]


def _respond(request: Request, document: dict, fmt: str, *, content_type: str = "application/json", **context):
    if fmt == "html":
        fields = context.get("fields", ())
        rows = [(f.get("id"), [f["properties"].get(x.name) for x in fields]) for f in context.get("features", ())]
        html = {"doc": document, "fields": fields, "rows": rows, "collections": document.get("collections", ())}
        return render(request, "mapserver/ogc.html", html)
    text = json.dumps(document, ensure_ascii=False)
    return HttpResponse(text, content_type=f"{content_type}; charset=utf-8")


def _collection(request: Request, layer: Layer, scope: Scope) -> dict:
    bbox, interval = layer_extent_cached(layer=layer, scope=scope)
    extent: dict = {"spatial": {"bbox": [list(bbox)] if bbox else [[-180, -90, 180, 90]], "crs": CRS84}}
    if layer.datetime_sql:
        extent["temporal"] = {
            "interval": [list(interval) if interval else [None, None]],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        }
    items = _url(request, "ogc-items", layer.id)
    return {
        "id": layer.id,
        "title": layer.title,
        "description": f"{layer.title_en}. {layer.description}",
        "itemType": "feature",
        "crs": [CRS84],
        "extent": extent,
        "links": [
            *_links(request, "ogc-collection", layer.id, title=layer.title),
            {"href": f"{items}?f=json", "rel": "items", "type": GEOJSON, "title": layer.title},
            {"href": f"{items}?f=html", "rel": "items", "type": "text/html", "title": layer.title},
        ],
    }


@extend_schema(exclude=True)
class Landing(APIView):
    def get(self, request: Request) -> HttpResponse:
        fmt = _format(request.query_params)
        _only(request.query_params, "f")
        document = {
            "title": "民情地图 OGC API Features",
            "description": "Minqing Map layers as OGC API – Features collections (GeoJSON, HTML).",
            "links": [
                *_links(request, "ogc-landing", title="landing page"),
                {"href": _url(request, "ogc-conformance", f="json"), "rel": "conformance", "type": "application/json"},
                {"href": _url(request, "ogc-collections", f="json"), "rel": "data", "type": "application/json"},
            ],
        }
        return _respond(request, document, fmt)


@extend_schema(exclude=True)
class Conformance(APIView):
    def get(self, request: Request) -> HttpResponse:
        fmt = _format(request.query_params)
        _only(request.query_params, "f")
        return _respond(request, {"conformsTo": list(CONFORMANCE)}, fmt)


@extend_schema(exclude=True)
class Collections(APIView):
    def get(self, request: Request) -> HttpResponse:
        fmt = _format(request.query_params)
        _only(request.query_params, "f")
        scope = reader_scope(request)
        layers = [layer for layer in catalog.REGISTRY.values() if request.reader.reads_layer(layer)]
        document = {
            "links": _links(request, "ogc-collections", title="collections"),
            "collections": [_collection(request, layer, scope) for layer in layers],
        }
        return _respond(request, document, fmt)


@extend_schema(exclude=True)
class Collection(APIView):
    def get(self, request: Request, collection: str) -> HttpResponse:
        layer = readable_layer(request, collection)
        fmt = _format(request.query_params)
        _only(request.query_params, "f")
        return _respond(request, _collection(request, layer, reader_scope(request)), fmt)


@extend_schema(exclude=True)
class Items(APIView):
    def get(self, request: Request, collection: str) -> HttpResponse:
        layer = readable_layer(request, collection)
        query = request.query_params
        fields = reader_fields(request, layer)
        chosen = parse_feature_filters(query, layer, fields, accepted=ITEMS_PARAMETERS)
        fmt = _format(query)
        limit = params.parse_int(query, "limit", low=1, high=LIMIT_MAX, default=LIMIT_DEFAULT)
        after = params.parse_int(query, "after", low=0, high=2**63 - 1, default=None)
        features, returned, next_after = features_page(
            layer=layer, fields=fields, scope=reader_scope(request), limit=limit, after_id=after, **chosen
        )
        base = request.build_absolute_uri(reverse("ogc-items", args=[layer.id]))
        kept = {name: value for name, value in query.items() if name not in ("f", "after")}
        links = [
            {"href": f"{base}?{urlencode(kept | {'f': 'json'})}", "rel": "self", "type": GEOJSON},
            {"href": f"{base}?{urlencode(kept | {'f': 'html'})}", "rel": "alternate", "type": "text/html"},
            {
                "href": _url(request, "ogc-collection", layer.id, f="json"),
                "rel": "collection",
                "type": "application/json",
            },
        ]
        if next_after is not None:
            next_query = kept | {"f": fmt, "after": next_after}
            links.append({"href": f"{base}?{urlencode(next_query)}", "rel": "next", "type": GEOJSON})
        stamp = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        if fmt == "html":
            document = {"title": layer.title, "links": links, "numberReturned": returned, "timeStamp": stamp}
            return _respond(request, document, fmt, features=json.loads(features), fields=fields)
        # The features arrive as JSON text from PostGIS; only the envelope is written here.
        envelope = json.dumps({"numberReturned": returned, "timeStamp": stamp, "links": links}, ensure_ascii=False)
        text = f'{{"type":"FeatureCollection","features":{features},{envelope[1:]}'
        return HttpResponse(text, content_type=f"{GEOJSON}; charset=utf-8")


@extend_schema(exclude=True)
class Item(APIView):
    def get(self, request: Request, collection: str, feature_id: str) -> HttpResponse:
        layer = readable_layer(request, collection)
        fmt = _format(request.query_params)
        _only(request.query_params, "f")
        fields = reader_fields(request, layer)
        text = None
        if re.fullmatch(r"[0-9]{1,18}", feature_id):
            text = feature_get(layer=layer, fields=fields, scope=reader_scope(request), feature_id=int(feature_id))
        if text is None:
            raise NotFound(f"collection {layer.id!r} has no item {feature_id[:40]!r}")
        feature = json.loads(text)
        feature["links"] = [
            *_links(request, "ogc-item", layer.id, feature_id, title=f"{layer.title} {feature_id}"),
            {
                "href": _url(request, "ogc-collection", layer.id, f="json"),
                "rel": "collection",
                "type": "application/json",
            },
        ]
        feature["links"][0]["type"] = GEOJSON
        if fmt == "html":
            return _respond(
                request, {"title": layer.title, "links": feature["links"]}, fmt, features=[feature], fields=fields
            )
        return _respond(request, feature, fmt, content_type=GEOJSON)
