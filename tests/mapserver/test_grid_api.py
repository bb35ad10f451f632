"""/api/grid/…: the grid worker's package (masked residents, care-tagged first, compact, ≤ 2 MB
for 500 households), my events and their actions, reports inside and outside my grid, photos,
idempotent resends of queued writes, bad input with exact messages, and other grids refused."""

from __future__ import annotations

import io
import json
import random
import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from PIL import Image

from layers.models import AuditEntry, Event, EventPhoto, EventTransition, Person
from layers.protection.audit import audit_flush
from layers.publishing.reporting import report_pdf
from tests.worlds.events import IN_EAST, IN_WEST, NOWHERE, report, world
from tests.worlds.grid_worker import grid_worker, populate

#: The first WEST resident's clear ID number and phone: tests look for them in answers (never there).
FIRST_ID_NUMBER = "620102195001010011"
FIRST_PHONE = "13900000000"


@pytest.fixture
def area(db):
    return world()


@pytest.fixture
def worker(area, django_user_model):
    """The worker of the WEST small grid (the EAST grid has a worker of its own)."""
    grid_worker(django_user_model, "east-worker", area["east"])
    return grid_worker(django_user_model, "west-worker", area["west"])


@pytest.fixture
def api(client, worker):
    client.force_login(worker)
    return client


@pytest.fixture
def registry(area):
    """A few households in each small grid."""
    return {
        "west": populate(
            area["west"], households=6, per_building=3, units=2, prefix="W", first=(FIRST_ID_NUMBER, FIRST_PHONE)
        ),
        "east": populate(area["east"], households=3, per_building=3, units=1, prefix="E"),
    }


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def post(client, path: str, body, **extra):
    raw = body if isinstance(body, str | bytes) else json.dumps(body, ensure_ascii=False)
    return client.post(path, raw, content_type="application/json", **extra)


def new_id() -> str:
    return str(uuid.uuid4())


def report_body(**overrides) -> dict:
    body = {
        "client_id": new_id(),
        "category": "hazard.fire",
        "description": "楼道堆放杂物，堵塞消防通道",
        "location": {"lon": IN_WEST[0], "lat": IN_WEST[1], "source": "gps", "accuracy_m": 12},
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def image_bytes(kind: str, size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 60, 30)).save(buffer, format=kind)
    return buffer.getvalue()


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["message"]


# --- the package ----------------------------------------------------------------------------------


def test_package_holds_my_grid_and_nothing_else(api, area, registry):
    response = api.get("/api/grid/package")
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-cache"
    body = response.json()
    grid = body["grid"]
    assert (grid["code"], grid["name"]) == (area["west"].code, "西小网格")
    assert grid["community"] == {"code": "620102001001", "name": "畅家巷社区"}
    assert grid["street"] == {"code": "620102001000", "name": "酒泉路街道"}
    assert grid["district"] == {"code": "620102000000", "name": "城关区"}
    assert grid["boundary"]["type"] == "MultiPolygon"
    assert grid["bbox"] == pytest.approx(list(area["west"].boundary.extent), abs=1e-5)
    assert body["my_grids"] == [{"code": area["west"].code, "name": "西小网格"}]
    # Only the WEST grid's rows (codes start with W), every one of them.
    assert [f["properties"]["code"] for f in body["buildings"]["features"]] == ["WB000", "WB001"]
    assert body["buildings"]["features"][0]["properties"] == {
        "code": "WB000", "name": "1号楼", "floors": 6, "use": "residential", "households": 3,
    }  # fmt: skip
    assert len(body["addresses"]["features"]) == 2 + 6
    assert {f["properties"]["code"][0] for f in body["addresses"]["features"]} == {"W"}
    assert [f["properties"]["name"] for f in body["units"]["features"]] == ["南关巷1号商铺", "南关巷2号商铺"]
    assert len(body["households"]) == 6 and {h["code"][0] for h in body["households"]} == {"W"}
    assert len(body["residents"]) == registry["west"]["residents"] == 15
    assert body["counts"] == {"households": 6, "residents": 15, "care_residents": 2}
    assert body["limits"] == {"photo_max_bytes": 10 * 1024 * 1024, "gps_max_accuracy_m": 200.0}
    assert {"code": "hazard.fire", "name": "Fire hazard", "family": "hazard"} in body["categories"]
    assert body["labels"]["care_tags"]["elderly_alone"] == "Elderly living alone"  # the reader reads English
    # The download is in the audit log: who took which grid's residents to a tablet.
    audit_flush()
    (entry,) = AuditEntry.objects.filter(action="export", target=f"grid:{area['west'].code}")
    assert entry.detail == {
        "kind": "grid_package",
        "households": 6,
        "residents": 15,
        "care_residents": 2,
        "client": "127.0.0.1",
    }


