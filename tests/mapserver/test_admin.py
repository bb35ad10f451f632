"""The data steward's admin: every page renders, maps come from local static files, big tables
never draw a <select> over themselves, personal data stays masked, grid redraws keep history."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.contrib.gis.geos import Point
from django.contrib.staticfiles import finders
from django.urls import reverse
from django.utils import timezone

from layers import admin as layers_admin
from layers import selectors
from layers.models import Address, BoundaryVersion, Dwelling, Grid, Person
from tests.worlds.city import EAST_POINT, ID_NUMBER, PHONE
from tests.worlds.factories import ORIGIN, SIZE, box

pytestmark = pytest.mark.django_db

MODELS = ["region", "grid", "boundaryversion", "compound", "building", "address", "dwelling", "person", "unit"]


def change_url(model: str, pk: int) -> str:
    return reverse(f"admin:layers_{model}_change", args=[pk])


def external_urls(html: str) -> list[str]:
    """Every script, stylesheet or image the page would fetch from another host."""
    return re.findall(r'(?:src|href)="((?:https?:)?//[^"]+)"', html)


@pytest.mark.parametrize("model", MODELS)
def test_changelist_renders_with_rows(city, superuser_client, model):
    """Each list page answers 200 and shows the tiny city's row."""
    response = superuser_client.get(reverse(f"admin:layers_{model}_changelist"))
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1


@pytest.mark.parametrize("model", ["region", "grid", "compound", "building", "address", "dwelling", "person", "unit"])
def test_changelist_search_by_code_or_name(city, superuser_client, model):
    """Searching a list by its row's code (or a person's name) finds exactly that row."""
    term = {
        "region": "620102001001",
        "grid": city.grids["west"].code,
        "compound": "C001",
        "building": "B001",
        "address": "畅家巷1号1号楼",
        "dwelling": "A001-101",
        "person": "张三",
        "unit": "91620102MA71234567",
    }[model]
    response = superuser_client.get(reverse(f"admin:layers_{model}_changelist"), {"q": term})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1


def test_person_search_by_full_id_number_uses_the_digest(city, superuser_client):
    """The clear ID number is not stored; a full number is found through its keyed digest."""
    url = reverse("admin:layers_person_changelist")
    assert superuser_client.get(url, {"q": ID_NUMBER.lower()}).context["cl"].result_count == 1
    assert superuser_client.get(url, {"q": "620102198001019999"}).context["cl"].result_count == 0


