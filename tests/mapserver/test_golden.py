"""Our GeoJSON beside files an outside tool wrote.

GDAL's ogr2ogr read the rows of a small world straight from the tables, one plain statement per
layer (:data:`GOLDEN_SQL`, written apart from the catalog), and wrote ``tests/golden/<layer>.geojson``
(RFC 7946: lon/lat, 7 decimals). The OGC API's items and the GeoJSON export of each layer must
hold the same features as that file: the same property names, JSON types and values, and the
same geometries. A change of a layer's published fields shows here as a difference to an outside
writer's file, not as a test that follows the code.

To write the files again after a deliberate change of a layer's fields (then read the diff):
``MINQING_GOLDEN=write bash scripts/test.sh tests/mapserver/test_golden.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.contrib.gis.geos import Point, Polygon
from django.db import connection

from layers.models import Address, Building, Event, Unit
from layers.services import linking
from layers.taxonomy import taxonomy_seed
from tests.worlds.city import EAST_POINT, WEST_POINT, tiny_city
from tests.worlds.events import report

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
GOLDEN = Path(__file__).parents[1] / "golden"
WRITE = os.environ.get("MINQING_GOLDEN") == "write"

#: What each layer publishes, said once more in plain SQL over the tables, in feature order.
GOLDEN_SQL = {
    "regions_community": """SELECT code, name, valid_from, boundary FROM layers_region
                            WHERE level = 'community' ORDER BY id""",
    "grids_small": """SELECT g.code, g.name, c.code AS community_code, c.name AS community_name, g.boundary
                      FROM layers_grid g JOIN layers_region c ON c.id = g.community_id
                      WHERE g.level = 'small' ORDER BY g.id""",
    "buildings": """SELECT b.code, b.name, b.floors, b.use, b.district_code, g.code AS grid_code, b.footprint
                    FROM layers_building b LEFT JOIN layers_grid g ON g.id = b.grid_id ORDER BY b.id""",
    "addresses": """SELECT a.code, a.full_text, a.road, a.door_number, a.district_code, g.code AS grid_code,
                           a.location
                    FROM layers_address a LEFT JOIN layers_grid g ON g.id = a.grid_id ORDER BY a.id""",
    "events": """SELECT c.code AS category, c.family, e.status, e.channel, e.received_at, e.deadline,
                        e.district_code, rs.code AS street_code, rc.code AS community_code, g.code AS grid_code,
                        e.description, e.location
                 FROM layers_event e JOIN layers_category c ON c.id = e.category_id
                 LEFT JOIN layers_grid g ON g.id = e.grid_id
                 LEFT JOIN layers_region rs ON rs.id = e.street_id
                 LEFT JOIN layers_region rc ON rc.id = e.community_id
                 WHERE e.location IS NOT NULL ORDER BY e.id""",
    "units": """SELECT u.credit_code, u.name, u.kind, u.address_text AS address, u.district_code,
                       g.code AS grid_code, u.location
                FROM layers_unit u LEFT JOIN layers_grid g ON g.id = u.grid_id ORDER BY u.id""",
}


@pytest.fixture
def golden_world(transactional_db):
    """The tiny city and rows that are hard to encode: text with quotes, a backslash, a line
    break, a tab and an emoji; empty and missing values; a courtyard building whose two rings
    were both drawn counterclockwise (the hole must come out clockwise)."""
    city = tiny_city()
    lon, lat = EAST_POINT
    outer = ((lon - 0.0003, lat - 0.0003), (lon + 0.0003, lat - 0.0003), (lon + 0.0003, lat + 0.0003),
             (lon - 0.0003, lat + 0.0003), (lon - 0.0003, lat - 0.0003))  # fmt: skip
    courtyard = ((lon - 0.0001, lat - 0.0001), (lon + 0.0001, lat - 0.0001), (lon + 0.0001, lat + 0.0001),
                 (lon - 0.0001, lat + 0.0001), (lon - 0.0001, lat - 0.0001))  # fmt: skip
    Building.objects.create(
        code="B002", name="四合院", floors=None, use="commercial", footprint=Polygon(outer, courtyard, srid=4326)
    )
    Address.objects.create(
        code="A002",
        district_name="城关区",
        road='畅家巷"东"',
        door_number="",
        full_text='城关区畅家巷"东"\\2号\n后院 🏠',
        location=Point(lon, lat, srid=4326),
    )
    Unit.objects.create(
        credit_code="91620102MA7ABCDE1X",
        name="东街\t茶社",
        kind="individual",
        address_text="",
        location=Point(lon, lat, srid=4326),
    )
    linking.relink_all()
    taxonomy_seed()
    received = dt.datetime(2025, 6, 1, 9, 30, tzinfo=SHANGHAI)
    for at, description, deadline in (
        (WEST_POINT, '楼道堆放杂物，"消防通道"被堵', received + dt.timedelta(hours=24)),
        (EAST_POINT, "邻里噪音纠纷\n多次反映", None),
    ):
        event = report(category="hazard.fire", description=description, at=at)
        Event.objects.filter(pk=event.pk).update(received_at=received, deadline=deadline)
    report(category="hazard.fire", description="无法定位", at=None)  # no point: not on the map
    return city


def _ogr2ogr(layer: str, target: Path) -> None:
    settings = connection.settings_dict
    source = " ".join(
        f"{key}={value}"
        for key, value in (
            ("dbname", settings["NAME"]),
            ("host", settings["HOST"]),
            ("port", settings["PORT"]),
            ("user", settings["USER"]),
            ("password", settings["PASSWORD"]),
        )
        if value
    )
    target.unlink(missing_ok=True)
    sql = " ".join(GOLDEN_SQL[layer].split())
    done = subprocess.run(  # noqa: S603  (gdal-bin, fixed arguments)
        [shutil.which("ogr2ogr"), "-f", "GeoJSON", "-lco", "RFC7946=YES", "-lco", "WRITE_NAME=NO",
         "-nln", layer, str(target), f"PG:{source}", "-sql", sql],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


#: An RFC 3339 date-time: GDAL writes UTC with ``Z``, PostgreSQL ``+00:00``; both name one instant.
DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def _value(value: object) -> object:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) and DATE_TIME.fullmatch(value) else value


def _features(collection: dict) -> list[dict]:
    """Properties and geometry of each feature, in order, date-times as instants; the ``id`` is
    the row's key in the database, not part of the published content, so it is left out."""
    return [
        {"properties": {key: _value(value) for key, value in f["properties"].items()}, "geometry": f["geometry"]}
        for f in collection["features"]
    ]