def test_package_residents_are_masked_and_care_tagged_first(api, registry):
    body = api.get("/api/grid/package").json()
    residents = body["residents"]
    tagged = [bool(r["care_tags"]) for r in residents]
    assert tagged == sorted(tagged, reverse=True) and tagged[0]
    # The first resident generated (household WH000): clear values never leave the server.
    first = next(r for r in residents if (r["id_number"], r["phone"]) == ("620102***********1", "139****0000"))
    assert first["household"] == "WH000"
    assert set(first) == {"name", "gender", "age", "residence", "care_tags", "id_number", "phone", "household"}
    raw = api.get("/api/grid/package").content.decode()
    assert FIRST_ID_NUMBER not in raw and FIRST_PHONE not in raw
    assert "cipher" not in raw and "digest" not in raw
    for person in Person.objects.filter(grid__code__endswith="01"):
        assert person.id_number_masked in raw
    # Households holding a care-tagged resident come first.
    cares = [h["care"] > 0 for h in body["households"]]
    assert cares == sorted(cares, reverse=True) and cares[0]


def test_package_coordinates_are_rounded_to_about_a_metre(api, registry):
    body = api.get("/api/grid/package").json()
    ring = body["grid"]["boundary"]["coordinates"][0][0]
    points = [f["geometry"]["coordinates"] for f in body["addresses"]["features"]] + ring
    for lon, lat in points:
        assert round(lon, 5) == lon and round(lat, 5) == lat


def test_package_of_500_households_is_at_most_2_mb(api, area):
    """The issue's budget: a grid of 500 households, with its residents, buildings, addresses,
    units and events, in at most 2 MB (measured on the answer's bytes)."""
    counts = populate(area["west"], households=500, prefix="S")
    for i in range(30):
        report(at=(IN_WEST[0] + i * 1e-5, IN_WEST[1]), description="楼道堆放杂物，堵塞消防通道，需要尽快清理" * 3)
    response = api.get("/api/grid/package")
    body = response.json()
    assert (len(body["households"]), len(body["residents"])) == (500, counts["residents"]) == (500, 1250)
    assert len(body["events"]) == 30
    assert len(body["addresses"]["features"]) == 500 + counts["buildings"]
    size = len(response.content)
    assert 200_000 < size <= 2_000_000, size


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("?grid=620102001001010102", 403, "The grid 620102001001010102 is not one of your grids."),
        ("?grid=999", 403, "The grid 999 is not one of your grids."),
        ("?grid=" + "9" * 25, 400, "grid: must be at most 24 characters, got 25"),
    ],
)  # fmt: skip
def test_package_of_another_grid_is_refused(api, area, query, status, message):
    assert error(api.get("/api/grid/package" + query)) == (status, message)
    assert error(api.get("/api/grid/events" + query)) == (status, message)


def test_a_user_without_a_grid_gets_403(client, area, django_user_model):
    client.force_login(grid_worker(django_user_model, "no-grid", None))
    expected = (403, "You are not the worker of any small grid.")
    assert error(client.get("/api/grid/package")) == expected
    assert error(client.get("/api/grid/events")) == expected


