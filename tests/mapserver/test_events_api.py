"""/api/events: intake (located, address only, unlocatable, idempotent retries), the filtered list
with keyset pages, one event with its log, the closed loop through actions, bad bodies with exact
messages, authentication, masked reporter contact and the list query's plan."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token

from layers.geocoding.crs import wgs84_to_gcj02
from layers.geocoding.index import address_index_reset
from layers.models import Address, Category, Event, EventTransition
from layers.protection.scope import CITY
from layers.selectors.events import cursor_encode, events_query
from layers.services.events import allowed_actions
from tests.worlds.events import IN_EAST, IN_WEST, NOWHERE, report, world

PHONE = "13912345678"


@pytest.fixture
def area(db):
    return world()


def _user(django_user_model, username: str, *roles: str):
    from django.contrib.auth.models import Group

    from layers.models import ReaderScope

    user = django_user_model.objects.create_user(username, f"{username}@example.org", f"{username}-password")
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    # The whole city: these tests are about the API, not data scope (tests/mapserver/test_scope.py).
    ReaderScope.objects.create(user=user, level="city")
    return user


@pytest.fixture
def api(client, django_user_model):
    """A street's staff who also dispatch: every step of the loop but checking their own work
    (who may do what: tests/mapserver/test_access.py)."""
    client.force_login(_user(django_user_model, "worker", "street_staff", "command_center"))
    return client


@pytest.fixture
def checker(django_user_model):
    """Another client, the command center's: verifies and closes what others resolved."""
    from django.test import Client

    other = Client()
    other.force_login(_user(django_user_model, "checker", "command_center"))
    return other


def post(client, path: str, body, **extra):
    raw = body if isinstance(body, str | bytes) else json.dumps(body, ensure_ascii=False)
    return client.post(path, raw, content_type="application/json", **extra)


