"""The catalog of published layers: one table, one id per layer everywhere.

The same id names the vector-tile layer (``/tiles/<id>/…``), the OGC API collection
(``/ogc/collections/<id>``) and the export (``/exports/<id>.<format>``). Each layer declares, as
data, where its rows come from (a FROM clause with the alias ``t``), its geometry, its fields
with who may read them, its zoom range, its filters and its style; the tile, OGC and export code
read only this description and never name a table themselves.

Every layer that holds registry rows, events or per-grid aggregates declares its ``scope`` rule,
so each surface narrows it to the reader's data scope the same way (:mod:`layers.protection.scope`).

Personal data never appears in a layer as points: the registry's persons are published only
as counts per grid (``grid_stats``); addresses, units and buildings carry no personal fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection

from layers.database.memo import Remembered
from layers.protection.scope import ScopeRule


@dataclass(frozen=True)
class Field:
    """One published attribute. ``sql`` is an expression over the alias ``t`` (and the joins of
    the layer's ``source``). ``roles`` limits who may read it (``None``: every reader)."""

    name: str
    sql: str
    type: str  # "string" | "integer" | "number" | "boolean" | "datetime" | "date"
    title: str  # Chinese
    title_en: str
    roles: frozenset[str] | None = None
    #: Personal data (``sql`` yields its AES-GCM ciphertext): never in tiles, OGC items or an
    #: export by default; only decrypted in an export by a holder of
    #: ``layers.export_personal_data`` who names a purpose (audited, mapserver/views/exports.py).
    personal: bool = False

    def readable_by(self, roles: Iterable[str], *, superuser: bool = False) -> bool:
        return superuser or self.roles is None or bool(self.roles & set(roles))


@dataclass(frozen=True)
class Filter:
    """A query parameter a layer accepts. ``sql`` holds one ``%s`` for each parsed value; the
    parser (a name from :mod:`mapserver.params`) turns the raw text into that value."""

    name: str
    sql: str
    parser: str  # "choice" | "category" | "datetime" | "code"
    description: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Layer:
    """A published layer: the contract every surface (tiles, OGC, exports) reads."""

    id: str
    title: str
    title_en: str
    description: str
    geometry_type: str  # "Point" | "Polygon" | "MultiPolygon"
    source: str  # FROM clause with alias t, e.g. "layers_grid t"
    where: str = "TRUE"  # fixed condition on t
    geometry_sql: str = "t.boundary"
    id_sql: str = "t.id"
    fields: tuple[Field, ...] = ()
    filters: tuple[Filter, ...] = ()
    #: Timestamp for OGC ``datetime`` and the time filters, when the layer has one.
    datetime_sql: str = ""
    minzoom: int = 0
    maxzoom: int = 22
    #: Tolerance in pixels for per-zoom simplification of polygons in tiles (0: none).
    simplify_pixels: float = 0.0
    #: Point layers: up to this zoom (inclusive) a tile carries clusters, not points: the points
    #: in each cell of ``cluster_pixels`` screen pixels become one feature with a ``count`` (and
    #: the point's own id and fields when the cell holds one). -1: never clustered.
    cluster_maxzoom: int = -1
    cluster_pixels: int = 16
    #: Tables whose changes invalidate cached tiles and pages of this layer.
    tables: tuple[str, ...] = ()
    style: dict = field(default_factory=dict)
    #: Roles that may read the layer at all (``None``: every authenticated reader).
    roles: frozenset[str] | None = None
    #: How the reader's data scope narrows the rows (:mod:`layers.protection.scope`); ``None``: reference
    #: data (region and grid outlines) that every reader sees whole.
    scope: ScopeRule | None = None

    def fields_for(self, roles: Iterable[str], *, superuser: bool = False) -> tuple[Field, ...]:
        """The fields these roles may read, personal fields never among them."""
        roles = set(roles)
        return tuple(f for f in self.fields if not f.personal and f.readable_by(roles, superuser=superuser))

    @property
    def personal_fields(self) -> tuple[Field, ...]:
        """The personal fields, left out unless an export is authorised and has a purpose."""
        return tuple(f for f in self.fields if f.personal)

    def readable_by(self, roles: Iterable[str], *, superuser: bool = False) -> bool:
        return superuser or self.roles is None or bool(self.roles & set(roles))

    def filter(self, name: str) -> Filter | None:
        return next((f for f in self.filters if f.name == name), None)


LAYERS: dict[str, Layer] = {}


def register(layer: Layer) -> Layer:
    if layer.id in LAYERS:
        raise ValueError(f"layer {layer.id!r} is registered twice")
    LAYERS[layer.id] = layer
    return layer


def layer_get(layer_id: str) -> Layer | None:
    return LAYERS.get(layer_id)


#: The statement behind :func:`data_version` (psycopg placeholders); the async tile server runs
#: it too, through its own driver.
DATA_VERSION_SQL = """SELECT string_agg(concat_ws(':', c.relfilenode, s.n_tup_ins, s.n_tup_upd, s.n_tup_del), ','
                             ORDER BY c.relname)
                      FROM pg_class c LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
                      WHERE c.relname = ANY(%s)"""

#: Data versions per (database, tables), shared by every surface of this process.
DATA_VERSIONS: Remembered[str] = Remembered(lambda: settings.MINQING_DATA_VERSION_SECONDS)


def data_version(layer: Layer) -> str:
    """A cheap token that changes whenever a row of the layer's tables changes: the statistics
    collector's insert/update/delete counters (committed work) and each table's file node
    (changes on TRUNCATE). Caches key on it so a write is never served stale for long.

    PostgreSQL flushes those counters about once a second, so the answer is remembered in this
    process for MINQING_DATA_VERSION_SECONDS as well: reading pg_stat_all_tables costs more than
    a cached tile (~0.7 ms), and a tile may be at most about two seconds stale.
    """
    if not layer.tables:
        return "static"
    key = (connection.settings_dict["NAME"], layer.tables)
    version = DATA_VERSIONS.get(key)
    if version is None:
        with connection.cursor() as cursor:
            cursor.execute(DATA_VERSION_SQL, [list(layer.tables)])
            version = cursor.fetchone()[0] or "empty"
        DATA_VERSIONS.put(key, version)
    return version


# --- the layers -------------------------------------------------------------------------------

_SENSITIVE_ROLES = frozenset({"administrator", "command_center", "grid_worker", "data_steward"})
_CODE_NAME = (Field("code", "t.code", "string", "编码", "code"), Field("name", "t.name", "string", "名称", "name"))

for _level, _zh, _min, _max in (
    ("district", "区县", 0, 14),
    ("street", "街道乡镇", 9, 16),
    ("community", "社区村", 11, 18),
):
    register(
        Layer(
            id=f"regions_{_level}",
            title=f"行政区划：{_zh}",
            title_en=f"Regions: {_level}",
            description=f"{_zh}边界（当前有效）。Current {_level} boundaries.",
            geometry_type="MultiPolygon",
            source="layers_region t",
            where=f"t.level = '{_level}' AND t.boundary IS NOT NULL",
            fields=(*_CODE_NAME, Field("valid_from", "t.valid_from", "date", "生效日期", "valid from")),
            minzoom=_min,
            maxzoom=_max,
            simplify_pixels=1.0,
            tables=("layers_region",),
            style={"color": "#1f4e79", "weight": 2 if _level == "district" else 1, "fillOpacity": 0},
        )
    )

for _level, _zh, _min in (("large", "大网格", 10), ("medium", "中网格", 12), ("small", "小网格", 13)):
    register(
        Layer(
            id=f"grids_{_level}",
            title=f"网格：{_zh}",
            title_en=f"Grids: {_level}",
            description=f"三级网格中的{_zh}。The {_level} grids of the three-level grid system.",
            geometry_type="MultiPolygon",
            source="layers_grid t JOIN layers_region c ON c.id = t.community_id",
            where=f"t.level = '{_level}'",
            fields=(
                *_CODE_NAME,
                Field("community_code", "c.code", "string", "社区编码", "community code"),
                Field("community_name", "c.name", "string", "社区", "community"),
            ),
            minzoom=_min,
            maxzoom=22,
            simplify_pixels=0.5,
            tables=("layers_grid",),
            style={"color": {"large": "#c0392b", "medium": "#d68910", "small": "#2e86c1"}[_level], "fillOpacity": 0.05},
        )
    )

#: The small grid's code reaches a layer through this join in its ``source`` (alias ``g``), not
#: through a correlated subquery per row: the planner can then hash the grids or memoise the
#: lookup per grid instead of running a subplan 1.7 M times in a whole-layer export. PostgreSQL
#: drops the join (LEFT, unique key) from any statement that does not read ``g``, so counts and
#: pages without the field pay nothing. These layers list ``layers_grid`` in ``tables``: renaming
#: a grid changes their rows' grid code.
_GRID_JOIN = " LEFT JOIN layers_grid g ON g.id = t.grid_id"
#: An event's street and community codes, joined like the grid's (aliases ``rs``, ``rc``): an
#: analyst groups events by area in the export, and the link ids mean nothing outside.
_AREA_JOINS = " LEFT JOIN layers_region rs ON rs.id = t.street_id LEFT JOIN layers_region rc ON rc.id = t.community_id"
#: Registry rows and events: narrowed by their own link columns (alias t).
_LINKED = ScopeRule("linked")
_LINKS = (
    Field("district_code", "t.district_code", "string", "区县编码", "district code"),
    Field("grid_code", "g.code", "string", "小网格编码", "small grid code"),
)

register(
    Layer(
        id="compounds",
        scope=_LINKED,
        title="小区",
        title_en="Compounds",
        description="居民小区（网格细胞）。Residential compounds inside small grids.",
        geometry_type="MultiPolygon",
        source="layers_compound t" + _GRID_JOIN,
        fields=(*_CODE_NAME, *_LINKS),
        minzoom=14,
        simplify_pixels=0.5,
        tables=("layers_compound", "layers_grid"),
        style={"color": "#7d3c98", "fillOpacity": 0.1},
    )
)
register(
    Layer(
        id="buildings",
        scope=_LINKED,
        title="实有房屋",
        title_en="Buildings",
        description="房屋轮廓。Building footprints.",
        geometry_type="Polygon",
        source="layers_building t" + _GRID_JOIN,
        geometry_sql="t.footprint",
        fields=(
            *_CODE_NAME,
            Field("floors", "t.floors", "integer", "层数", "floors"),
            Field("use", "t.use", "string", "用途", "use"),
            *_LINKS,
        ),
        minzoom=15,
        tables=("layers_building", "layers_grid"),
        style={"color": "#566573", "fillOpacity": 0.3},
    )
)
register(
    Layer(
        id="addresses",
        scope=_LINKED,
        title="标准地址",
        title_en="Standard addresses",
        description="一标三实标准地址（门牌与户室）。Standard addresses.",
        geometry_type="Point",
        source="layers_address t" + _GRID_JOIN,
        geometry_sql="t.location",
        fields=(
            Field("code", "t.code", "string", "地址编码", "code"),
            Field("full_text", "t.full_text", "string", "标准地址", "address"),
            Field("road", "t.road", "string", "道路", "road"),
            Field("door_number", "t.door_number", "string", "门牌号", "door number"),
            *_LINKS,
        ),
        minzoom=16,
        tables=("layers_address", "layers_grid"),
        style={"color": "#117864", "radius": 3},
    )
)
register(
    Layer(
        id="units",
        scope=_LINKED,
        title="实有单位",
        title_en="Units",
        description="企业、机关、社会组织等实有单位。Businesses and organisations.",
        geometry_type="Point",
        source="layers_unit t" + _GRID_JOIN,
        geometry_sql="t.location",
        fields=(
            Field("credit_code", "t.credit_code", "string", "统一社会信用代码", "credit code"),
            Field("name", "t.name", "string", "名称", "name"),
            Field("kind", "t.kind", "string", "类型", "kind"),
            Field("address", "t.address_text", "string", "地址", "address"),
            *_LINKS,
        ),
        id_sql="t.id",
        minzoom=14,
        tables=("layers_unit", "layers_grid"),
        style={"color": "#b9770e", "radius": 4},
    )
)

_EVENT_STATUSES = (
    "received", "triaged", "assigned", "in_progress", "resolved", "verified", "closed", "returned", "suspended",
    "reopened",
)  # fmt: skip
_EVENT_FILTERS = (
    Filter("category", "(c.code = %s OR c.family = %s)", "category", "分类：类族（dispute、hazard…）或细类编码"),
    Filter("status", "t.status = %s", "choice", "状态", _EVENT_STATUSES),
    Filter("since", "t.received_at >= %s", "datetime", "接收时间起（含）"),
    Filter("until", "t.received_at < %s", "datetime", "接收时间止（不含）"),
    # Region and grid codes through the link columns, as the event list and the statistics read
    # them; each code is looked up once (uncorrelated subqueries), not per row. An unknown code
    # matches nothing.
    Filter(
        "region",
        """t.district_code = %s
           OR t.street_id = (SELECT r.id FROM layers_region r WHERE r.code = %s AND r.level = 'street')
           OR t.community_id = (SELECT r.id FROM layers_region r WHERE r.code = %s AND r.level = 'community')
           OR t.district_code IN (SELECT d.code FROM layers_region d JOIN layers_region c ON c.id = d.parent_id
                                  WHERE c.code = %s AND c.level = 'city')""",
        "code",
        "行政区划编码：区县、街道或社区（12位）",
    ),
    Filter(
        "grid",
        """t.grid_id = (SELECT g.id FROM layers_grid g WHERE g.code = %s AND g.level = 'small')
           OR t.grid_medium_id = (SELECT g.id FROM layers_grid g WHERE g.code = %s AND g.level = 'medium')
           OR t.grid_large_id = (SELECT g.id FROM layers_grid g WHERE g.code = %s AND g.level = 'large')""",
        "code",
        "网格编码：小、中或大网格",
    ),
)
register(
    Layer(
        id="events",
        scope=_LINKED,
        title="民情事件",
        title_en="Events",
        description="各渠道民情事件（反映人信息不发布）。Citizen events; reporter data is never published.",
        geometry_type="Point",
        source="layers_event t JOIN layers_category c ON c.id = t.category_id" + _GRID_JOIN + _AREA_JOINS,
        where="t.location IS NOT NULL",
        geometry_sql="t.location",
        fields=(
            Field("category", "c.code", "string", "分类", "category"),
            Field("family", "c.family", "string", "类族", "family"),
            Field("status", "t.status", "string", "状态", "status"),
            Field("channel", "t.channel", "string", "渠道", "channel"),
            Field("received_at", "t.received_at", "datetime", "接收时间", "received at"),
            Field("deadline", "t.deadline", "datetime", "办理时限", "deadline"),
            Field("district_code", "t.district_code", "string", "区县编码", "district code"),
            Field("street_code", "rs.code", "string", "街道编码", "street code"),
            Field("community_code", "rc.code", "string", "社区编码", "community code"),
            Field("grid_code", "g.code", "string", "小网格编码", "small grid code"),
            Field("description", "t.description", "string", "描述", "description", roles=_SENSITIVE_ROLES),
            # The reporter's contact, for an authorised export with a purpose only (never published).
            Field("reporter_name", "t.reporter_name_cipher", "string", "反映人", "reporter name", personal=True),
            Field("reporter_phone", "t.reporter_phone_cipher", "string", "联系电话", "reporter phone", personal=True),
        ),
        filters=_EVENT_FILTERS,
        datetime_sql="t.received_at",
        minzoom=10,
        # A city's events in one z10 tile were 2.4 MB of points (27,750 a month); clusters keep
        # the low zooms to a few thousand features at most, and from z14 each point is drawn.
        cluster_maxzoom=13,
        tables=("layers_event", "layers_grid", "layers_region"),
        style={"color": "#e74c3c", "radius": 4},
    )
)
register(
    Layer(
        id="grid_stats",
        scope=ScopeRule("grid"),
        title="网格统计",
        title_en="Grid statistics",
        description=(
            "每个小网格的人口、户数、单位数与事件数（含每千人事件数）。"
            "Per small grid: residents, dwellings, units, events and events per 1,000 residents."
        ),
        geometry_type="MultiPolygon",
        source="""layers_grid t
            LEFT JOIN LATERAL (SELECT count(*) AS residents FROM layers_person p WHERE p.grid_id = t.id) p ON TRUE
            LEFT JOIN LATERAL (SELECT count(*) AS dwellings FROM layers_dwelling d WHERE d.grid_id = t.id) d ON TRUE
            LEFT JOIN LATERAL (SELECT count(*) AS units FROM layers_unit u WHERE u.grid_id = t.id) u ON TRUE
            LEFT JOIN LATERAL (
                SELECT count(*) AS events,
                       count(*) FILTER (WHERE e.status NOT IN ('resolved', 'verified', 'closed')) AS open_events
                FROM layers_event e WHERE e.grid_id = t.id) e ON TRUE""",
        where="t.level = 'small'",
        fields=(
            *_CODE_NAME,
            Field("residents", "p.residents", "integer", "实有人口", "residents"),
            Field("dwellings", "d.dwellings", "integer", "户数", "dwellings"),
            Field("units", "u.units", "integer", "实有单位", "units"),
            Field("events", "e.events", "integer", "事件数", "events"),
            Field("open_events", "e.open_events", "integer", "未办结事件", "open events"),
            Field(
                "events_per_1000",
                "round(1000.0 * e.events / nullif(p.residents, 0), 2)",
                "number",
                "每千人事件数",
                "events per 1,000 residents",
            ),
        ),
        minzoom=12,
        simplify_pixels=0.5,
        tables=("layers_grid", "layers_person", "layers_dwelling", "layers_unit", "layers_event"),
        style={"choropleth": "events_per_1000", "colors": ["#fff5eb", "#fdae6b", "#e6550d", "#a63603"]},
    )
)
