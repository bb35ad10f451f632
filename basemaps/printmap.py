"""A folium HTML map of one grid (any level) or one street / community, for printing and offline
sharing: the boundary, the child grids' outlines, the points of units and of open events inside
it, and a summary box (residents, dwellings, units, open events).

The page must work opened from disk with no network: it loads nothing. folium's CDN links are
dropped and Leaflet's own script and stylesheet (from django-leaflet's static files) are inlined,
with the stylesheet's images as data URIs. There is no tile layer (no basemap works offline
inside a single file); the outlines are drawn strongly instead.

Points are read through the layer catalog (``units``, ``events``) with only non-personal fields;
the counts are SQL ``count(*)`` over the rows' link columns. Points and counts are those of the
reader's data scope (:mod:`layers.protection.scope`); the outlines are reference data, drawn whole.
"""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass
from functools import cache

from django.contrib.gis.db.models.functions import AsGeoJSON
from django.contrib.staticfiles import finders

import folium

from layers.database.reading import reading
from layers.models import Dwelling, Event, Grid, Person, Region, Unit
from layers.protection.access import Reader
from layers.protection.scope import Scope
from layers.publishing.catalog import layer_get
from layers.services.events import OPEN_STATUSES

#: Most points of one kind drawn on a map; the summary box still counts them all.
MAX_POINTS = 2_000
#: Fields of the catalog layers shown in a point's tooltip: none of them personal.
POINT_FIELDS = {"units": ("name", "kind"), "events": ("category", "status", "received_at")}
POINT_COLOURS = {"units": "#b9770e", "events": "#e74c3c"}
LEVEL_TITLES = {"small": "小网格", "medium": "中网格", "large": "大网格", "community": "社区", "street": "街道"}


@dataclass(frozen=True)
class PrintArea:
    """What a print map covers: one grid or one street / community region.

    ``scope`` is an SQL condition on the alias ``t`` of a link-carrying table (with its
    ``params``); ``lookup`` is the same scope as ORM keyword arguments, for the counts;
    ``grids_sql`` (with ``grids_params``) keeps the area's small grids (rows ``t`` of
    ``layers_grid``). None of them is the reader's data scope, which is applied on top.
    """

    code: str
    name: str
    level: str
    boundary: dict | None
    children: tuple[dict, ...]
    scope: str
    params: tuple
    lookup: dict
    grids_sql: str
    grids_params: tuple


@dataclass(frozen=True)
class PrintSummary:
    residents: int
    dwellings: int
    units: int
    open_events: int


def _feature(row) -> dict:
    properties = _escaped({"code": row.code, "name": row.name})
    return {"type": "Feature", "geometry": json.loads(row.geojson), "properties": properties}


def print_area_get(*, code: str) -> PrintArea | None:
    """The grid with this code, else the street or community region with it; ``None`` when none."""
    grid = Grid.objects.filter(code=code).annotate(geojson=AsGeoJSON("boundary", precision=7)).first()
    if grid is not None:
        # Medium and large links carry no index (see GridLinked); the small grids under the
        # grid reach the same rows through the indexed grid_id.
        smalls = Grid.objects.filter(level="small")
        if grid.level == "small":
            small_ids = [grid.id]
        elif grid.level == "medium":
            small_ids = list(smalls.filter(parent_id=grid.id).values_list("id", flat=True))
        else:
            small_ids = list(smalls.filter(parent__parent_id=grid.id).values_list("id", flat=True))
        children = Grid.objects.filter(parent_id=grid.id)
        return PrintArea(
            code=grid.code,
            name=grid.name,
            level=grid.level,
            boundary=_feature(grid),
            children=tuple(_feature(c) for c in children.annotate(geojson=AsGeoJSON("boundary", precision=7))),
            scope="t.grid_id = ANY(%s)",
            params=(small_ids,),
            lookup={"grid_id__in": small_ids},
            grids_sql="t.id = ANY(%s)",
            grids_params=(small_ids,),
        )
    region = (
        Region.objects.filter(code=code, level__in=("street", "community"))
        .annotate(geojson=AsGeoJSON("boundary", precision=7))
        .first()
    )
    if region is None:
        return None
    larges = Grid.objects.filter(level="large")
    larges = (
        larges.filter(community_id=region.id)
        if region.level == "community"
        else larges.filter(community__parent_id=region.id)
    )
    return PrintArea(
        code=region.code,
        name=region.name,
        level=region.level,
        boundary=_feature(region) if region.geojson else None,
        children=tuple(_feature(c) for c in larges.annotate(geojson=AsGeoJSON("boundary", precision=7))),
        scope=f"t.{region.level}_id = %s",
        params=(region.id,),
        lookup={f"{region.level}_id": region.id},
        grids_sql=(
            "t.community_id = %s"
            if region.level == "community"
            else "t.community_id IN (SELECT c.id FROM layers_region c WHERE c.parent_id = %s)"
        ),
        grids_params=(region.id,),
    )