@pytest.mark.parametrize(
    "path",
    [
        "/api/grid/session",
        "/api/grid/package",
        "/api/grid/events",
        "/api/grid/locate?lon=103.8&lat=36",
        "/api/grid/photos/1",
    ],
)
def test_anonymous_requests_get_401(client, area, path):
    response = client.get(path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_session_names_me_my_grids_and_a_csrf_token(api, area):
    body = api.get("/api/grid/session").json()
    assert body["username"] == "west-worker"
    assert body["grids"] == [{"code": area["west"].code, "name": "西小网格"}]
    assert len(body["csrf_token"]) == 64


# --- locate ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("point", "inside", "grid", "message"),
    [
        (IN_WEST, True, "620102001001010101", "Inside your grid: 西小网格 (620102001001010101)."),
        (IN_EAST, False, "620102001001010102", "Outside your grid: it lies in 东小网格 (620102001001010102)."),
        (NOWHERE, False, None, "Outside your grid and every other grid."),
    ],
)  # fmt: skip
def test_locate_says_whether_a_point_is_in_my_grid(api, point, inside, grid, message):
    body = api.get(f"/api/grid/locate?lon={point[0]}&lat={point[1]}").json()
    assert (body["inside"], (body["grid"] or {}).get("code"), body["message"]) == (inside, grid, message)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("lat=36.06", "lon: is required"),
        ("lon=abc&lat=36.06", "lon: must be a number, got 'abc'"),
        ("lon=36.06&lat=103.83", "lat: must be between -90 and 90, got 103.83; are lon and lat swapped?"),
        ("lon=103.83&lat=36.06&crs=utm", "crs: must be one of wgs84, cgcs2000, gcj02, bd09, got 'utm'"),
    ],
)
def test_locate_bad_input(api, area, query, message):
    assert error(api.get("/api/grid/locate?" + query)) == (400, message)


# --- reports --------------------------------------------------------------------------------------


def test_report_inside_my_grid(api, area):
    body = report_body()
    response = post(api, "/api/grid/events", body)
    assert response.status_code == 201
    answer = response.json()
    assert answer["where"]["inside"] is True
    assert answer["where"]["message"] == "Inside your grid: 西小网格 (620102001001010101)."
    event = answer["event"]
    assert (event["channel"], event["external_id"]) == ("grid_patrol", "GW-" + body["client_id"])
    assert event["areas"]["grid_small"]["code"] == area["west"].code
    assert event["status"] == "assigned"
    assert event["worker_actions"] == ["accept", "note", "photo"]
    assert event["description"] == "楼道堆放杂物，堵塞消防通道"
    assert event["transitions"][0]["actor"] == "west-worker"


def test_report_outside_my_grid_is_stored_and_says_so(api, area):
    response = post(
        api, "/api/grid/events", report_body(location={"lon": IN_EAST[0], "lat": IN_EAST[1], "source": "tap"})
    )
    assert response.status_code == 201
    where = response.json()["where"]
    assert (where["inside"], where["grid"]) == (False, {"code": area["east"].code, "name": "东小网格"})
    assert where["message"] == "Outside your grid: it lies in 东小网格 (620102001001010102)."
    # Stored and dispatched to the east grid, but not on my plate.
    assert api.get("/api/grid/events").json()["results"] == []


def test_a_report_sent_twice_is_stored_once(api, area):
    """A queued report resent after a lost answer (or a double tap) answers 200 with the stored event."""
    body = report_body()
    first = post(api, "/api/grid/events", body)
    second = post(api, "/api/grid/events", body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second["Idempotent-Replay"] == "true"
    assert second.json()["event"]["id"] == first.json()["event"]["id"]
    assert Event.objects.filter(external_id="GW-" + body["client_id"]).count() == 1


def test_a_report_made_offline_keeps_its_time(api, area):
    body = report_body(reported_at="2026-05-01T08:00:00+08:00")
    assert post(api, "/api/grid/events", body).json()["event"]["reported_at"] == "2026-05-01T08:00:00+08:00"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"client_id": None}, "client_id: is required"),
        ({"client_id": "abc"}, "client_id: must be 8 to 60 letters, digits, '-' or '_' (a UUID), got 'abc'"),
        ({"client_id": "a b c d e f g h"}, "client_id: must be 8 to 60 letters, digits, '-' or '_' (a UUID), got 'a b c d e f g h'"),
        ({"category": None}, "category: is required"),
        ({"category": "hazard.meteor"}, "category: unknown category 'hazard.meteor'"),
        ({"description": "   "}, "description: is required"),
        ({"description": "x" * 10_001}, "description: must be at most 10000 characters, got 10001"),
        ({"location": None}, "location: is required"),
        ({"location": [103.83, 36.06]}, "location: must be a JSON object, got an array"),
        ({"location": {"lon": 103.83, "source": "tap"}}, "location.lat: is required"),
        ({"location": {"lon": 36.06, "lat": 103.83, "source": "tap"}}, "location.lat: must be between -90 and 90, got 103.83; are location.lon and location.lat swapped?"),
        ({"location": {"lon": 103.83, "lat": 36.06}}, "location.source: is required"),
        ({"location": {"lon": 103.83, "lat": 36.06, "source": "wifi"}}, "location.source: must be one of gps, tap, got 'wifi'"),
        ({"location": {"lon": 103.83, "lat": 36.06, "source": "gps"}}, "location.accuracy_m: is required for a GPS fix"),
        ({"location": {"lon": 103.83, "lat": 36.06, "source": "gps", "accuracy_m": -1}}, "location.accuracy_m: must be between 0 and 1e+07, got -1"),
        (
            {"location": {"lon": 103.83, "lat": 36.06, "source": "gps", "accuracy_m": 2000}},
            "location.accuracy_m: a fix accurate to 2,000 m is too vague; at most 200 m: tap the map instead",
        ),
        ({"reported_at": "yesterday"}, "reported_at: must be an ISO 8601 date-time, got 'yesterday'"),
        ({"reported_at": "2099-01-01T00:00:00+08:00"}, "reported_at: lies in the future (2099-01-01T00:00:00+08:00)"),
    ],
)  # fmt: skip
def test_bad_reports(api, area, overrides, message):
    response = post(api, "/api/grid/events", report_body(**overrides))
    assert error(response) == (400, message)
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "body: must be a JSON object, got an empty body"),
        ("[1]", "body: must be a JSON object, got an array"),
        ("{", "body: is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    ],
)
def test_bad_report_bodies(api, area, raw, message):
    assert error(post(api, "/api/grid/events", raw)) == (400, message)


