"""Personal data: masked on every output by default; revealed one value at a time only with
layers.reveal_personal_data, inside the reader's scope and with a purpose, and audited (a refusal
too); exports leave personal fields out unless the exporter holds layers.export_personal_data
and names a purpose (audited); the roles get exactly the grants README "Security" lists."""

from __future__ import annotations

import csv
import io
import json

import mapbox_vector_tile
import pytest
from django.contrib.auth.models import Group, Permission
from django.test import override_settings

import pyogrio

from layers.models import AuditEntry, Grid
from layers.protection.audit import audit_flush
from layers.services.events import event_create
from layers.services.users import Role, roles_ensure
from layers.taxonomy import taxonomy_seed
from tests.worlds.city import EAST_POINT, ID_NUMBER, PHONE, WEST_POINT

pytestmark = pytest.mark.django_db

REPORTER = "张三丰"


@pytest.fixture
def world(city):
    """The tiny city, the seed taxonomy, the role groups, and one event in the west grid whose
    reporter left a name and phone."""
    taxonomy_seed()
    roles_ensure()
    event, _ = event_create(
        channel="hotline",
        external_id="H-1",
        category_code="hazard.fire",
        description="楼道堆放杂物",
        lon=WEST_POINT[0],
        lat=WEST_POINT[1],
        reporter_name=REPORTER,
        reporter_phone=PHONE,
    )
    city.event = event
    return city


@pytest.fixture
def login(client, django_user_model):
    """``login(role or None, superuser=False, grid=None, perms=())`` → a client signed in as a new
    user with that role, working ``grid`` and holding ``perms`` (codenames in layers)."""

    def sign_in(role: str | None, *, superuser: bool = False, grid: Grid | None = None, perms: tuple = ()):
        name = f"{role or 'nobody'}-{'su' if superuser else 'u'}-{len(perms)}-{grid.pk if grid else 0}"
        user = django_user_model.objects.create_user(name, is_superuser=superuser, is_staff=superuser)
        if role:
            user.groups.add(Group.objects.get(name=role))
        for codename in perms:
            user.user_permissions.add(Permission.objects.get(codename=codename))
        if grid is not None:
            Grid.objects.filter(pk=grid.pk).update(worker=user)
        client.force_login(user)
        return client

    return sign_in


def post(client, path: str, body) -> object:
    raw = body if isinstance(body, str | bytes) else json.dumps(body, ensure_ascii=False)
    return client.post(path, raw, content_type="application/json")


def audited(action: str) -> list[tuple]:
    """(actor, target, detail) of the entries of ``action``; each was recorded during a request,
    so each names the client's address (the test client's), left out of the detail returned."""
    audit_flush()
    entries = list(AuditEntry.objects.filter(action=action).order_by("seq"))
    assert all(e.detail.get("client") == "127.0.0.1" for e in entries), [e.detail for e in entries]
    return [(e.actor, e.target, {k: v for k, v in e.detail.items() if k != "client"}) for e in entries]


# --- roles ------------------------------------------------------------------------------------------


def test_role_grants_are_as_documented(world):
    granted = {
        role.value: sorted(
            Permission.objects.filter(
                group__name=role.value,
                codename__in=["reveal_personal_data", "export_personal_data", "view_auditentry"],
            ).values_list("codename", flat=True)
        )
        for role in Role
    }
    assert granted == {
        "administrator": ["export_personal_data", "reveal_personal_data", "view_auditentry"],
        "command_center": ["reveal_personal_data"],
        "analyst": [],
        "leader": [],
        "grid_worker": [],
        "data_steward": [],
        "street_staff": [],
        "community_staff": [],
    }


# --- reveal -------------------------------------------------------------------------------------------

REVEALS = [
    # (who, field, status, value)
    ({"role": "administrator"}, "id_number", 200, ID_NUMBER),
    ({"role": "administrator"}, "phone", 200, PHONE),
    ({"role": "command_center"}, "id_number", 200, ID_NUMBER),
    ({"role": None, "superuser": True}, "phone", 200, PHONE),
    ({"role": "analyst"}, "id_number", 403, None),
    ({"role": "data_steward"}, "phone", 403, None),
    ({"role": "grid_worker", "grid": "west"}, "id_number", 403, None),
    # Granted by hand, but the resident lives outside the worker's grid: as if there were none.
    ({"role": "grid_worker", "grid": "east", "perms": ("reveal_personal_data",)}, "id_number", 404, None),
    ({"role": "grid_worker", "grid": "west", "perms": ("reveal_personal_data",)}, "id_number", 200, ID_NUMBER),
]