def print_area_readable(*, area: PrintArea, scope: Scope) -> bool:
    """Whether a reader with ``scope`` may print the area: at least one of its small grids lies
    in the scope (the page then shows only the scope's part of it)."""
    if scope.is_city:
        return True
    in_scope, params = scope.grids("t")
    with reading().cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM layers_grid t WHERE t.level = 'small' AND ({area.grids_sql}) AND {in_scope})",
            [*area.grids_params, *params],
        )
        return cursor.fetchone()[0]


def print_summary(*, area: PrintArea, scope: Scope) -> PrintSummary:
    """Counts of the rows linked to the area in ``scope`` (all of them, not only the points drawn)."""
    return PrintSummary(
        residents=Person.objects.filter(scope.q(), **area.lookup).count(),
        dwellings=Dwelling.objects.filter(scope.q(), **area.lookup).count(),
        units=Unit.objects.filter(scope.q(), **area.lookup).count(),
        open_events=Event.objects.filter(scope.q(), **area.lookup, status__in=OPEN_STATUSES).count(),
    )


def print_points(*, area: PrintArea, layer_id: str, reader: Reader) -> dict:
    """A GeoJSON FeatureCollection of at most MAX_POINTS points of a catalog point layer inside
    the area and the reader's scope (events: open ones only), with the tooltip fields the
    reader may read. Empty when the reader may not read the layer."""
    layer = layer_get(layer_id)
    empty = {"type": "FeatureCollection", "features": []}
    if layer is None or not reader.reads_layer(layer):
        return empty
    scope = reader.scope
    readable = {f.name: f for f in reader.fields_of(layer)}
    fields = [readable[name] for name in POINT_FIELDS[layer_id] if name in readable]
    properties = ", ".join(f"'{f.name}', ({f.sql})::text" for f in fields)
    in_scope, scope_params = scope.condition(layer)
    where = [layer.where, area.scope, in_scope]
    params: list = [*area.params, *scope_params]
    if layer_id == "events":
        where.append("t.status = ANY(%s)")
        params.append([str(s) for s in OPEN_STATUSES])
    sql = f"""
        SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(f), '[]'::json))::text
        FROM (
            SELECT json_build_object(
                       'type', 'Feature',
                       'geometry', ST_AsGeoJSON({layer.geometry_sql}, 7)::json,
                       'properties', json_build_object({properties})) AS f
            FROM {layer.source}
            WHERE {" AND ".join(f"({w})" for w in where)}
            ORDER BY {layer.id_sql}
            LIMIT %s
        ) points"""
    with reading().cursor() as cursor:
        cursor.execute(sql, [*params, MAX_POINTS])
        collection = json.loads(cursor.fetchone()[0]) or empty
    for feature in collection["features"]:
        feature["properties"] = _escaped(feature["properties"])
    return collection


def _escaped(properties: dict) -> dict:
    """Property values HTML-escaped: folium's tooltips put them into the page as markup, and names
    come from imported files (a unit named ``<img onerror=…>`` must stay text)."""
    return {key: html.escape(value) if isinstance(value, str) else value for key, value in properties.items()}


# --- the offline page ---------------------------------------------------------------------------


def _static_text(name: str) -> str:
    path = finders.find(name)
    if path is None:
        raise LookupError(f"static file {name!r} not found (is django-leaflet installed?)")
    with open(path, encoding="utf-8") as handle:
        return handle.read()


@cache
def _leaflet_assets() -> tuple[str, str]:
    """Leaflet's script and stylesheet, the stylesheet's images made data URIs."""

    def inline(match: re.Match) -> str:
        path = finders.find(f"leaflet/{match.group(1)}")
        if path is None:
            return "none"
        with open(path, "rb") as handle:
            return f"url(data:image/png;base64,{base64.b64encode(handle.read()).decode()})"

    css = re.sub(r"url\((images/[\w.-]+\.png)\)", inline, _static_text("leaflet/leaflet.css"))
    return _static_text("leaflet/leaflet.js"), css


class OfflineMap(folium.Map):
    """A folium map that links no CDN asset (jQuery, Bootstrap and the marker plugins are not
    used here); Leaflet is inlined by :func:`print_map_html`."""

    default_js: list = []
    default_css: list = []