@pytest.mark.parametrize(
    ("model", "field", "geometry"),
    [
        ("region", "boundary", "MultiPolygon"),
        ("grid", "boundary", "MultiPolygon"),
        ("compound", "boundary", "MultiPolygon"),
        ("building", "footprint", "Polygon"),
        ("address", "location", "Point"),
        ("unit", "location", "Point"),
    ],
)
def test_change_page_has_a_local_leaflet_map(city, superuser_client, model, field, geometry):
    """The geometry is edited on a leaflet map whose scripts and styles are our static files."""
    obj = {
        "region": city.regions["community"],
        "grid": city.grids["west"],
        "compound": city.compound,
        "building": city.building,
        "address": city.address,
        "unit": city.unit,
    }[model]
    response = superuser_client.get(change_url(model, obj.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<div id="id_{field}-map" class="leaflet-container-default"></div>' in html
    assert f"geodjango_id_{field}.geom_type = '{geometry}'" in html
    assert f"geodjango_id_{field}.modifiable = true" in html
    # The current geometry is in the (hidden) field the map edits.
    textarea = re.search(rf'<textarea id="id_{field}"[^>]*>([^<]*)</textarea>', html).group(1)
    assert json.loads(textarea.replace("&quot;", '"'))["type"] == geometry
    for asset in ("leaflet/leaflet.js", "leaflet/leaflet.css", "leaflet/leaflet.extras.js", "leaflet/leaflet.forms.js"):
        assert f'"/static/{asset}"' in html
        assert finders.find(asset), f"{asset} is not among the static files"
    assert external_urls(html) == []


def test_leaflet_maps_load_no_internet_tiles(city, superuser_client):
    """The only tile layer is the project's own offline basemap: nothing comes from the internet."""
    html = superuser_client.get(change_url("grid", city.grids["west"].pk)).content.decode()
    options = json.loads(re.search(r"var djoptions = (\{.*?\}),\n", html).group(1))
    assert [layer[1] for layer in options["layers"]] == ["/basemaps/offline/{z}/{x}/{y}.png"]
    assert "tile.openstreetmap.org" not in html


@pytest.mark.parametrize(
    ("model", "raw_id_fields"),
    [
        ("building", ["compound"]),
        ("address", ["building"]),
        ("dwelling", ["building", "address"]),
        ("person", ["dwelling", "address"]),
        ("unit", ["address"]),
    ],
)
def test_big_table_links_are_raw_ids_not_selects(city, superuser_client, model, raw_id_fields):
    """A link to a table of millions is an id box with a lookup, never a <select> of every row."""
    obj = {
        "building": city.building,
        "address": city.address,
        "dwelling": city.dwelling,
        "person": city.person,
        "unit": city.unit,
    }[model]
    html = superuser_client.get(change_url(model, obj.pk)).content.decode()
    for field in raw_id_fields:
        assert re.search(rf'<input type="text" name="{field}"[^>]*class="vForeignKeyRawIdAdminField"', html)
        assert f'<select name="{field}"' not in html
    # The derived links are shown, not edited.
    assert '<select name="grid"' not in html
    assert city.grids["west"].name in html


def test_grid_links_use_autocomplete(city, superuser_client):
    html = superuser_client.get(change_url("grid", city.grids["west"].pk)).content.decode()
    for field in ("parent", "community", "worker"):
        assert re.search(rf'<select name="{field}"[^>]*class="admin-autocomplete', html)


def test_big_tables_skip_the_full_count(city, superuser_client):
    for model in ("compound", "building", "address", "dwelling", "person", "unit"):
        cl = superuser_client.get(reverse(f"admin:layers_{model}_changelist")).context["cl"]
        assert cl.show_full_result_count is False
        assert cl.list_select_related


def test_unfiltered_lists_count_from_the_planner(city, monkeypatch):
    """The paginator asks the planner for an unfiltered list and counts a filtered one exactly."""
    monkeypatch.setattr(selectors, "estimated_count", lambda model: 1_234_567)
    unfiltered = layers_admin.EstimatedCountPaginator(Address.objects.order_by("pk"), 50)
    filtered = layers_admin.EstimatedCountPaginator(Address.objects.filter(code="A001").order_by("pk"), 50)
    assert unfiltered.count == 1_234_567
    assert filtered.count == 1


def test_person_page_shows_only_masked_personal_data(city, superuser_client):
    html = superuser_client.get(change_url("person", city.person.pk)).content.decode()
    assert "620102***********X" in html
    assert "139****5678" in html
    for secret in (ID_NUMBER, PHONE, city.person.id_number_cipher, city.person.id_number_digest):
        assert secret not in html
    for field in ("id_number_cipher", "id_number_digest", "phone_cipher", "phone_digest"):
        assert field not in html
    # Personal columns are read-only: no input for them.
    for field in ("name", "gender", "birth_date"):
        assert f'name="{field}"' not in html
    assert 'name="residence"' in html


def test_person_list_shows_masked_columns(city, superuser_client):
    html = superuser_client.get(reverse("admin:layers_person_changelist")).content.decode()
    assert "620102***********X" in html
    assert ID_NUMBER not in html


def test_persons_are_not_added_in_the_admin(city, superuser_client):
    assert superuser_client.get(reverse("admin:layers_person_add")).status_code == 403


def test_boundary_versions_are_read_only(city, superuser_client):
    """History shows on a map that cannot be edited; it cannot be added, changed or deleted."""
    url = change_url("boundaryversion", city.version.pk)
    response = superuser_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<div id="id_boundary-map" class="leaflet-container-default"></div>' in html
    assert "geodjango_id_boundary.modifiable = false" in html
    assert '"/static/leaflet/leaflet.js"' in html
    assert 'name="_save"' not in html
    assert superuser_client.get(reverse("admin:layers_boundaryversion_add")).status_code == 403
    posted = superuser_client.post(url, {"code": "X", "subject": "grid", "level": "small", "valid_to": "2025-01-01"})
    assert posted.status_code == 403
    assert BoundaryVersion.objects.get().code == city.grids["west"].code
    delete = reverse("admin:layers_boundaryversion_delete", args=[city.version.pk])
    assert superuser_client.post(delete, {"post": "yes"}).status_code == 403


def grid_form(grid: Grid, **changes) -> dict:
    data = {
        "code": grid.code,
        "name": grid.name,
        "level": grid.level,
        "parent": grid.parent_id or "",
        "community": grid.community_id,
        "boundary": grid.boundary.geojson,
        "valid_from": grid.valid_from.isoformat() if grid.valid_from else "",
        "worker": grid.worker_id or "",
        "_save": "Save",
    }
    data.update(changes)
    return data


def test_redrawing_a_grid_archives_the_old_boundary_and_relinks(city, superuser_client):
    """Moving the west grid's east edge over the address's neighbour keeps the old shape as
    history (valid until today) and relinks the rows now inside."""
    west = city.grids["west"]
    old = west.boundary
    lon, lat = ORIGIN
    wider = box(lon, lat, EAST_POINT[0] + 0.001, lat + SIZE)
    response = superuser_client.post(change_url("grid", west.pk), grid_form(west, boundary=wider.geojson))
    assert response.status_code == 302, response.content.decode()
    west.refresh_from_db()
    assert west.boundary.equals(wider)
    assert west.valid_from == timezone.localdate()
    version = BoundaryVersion.objects.get(code=west.code, valid_to=timezone.localdate())
    assert version.boundary.equals(old)
    assert version.source == "admin:root"


def test_saving_a_grid_without_a_new_boundary_keeps_history_untouched(city, superuser_client):
    west = city.grids["west"]
    response = superuser_client.post(change_url("grid", west.pk), grid_form(west, name="西小网格（改名）"))
    assert response.status_code == 302
    west.refresh_from_db()
    assert west.name == "西小网格（改名）"
    assert BoundaryVersion.objects.count() == 1


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {
                "boundary": "SRID=4326;MULTIPOLYGON(((103.83 36.06, 103.84 36.07, 103.84 36.06, 103.83 36.07, 103.83 36.06)))"
            },
            "boundary",
            "invalid boundary: Self-intersection[103.835 36.065]",
        ),
        (
            {"boundary": box(103.83, 36.06, 103.836, 36.07).geojson, "valid_from": "2019-12-31"},
            "valid_from",
            "before the current boundary's start 2020-01-01",
        ),
    ],
)
def test_bad_grid_redraws_are_refused_with_the_field(city, superuser_client, changes, field, message):
    west = city.grids["west"]
    Grid.objects.filter(pk=west.pk).update(valid_from=dt.date(2020, 1, 1))
    west.refresh_from_db()
    response = superuser_client.post(change_url("grid", west.pk), grid_form(west, **changes))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field] == [message]
    assert BoundaryVersion.objects.count() == 1