@pytest.mark.parametrize("who, field, status, value", REVEALS)
def test_reveal_a_resident(world, login, who, field, status, value):
    grid = world.grids[who["grid"]] if "grid" in who else None
    client = login(who["role"], superuser=who.get("superuser", False), grid=grid, perms=who.get("perms", ()))
    response = post(client, f"/api/persons/{world.person.pk}/reveal", {"field": field, "purpose": "核实身份 verify"})
    assert response.status_code == status, response.content
    target = f"person:{world.person.pk}"
    masked = world.person.id_number_masked if field == "id_number" else world.person.phone_masked
    if status == 200:
        assert response.json() == {
            "subject": "person",
            "id": world.person.pk,
            "field": field,
            "value": value,
            "masked": masked,
        }
        assert response["Cache-Control"] == "no-store"
        [(actor, entry_target, detail)] = audited("personal.reveal")
        assert (entry_target, detail) == (target, {"field": field, "purpose": "核实身份 verify", "masked": masked})
        assert value not in json.dumps(detail, ensure_ascii=False)
    elif status == 403:
        assert response.json() == {
            "error": {
                "code": "permission_denied",
                "message": f"Revealing {field} needs the permission layers.reveal_personal_data.",
            }
        }
        assert [(t, d) for _, t, d in audited("personal.reveal_denied")] == [
            (target, {"field": field, "purpose": "核实身份 verify"})
        ]
        assert audited("personal.reveal") == []
    else:
        assert response.json()["error"]["message"] == f"No person with id {world.person.pk}."
        assert audited("personal.reveal") == []


def test_reveal_an_event_reporter(world, login):
    client = login("command_center")
    event = world.event
    for field, value in (("reporter_phone", PHONE), ("reporter_name", REPORTER)):
        response = post(client, f"/api/events/{event.pk}/reveal", {"field": field, "purpose": "回访"})
        assert response.status_code == 200
        assert response.json()["value"] == value
    assert [(t, d["field"]) for _, t, d in audited("personal.reveal")] == [
        (f"event:{event.pk}", "reporter_phone"),
        (f"event:{event.pk}", "reporter_name"),
    ]
    silent, _ = event_create(
        channel="hotline", external_id="H-2", category_code="hazard", description="无名", address="城关区"
    )
    response = post(client, f"/api/events/{silent.pk}/reveal", {"field": "reporter_phone", "purpose": "回访"})
    assert (response.status_code, response.json()["error"]["message"]) == (
        404,
        f"reporter_phone: event {silent.pk} has none on record",
    )


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("persons/{id}", {"purpose": "核实"}, 400, "field: is required"),
        ("persons/{id}", {"field": "name", "purpose": "核实"}, 400, "field: must be one of id_number, phone, got 'name'"),
        ("events/{event}", {"field": "id_number", "purpose": "核实"}, 400,
         "field: must be one of description, reporter_name, reporter_phone, got 'id_number'"),
        ("persons/{id}", {"field": "phone"}, 400, "purpose: is required"),
        ("persons/{id}", {"field": "phone", "purpose": "  "}, 400, "purpose: is required"),
        ("persons/{id}", {"field": "phone", "purpose": "x"}, 400,
         "purpose: must say why the data is needed, at least 2 characters"),
        ("persons/{id}", {"field": "phone", "purpose": "回访\n其他"}, 400,
         "purpose: must be one line of text (no control characters)"),
        ("persons/{id}", {"field": "phone", "purpose": "长" * 201}, 400, "purpose: must be at most 200 characters, got 201"),
        ("persons/{id}", {"field": "phone", "purpose": 5}, 400, "purpose: must be text"),
        ("persons/{id}", "[]", 400, "body: must be a JSON object, got an array"),
        ("persons/999999999", {"field": "phone", "purpose": "核实"}, 404, "No person with id 999999999."),
        ("persons/99999999999999999999", {"field": "phone", "purpose": "核实"}, 404,
         "No person with id 99999999999999999999."),
    ],
)  # fmt: skip
def test_reveal_bad_requests(world, login, path, body, status, message):
    client = login("administrator")
    url = "/api/" + path.format(id=world.person.pk, event=world.event.pk) + "/reveal"
    response = post(client, url, body)
    assert (response.status_code, response.json()["error"]["message"]) == (status, message)
    assert audited("personal.reveal") == []


# --- personal data in free text ------------------------------------------------------------------