def _summary_box(area: PrintArea, summary: PrintSummary, drawn: dict[str, int]) -> str:
    rows = [
        ("实有人口 residents", summary.residents),
        ("户数 dwellings", summary.dwellings),
        ("实有单位 units", summary.units),
        ("未办结事件 open events", summary.open_events),
    ]
    note = "".join(
        f"<div class='note'>仅绘出前 {drawn[k]:,} 个{label}点 (first {drawn[k]:,} drawn)</div>"
        for k, label, total in (("units", "单位", summary.units), ("events", "事件", summary.open_events))
        if drawn[k] < total and drawn[k] == MAX_POINTS
    )
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{v:,}</td></tr>" for k, v in rows)
    legend = "".join(
        f"<div><span class='dot' style='background:{POINT_COLOURS[k]}'></span>{label}</div>"
        for k, label in (("units", "单位 unit"), ("events", "未办结事件 open event"))
    )
    return f"""
<style>
  #print-summary {{position: absolute; top: 10px; right: 10px; z-index: 1000; background: #fff;
    border: 2px solid #1f4e79; padding: 8px 12px; font: 13px/1.4 sans-serif; max-width: 320px;}}
  #print-summary h1 {{font-size: 15px; margin: 0 0 4px;}}
  #print-summary .code {{font-family: monospace; color: #555;}}
  #print-summary table {{border-collapse: collapse; margin: 6px 0;}}
  #print-summary th {{text-align: left; font-weight: normal; padding-right: 12px;}}
  #print-summary td {{text-align: right; font-weight: bold;}}
  #print-summary .dot {{display: inline-block; width: 10px; height: 10px; border-radius: 5px; margin-right: 6px;}}
  #print-summary .note {{color: #a00; font-size: 11px;}}
  .leaflet-container {{background: #fff;}}
  @media print {{ .leaflet-control-zoom, .leaflet-control-layers {{display: none;}} }}
</style>
<div id="print-summary">
  <h1>{html.escape(area.name)} · {LEVEL_TITLES.get(area.level, area.level)}</h1>
  <div class="code">{html.escape(area.code)}</div>
  <table>{cells}</table>
  {legend}{note}
</div>"""


def print_map_html(*, area: PrintArea, reader: Reader) -> str:
    """The self-contained HTML page of the area's print map, with the points and counts of the
    reader's ``scope``."""
    summary = print_summary(area=area, scope=reader.scope)
    points = {layer_id: print_points(area=area, layer_id=layer_id, reader=reader) for layer_id in POINT_FIELDS}
    fmap = OfflineMap(location=None, tiles=None, control_scale=True, zoom_start=15)
    script, stylesheet = _leaflet_assets()
    header = fmap.get_root().header
    header.add_child(folium.Element(f"<style>{stylesheet}</style>"), name="leaflet_css_inline")
    header.add_child(folium.Element(f"<script>{script}</script>"), name="leaflet_js_inline")
    fmap.get_root().title = f"{area.name} {area.code}"

    if area.children:
        folium.GeoJson(
            {"type": "FeatureCollection", "features": list(area.children)},
            name="下级网格 child grids",
            style_function=lambda _: {"color": "#2e86c1", "weight": 1.5, "dashArray": "4 3", "fillOpacity": 0},
            tooltip=folium.GeoJsonTooltip(fields=["code", "name"], aliases=["编码", "名称"]),
        ).add_to(fmap)
    if area.boundary is not None:
        folium.GeoJson(
            area.boundary,
            name="边界 boundary",
            style_function=lambda _: {"color": "#c0392b", "weight": 3, "fillOpacity": 0.03},
        ).add_to(fmap)
    for layer_id, title in (("units", "单位 units"), ("events", "未办结事件 open events")):
        collection = points[layer_id]
        if not collection["features"]:
            continue
        fields = list(collection["features"][0]["properties"])
        folium.GeoJson(
            collection,
            name=title,
            marker=folium.CircleMarker(
                radius=4, color="#fff", weight=1, fill=True, fill_color=POINT_COLOURS[layer_id], fill_opacity=0.9
            ),
            tooltip=folium.GeoJsonTooltip(fields=fields) if fields else None,
        ).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)

    outlines = [area.boundary] if area.boundary is not None else list(area.children)
    bounds = _bounds(outlines) or _bounds([f for c in points.values() for f in c["features"]])
    if bounds:
        fmap.fit_bounds(bounds)
    drawn = {k: len(v["features"]) for k, v in points.items()}
    fmap.get_root().html.add_child(folium.Element(_summary_box(area, summary, drawn)))
    return fmap.get_root().render()


def _bounds(features: list[dict]) -> list[list[float]] | None:
    """[[south, west], [north, east]] of the features' coordinates, or None when there are none."""
    lons: list[float] = []
    lats: list[float] = []

    def walk(coords) -> None:
        if coords and isinstance(coords[0], (int, float)):
            lons.append(coords[0])
            lats.append(coords[1])
        else:
            for c in coords:
                walk(c)

    for feature in features:
        walk(feature["geometry"]["coordinates"])
    return [[min(lats), min(lons)], [max(lats), max(lons)]] if lons else None