# --- my events and their actions ------------------------------------------------------------------


def test_my_events_are_those_of_my_grid_on_my_plate(api, area):
    mine = report(at=IN_WEST)
    report(at=IN_EAST)
    closed = report(at=IN_WEST)
    Event.objects.filter(pk=closed.pk).update(status="closed")
    results = api.get("/api/grid/events").json()["results"]
    assert [event["id"] for event in results] == [mine.pk]
    assert results[0]["worker_actions"] == ["accept", "note", "photo"]
    assert results[0]["photos"] == []


def act(api, event_id: int, **body):
    return post(api, f"/api/grid/events/{event_id}/actions", body)


def test_accept_note_resolve(api, area):
    event = report(at=IN_WEST)
    accepted = act(api, event.pk, action="accept")
    assert accepted.status_code == 200
    assert (accepted.json()["status"], accepted.json()["worker_actions"]) == (
        "in_progress",
        ["resolve", "note", "photo"],
    )
    noted = act(api, event.pk, action="note", note="已到现场，联系物业清理")
    assert noted.json()["status"] == "in_progress"
    resolved = act(api, event.pk, action="resolve", note="杂物已清理")
    assert resolved.json()["status"] == "resolved"
    steps = [(t["action"], t["to_status"], t["actor"], t["reason"]) for t in resolved.json()["transitions"]][-3:]
    assert steps == [
        ("accept", "in_progress", "west-worker", ""),
        ("note", "in_progress", "west-worker", "已到现场，联系物业清理"),
        ("resolve", "resolved", "west-worker", "杂物已清理"),
    ]


def test_an_action_sent_twice_is_applied_once(api, area):
    event = report(at=IN_WEST)
    client_id = new_id()
    first = act(api, event.pk, action="note", note="已到现场", client_id=client_id)
    second = act(api, event.pk, action="note", note="已到现场", client_id=client_id)
    assert (first.status_code, second.status_code, second["Idempotent-Replay"]) == (200, 200, "true")
    assert EventTransition.objects.filter(event=event, action="note").count() == 1
    accept_id = new_id()
    assert act(api, event.pk, action="accept", client_id=accept_id).status_code == 200
    again = act(api, event.pk, action="accept", client_id=accept_id)
    assert (again.status_code, again.json()["status"]) == (200, "in_progress")
    assert EventTransition.objects.filter(event=event, action="accept").count() == 1


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 400, "action: is required"),
        ({"action": "close"}, 400, "action: must be one of accept, resolve, note, got 'close'"),
        ({"action": "note"}, 400, "note: must not be empty"),
        ({"action": "note", "note": "x" * 2001}, 400, "note: must be at most 2000 characters, got 2001"),
        ({"action": "resolve", "note": "done"}, 409, "action 'resolve' is not allowed from status 'assigned'; allowed: accept, escalate, locate, return, start, suspend"),
        ({"action": "accept", "version": 99}, 409, "The event changed (version 2, you sent 99): reload and retry."),
        ({"action": "accept", "client_id": "short"}, 400, "client_id: must be 8 to 60 letters, digits, '-' or '_' (a UUID), got 'short'"),
    ],
)  # fmt: skip
def test_bad_actions(api, area, body, status, message):
    event = report(at=IN_WEST)
    assert error(act(api, event.pk, **body)) == (status, message)
    assert Event.objects.get(pk=event.pk).status == "assigned"


