"""``GET /api/layers``: the layer catalog as the reader may see it.

One entry per layer of :data:`layers.publishing.catalog.LAYERS` the reader may read, with only the fields
their roles may read, and the links to every surface that serves the layer under the same id
(tiles, TileJSON, OGC collection, exports).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from layers.protection.access import Reader
from layers.publishing.catalog import LAYERS, Layer

#: Export formats, each the extension of ``/exports/<id>.<format>`` (``shp``: a zipped Shapefile);
#: the same list as mapserver/views/exports.py serves.
EXPORT_FORMATS = ("geojson", "gpkg", "csv", "shp")


def layer_links(layer_id: str) -> dict:
    """The URLs of every surface serving the layer; the same id everywhere."""
    return {
        "tiles": f"/tiles/{layer_id}/{{z}}/{{x}}/{{y}}.pbf",
        "tilejson": f"/tiles/{layer_id}.json",
        "ogc": f"/ogc/collections/{layer_id}",
        "exports": {fmt: f"/exports/{layer_id}.{fmt}" for fmt in EXPORT_FORMATS},
    }


def layer_entry(layer: Layer, *, reader: Reader) -> dict:
    """The catalog entry of one layer for a reader (the fields they may read only)."""
    return {
        "id": layer.id,
        "title": layer.title,
        "title_en": layer.title_en,
        "description": layer.description,
        "geometry_type": layer.geometry_type,
        "fields": [
            {"name": f.name, "type": f.type, "title": f.title, "title_en": f.title_en} for f in reader.fields_of(layer)
        ],
        "filters": [
            {"name": f.name, "parser": f.parser, "description": f.description, "choices": list(f.choices)}
            for f in layer.filters
        ],
        "minzoom": layer.minzoom,
        "maxzoom": layer.maxzoom,
        "style": layer.style,
        "links": layer_links(layer.id),
    }


_FIELDS = inline_serializer(
    "CatalogField",
    {
        "name": serializers.CharField(),
        "type": serializers.ChoiceField(["string", "integer", "number", "boolean", "datetime", "date"]),
        "title": serializers.CharField(),
        "title_en": serializers.CharField(),
    },
    many=True,
)
_FILTERS = inline_serializer(
    "CatalogFilter",
    {
        "name": serializers.CharField(),
        "parser": serializers.CharField(),
        "description": serializers.CharField(),
        "choices": serializers.ListField(child=serializers.CharField()),
    },
    many=True,
)
_LINKS = inline_serializer(
    "CatalogLinks",
    {
        "tiles": serializers.CharField(help_text="XYZ template of the vector tiles"),
        "tilejson": serializers.CharField(),
        "ogc": serializers.CharField(help_text="OGC API Features collection"),
        "exports": serializers.DictField(child=serializers.CharField(), help_text="format → URL"),
    },
)
CATALOG_RESPONSE = inline_serializer(
    "LayerCatalog",
    {
        "layers": inline_serializer(
            "CatalogLayer",
            {
                "id": serializers.CharField(),
                "title": serializers.CharField(),
                "title_en": serializers.CharField(),
                "description": serializers.CharField(),
                "geometry_type": serializers.CharField(),
                "fields": _FIELDS,
                "filters": _FILTERS,
                "minzoom": serializers.IntegerField(),
                "maxzoom": serializers.IntegerField(),
                "style": serializers.DictField(),
                "links": _LINKS,
            },
            many=True,
        )
    },
)


class LayerCatalog(APIView):
    """The layers the caller may read, each with the fields their roles may read."""

    @extend_schema(
        operation_id="layers_list",
        summary="Layer catalog: layers, fields, filters, zoom range, style and links",
        responses={200: CATALOG_RESPONSE},
    )
    def get(self, request: Request) -> Response:
        reader = request.reader
        layers = [layer_entry(layer, reader=reader) for layer in LAYERS.values() if reader.reads_layer(layer)]
        return Response({"layers": layers})