def intake(**overrides) -> dict:
    body = {
        "channel": "grid_patrol",
        "external_id": "GP-0001",
        "category": "hazard.fire",
        "description": "楼道堆放杂物，堵塞消防通道",
        "location": {"lon": IN_WEST[0], "lat": IN_WEST[1]},
        "reported_at": "2026-05-01T08:00:00+08:00",
        "reporter": {"name": "张三丰", "phone": PHONE},
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


# --- intake ---------------------------------------------------------------------------------------


def test_create_with_coordinates(api, area):
    """201, a Location header, the event dispatched at once, areas and masked reporter filled."""
    response = post(api, "/api/events", intake())
    assert response.status_code == 201
    body = response.json()
    assert response["Location"] == f"http://testserver/api/events/{body['id']}"
    assert "Idempotent-Replay" not in response
    assert body["channel"] == "grid_patrol"
    assert body["external_id"] == "GP-0001"
    assert body["category"] == {"code": "hazard.fire", "name": "Fire hazard"}  # the reader reads English
    assert (body["status"], body["department"]) == ("assigned", {"code": "fire", "name": "Fire and rescue"})
    assert body["location"] == {"lon": round(IN_WEST[0], 7), "lat": round(IN_WEST[1], 7)}
    assert body["geocode"] == {"method": "coordinates", "confidence": 1.0, "precision": "point"}
    assert body["areas"] == {
        "district": {"code": "620102000000", "name": "城关区"},
        "street": {"code": "620102001000", "name": "酒泉路街道"},
        "community": {"code": "620102001001", "name": "畅家巷社区"},
        "grid_large": {"code": area["large"].code, "name": "一大网格"},
        "grid_medium": {"code": area["medium"].code, "name": "一中网格"},
        "grid_small": {"code": area["west"].code, "name": "西小网格"},
    }
    assert body["reporter"] == {"name": "张**", "phone": "139****5678"}
    assert body["reported_at"] == "2026-05-01T08:00:00+08:00"
    assert body["needs_location"] is False
    assert body["allowed_actions"] == allowed_actions("assigned")
    assert [step["action"] for step in body["transitions"]] == ["receive", "triage", "assign"]
    assert body["dispatch_trace"]["department"] == "fire"


def test_create_with_gcj02_coordinates_lands_in_the_same_grid(api, area):
    lon, lat = (float(v) for v in wgs84_to_gcj02(*IN_EAST))
    body = post(api, "/api/events", intake(location={"lon": lon, "lat": lat, "crs": "gcj02"})).json()
    assert body["areas"]["grid_small"]["code"] == area["east"].code


def test_create_with_address_only(api, area):
    """No coordinates: the address text is geocoded to the standard address's point."""
    Address.objects.create(
        code="A-0001",
        district_name="城关区",
        street_name="酒泉路街道",
        road="张掖路",
        door_number="10号",
        full_text="甘肃省兰州市城关区酒泉路街道张掖路10号",
        location=Point(*IN_EAST, srid=4326),
        grid=area["east"],
    )
    address_index_reset()
    response = post(api, "/api/events", intake(location=None, address="兰州市城关区张掖路10号"))
    assert response.status_code == 201
    body = response.json()
    assert body["geocode"]["method"] == "address"
    assert body["areas"]["grid_small"]["code"] == area["east"].code
    assert (body["status"], body["needs_location"], body["address_text"]) == (
        "assigned",
        False,
        "兰州市城关区张掖路10号",
    )


def test_unlocatable_report_is_stored_and_queued(api, area):
    response = post(api, "/api/events", intake(location=None, address="火星市不存在路1号"))
    assert response.status_code == 201
    body = response.json()
    assert (body["needs_location"], body["status"], body["location"]) == (True, "received", None)
    assert body["geocode"]["method"] == "none"
    assert "locate" in body["allowed_actions"]
    assert Event.objects.filter(pk=body["id"], needs_location=True).exists()


def test_retry_returns_the_stored_event(api, area):
    """The same body twice: one row; the second answer is 200 with the first event."""
    first = post(api, "/api/events", intake())
    second = post(api, "/api/events", intake(description="重复提交"))
    assert (first.status_code, second.status_code) == (201, 200)
    assert second["Idempotent-Replay"] == "true"
    assert second["Location"] == first["Location"]
    assert second.json()["id"] == first.json()["id"]
    assert Event.objects.get(pk=first.json()["id"]).description == "楼道堆放杂物，堵塞消防通道"
    assert Event.objects.filter(channel="grid_patrol", external_id="GP-0001").count() == 1


@pytest.mark.parametrize(("role", "shown"), [("command_center", True), ("analyst", False), (None, False)])
def test_the_description_is_shown_only_to_the_roles_the_catalog_allows(client, django_user_model, area, role, shown):
    """Citizens write names and phones into descriptions: the API follows the catalog's field rule."""
    from django.contrib.auth.models import Group

    from layers.models import ReaderScope

    user = django_user_model.objects.create_user(f"reader-{role}")
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    # The whole city, so that only the field rule decides (without a role one reads nothing).
    ReaderScope.objects.create(user=user, level="city")
    client.force_login(user)
    created = post(client, "/api/events", intake())
    listed = client.get("/api/events").json()["results"][0]
    detail = client.get(f"/api/events/{created.json()['id']}").json()
    expected = "楼道堆放杂物，堵塞消防通道" if shown else None
    assert (created.json()["description"], listed["description"], detail["description"]) == (expected,) * 3


def test_same_external_id_on_another_channel_is_another_event(api, area):
    first = post(api, "/api/events", intake())
    second = post(api, "/api/events", intake(channel="hotline"))
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]


# --- bad bodies -----------------------------------------------------------------------------------

BIG = "路" * 102_400