def test_moving_an_address_relinks_it_and_its_residents(city, superuser_client):
    """An address dragged into the east grid takes that grid, and so do its dwelling and person."""
    address = city.address
    data = {
        field: getattr(address, field)
        for field in (
            "code",
            "district_name",
            "street_name",
            "road",
            "door_number",
            "compound_name",
            "building_number",
            "entrance",
            "floor",
            "room",
            "full_text",
        )
    }
    data.update(location=json.dumps({"type": "Point", "coordinates": list(EAST_POINT)}), building=address.building_id)
    response = superuser_client.post(change_url("address", address.pk), {**data, "_save": "Save"})
    assert response.status_code == 302, response.content.decode()
    east = city.grids["east"]
    assert Address.objects.get(pk=address.pk).grid_id == east.pk
    assert Person.objects.get(pk=city.person.pk).grid_id == east.pk
    assert Dwelling.objects.get(pk=city.dwelling.pk).grid_id == east.pk


@pytest.mark.parametrize(
    ("field", "term", "expected"),
    [
        ("community", "620102", ["畅家巷社区 (620102001001)"]),
        (
            "parent",
            "网格",
            [
                "一大网格 (62010200100101)",
                "一中网格 (6201020010010101)",
                "西小网格 (620102001001010101)",
                "东小网格 (620102001001010102)",
            ],
        ),
        ("worker", "roo", ["root"]),
    ],
)
def test_grid_autocomplete_searches_its_choices(city, superuser_client, field, term, expected):
    """The autocomplete boxes search codes and names, and a grid's community offers communities only."""
    response = superuser_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "layers", "model_name": "grid", "field_name": field, "term": term},
    )
    assert response.status_code == 200
    assert [result["text"] for result in response.json()["results"]] == expected


def test_adding_a_grid_links_the_rows_inside_it(city, superuser_client):
    """An address outside every grid joins the small grid added around it."""
    lon, lat = ORIGIN[0] + SIZE + 0.002, ORIGIN[1] + 0.005
    outside = Address.objects.create(code="A002", full_text="城关区畅家巷9号", location=Point(lon, lat, srid=4326))
    medium = city.grids["medium"]
    data = grid_form(
        medium,
        code=medium.code + "03",
        name="新小网格",
        level="small",
        parent=medium.pk,
        boundary=box(lon - 0.001, lat - 0.001, lon + 0.001, lat + 0.001).geojson,
        valid_from="2025-01-01",
    )
    response = superuser_client.post(reverse("admin:layers_grid_add"), data)
    assert response.status_code == 302, response.content.decode()
    added = Grid.objects.get(code=medium.code + "03")
    outside.refresh_from_db()
    assert (outside.grid_id, outside.grid_medium_id, outside.street_id) == (
        added.pk,
        medium.pk,
        city.regions["street"].pk,
    )
    assert Address.objects.get(pk=city.address.pk).grid_id == city.grids["west"].pk