def test_resolve_needs_a_note(api, area):
    event = report(at=IN_WEST)
    act(api, event.pk, action="accept")
    assert error(act(api, event.pk, action="resolve")) == (
        400,
        "note: resolve needs a note saying what was done",
    )


def test_another_grids_event_is_not_found(api, area, media):
    theirs = report(at=IN_EAST)
    message = f"No event with id {theirs.pk} in your grids."
    assert error(api.get(f"/api/grid/events/{theirs.pk}")) == (404, message)
    assert error(act(api, theirs.pk, action="accept")) == (404, message)
    upload = api.post(f"/api/grid/events/{theirs.pk}/photos", image_bytes("JPEG"), content_type="image/jpeg")
    assert error(upload) == (404, message)
    assert Event.objects.get(pk=theirs.pk).status == "assigned"
    assert not EventPhoto.objects.exists()


# --- photos ---------------------------------------------------------------------------------------


def upload(api, event_id: int, content: bytes, content_type: str = "image/jpeg", client_id: str = ""):
    query = f"?client_id={client_id}" if client_id else ""
    return api.post(f"/api/grid/events/{event_id}/photos{query}", content, content_type=content_type)


@pytest.mark.parametrize(
    ("kind", "content_type"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")]
)
def test_photo_upload_and_read_back(api, area, media, kind, content_type):
    event = report(at=IN_WEST)
    content = image_bytes(kind)
    response = upload(api, event.pk, content, content_type="application/octet-stream")
    assert response.status_code == 201
    photo = response.json()
    assert (photo["content_type"], photo["size"], photo["width"], photo["height"]) == (
        content_type,
        len(content),
        64,
        48,
    )
    stored = EventPhoto.objects.get()
    assert stored.file.name.startswith(f"events/{event.pk}/") and (media / stored.file.name).read_bytes() == content
    served = api.get(photo["url"])
    assert (served.status_code, served["Content-Type"]) == (200, content_type)
    assert b"".join(served.streaming_content) == content
    detail = api.get(f"/api/grid/events/{event.pk}").json()
    assert [p["id"] for p in detail["photos"]] == [photo["id"]]
    assert detail["transitions"][-1]["action"] == "photo"


def test_a_photo_sent_twice_is_stored_once(api, area, media):
    event = report(at=IN_WEST)
    client_id = new_id()
    first = upload(api, event.pk, image_bytes("JPEG"), client_id=client_id)
    second = upload(api, event.pk, image_bytes("JPEG"), client_id=client_id)
    assert (first.status_code, second.status_code, second["Idempotent-Replay"]) == (201, 200, "true")
    assert first.json()["id"] == second.json()["id"]
    assert EventPhoto.objects.count() == 1
    assert len(list((media / "events").rglob("*.jpg"))) == 1


@pytest.mark.parametrize(
    ("megabytes", "message"),
    [
        # Above the photo limit: our message, from the declared length, before the body is read.
        (15, "photo: the photo is 15,728,640 bytes; at most 10,485,760 bytes are accepted"),
        # Above every request's limit: the edge refuses it before the view (mapserver.security).
        (30, "The request body of 31,457,280 bytes is over the limit of 20,971,520 bytes."),
    ],
)  # fmt: skip
def test_a_big_photo_is_refused_before_it_is_read(api, area, media, megabytes, message):
    event = report(at=IN_WEST)
    response = upload(api, event.pk, b"\xff" * (megabytes * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert response.json()["error"]["message"] == message
    assert not EventPhoto.objects.exists() and not (media / "events").exists()


def test_a_browser_session_writes_with_its_csrf_token(area, worker, media):
    """As the page does: a session login, the CSRF header, JSON and image bodies (DRF's CSRF check
    must not consume the body before the view reads it)."""
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(worker)
    token = browser.get("/api/grid/session").json()["csrf_token"]
    created = post(browser, "/api/grid/events", report_body(), HTTP_X_CSRFTOKEN=token)
    assert created.status_code == 201
    event_id = created.json()["event"]["id"]
    accepted = post(browser, f"/api/grid/events/{event_id}/actions", {"action": "accept"}, HTTP_X_CSRFTOKEN=token)
    assert (accepted.status_code, accepted.json()["status"]) == (200, "in_progress")
    photo = browser.post(
        f"/api/grid/events/{event_id}/photos", image_bytes("PNG"), content_type="image/png", HTTP_X_CSRFTOKEN=token
    )
    assert photo.status_code == 201
    malformed = post(browser, "/api/grid/events", "{", HTTP_X_CSRFTOKEN=token)
    # A browser that states no language reads Chinese, the default.
    assert error(malformed) == (
        400,
        "body: 不是有效的 JSON：第 1 行第 2 列 Expecting property name enclosed in double quotes",
    )
    refused = post(browser, "/api/grid/events", report_body())
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]["message"]


def _gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("P", (8, 8)).save(buffer, format="GIF")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "photo: is empty; send a JPEG, PNG or WebP photo"),
        (b"not an image at all", "photo: is not an image; send a JPEG, PNG or WebP photo"),
        (_gif(), "photo: must be a JPEG, PNG or WebP image, got GIF"),
        (image_bytes("JPEG", (400, 300))[:600], "photo: is a damaged or truncated image; take the photo again"),
        (image_bytes("PNG", (400, 300))[:200], "photo: is a damaged or truncated image; take the photo again"),
    ],
    ids=["empty", "text", "gif", "truncated-jpeg", "truncated-png"],
)
def test_bad_photos(api, area, media, content, message):
    event = report(at=IN_WEST)
    assert error(upload(api, event.pk, content)) == (400, message)
    assert not EventPhoto.objects.exists()