WRITTEN = "楼上漏水，请联系我 139-1234-5678，身份证 62010219800101123X，房东座机 0931-8123456"
SHOWN = "楼上漏水，请联系我 139****5678，身份证 620102***********X，房东座机 0931****3456"


def test_an_id_number_or_phone_written_into_a_description_is_masked_everywhere(world, login):
    """The review found them served in full to every reader of the description. They are
    masked on intake; the text as written is kept encrypted and revealed only by the reveal."""
    client = login(None, superuser=True)
    created = post(
        client,
        "/api/events",
        {
            "channel": "hotline",
            "category": "hazard.fire",
            "description": WRITTEN,
            "location": {"lon": WEST_POINT[0], "lat": WEST_POINT[1]},
        },
    )
    assert created.status_code == 201
    event_id = created.json()["id"]
    assert created.json()["description"] == SHOWN
    paths = [
        f"/api/events/{event_id}",
        "/api/events",
        f"/open311/v2/requests/{event_id}.json",
        f"/ogc/collections/events/items/{event_id}",
        "/exports/events.csv",
        "/exports/events.geojson",
        _tile_path(*WEST_POINT),
    ]
    for path in paths:
        response = client.get(path)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        if path.endswith(".pbf"):
            body = json.dumps(mapbox_vector_tile.decode(body), ensure_ascii=False).encode()
        text = body.decode("utf-8")
        assert "139****5678" in text, path
        for secret in ("1234-5678", "12345678", "62010219800101123X", "8123456"):
            assert secret not in text, (path, secret)
    revealed = post(client, f"/api/events/{event_id}/reveal", {"field": "description", "purpose": "回访核实"})
    assert (revealed.status_code, revealed.json()["value"], revealed.json()["masked"]) == (200, WRITTEN, SHOWN)
    # A reader who may not reveal gets 403, and the attempt is audited.
    refused = post(login("grid_worker", grid=world.grids["west"]), f"/api/events/{event_id}/reveal",
                   {"field": "description", "purpose": "看看"})  # fmt: skip
    assert refused.status_code == 403
    assert [d["field"] for _, _, d in audited("personal.reveal_denied")] == ["description"]


def test_a_description_without_personal_data_is_kept_as_written(world):
    text = "小区门口18号楼下水道堵塞，已持续3天，电话打不通"
    event, _ = event_create(channel="hotline", external_id="H-9", category_code="hazard", description=text,
                            address="城关区")  # fmt: skip
    event.refresh_from_db()
    assert (event.description, event.description_cipher) == (text, "")


def test_reveal_needs_a_login(world, client):
    response = post(client, f"/api/persons/{world.person.pk}/reveal", {"field": "phone", "purpose": "核实"})
    assert response.status_code == 401


# --- exports ----------------------------------------------------------------------------------------


def _csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_exports_leave_personal_fields_out_by_default(world, login):
    client = login("administrator")
    response = client.get("/exports/events.csv")
    assert response.status_code == 200
    [row] = _csv(response)
    assert "reporter_phone" not in row and "reporter_name" not in row
    [(actor, target, detail)] = audited("export")
    # Streamed: the entry is written when the stream ends, with the rows sent.
    assert (target, detail) == ("layer:events", {"format": "csv", "filters": {}, "rows": 1, "complete": True})


def test_a_purpose_without_the_permission_is_refused_and_audited(world, login):
    client = login("analyst")
    response = client.get("/exports/events.csv", {"purpose": "回访", "status": "assigned"})
    assert (response.status_code, response.json()) == (
        403,
        {
            "error": {
                "code": "permission_denied",
                "message": "Exporting personal fields needs the permission layers.export_personal_data.",
                "parameter": "purpose",
            }
        },
    )
    assert [(t, d) for _, t, d in audited("export.personal_denied")] == [
        ("layer:events", {"format": "csv", "filters": {"status": "assigned"}, "purpose": "回访"})
    ]
    assert audited("export") == audited("export.personal") == []


