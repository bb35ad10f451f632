"""The layer catalog: every registered layer queries fine on the tiny demo city (its SQL is
built from the Layer alone, as tiles, OGC and exports build theirs), and ``GET /api/layers``
shows each reader only the fields their roles may read."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection

from layers.publishing.catalog import LAYERS, Layer
from layers.taxonomy import taxonomy_seed

pytestmark = pytest.mark.django_db

END = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
#: A sample value for each filter parser, so that every filter's SQL runs too.
SAMPLE_VALUES = {"choice": None, "category": "dispute", "datetime": END - dt.timedelta(days=90), "code": "620102"}


@pytest.fixture
def tiny_city_with_events():
    call_command("generate_demo_city", "--scale", "tiny", "--seed", "1", verbosity=0)
    taxonomy_seed()
    call_command("generate_demo_events", "--seed", "3", "--end", END.isoformat(), stdout=io.StringIO(), verbosity=0)


def layer_sample_sql(layer: Layer, *, filtered: bool) -> tuple[str, list]:
    """``SELECT … LIMIT 5`` over every field of the layer, with every filter applied if asked."""
    columns = ", ".join(f"{f.sql} AS {f.name}" for f in layer.fields)
    conditions, values = [layer.where], []
    for flt in layer.filters if filtered else ():
        value = flt.choices[0] if flt.parser == "choice" else SAMPLE_VALUES[flt.parser]
        conditions.append(flt.sql)
        values += [value] * flt.sql.count("%s")
    sql = (
        f"SELECT {layer.id_sql} AS id, ST_GeometryType({layer.geometry_sql}) AS geometry_type,"
        f" ST_SRID({layer.geometry_sql}) AS srid, {columns}"
        f" FROM {layer.source} WHERE {' AND '.join(f'({c})' for c in conditions)} LIMIT 5"
    )
    return sql, values


def layer_sample(layer: Layer, *, filtered: bool) -> list[dict]:
    sql, values = layer_sample_sql(layer, filtered=filtered)
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        names = [c.name for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.mark.parametrize("layer_id", sorted(LAYERS))
def test_every_layer_queries_on_the_tiny_city(tiny_city_with_events, layer_id):
    layer = LAYERS[layer_id]
    rows = layer_sample(layer, filtered=False)
    assert rows, f"{layer_id}: no rows on the tiny demo city"
    for row in rows:
        assert row["srid"] == 4326
        assert row["geometry_type"].removeprefix("ST_") == layer.geometry_type
        assert set(row) == {"id", "geometry_type", "srid", *(f.name for f in layer.fields)}
    # The filters' SQL runs with a parsed value bound to each placeholder.
    layer_sample(layer, filtered=True)


def test_every_layer_is_well_formed():
    for layer in LAYERS.values():
        assert 0 <= layer.minzoom <= layer.maxzoom <= 22, layer.id
        names = [f.name for f in layer.fields]
        assert len(names) == len(set(names)), layer.id
        assert all(f.type in {"string", "integer", "number", "boolean", "datetime", "date"} for f in layer.fields)
        assert layer.tables, layer.id


# --- GET /api/layers ---------------------------------------------------------------------------


@pytest.fixture
def reader(client, django_user_model):
    def login(role: str | None, *, superuser: bool = False):
        user = django_user_model.objects.create_user(f"u_{role}_{superuser}", is_superuser=superuser)
        if role:
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        client.force_login(user)
        response = client.get("/api/layers")
        assert response.status_code == 200, response.content
        return {layer["id"]: layer for layer in response.json()["layers"]}

    return login


def _field_names(layer: dict) -> list[str]:
    return [f["name"] for f in layer["fields"]]


@pytest.mark.parametrize(
    "role, superuser, sees_description",
    [
        ("analyst", False, False),
        ("grid_worker", False, True),
        ("command_center", False, True),
        (None, False, False),
        (None, True, True),
    ],
)
def test_event_description_follows_the_role(reader, role, superuser, sees_description):
    layers = reader(role, superuser=superuser)
    assert set(layers) == set(LAYERS)
    assert ("description" in _field_names(layers["events"])) is sees_description
    assert "status" in _field_names(layers["events"])


def test_catalog_entry_shape(reader):
    events = reader("analyst")["events"]
    assert events["title"] == "民情事件" and events["title_en"] == "Events"
    assert events["geometry_type"] == "Point"
    assert events["minzoom"] == 10 and events["maxzoom"] == 22
    assert events["fields"][0] == {"name": "category", "type": "string", "title": "分类", "title_en": "category"}
    assert [f["name"] for f in events["filters"]] == ["category", "status", "since", "until", "region", "grid"]
    assert events["filters"][1]["choices"][0] == "received"
    assert events["style"] == {"color": "#e74c3c", "radius": 4}
    assert events["links"] == {
        "tiles": "/tiles/events/{z}/{x}/{y}.pbf",
        "tilejson": "/tiles/events.json",
        "ogc": "/ogc/collections/events",
        "exports": {
            "geojson": "/exports/events.geojson",
            "gpkg": "/exports/events.gpkg",
            "csv": "/exports/events.csv",
            "shp": "/exports/events.shp",
        },
    }


def test_catalog_needs_a_login(client):
    response = client.get("/api/layers")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_catalog_is_in_the_openapi_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/layers" in schema["paths"]
    assert "CatalogLayer" in schema["components"]["schemas"]
