"""OGC API – Features at ``/ogc/``: Part 1 (Core, GeoJSON, HTML, OpenAPI 3.0) and Part 2 (CRS by
reference). Landing page, the API description (``/ogc/api``, its ``service-desc``) and its page
(``/ogc/api.html``, ``service-doc``), conformance, collections, items and single items, as
GeoJSON or HTML: ``f=json|html`` decides, else the Accept header (``application/geo+json``,
``application/json`` or ``text/html``; anything else gets JSON, never a 406). Every collection is
a layer of :mod:`layers.publishing.catalog`.

Authentication is the API's: a session, or ``Authorization: Token <key>`` — QGIS sends it as a
custom header of its connection, GDAL as ``GDAL_HTTP_HEADERS="Authorization: Token <key>"``. The
API description is public (an anonymous reader sees only the generic paths).
Items page by keyset: the ``next`` link carries ``after=<last id>`` so a page deep in the
collection costs what the first does. ``numberMatched`` is given when counting is cheap
(:func:`layers.selectors.features.features_count_cached`). A ``datetime`` on a collection without a time
is a 400, not silently ignored. ``crs`` and ``bbox-crs`` take the CRSs of
:data:`layers.geocoding.crs.OUTPUT_CRS`; the answer names its CRS in ``Content-Crs``.

Continuation pages (with ``after``) count under their own, higher rate
(:class:`mapserver.throttles.OgcPagingRate`): a desktop GIS paging a layer is counted once per
scan by the user's rate, and is never cut off in the middle of a layer.

Items, single items and collection extents are narrowed to the reader's data scope
(:mod:`layers.protection.scope`): an item outside it is a 404 like an item that does not exist.
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
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from layers.geocoding.crs import CRS84_URI, OUTPUT_CRS, OutputCrs
from layers.protection.scope import Scope
from layers.publishing import catalog
from layers.publishing.catalog import Field, Filter, Layer
from layers.selectors.features import feature_get, features_page, layer_extent_cached

from .. import params
from ..errors import BadParameter, NotFound
from ..ogc_openapi import GEOJSON, LIMIT_DEFAULT, LIMIT_MAX, OPENAPI_MEDIA_TYPE, ogc_openapi
from ..throttles import AnonymousRate, OgcPagingRate

CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
)
#: Query parameters of items besides the layer's filters and property names.
ITEMS_PARAMETERS = ("f", "limit", "after", "bbox", "bbox-crs", "crs", "datetime")
FILTER_PARAMETERS = ("bbox", "bbox-crs", "datetime")
#: What a request may ask for in Accept, and the format that answers it.
OFFERS = (("application/geo+json", "json"), ("application/json", "json"), ("text/html", "html"))


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


def _is_date(text: str) -> bool:
    """A calendar date alone (``2026-06-30``), which stands for its whole day."""
    return re.fullmatch(r"\s*[0-9]{4}-[0-9]{2}-[0-9]{2}\s*", text) is not None


def _day_end(day_start: dt.datetime, name: str) -> dt.datetime:
    """The last microsecond of the day that starts at ``day_start`` (a 400 past the last year
    a parameter may name, never an overflow)."""
    try:
        return day_start + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
    except OverflowError:
        raise BadParameter(name, _("must be an ISO 8601 date-time")) from None


def parse_datetime_range(query: Mapping, layer: Layer, name: str = "datetime"):
    """OGC ``datetime``: an instant, or ``start/end`` with ``..`` (or nothing) for an open end.
    Both ends are inclusive; a bare date as the instant or as the end means that whole day (so
    ``D/D`` is ``D``, and ``2026-06-01/2026-06-30`` includes June 30)."""
    raw = query.get(name)
    if raw is None or raw.strip() == "":
        return None
    if not layer.datetime_sql:
        raise BadParameter(name, _("collection %(value)s has no time") % {"value": f"{layer.id!r}"})
    raw = raw.strip()
    if "/" not in raw:
        start = params.parse_datetime_param({name: raw}, name)
        if _is_date(raw):
            return start, _day_end(start, name)
        return start, start
    parts = raw.split("/")
    if len(parts) != 2 or all(part.strip() in ("", "..") for part in parts):
        raise BadParameter(
            name, _("must be an instant or start/end (.. for an open end), got %(value)s") % {"value": f"{raw[:40]!r}"}
        )
    start, end = (
        None if part.strip() in ("", "..") else params.parse_datetime_param({name: part}, name) for part in parts
    )
    if end is not None and _is_date(parts[1]):
        end = _day_end(end, name)
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
    box = params.parse_bbox_in_crs(query)
    return {
        "bbox": None if box is None else box[0],
        "bbox_srid": 4326 if box is None else box[1],
        "datetime_range": parse_datetime_range(query, layer),
        "filters": [(f, parse_layer_filter(query, f)) for f in layer.filters if query.get(f.name, "").strip()],
        "property_filters": [
            (by_name[name], params.parse_text(query, name, max_length=200))
            for name in by_name
            # A layer filter of the same name (events' category: code or family) wins.
            if name in query and name not in FILTER_PARAMETERS and layer.filter(name) is None
        ],
    }


def _format(request: Request) -> str:
    """``f`` when given, else the format of the media type the Accept header weighs most among
    :data:`OFFERS` (JSON on a tie, or when none is acceptable: a client is never answered 406)."""
    query = request.query_params
    if query.get("f", "").strip():
        return params.parse_choice(query, "f", ("json", "html"))
    chosen = params.parse_accept(request.META.get("HTTP_ACCEPT", ""), [offer for offer, _fmt in OFFERS])
    return dict(OFFERS).get(chosen, "json")


class OgcNegotiation(BaseContentNegotiation):
    """The answers are built by the views in the format :func:`_format` picks; DRF's renderer
    choice must not turn an Accept header it does not list into a 406."""

    def select_parser(self, request, parsers):
        return DefaultContentNegotiation().select_parser(request, parsers)

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class OgcView(APIView):
    content_negotiation_class = OgcNegotiation


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
    # JSON is UTF-8 by definition (RFC 8259): no charset parameter, so that clients comparing
    # the media type exactly (the OGC test suites) recognise it.
    return HttpResponse(json.dumps(document, ensure_ascii=False), content_type=content_type)


def _with_crs(response: HttpResponse, crs: OutputCrs) -> HttpResponse:
    response["Content-Crs"] = f"<{crs.uri}>"
    return response


def _collection(request: Request, layer: Layer, scope: Scope) -> dict:
    bbox, interval = layer_extent_cached(layer=layer, scope=scope)
    extent: dict = {"spatial": {"bbox": [list(bbox)] if bbox else [[-180, -90, 180, 90]], "crs": CRS84_URI}}
    if layer.datetime_sql:
        extent["temporal"] = {
            "interval": [list(interval) if interval else [None, None]],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        }
    items = _url(request, "ogc:items", layer.id)
    return {
        "id": layer.id,
        "title": layer.title,
        "description": f"{layer.title_en}. {layer.description}",
        "itemType": "feature",
        "crs": list(OUTPUT_CRS),
        "storageCrs": CRS84_URI,
        "extent": extent,
        "links": [
            *_links(request, "ogc:collection", layer.id, title=layer.title),
            {"href": f"{items}?f=json", "rel": "items", "type": GEOJSON, "title": layer.title},
            {"href": f"{items}?f=html", "rel": "items", "type": "text/html", "title": layer.title},
        ],
    }


@extend_schema(exclude=True)
class Landing(OgcView):
    def get(self, request: Request) -> HttpResponse:
        fmt = _format(request)
        _only(request.query_params, "f")
        document = {
            "title": "民情地图 OGC API Features",
            "description": "Minqing Map layers as OGC API – Features collections (GeoJSON, HTML).",
            "links": [
                *_links(request, "ogc:landing", title="landing page"),
                {
                    "href": _url(request, "ogc:api"),
                    "rel": "service-desc",
                    "type": OPENAPI_MEDIA_TYPE,
                    "title": "the API definition (OpenAPI 3.0)",
                },
                {
                    "href": _url(request, "ogc:api-html"),
                    "rel": "service-doc",
                    "type": "text/html",
                    "title": "the API documentation",
                },
                {"href": _url(request, "ogc:conformance", f="json"), "rel": "conformance", "type": "application/json"},
                {"href": _url(request, "ogc:collections", f="json"), "rel": "data", "type": "application/json"},
            ],
        }
        return _respond(request, document, fmt)


def _openapi(request: Request) -> dict:
    root = request.build_absolute_uri(reverse("ogc:landing")).rstrip("/")
    layers = [
        (layer, reader_fields(request, layer))
        for layer in catalog.LAYERS.values()
        if not request.reader.is_anonymous and request.reader.reads_layer(layer)
    ]
    return ogc_openapi(server_url=root, layers=layers)


@extend_schema(exclude=True)
class ApiDefinition(OgcView):
    """The OpenAPI 3.0 description (public; the reader's own collections are named in it)."""

    permission_classes = [AllowAny]

    def get(self, request: Request) -> HttpResponse:
        _only(request.query_params, "f")
        params.parse_choice(request.query_params, "f", ("json",), default="json")
        return HttpResponse(json.dumps(_openapi(request), ensure_ascii=False), content_type=OPENAPI_MEDIA_TYPE)


@extend_schema(exclude=True)
class ApiDocumentation(OgcView):
    """The API description as a page: every path with its parameters (no script, no CDN)."""

    permission_classes = [AllowAny]

    def get(self, request: Request) -> HttpResponse:
        _only(request.query_params)
        document = _openapi(request)
        shared = document["components"]["parameters"]
        operations = []
        for path, item in document["paths"].items():
            operation = item["get"]
            parameters = [shared[p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p for p in operation["parameters"]]
            operations.append({"path": path, "summary": operation["summary"], "parameters": parameters})
        context = {
            "info": document["info"],
            "server": document["servers"][0]["url"],
            "operations": operations,
            "crs": OUTPUT_CRS.values(),
            "definition": _url(request, "ogc:api"),
        }
        return render(request, "mapserver/ogc_api.html", context)


@extend_schema(exclude=True)
class Conformance(OgcView):
    def get(self, request: Request) -> HttpResponse:
        fmt = _format(request)
        _only(request.query_params, "f")
        return _respond(request, {"conformsTo": list(CONFORMANCE)}, fmt)


@extend_schema(exclude=True)
class Collections(OgcView):
    def get(self, request: Request) -> HttpResponse:
        fmt = _format(request)
        _only(request.query_params, "f")
        scope = reader_scope(request)
        layers = [layer for layer in catalog.LAYERS.values() if request.reader.reads_layer(layer)]
        document = {
            "links": _links(request, "ogc:collections", title="collections"),
            "collections": [_collection(request, layer, scope) for layer in layers],
        }
        return _respond(request, document, fmt)


@extend_schema(exclude=True)
class Collection(OgcView):
    def get(self, request: Request, collection: str) -> HttpResponse:
        layer = readable_layer(request, collection)
        fmt = _format(request)
        _only(request.query_params, "f")
        return _respond(request, _collection(request, layer, reader_scope(request)), fmt)


@extend_schema(exclude=True)
class Items(OgcView):
    throttle_classes = [AnonymousRate, OgcPagingRate]

    def get(self, request: Request, collection: str) -> HttpResponse:
        layer = readable_layer(request, collection)
        query = request.query_params
        fields = reader_fields(request, layer)
        chosen = parse_feature_filters(query, layer, fields, accepted=ITEMS_PARAMETERS)
        fmt = _format(request)
        limit = params.parse_int(query, "limit", low=1, high=LIMIT_MAX, default=LIMIT_DEFAULT)
        after = params.parse_int(query, "after", low=0, high=2**63 - 1, default=None)
        crs = params.parse_output_crs(query)
        features, returned, next_after, matched = features_page(
            layer=layer, fields=fields, scope=reader_scope(request), limit=limit, after_id=after, crs=crs, **chosen
        )
        base = request.build_absolute_uri(reverse("ogc:items", args=[layer.id]))
        kept = {name: value for name, value in query.items() if name not in ("f", "after")}
        links = [
            {"href": f"{base}?{urlencode(kept | {'f': 'json'})}", "rel": "self", "type": GEOJSON},
            {"href": f"{base}?{urlencode(kept | {'f': 'html'})}", "rel": "alternate", "type": "text/html"},
            {
                "href": _url(request, "ogc:collection", layer.id, f="json"),
                "rel": "collection",
                "type": "application/json",
            },
        ]
        if next_after is not None:
            next_query = kept | {"f": fmt, "after": next_after}
            links.append({"href": f"{base}?{urlencode(next_query)}", "rel": "next", "type": GEOJSON})
        stamp = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        counts = (
            {"numberReturned": returned} if matched is None else {"numberMatched": matched, "numberReturned": returned}
        )
        if fmt == "html":
            document = {"title": layer.title, "links": links, "timeStamp": stamp, **counts}
            return _with_crs(_respond(request, document, fmt, features=json.loads(features), fields=fields), crs)
        # The features arrive as JSON text from PostGIS; only the envelope is written here.
        envelope = json.dumps({**counts, "timeStamp": stamp, "links": links}, ensure_ascii=False)
        text = f'{{"type":"FeatureCollection","features":{features},{envelope[1:]}'
        return _with_crs(HttpResponse(text, content_type=GEOJSON), crs)


@extend_schema(exclude=True)
class Item(OgcView):
    def get(self, request: Request, collection: str, feature_id: str) -> HttpResponse:
        layer = readable_layer(request, collection)
        fmt = _format(request)
        _only(request.query_params, "f", "crs")
        crs = params.parse_output_crs(request.query_params)
        fields = reader_fields(request, layer)
        text = None
        if re.fullmatch(r"[0-9]{1,18}", feature_id):
            text = feature_get(
                layer=layer, fields=fields, scope=reader_scope(request), feature_id=int(feature_id), crs=crs
            )
        if text is None:
            raise NotFound(f"collection {layer.id!r} has no item {feature_id[:40]!r}")
        feature = json.loads(text)
        feature["links"] = [
            *_links(request, "ogc:item", layer.id, feature_id, title=f"{layer.title} {feature_id}"),
            {
                "href": _url(request, "ogc:collection", layer.id, f="json"),
                "rel": "collection",
                "type": "application/json",
            },
        ]
        feature["links"][0]["type"] = GEOJSON
        if fmt == "html":
            document = {"title": layer.title, "links": feature["links"]}
            return _with_crs(_respond(request, document, fmt, features=[feature], fields=fields), crs)
        return _with_crs(_respond(request, feature, fmt, content_type=GEOJSON), crs)