@pytest.mark.parametrize("fmt", ["csv", "geojson", "gpkg", "shp"])
def test_an_authorised_export_with_a_purpose_holds_the_clear_values(world, login, fmt, tmp_path):
    client = login("administrator")
    response = client.get(f"/exports/events.{fmt}", {"purpose": "回访核实", "status": "assigned"})
    assert response.status_code == 200, response.content
    body = b"".join(response.streaming_content)
    if fmt == "csv":
        [row] = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
        assert (row["reporter_name"], row["reporter_phone"], row["category"]) == (REPORTER, PHONE, "hazard.fire")
        assert row["lon"] and row["lat"]
    elif fmt == "geojson":
        [feature] = json.loads(body)["features"]
        assert feature["properties"]["reporter_phone"] == PHONE
        assert feature["geometry"]["type"] == "Point"
    else:
        path = tmp_path / f"export.{'zip' if fmt == 'shp' else fmt}"
        path.write_bytes(body)
        frame = pyogrio.read_dataframe(path)
        phone_column = "reporter_phone" if fmt == "gpkg" else "reporter_p"  # Shapefile: 10 characters
        assert list(frame[phone_column]) == [PHONE]
    [(actor, target, detail)] = audited("export.personal")
    assert (target, detail) == (
        "layer:events",
        {
            "format": fmt,
            "filters": {"status": "assigned"},
            "rows": 1,
            "personal": ["reporter_name", "reporter_phone"],
            "purpose": "回访核实",
        },
    )


@pytest.mark.parametrize(
    "path, query, status, message",
    [
        (
            "addresses.csv",
            {"purpose": "回访"},
            400,
            "purpose: unknown parameter; addresses accepts bbox, bbox-crs, code, crs, datetime, district_code, "
            "door_number, full_text, grid_code, road",
        ),
        ("events.csv", {"purpose": "x"}, 400, "purpose: must say why the data is needed, at least 2 characters"),
        ("events.csv", {"purpose": "回访\x00"}, 400, "purpose: must not contain NUL (\\u0000) characters"),
    ],
)
def test_export_purpose_errors(world, login, path, query, status, message):
    client = login("administrator")
    response = client.get(f"/exports/{path}", query)
    assert (response.status_code, response.json()["error"]["message"]) == (status, message)


@override_settings(MINQING_PERSONAL_EXPORT_MAX_ROWS=1)
def test_a_personal_export_is_capped(world, login):
    event_create(
        channel="hotline", external_id="H-9", category_code="hazard.fire", description="又一起",
        lon=EAST_POINT[0], lat=EAST_POINT[1], reporter_phone="13700000000",
    )  # fmt: skip
    client = login("administrator")
    response = client.get("/exports/events.csv", {"purpose": "回访"})
    assert (response.status_code, response.json()["error"]) == (
        400,
        {
            "code": "too_many_rows",
            "message": "an export with personal fields holds at most 1 rows, this one 2; "
            "narrow it with bbox, datetime or the layer's filters",
        },
    )
    assert audited("export.personal") == []
    assert (
        client.get("/exports/events.csv", {"purpose": "回访", "bbox": "103.83,36.06,103.835,36.07"}).status_code == 200
    )


# --- masked everywhere by default ---------------------------------------------------------------------


def _tile_path(lon: float, lat: float, z: int = 16) -> str:
    import math

    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return f"/tiles/events/{z}/{x}/{y}.pbf"


def test_no_output_path_shows_a_clear_id_number_or_phone(world, login):
    """Every surface that shows residents or events, read by a superuser (who reads the most),
    answers masked values or none: never the clear ID number, phone or reporter name."""
    client = login(None, superuser=True)
    event, person = world.event, world.person
    paths = [
        f"/api/events/{event.pk}",
        "/api/events",
        f"/open311/v2/requests/{event.pk}.json",
        f"/open311/v2/requests/{event.pk}.xml",
        "/open311/v2/requests.json",
        "/ogc/collections/events/items?f=json",
        "/ogc/collections/events/items?f=html",
        f"/ogc/collections/events/items/{event.pk}",
        "/exports/events.geojson",
        "/exports/events.csv",
        f"/exports/grid/{world.grids['west'].code}.html",
        "/api/layers",
        f"/admin/layers/person/{person.pk}/change/",
        "/admin/layers/person/",
        f"/admin/layers/event/{event.pk}/change/",
        "/admin/layers/event/",
        _tile_path(*WEST_POINT),
    ]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        body = b"".join(response.streaming_content) if response.streaming else response.content
        if path.endswith(".pbf"):
            layers = mapbox_vector_tile.decode(body)
            assert layers["events"]["features"], "the event is in the tile"
            body = json.dumps(layers, ensure_ascii=False).encode()
        text = body.decode("utf-8", errors="replace")
        for secret in (PHONE, ID_NUMBER, REPORTER):
            assert secret not in text, f"{path} shows {secret}"
    # The masked forms are what the admin and the API show.
    assert person.id_number_masked in client.get(f"/admin/layers/person/{person.pk}/change/").content.decode()
    assert client.get(f"/api/events/{event.pk}").json()["reporter"] == {"name": "张**", "phone": "139****5678"}