def test_a_truncated_photo_is_refused_after_a_report_was_printed(api, area, media):
    """WeasyPrint, imported to print the monthly report, switches Pillow to accept truncated
    images process-wide; the printing puts it back, so a damaged photo is still refused."""
    report_pdf("<p>月报</p>")
    event = report(at=IN_WEST)
    assert error(upload(api, event.pk, image_bytes("PNG", (400, 300))[:200])) == (
        400,
        "photo: is a damaged or truncated image; take the photo again",
    )


def test_a_photo_over_the_setting_is_refused(api, area, media, settings):
    settings.MINQING_PHOTO_MAX_BYTES = 1000
    event = report(at=IN_WEST)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (64, 64), random.Random(1).randbytes(64 * 64 * 3)).save(buffer, format="PNG")
    content = buffer.getvalue()
    assert len(content) > 1000
    status, message = error(upload(api, event.pk, content))
    assert status == 413 and message == f"photo: the photo is {len(content):,} bytes; at most 1,000 bytes are accepted"


def test_another_grids_photo_is_not_found(api, area, media, django_user_model, client):
    theirs = report(at=IN_EAST)
    east = django_user_model.objects.get(username="east-worker")
    client.force_login(east)
    photo_id = upload(client, theirs.pk, image_bytes("JPEG")).json()["id"]
    client.force_login(django_user_model.objects.get(username="west-worker"))
    assert error(client.get(f"/api/grid/photos/{photo_id}")) == (
        404,
        f"No photo with id {photo_id} in your grids.",
    )


# --- the query behind the package -----------------------------------------------------------------


def test_package_reads_each_section_in_one_statement(api, area, registry):
    """No query per row: the package costs the same number of statements for any grid size."""
    with CaptureQueriesContext(connection) as small:
        api.get("/api/grid/package")
    populate(area["west"], households=30, prefix="X")
    with CaptureQueriesContext(connection) as large:
        api.get("/api/grid/package")
    assert len(large.captured_queries) == len(small.captured_queries)


def test_a_client_id_of_someone_elses_report_opens_nothing(api, area, django_user_model, client):
    """A report id already used by another worker's report (outside my grids) answers 409, not
    their event."""
    body = report_body(location={"lon": IN_EAST[0], "lat": IN_EAST[1], "source": "tap"})
    client.force_login(django_user_model.objects.get(username="east-worker"))
    assert post(client, "/api/grid/events", body).status_code == 201
    client.force_login(django_user_model.objects.get(username="west-worker"))
    response = post(client, "/api/grid/events", body)
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "conflict",
        "message": "client_id: the id belongs to another report; send a new one",
        "parameter": "client_id",
    }
    assert Event.objects.count() == 1