@pytest.mark.parametrize(
    "body, message",
    [
        (intake(channel=None), "channel: is required"),
        (
            intake(channel="fax"),
            "channel: must be one of hotline, app, web, mediation, petition, grid_patrol, drone_patrol, got 'fax'",
        ),
        (intake(category="hazard.meteor"), "category: unknown category 'hazard.meteor'"),
        (intake(category=None), "category: is required"),
        (intake(location=None), "location: a location or an address is required (or both)"),
        (intake(location=None, address="   "), "location: a location or an address is required (or both)"),
        (
            intake(location={"lon": IN_WEST[1], "lat": IN_WEST[0]}),
            "location.lat: must be between -90 and 90, got 103.832; are location.lon and location.lat swapped?",
        ),
        (intake(location={"lon": 2.35, "lat": 48.85}), "location.lon: 2.35 is outside China (longitude 73 to 136)"),
        (intake(location={"lon": 103.8, "lat": 60.5}), "location.lat: 60.5 is outside China (latitude 3 to 54)"),
        (intake(location={"lat": 36.06}), "location.lon: is required"),
        (intake(location={"lon": "east", "lat": 36.06}), "location.lon: must be a number, got 'east'"),
        (intake(location="103.8,36.0"), "location: must be a JSON object, got a string"),
        (
            intake(location={"lon": 103.8, "lat": 36.0, "crs": "epsg3857"}),
            "location.crs: must be one of wgs84, cgcs2000, gcj02, bd09, got 'epsg3857'",
        ),
        (intake(description=""), "description: is required"),
        (intake(description="   "), "description: is required"),
        (intake(description=BIG), "description: must be at most 10000 characters, got 102400"),
        (intake(address="路" * 501), "address: must be at most 300 characters, got 501"),
        (intake(address=BIG), "address: must be at most 300 characters, got 102400"),
        (intake(address=["张掖路"]), "address: must be text"),
        (intake(reported_at="yesterday"), "reported_at: must be an ISO 8601 date-time, got 'yesterday'"),
        (
            intake(reported_at="2026-13-45T08:00:00"),
            "reported_at: must be an ISO 8601 date-time, got '2026-13-45T08:00:00'",
        ),
        (
            intake(reported_at="0001-01-01T00:00:00+08:00"),
            "reported_at: must lie between the years 1900 and 2100, got 1",
        ),
        (
            intake(reported_at="1999-12-31T08:00:00+08:00"),
            "reported_at: lies before 2000-01-01 (1999-12-31T08:00:00+08:00)",
        ),
        (intake(external_id="x" * 65), "external_id: must be at most 64 characters, got 65"),
        (intake(reporter="张三"), "reporter: must be a JSON object, got a string"),
        (intake(reporter={"phone": "1" * 21}), "reporter.phone: must be at most 20 characters, got 21"),
        ("channel=app&category=hazard", "body: is not valid JSON: Expecting value at line 1 column 1"),
        (
            '{"channel": "app",}',
            "body: is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 19",
        ),
        ("", "body: must be a JSON object, got an empty body"),
        ("[]", "body: must be a JSON object, got an array"),
        ('[{"channel": "app"}]', "body: must be a JSON object, got an array"),
        ('"hazard"', "body: must be a JSON object, got a string"),
        (b'{"channel": "\xc3\x28"}', "body: is not valid JSON: not UTF-8 text"),
    ],
)
def test_bad_bodies_are_refused_naming_the_field(api, area, body, message):
    """400 with the exact message; nothing is stored."""
    response = post(api, "/api/events", body)
    assert response.status_code == 400, response.content
    assert response.json() == {
        "error": {"code": "bad_parameter", "message": message, "parameter": message.split(":")[0]}
    }
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    "constant, field",
    [("NaN", "location.lon"), ("Infinity", "location.lon"), ("-Infinity", "location.lon")],
)
def test_nan_and_infinity_are_refused(api, area, constant, field):
    """Python's JSON reader accepts NaN and Infinity; the coordinate parser refuses them."""
    raw = json.dumps(intake()).replace(f'"lon": {IN_WEST[0]}', f'"lon": {constant}')
    assert constant in raw
    response = post(api, "/api/events", raw)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == f"{field}: must be a finite number"
    assert not Event.objects.exists()


def test_nan_latitude_is_refused(api, area):
    raw = json.dumps(intake()).replace(f'"lat": {IN_WEST[1]}', '"lat": NaN')
    response = post(api, "/api/events", raw)
    assert response.json()["error"]["message"] == "location.lat: must be a finite number"


