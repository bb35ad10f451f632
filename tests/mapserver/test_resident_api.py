"""``/api/resident/…`` without an account: the page's CSRF token on every write, limits per client
address and per phone, bad bodies answered with the field named, the follow-up token only in its
header, photos checked like the tablet's, and what a resident sees of their case (no person's
name, building-level addresses)."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from django.core.cache import caches
from django.test import Client
from PIL import Image

from layers.geocoding.index import address_index_reset
from layers.models import Event, EventPhoto, Grid
from layers.protection.access import SYSTEM
from layers.services.events import event_act
from layers.services.gridwork import event_photo_add
from tests.worlds.events import IN_EAST, IN_WEST, world
from tests.worlds.grid_worker import grid_worker, populate

REPORTS = "/api/resident/reports"


@pytest.fixture
def area(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return world()


@pytest.fixture
def browser_client() -> Client:
    """A client that enforces CSRF like a browser's server would, holding the page's token; it reads
    English, so messages compare against their msgids."""
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    client.get("/report/")
    client.csrf = client.cookies["csrftoken"].value
    return client


def body(**overrides) -> dict:
    return {
        "client_id": str(uuid.uuid4()),
        "category": "municipal.streetlight",
        "description": "路灯不亮",
        "source": "tap",
        "location": {"lon": IN_WEST[0], "lat": IN_WEST[1]},
    } | overrides


def post(client: Client, path: str, data: dict, **headers):
    return client.post(
        path, json.dumps(data), content_type="application/json", HTTP_X_CSRFTOKEN=getattr(client, "csrf", ""), **headers
    )


def reported(client: Client, **overrides) -> dict:
    response = post(client, REPORTS, body(**overrides))
    assert response.status_code == 201, response.content
    return response.json()


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), (200, 30, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


# --- writes: CSRF, limits -------------------------------------------------------------------------


def test_a_write_without_the_pages_csrf_token_is_refused(area):
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    response = client.post(REPORTS, json.dumps(body()), content_type="application/json")
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "permission_denied",
            "message": "the page's security token is missing or expired: reload the page and try again",
            "reason": "csrf",
        }
    }
    assert not Event.objects.exists()


def test_an_intake_system_with_a_token_needs_no_csrf_token(area, django_user_model):
    from rest_framework.authtoken.models import Token

    key = Token.objects.create(user=django_user_model.objects.create_user("gateway")).key
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        REPORTS, json.dumps(body()), content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}"
    )
    assert response.status_code == 201


def test_a_report_answers_a_ticket_and_a_link_and_a_resend_the_same(area, browser_client):
    sent = body(phone="13912345678")
    first = post(browser_client, REPORTS, sent)
    assert first.status_code == 201
    answer = first.json()
    assert answer["follow_url"] == f"/report/follow/#{answer['token']}"
    assert answer["case"]["status"] == "assigned"
    assert answer["case"]["handler"] == {
        "department": "城管局",
        "department_en": "Urban management bureau",
        "responsible_level": "community",
        "grid": {"code": "620102001001010101", "name": "西小网格"},
        "person": None,
    }
    assert first["Cache-Control"] == "private, no-store"
    again = post(browser_client, REPORTS, sent)
    assert (again.status_code, again["Idempotent-Replay"]) == (200, "true")
    assert again.json()["token"] == answer["token"] and again.json()["ticket"] == answer["ticket"]
    assert Event.objects.count() == 1


def test_writes_are_limited_per_client_address(area, browser_client, settings):
    settings.MINQING_THROTTLE_RATES = settings.MINQING_THROTTLE_RATES | {"resident": "2/hour"}
    caches["default"].clear()
    reported(browser_client)
    reported(browser_client)
    # Reads are not counted by this limit.
    assert browser_client.get("/api/resident/categories").status_code == 200
    refused = post(browser_client, REPORTS, body())
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert refused.json()["error"]["code"] == "throttled"
    # Another address is counted on its own (REMOTE_ADDR as ProxyHeadersMiddleware settled it).
    other = post(browser_client, REPORTS, body(), REMOTE_ADDR="198.51.100.7")
    assert other.status_code == 201
    # A forged X-Forwarded-For from a client that is no trusted proxy changes nothing.
    forged = post(browser_client, REPORTS, body(), HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert forged.status_code == 429


def test_reports_are_limited_per_phone(area, browser_client, settings):
    settings.MINQING_RESIDENT_PHONE_REPORTS = 1
    reported(browser_client, phone="13912345678")
    refused = post(browser_client, REPORTS, body(phone="13912345678"))
    assert refused.status_code == 429
    assert refused.json()["error"] == {
        "code": "throttled",
        "message": "phone: this phone number sent 1 reports within 24 hours; try again later or call 12345",
        "parameter": "phone",
        "retry_after": int(refused["Retry-After"]),
    }


@pytest.mark.parametrize(
    ("changes", "parameter", "message"),
    [
        ({"client_id": None}, "client_id", "client_id: is required"),
        (
            {"category": "Hazard!"},
            "category",
            "category: must be a category family or code such as hazard.fire, got 'Hazard!'",
        ),
        ({"category": "hazard.meteor"}, "category", "category: unknown category 'hazard.meteor'"),
        ({"description": ""}, "description", "description: is required"),
        ({"description": "长" * 2001}, "description", "description: must be at most 2000 characters, got 2001"),
        ({"source": None}, "source", "source: is required"),
        (
            {"location": {"lon": IN_WEST[1], "lat": IN_WEST[0]}},
            "location.lat",
            "location.lat: must be between -90 and 90, got 103.832; are location.lon and location.lat swapped?",
        ),
        (
            {"location": {"lon": 2.35, "lat": 48.85}},
            "location.lon",
            "location.lon: 2.35 is outside China (longitude 73 to 136)",
        ),
        ({"location": None}, "location", "location: is required when the place comes from tap"),
        (
            {"location": {"lon": IN_WEST[0], "lat": IN_WEST[1], "accuracy_m": "far"}},
            "location.accuracy_m",
            "location.accuracy_m: must be a number, got 'far'",
        ),
        (
            {"source": "address", "location": None},
            "address",
            "address: type the address, or choose the place on the map",
        ),
        ({"phone": "12345"}, "phone", "phone: an 11-digit mobile number, e.g. 13912345678"),
        (
            {"client_id": "not-a-uuid-at-all"},
            "client_id",
            "client_id: must be a UUID made by the page (lower-case, 36 characters)",
        ),
    ],
)
def test_bad_reports_name_the_field(area, browser_client, changes, parameter, message):
    data = {key: value for key, value in (body() | changes).items() if value is not None}
    response = post(browser_client, REPORTS, data)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == {"code": "bad_parameter", "message": message, "parameter": parameter}
    assert not Event.objects.exists()


# --- the follow-up link -----------------------------------------------------------------------------


def test_the_token_travels_in_its_header_only(area, browser_client):
    token = reported(browser_client)["token"]
    missing = browser_client.get("/api/resident/case", {"token": token})
    assert missing.status_code == 400
    assert missing.json()["error"]["message"] == (
        "X-Follow-Token: is required: the token of the follow-up link (the part after #)"
    )
    unknown = browser_client.get("/api/resident/case", HTTP_X_FOLLOW_TOKEN="A" * 32)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    found = browser_client.get("/api/resident/case", HTTP_X_FOLLOW_TOKEN=token)
    assert found.status_code == 200 and found["Cache-Control"] == "private, no-store"


def test_a_resident_rates_the_resolution_and_sees_the_handlers_photo(area, browser_client, django_user_model):
    answer = reported(browser_client)
    token, event = answer["token"], Event.objects.get()
    worker = grid_worker(django_user_model, "worker", area["west"])
    event = event_act(event=event, action="accept", reader=SYSTEM, actor=worker)
    photo, _ = event_photo_add(event=event, actor=worker, content=jpeg())
    event_act(event=event, action="resolve", reader=SYSTEM, actor=worker, reason="已更换灯泡。联系人电话13912345678")
    case = browser_client.get("/api/resident/case", HTTP_X_FOLLOW_TOKEN=token).json()
    assert case["resolution"]["note"] == "已更换灯泡。联系人电话139****5678"
    assert case["resolution"]["photos"] == [photo.pk]
    assert case["answer"]["may_rate"] and case["answer"]["may_reopen"]
    assert "worker" not in json.dumps(case, ensure_ascii=False)
    image = browser_client.get(f"/api/resident/photos/{photo.pk}", HTTP_X_FOLLOW_TOKEN=token)
    assert (image.status_code, image["Content-Type"]) == (200, "image/jpeg")
    other = reported(browser_client)["token"]
    assert browser_client.get(f"/api/resident/photos/{photo.pk}", HTTP_X_FOLLOW_TOKEN=other).status_code == 404
    headers = {"HTTP_X_FOLLOW_TOKEN": token}
    rated = post(
        browser_client, "/api/resident/answer", {"action": "rate", "satisfaction": 5, "comment": "谢谢"}, **headers
    )
    assert rated.status_code == 200
    assert rated.json()["answer"] == {
        "answered": True,
        "answer": "rate",
        "satisfaction": 5,
        "may_rate": False,
        "may_reopen": False,
        "reopen_until": case["answer"]["reopen_until"],
    }
    again = post(browser_client, "/api/resident/answer", {"action": "rate", "satisfaction": 1}, **headers)
    assert again.status_code == 409
    assert again.json()["error"]["message"] == "action: you already answered this resolution"
    bad = post(browser_client, "/api/resident/answer", {"action": "rate", "satisfaction": 6}, **headers)
    assert bad.json()["error"]["message"] == "satisfaction: must be between 1 and 5, got 6"


def test_the_grid_workers_name_is_shown_only_where_the_city_allows(area, browser_client, django_user_model, settings):
    worker = grid_worker(django_user_model, "wang", area["west"])
    worker.first_name, worker.last_name = "伟", "王"
    worker.save()
    token = reported(browser_client)["token"]
    assert browser_client.get("/api/resident/case", HTTP_X_FOLLOW_TOKEN=token).json()["handler"]["person"] is None
    settings.MINQING_RESIDENT_SHOW_HANDLER_NAMES = True
    assert browser_client.get("/api/resident/case", HTTP_X_FOLLOW_TOKEN=token).json()["handler"]["person"] == "伟 王"


def test_photos_are_checked_and_limited(area, browser_client, settings):
    token = reported(browser_client)["token"]

    def upload(content: bytes, client_id: str, content_type: str = "image/jpeg"):
        return browser_client.post(
            f"/api/resident/photos?client_id={client_id}",
            content,
            content_type=content_type,
            HTTP_X_CSRFTOKEN=browser_client.csrf,
            HTTP_X_FOLLOW_TOKEN=token,
        )

    assert upload(jpeg(), "photo-0001").status_code == 201
    assert upload(jpeg(), "photo-0001").status_code == 200  # a resend
    settings.MINQING_PHOTO_MAX_BYTES = 1000
    too_big = upload(b"\xff" * 2000, "photo-0002")
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "payload_too_large"
    settings.MINQING_PHOTO_MAX_BYTES = 10 * 1024 * 1024
    damaged = upload(jpeg()[:200], "photo-0003")
    assert damaged.json()["error"]["message"] == "photo: is a damaged or truncated image; take the photo again"
    assert upload(jpeg(), "photo-0004").status_code == 201
    assert upload(jpeg(), "photo-0005").status_code == 201
    fourth = upload(jpeg(), "photo-0006")
    assert fourth.status_code == 409
    assert fourth.json()["error"]["message"] == "photo: at most 3 photos per report"
    assert EventPhoto.objects.filter(uploaded_by__isnull=True).count() == 3


# --- the form's reads ------------------------------------------------------------------------------


def test_place_names_the_community_and_grid_that_will_handle_it(area, client):
    west = client.get("/api/resident/place", {"lon": IN_WEST[0], "lat": IN_WEST[1]}).json()
    assert (west["inside"], west["community"]["name"], west["grid"]["name"]) == (True, "畅家巷社区", "西小网格")
    east = client.get("/api/resident/place", {"lon": IN_EAST[0], "lat": IN_EAST[1], "crs": "wgs84"}).json()
    assert east["grid"] == {"code": "620102001001010102", "name": "东小网格"}
    assert "nearest_address" not in west
    bad = client.get("/api/resident/place", {"lon": "x", "lat": IN_WEST[1]})
    assert bad.json()["error"]["message"] == "lon: must be a number, got 'x'"


def test_a_typed_address_is_answered_down_to_its_building_never_a_room(area, client):
    populate(Grid.objects.get(code="620102001001010101"), households=24, prefix="W")
    address_index_reset()
    answer = client.get("/api/resident/geocode", {"q": "南关巷1号1号楼1单元101室"}).json()
    texts = [candidate["text"] for candidate in answer["candidates"]]
    assert answer["matched"] and texts[0] == "南关巷1号1号楼"
    assert all("单元" not in text and "室" not in text for text in texts)
    assert answer["candidates"][0]["grid"] == {"code": "620102001001010101", "name": "西小网格"}
    assert {c["precision"] for c in answer["candidates"]} <= {"building", "door", "compound", "road"}
    address_index_reset()