def _golden(layer: str, ours: list[dict]) -> list[dict]:
    """The golden features of ``layer``. GDAL's RFC 7946 writer writes a one-part MultiPolygon as
    a Polygon (it is ready to cut shapes at the antimeridian); where our feature is a
    MultiPolygon, the golden Polygon is compared as its one part."""
    path = GOLDEN / f"{layer}.geojson"
    if WRITE:
        _ogr2ogr(layer, path)
    golden = _features(json.loads(path.read_text(encoding="utf-8")))
    for theirs, mine in zip(golden, ours, strict=False):
        if theirs["geometry"]["type"] == "Polygon" and mine["geometry"]["type"] == "MultiPolygon":
            theirs["geometry"] = {"type": "MultiPolygon", "coordinates": [theirs["geometry"]["coordinates"]]}
    return golden


@pytest.mark.parametrize("layer", sorted(GOLDEN_SQL))
def test_ogc_items_hold_what_gdal_wrote(golden_world, superuser_client, layer):
    answer = superuser_client.get(f"/ogc/collections/{layer}/items", {"limit": 100, "f": "json"})
    assert answer.status_code == 200, answer.content
    ours = _features(answer.json())
    assert ours == _golden(layer, ours)


@pytest.mark.parametrize("layer", sorted(GOLDEN_SQL))
def test_the_geojson_export_holds_what_gdal_wrote(golden_world, superuser_client, layer):
    answer = superuser_client.get(f"/exports/{layer}.geojson")
    assert answer.status_code == 200
    body = b"".join(answer.streaming_content) if answer.streaming else answer.content
    ours = _features(json.loads(body))
    assert ours == _golden(layer, ours)