def test_future_report_time_is_refused_by_the_service(api, area):
    later = (timezone.now() + dt.timedelta(days=1)).isoformat()
    response = post(api, "/api/events", intake(reported_at=later))
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("reported_at: lies in the future (")


# --- list and pages -------------------------------------------------------------------------------

T0 = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)


def _received(event: Event, at: dt.datetime) -> Event:
    """Test setup: fix the time of receipt (the service stamps ``now``)."""
    Event.objects.filter(pk=event.pk).update(received_at=at)
    return event


def test_keyset_pages_have_no_duplicates_or_gaps(api, area):
    """25 events, pairs sharing a received_at: pages of 10, 10 and 5, newest first, id breaking ties."""
    events = [_received(report(), T0 - dt.timedelta(minutes=i // 2)) for i in range(25)]
    expected = [
        pk for _, pk in sorted(((T0 - dt.timedelta(minutes=i // 2), e.pk) for i, e in enumerate(events)), reverse=True)
    ]
    seen, url, sizes = [], "/api/events?limit=10", []
    while url:
        body = api.get(url).json()
        sizes.append(len(body["results"]))
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
        assert url is None or url.startswith("http://testserver/api/events?limit=10&cursor=")
    assert sizes == [10, 10, 5]
    assert seen == expected


def test_next_link_keeps_the_filters(api, area):
    for i in range(3):
        _received(report(category="hazard.gas"), T0 - dt.timedelta(minutes=i))
    report(category="dispute.neighbour")
    body = api.get("/api/events", {"category": "hazard", "limit": 2}).json()
    assert "category=hazard" in body["next"]
    rest = api.get(body["next"]).json()
    assert (len(body["results"]), len(rest["results"]), rest["next"]) == (2, 1, None)


def test_list_filters(api, area):
    west = _received(report(at=IN_WEST, category="hazard.fire"), T0)
    east = _received(report(at=IN_EAST, category="dispute.neighbour", channel="hotline"), T0 - dt.timedelta(hours=1))
    nowhere = _received(report(at=None, category="hazard", address=""), T0 - dt.timedelta(hours=2))

    def ids(**query) -> list[int]:
        response = api.get("/api/events", query)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids() == [west.pk, east.pk, nowhere.pk]
    assert ids(region="620102001001") == [west.pk, east.pk]
    assert ids(region="620102001000") == [west.pk, east.pk]
    assert ids(region="620102000000") == [west.pk, east.pk]
    assert ids(region="620100000000") == [west.pk, east.pk]
    assert ids(grid=area["west"].code) == [west.pk]
    assert ids(grid=area["east"].code) == [east.pk]
    assert ids(grid=area["medium"].code) == [west.pk, east.pk]
    assert ids(grid=area["large"].code) == [west.pk, east.pk]
    assert ids(category="hazard") == [west.pk, nowhere.pk]
    assert ids(category="hazard.fire") == [west.pk]
    assert ids(category="dispute.neighbour") == [east.pk]
    assert ids(channel="hotline") == [east.pk]
    assert ids(status="received") == [nowhere.pk]
    assert ids(status="assigned") == [west.pk, east.pk]
    west_box = f"{IN_WEST[0] - 0.001},{IN_WEST[1] - 0.001},{IN_WEST[0] + 0.001},{IN_WEST[1] + 0.001}"
    assert ids(bbox=west_box) == [west.pk]
    assert ids(bbox=f"{NOWHERE[0] - 0.01},{NOWHERE[1] - 0.01},{NOWHERE[0] + 0.01},{NOWHERE[1] + 0.01}") == []
    assert ids(since="2026-05-01T11:00:00Z") == [west.pk, east.pk]
    assert ids(until="2026-05-01T11:00:00Z") == [nowhere.pk]
    assert ids(since="2026-05-01T10:00:00Z", until="2026-05-01T12:00:00Z") == [east.pk, nowhere.pk]
    assert ids(category="hazard", region="620102001001") == [west.pk]


@pytest.mark.parametrize(
    "query, message",
    [
        ({"limit": "0"}, "limit: must be between 1 and 1000, got 0"),
        ({"limit": "1001"}, "limit: must be between 1 and 1000, got 1001"),
        ({"limit": "ten"}, "limit: must be an integer, got 'ten'"),
        ({"cursor": "not-a-cursor"}, "cursor: is not a cursor from this API; follow the 'next' link of a page"),
        ({"region": "999999999999"}, "region: unknown region code '999999999999'"),
        ({"grid": "G-404"}, "grid: unknown grid code 'G-404'"),
        ({"category": "weather"}, "category: unknown category 'weather'"),
        ({"category": "hazard.meteor"}, "category: unknown category 'hazard.meteor'"),
        ({"status": "done"}, "status: must be one of received, triaged, assigned, in_progress, resolved, "
         "verified, closed, returned, suspended, reopened, got 'done'"),
        ({"channel": "fax"}, "channel: must be one of hotline, app, web, mediation, petition, grid_patrol, "
         "drone_patrol, got 'fax'"),
        ({"since": "last week"}, "since: must be an ISO 8601 date-time, got 'last week'"),
        ({"bbox": "1,2,3"}, "bbox: must be lon_min,lat_min,lon_max,lat_max"),
    ],
)  # fmt: skip
def test_bad_list_parameters(api, area, query, message):
    response = api.get("/api/events", query)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == message


# --- one event ------------------------------------------------------------------------------------


def test_detail_has_the_log_and_the_trace(api, area):
    event = report(description="小区里有人燃气泄漏")
    body = api.get(f"/api/events/{event.pk}").json()
    assert body["id"] == event.pk
    assert [(s["action"], s["from_status"], s["to_status"]) for s in body["transitions"]] == [
        ("receive", None, "received"),
        ("triage", "received", "triaged"),
        ("assign", "triaged", "assigned"),
    ]
    assert body["transitions"][2]["actor"] == "system:dispatch"
    assert body["dispatch_trace"]["rules"][0]["keyword"] == "燃气泄漏"
    assert body["department"]["code"] == "fire"


def test_unknown_event_is_a_json_404(api, area):
    response = api.get("/api/events/987654321")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "No event with id 987654321.", "parameter": "event_id"}
    }
    assert post(api, "/api/events/987654321/actions", {"action": "accept"}).status_code == 404
    # Beyond the id column's range: still a 404, not a database error.
    assert api.get(f"/api/events/{10**20}").status_code == 404
    assert post(api, f"/api/events/{10**20}/actions", {"action": "accept"}).status_code == 404


# --- the closed loop ------------------------------------------------------------------------------


def act(client, event_id: int, expect: int = 200, **body) -> dict:
    response = post(client, f"/api/events/{event_id}/actions", body)
    assert response.status_code == expect, response.content
    return response.json()


def test_whole_loop_from_received_to_closed(api, checker, area):
    """An unlocatable report is located by hand, dispatched, handled, checked and closed by
    another user; every step is in the log under its user's name."""
    created = post(api, "/api/events", intake(location=None, address="找不到的地方")).json()
    assert created["status"] == "received"
    event_id = created["id"]
    located = act(api, event_id, action="locate", location={"lon": IN_EAST[0], "lat": IN_EAST[1]})
    assert (located["status"], located["needs_location"], located["geocode"]["method"]) == ("assigned", False, "manual")
    assert located["areas"]["grid_small"]["code"] == area["east"].code
    assert act(api, event_id, action="accept")["status"] == "in_progress"
    assert act(api, event_id, action="resolve", reason="已清理")["status"] == "resolved"
    assert act(api, event_id, action="rate", satisfaction=5)["satisfaction"] == 5
    verified = act(checker, event_id, action="verify")
    assert verified["status"] == "verified"
    closed = act(checker, event_id, action="close", version=verified["version"])
    assert (closed["status"], closed["allowed_actions"]) == ("closed", allowed_actions("closed"))
    log = list(EventTransition.objects.filter(event_id=event_id).order_by("id").values_list("action", "actor_label"))
    assert log == [
        ("receive", "worker"),
        ("locate", "worker"),
        ("triage", "system:dispatch"),
        ("assign", "system:dispatch"),
        ("accept", "worker"),
        ("resolve", "worker"),
        ("rate", "worker"),
        ("verify", "checker"),
        ("close", "checker"),
    ]


def test_refused_transition_is_409_naming_status_and_allowed_actions(api, area):
    event = report()
    response = post(api, f"/api/events/{event.pk}/actions", {"action": "close"})
    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "transition_not_allowed",
            "message": "action 'close' is not allowed from status 'assigned'; "
            "allowed: accept, escalate, locate, return, start, suspend",
            "status": "assigned",
            "action": "close",
            "allowed": ["accept", "escalate", "locate", "return", "start", "suspend"],
        }
    }
    assert Event.objects.get(pk=event.pk).status == "assigned"


def test_stale_version_is_409(api, area):
    event = report()
    response = post(api, f"/api/events/{event.pk}/actions", {"action": "accept", "version": 0})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "stale_version"


def test_unsatisfied_citizen_reopens(api, checker, area):
    event = report()
    for client, action in ((api, "accept"), (api, "resolve"), (checker, "verify"), (checker, "close")):
        act(client, event.pk, action=action)
    reopened = act(api, event.pk, action="reopen", satisfaction=1, reason="问题依旧")
    assert (reopened["status"], reopened["reopen_count"], reopened["satisfaction"]) == ("reopened", 1, 1)
    assert reopened["transitions"][-1]["reason"] == "问题依旧"
    refused = act(api, event.pk, expect=409, action="rate", satisfaction=4)
    assert refused["error"]["allowed"] == allowed_actions("reopened")
    assert act(api, event.pk, action="triage")["status"] == "triaged"


@pytest.mark.parametrize(
    "body, status, message",
    [
        (
            {"action": "fly"},
            400,
            "action: unknown action 'fly'; expected one of accept, assign, close, escalate, locate, rate, reopen, "
            "resolve, resume, return, start, suspend, triage, verify",
        ),
        ({}, 400, "action: is required"),
        ({"action": "return"}, 400, "reason: return needs a reason"),
        ({"action": "suspend", "reason": " "}, 400, "reason: suspend needs a reason"),
        ({"action": "locate", "location": {"lon": 2.35, "lat": 48.85}}, 400, "location.lon: 2.35 is outside China (longitude 73 to 136)"),
        ({"action": "accept", "version": "new"}, 400, "version: must be an integer, got 'new'"),
        ({"action": "accept", "reason": "r" * 2001}, 400, "reason: must be at most 2000 characters, got 2001"),
        ({"action": "rate", "satisfaction": 5}, 409, "action 'rate' is not allowed from "
         "status 'assigned'; allowed: accept, escalate, locate, return, start, suspend"),
    ],
)  # fmt: skip
def test_bad_actions(api, area, body, status, message):
    event = report()
    response = post(api, f"/api/events/{event.pk}/actions", body)
    assert response.status_code == status, response.content
    assert response.json()["error"]["message"] == message
    assert Event.objects.get(pk=event.pk).version == event.version


def test_bad_satisfaction_and_reopen_of_a_happy_citizen(api, area):
    event = report()
    for action in ("accept", "resolve"):
        act(api, event.pk, action=action)
    bad = act(api, event.pk, expect=400, action="rate", satisfaction=7)
    assert bad["error"]["message"] == "satisfaction: expected an integer from 1 to 5, got 7"
    happy = act(api, event.pk, expect=400, action="reopen", satisfaction=4)
    assert happy["error"]["message"] == (
        "satisfaction: reopening needs an unsatisfied citizen (satisfaction 1 or 2), got 4"
    )


# --- auth and personal data -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [("get", "/api/events"), ("post", "/api/events"), ("get", "/api/events/1"), ("post", "/api/events/1/actions")],
)
def test_anonymous_gets_401(client, db, method, path):
    response = (
        getattr(client, method)(path, "{}", content_type="application/json") if method == "post" else client.get(path)
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_token_auth_posts(client, area, django_user_model):
    user = django_user_model.objects.create_user("intake", "intake@example.org", "intake-password")
    token = Token.objects.create(user=user)
    response = post(client, "/api/events", intake(), HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 201
    assert EventTransition.objects.get(event_id=response.json()["id"], action="receive").actor_label == "intake"


def test_no_answer_contains_the_clear_phone(api, area):
    """Create, retry, list, detail and act: only the masked phone ever leaves the server."""
    answers = [post(api, "/api/events", intake()), post(api, "/api/events", intake())]
    event_id = answers[0].json()["id"]
    answers += [
        api.get("/api/events"),
        api.get(f"/api/events/{event_id}"),
        post(api, f"/api/events/{event_id}/actions", {"action": "accept"}),
    ]
    for response in answers:
        assert response.status_code in (200, 201)
        text = response.content.decode()
        assert PHONE not in text
        assert "139****5678" in text
        assert "张三丰" not in text


# --- the plan -------------------------------------------------------------------------------------


def test_default_list_reads_the_index_backwards(area):
    """With a few thousand events and fresh statistics, the first page and a deep page are an
    index scan on (received_at, id) under the limit, with no sort of the whole table."""
    category = Category.objects.get(code="hazard.fire")
    Event.objects.bulk_create(
        Event(
            channel="app",
            external_id=f"P-{i}",
            category=category,
            description="x",
            reported_at=T0,
            received_at=T0 - dt.timedelta(seconds=i),
            location=Point(IN_WEST[0] + (i % 50) * 1e-5, IN_WEST[1], srid=4326),
        )
        for i in range(4000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE layers_event")
    first = events_query(scope=CITY)[:101].explain()
    assert "Index Scan Backward using event_received_id" in first, first
    assert "Sort" not in first, first
    middle = Event.objects.get(external_id="P-2000")
    deep = events_query(scope=CITY, after=cursor_encode(received_at=middle.received_at, event_id=middle.pk))[
        :101
    ].explain()
    assert "Index Scan Backward using event_received_id" in deep, deep
    assert "Index Cond" in deep and "Sort" not in deep, deep


def test_schema_documents_the_event_endpoints(client, db):
    """/api/schema/ (public) lists the four operations with their request and response bodies."""
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    paths = schema["paths"]
    assert set(paths["/api/events"]) >= {"get", "post"}
    assert paths["/api/events/{event_id}"]["get"]["operationId"] == "events_retrieve"
    assert paths["/api/events/{event_id}/actions"]["post"]["operationId"] == "events_act"
    components = schema["components"]["schemas"]
    assert {"EventDetail", "EventPageItem", "EventPage", "EventIntake", "EventActionIn", "ErrorAnswer"} <= set(
        components
    )
    assert {"reporter", "allowed_actions", "transitions"} <= set(components["EventDetail"]["properties"])


# --- a browser session (CSRF) ---------------------------------------------------------------------


def test_a_browser_session_posts_reports_and_actions_with_its_csrf_token(area, django_user_model):
    """A page's session sends the CSRF token in a header; DRF's CSRF check must not eat the body
    the view reads (it used to, and the view answered 500). Without the token: 403."""
    from django.test import Client

    user = _user(django_user_model, "page-user", "street_staff")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get("/accounts/login/")  # the page that sets the CSRF cookie
    token = {"HTTP_X_CSRFTOKEN": browser.cookies["csrftoken"].value}
    refused = post(browser, "/api/events", intake())
    assert refused.status_code == 403
    created = post(browser, "/api/events", intake(), **token)
    assert created.status_code == 201, created.content
    assert created.json()["status"] == "assigned"  # located and dispatched on intake
    accepted = post(browser, f"/api/events/{created.json()['id']}/actions", {"action": "accept"}, **token)
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["status"] == "in_progress"
