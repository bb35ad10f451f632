"""The API of the registry's upkeep, the building sheet and visits on the demo year: who may read
and write what (tables of roles), exact 4xx messages for bad input, idempotent resends, and the
stewards' page deciding an answer."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client

from layers.models import Building, Grid, RegistryTask, Visit
from tests import worlds
from tests.worlds.demo import END

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_year():
    return worlds.demo_year(end=END, days=365, logins=True, tasks_at=END)


def as_user(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def post(client: Client, url: str, body) -> object:
    return client.post(url, json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(
    ("username", "status", "care"),
    [
        ("admin", 200, True),
        ("command", 200, True),
        ("gridworker", 200, True),
        ("community", 200, True),
        ("street", 200, True),
        ("analyst", 200, False),
        ("steward", 200, False),
    ],
)
def test_building_sheet_by_role(demo_year, username, status, care):
    building = Building.objects.filter(grid=demo_year.grid, dwellings__isnull=False).first()
    answer = as_user(demo_year.users[username]).get(f"/api/buildings/{building.code}/sheet")
    assert answer.status_code == status
    body = answer.json()
    assert body["care_visible"] is care and body["building"]["code"] == building.code
    cells = [cell for floor in body["floors"] for cell in floor["cells"]]
    assert cells and all(("care_tags" in cell) is care for cell in cells)


def test_building_sheet_outside_scope_and_bad_points(demo_year, client):
    worker = as_user(demo_year.users["gridworker"])
    elsewhere = Building.objects.exclude(grid=demo_year.grid).first()
    answer = worker.get(f"/api/buildings/{elsewhere.code}/sheet")
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == f"No building {elsewhere.code}."
    assert client.get(f"/api/buildings/{elsewhere.code}/sheet").status_code == 401
    inside = Building.objects.filter(grid=demo_year.grid).first().footprint.point_on_surface
    assert worker.get(f"/api/buildings/sheet?lon={inside.x}&lat={inside.y}").status_code == 200
    cases = [
        ("", "lon: is required"),
        ("lon=103.8", "lat: is required"),
        ("lon=abc&lat=36", "lon: must be a number, got 'abc'"),
        ("lon=36.05&lat=103.8", "lat: must be between -90 and 90, got 103.8; are lon and lat swapped?"),
    ]
    for query, message in cases:
        answer = worker.get(f"/api/buildings/sheet?{query}")
        assert (answer.status_code, answer.json()["error"]["message"]) == (400, message), query
    far = worker.get(f"/api/buildings/sheet?lon={inside.x + 0.5}&lat={inside.y}")
    assert (far.status_code, far.json()["error"]["message"]) == (404, "No building at this point.")


def test_visits_recorded_once_with_exact_errors(demo_year):
    worker = as_user(demo_year.users["gridworker"])
    grid = demo_year.grid
    point = grid.boundary.point_on_surface
    household = grid_household(grid)
    good = {
        "client_id": str(uuid.uuid4()),
        "household": household,
        "location": {"lon": point.x, "lat": point.y, "source": "gps", "accuracy_m": 15},
        "notes": "家中老人身体良好",
        "follow_up": "下周送药",
    }
    first = post(worker, "/api/grid/visits", good)
    assert first.status_code == 201 and first.json()["household"] == household
    again = post(worker, "/api/grid/visits", good)
    assert again.status_code == 200 and again["Idempotent-Replay"] == "true" and Visit.objects.count() == 1
    cases = [
        ({**good, "client_id": "x"}, "client_id: must be 8 to 60 letters, digits, '-' or '_' (a UUID), got 'x'"),
        ({k: v for k, v in good.items() if k != "location"}, "location: is required"),
        (
            {**good, "location": {**good["location"], "accuracy_m": 900}},
            "location.accuracy_m: a fix accurate to 900 m is too vague; at most 200 m: tap the map instead",
        ),
        (
            {**good, "location": {**good["location"], "source": "wifi"}},
            "location.source: must be one of gps, tap, got 'wifi'",
        ),
        ({**good, "household": "NOPE"}, "household: no household NOPE in your grid"),
        ({**good, "notes": "", "follow_up": ""}, "notes: say what the visit found (notes or a follow-up)"),
        (
            {**good, "visited_at": "2099-01-01T00:00:00+08:00"},
            "visited_at: lies in the future (2099-01-01T00:00:00+08:00)",
        ),
        ({**good, "follow_up_due": "next week"}, "follow_up_due: must be a date as YYYY-MM-DD, got 'next week'"),
    ]
    for body, message in cases:
        if body is not good and "client_id" in body and body["client_id"] == good["client_id"]:
            body = {**body, "client_id": str(uuid.uuid4())}
        answer = post(worker, "/api/grid/visits", body)
        assert (answer.status_code, answer.json()["error"]["message"]) == (400, message)
    analyst = as_user(demo_year.users["analyst"])
    assert post(analyst, "/api/grid/visits", good).status_code == 403


def grid_household(grid: Grid) -> str:
    from layers.models import Dwelling

    return Dwelling.objects.filter(grid=grid).order_by("code").values_list("code", flat=True).first()


def test_tasks_answered_by_the_worker_only(demo_year):
    users, grid = demo_year.users, demo_year.grid
    worker = as_user(users["gridworker"])
    listed = worker.get("/api/grid/tasks").json()["results"]
    stale = next(t for t in listed if t["kind"] == "stale")
    url = f"/api/grid/tasks/{stale['id']}/answer"
    cases = [
        ({"resolution": "add"}, "resolution: must be one of confirm, correct, merge, got 'add'"),
        ({"resolution": "correct", "proposal": {}}, "location: a correction moves the point or changes a field; neither was given"),
        ({"resolution": "correct", "proposal": {"fields": {"colour": "red"}}},
         "fields.colour: is not an address field; expected some of road, door_number, compound_name, building_number, "
         "entrance, floor, room, full_text"),
        ({"resolution": "merge", "proposal": {"into": "NOPE"}}, "into: no standard address NOPE in your grids"),
        ({"resolution": "correct", "proposal": {"location": {"lon": "x", "lat": 36}}},
         "location.lon: expected a number in degrees within ±180"),
    ]  # fmt: skip
    for body, message in cases:
        answer = post(worker, url, body)
        assert (answer.status_code, answer.json()["error"]["message"]) == (400, message), body
    key = str(uuid.uuid4())
    done = post(worker, url, {"resolution": "confirm", "client_id": key})
    assert done.status_code == 200 and done.json()["status"] == "done"
    replay = post(worker, url, {"resolution": "confirm", "client_id": key})
    assert replay.status_code == 200 and replay["Idempotent-Replay"] == "true"
    again = post(worker, url, {"resolution": "confirm"})
    assert again.status_code == 409
    other = RegistryTask.objects.exclude(grid=grid).filter(kind="stale").first()
    missing = post(worker, f"/api/grid/tasks/{other.pk}/answer", {"resolution": "confirm"})
    assert (missing.status_code, missing.json()["error"]["message"]) == (
        404,
        f"No registry task {other.pk} in your grids.",
    )
    for username in ("analyst", "steward", "command"):
        assert post(as_user(users[username]), url, {"resolution": "confirm"}).status_code == 403


def test_steward_page_decides_and_shows_the_match_rate(demo_year):
    users, grid = demo_year.users, demo_year.grid
    worker = as_user(users["gridworker"])
    task = RegistryTask.objects.filter(grid=grid, kind="stale", status="open").first()
    into = RegistryTask.objects.filter(grid=grid, kind="stale", status="open").exclude(pk=task.pk).first()
    into_code = into.address.code if hasattr(into, "address") else None
    answer = post(worker, f"/api/grid/tasks/{task.pk}/answer", {"resolution": "merge", "proposal": {"into": into_code}})
    assert answer.json()["status"] == "awaiting"
    steward = as_user(users["steward"])
    page = steward.get("/registry/")
    assert page.status_code == 200 and f'id="task-{task.pk}"' in page.content.decode()
    assert as_user(users["gridworker"]).get("/registry/").status_code == 403
    steward.post(f"/registry/tasks/{task.pk}/decide", {"decision": "approve"})
    task.refresh_from_db()
    assert task.status == "done"
    # An unknown task is a 404 page, not a refusal flashed on the steward's page.
    assert steward.post("/registry/tasks/999999999/decide", {"decision": "approve"}).status_code == 404
    rate = steward.get("/api/registry/match-rate?months=12")
    assert rate.status_code == 200 and len(rate.json()["results"]) == 12
    assert steward.get("/api/registry/match-rate?months=0").json()["error"]["message"] == (
        "months: must be between 1 and 36, got 0"
    )
    assert as_user(users["analyst"]).get("/api/registry/match-rate").status_code == 403


@pytest.mark.parametrize(
    ("username", "status"),
    [("admin", 200), ("command", 200), ("analyst", 200), ("steward", 403), ("gridworker", 403), ("street", 403)],
)
def test_duty_figures_by_role(demo_year, username, status):
    answer = as_user(demo_year.users[username]).get("/api/statistics/duty?month=2025-05")
    assert answer.status_code == status
    if status == 200:
        assert answer.json()["month"] == "2025-05"


def test_duty_figures_bad_month(demo_year):
    analyst = as_user(demo_year.users["analyst"])
    for raw in ("2025-13", "May", "2025-5"):
        answer = analyst.get(f"/api/statistics/duty?month={raw}")
        assert (answer.status_code, answer.json()["error"]["message"]) == (
            400,
            f"month: must be a month as YYYY-MM, got '{raw}'",
        )


def test_the_package_carries_sheets_and_tasks(demo_year):
    worker = as_user(demo_year.users["gridworker"])
    package = worker.get("/api/grid/package").json()
    buildings = {f["properties"]["code"] for f in package["buildings"]["features"]}
    assert set(package["sheets"]) == buildings and package["tasks"]
