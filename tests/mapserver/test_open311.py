"""Open311 GeoReport v2 at /open311/v2/: shapes checked against the GeoReport swagger file,
XML parsed back, idempotent POST, the api_key token, and a table of bad inputs with exact
GeoReport error bodies in JSON and XML."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import pytest
import yaml
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token

from layers.models import Event, EventTransition
from layers.protection.access import SYSTEM
from layers.services.events import event_act
from layers.taxonomy import taxonomy_seed
from tests.worlds.city import EAST_POINT, WEST_POINT

SWAGGER = ("testsuites", "open311", "georeport_v2-1.swagger.yaml")
BASE = "/open311/v2"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def swagger(shared_data) -> dict:
    return yaml.safe_load(shared_data(*SWAGGER).read_text(encoding="utf-8"))["definitions"]


@pytest.fixture
def user(django_user_model):
    """A command-center account: it may read the citizens' free text (descriptions, notes)."""
    from django.contrib.auth.models import Group

    account = django_user_model.objects.create_user("intake", "intake@example.org", "intake-password")
    account.groups.add(Group.objects.get_or_create(name="command_center")[0])
    return account


@pytest.fixture
def api(client, user, city):
    taxonomy_seed()
    client.force_login(user)
    return client


@pytest.fixture
def token(user) -> str:
    return Token.objects.create(user=user).key


def parse_xml(content: bytes) -> ET.Element:
    # Our own server's answer in a test, not untrusted input.
    return ET.fromstring(content)  # noqa: S314


def post(client, fmt: str = "json", **fields):
    from urllib.parse import urlencode

    return client.post(f"{BASE}/requests.{fmt}", urlencode(fields), content_type=FORM)


_TYPES = {"string": str, "boolean": bool, "number": (int, float), "integer": int, "array": list}


def assert_shape(item: dict, definition: dict) -> None:
    """Every required key of the swagger definition is there, and every key is a known one
    whose value has the declared type (null allowed for optional values)."""
    required = set(definition.get("required", ()))
    assert required <= set(item), required - set(item)
    for key, value in item.items():
        assert key in definition["properties"], key
        declared = definition["properties"][key]["type"]
        if value is None:
            assert key not in required, key
            continue
        assert isinstance(value, _TYPES[declared]), (key, value, declared)
        if "enum" in definition["properties"][key]:
            assert value in definition["properties"][key]["enum"], (key, value)


@pytest.mark.shared_data
def test_services_match_the_swagger_shape(api, swagger):
    response = api.get(f"{BASE}/services.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    services = response.json()
    for service in services:
        assert_shape(service, swagger["Service"])
    fire = next(s for s in services if s["service_code"] == "hazard.fire")
    assert fire["service_name"] == "消防隐患"
    assert (fire["group"], fire["type"], fire["metadata"]) == ("hazard", "realtime", False)
    assert fire["description"] == "Fire hazard. 办理部门 消防救援支队; 办理时限 24 小时 (resolved within 24 h)"
    assert "火灾" in fire["keywords"].split(", ")
    assert [s["service_code"] for s in services] == sorted(s["service_code"] for s in services)


def test_services_xml_parses_to_the_same_services(api):
    as_json = api.get(f"{BASE}/services.json").json()
    response = api.get(f"{BASE}/services.xml")
    assert response["Content-Type"] == "text/xml; charset=utf-8"
    root = parse_xml(response.content)
    assert root.tag == "services"
    parsed = [{child.tag: child.text or "" for child in service} for service in root.findall("service")]
    assert [s["service_code"] for s in parsed] == [s["service_code"] for s in as_json]
    assert parsed[0]["metadata"] == "false"
    assert {s["service_name"] for s in parsed} == {s["service_name"] for s in as_json}


@pytest.mark.shared_data
def test_service_definition(api, swagger):
    body = api.get(f"{BASE}/services/hazard.fire.json").json()
    assert body == {"service_code": "hazard.fire", "attributes": []}
    assert_shape(body, swagger["ServiceDefinition"])
    root = parse_xml(api.get(f"{BASE}/services/hazard.fire.xml").content)
    assert (root.tag, root.findtext("service_code"), root.find("attributes") is not None) == (
        "service_definition",
        "hazard.fire",
        True,
    )


@pytest.mark.shared_data
def test_post_then_read_back(api, swagger, city):
    """A report with lat/long lands in the WEST grid and is dispatched; reading it back gives
    every GeoReport field, open status and the SLA deadline as expected_datetime."""
    lon, lat = WEST_POINT
    response = post(
        api,
        service_code="hazard.fire",
        lat=lat,
        long=lon,
        address_string="畅家巷1号",
        description="楼道堆放杂物，有<火灾>隐患 & 无人管",
        first_name="三",
        last_name="张",
        phone="13912345678",
        email="zhang@example.org",
        account_id="A-77",
    )
    assert response.status_code == 200, response.content
    (receipt,) = response.json()
    assert_shape(receipt, swagger["RequestResponse"])
    event = Event.objects.get(pk=int(receipt["service_request_id"]))
    assert receipt["account_id"] == "A-77"
    assert receipt["service_notice"].startswith("消防救援支队办理，社区级负责，")
    assert (event.channel, event.grid_id, event.status) == ("app", city.grids["west"].pk, "assigned")
    assert (event.reporter_name_masked, event.reporter_phone_masked) == ("张*", "139****5678")

    (request,) = api.get(f"{BASE}/requests/{event.pk}.json").json()
    assert_shape(request, swagger["Request"])
    assert list(request) == [
        "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
        "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
        "address", "address_id", "zipcode", "lat", "long", "media_url",
    ]  # fmt: skip
    assert request["status"] == "open"
    assert request["service_code"] == "hazard.fire"
    assert request["agency_responsible"] == "消防救援支队"
    assert request["expected_datetime"] == event.deadline.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat(
        timespec="seconds"
    )
    assert (request["lat"], request["long"]) == (round(lat, 7), round(lon, 7))
    assert request["media_url"] == ""

    root = parse_xml(api.get(f"{BASE}/requests/{event.pk}.xml").content)
    assert root.tag == "service_requests"
    assert root.find("request").findtext("description") == "楼道堆放杂物，有<火灾>隐患 & 无人管"
    assert root.find("request").findtext("lat") == str(round(lat, 7))


def test_status_maps_to_open_and_closed_with_the_last_reason(api, user):
    lon, lat = EAST_POINT
    (receipt,) = post(api, service_code="environment.garbage", lat=lat, long=lon, description="垃圾未清运").json()
    event = Event.objects.get(pk=int(receipt["service_request_id"]))
    for action in ("accept", "resolve"):
        event = event_act(reader=SYSTEM, event=event, action=action, actor=user, reason=f"{action} 已处理")
    (request,) = api.get(f"{BASE}/requests/{event.pk}.json").json()
    assert (request["status"], request["status_notes"]) == ("closed", "resolve 已处理")
    last = EventTransition.objects.filter(event=event).order_by("-at", "-id").first()
    assert request["updated_datetime"] == last.at.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat(
        timespec="seconds"
    )
    event_act(reader=SYSTEM, event=event, action="return", actor=user, reason="现场未清理")
    (request,) = api.get(f"{BASE}/requests/{event.pk}.json").json()
    assert (request["status"], request["status_notes"]) == ("open", "现场未清理")


def test_list_filters(api, user):
    lon, lat = WEST_POINT
    ids = []
    for code, description in (("hazard.fire", "着火"), ("environment.noise", "噪音"), ("environment.noise", "噪声")):
        (receipt,) = post(api, service_code=code, lat=lat, long=lon, description=description).json()
        ids.append(int(receipt["service_request_id"]))
    event_act(reader=SYSTEM, event=Event.objects.get(pk=ids[2]), action="accept", actor=user)
    event_act(reader=SYSTEM, event=Event.objects.get(pk=ids[2]), action="resolve", actor=user)

    def listed(**query) -> list[int]:
        response = api.get(f"{BASE}/requests.json", query)
        assert response.status_code == 200, response.content
        return [int(r["service_request_id"]) for r in response.json()]

    assert listed() == ids[::-1]
    assert listed(service_code="environment.noise") == ids[:0:-1]
    assert listed(status="closed") == [ids[2]]
    assert listed(status="open") == [ids[1], ids[0]]
    assert listed(service_request_id=f"{ids[0]},{ids[2]}", service_code="hazard.fire") == [ids[2], ids[0]]
    assert listed(start_date="2000-01-01", end_date="2000-12-31") == []
    assert listed(start_date="2000-01-01T00:00:00+08:00") == ids[::-1]
    root = parse_xml(api.get(f"{BASE}/requests.xml", {"status": "open"}).content)
    assert [int(r.findtext("service_request_id")) for r in root.findall("request")] == [ids[1], ids[0]]


def test_retry_with_the_same_ticket_returns_the_stored_request(api):
    lon, lat = WEST_POINT
    first = post(api, service_code="hazard.gas", lat=lat, long=lon, description="煤气味", service_request_id="HX-1")
    again = post(api, service_code="hazard.gas", lat=lat, long=lon, description="煤气味", service_request_id="HX-1")
    assert first.json()[0]["service_request_id"] == again.json()[0]["service_request_id"]
    assert Event.objects.filter(external_id="HX-1").count() == 1


def test_address_only_and_address_id(api, city):
    """No coordinates: the address text is geocoded; address_id places the report at the
    standard address itself."""
    (receipt,) = post(api, service_code="municipal.streetlight", address_id="A001", description="路灯不亮").json()
    event = Event.objects.get(pk=int(receipt["service_request_id"]))
    assert (event.grid_id, event.address_text) == (city.grids["west"].pk, city.address.full_text)
    (receipt,) = post(api, service_code="municipal.streetlight", address_string="火星基地9号").json()
    event = Event.objects.get(pk=int(receipt["service_request_id"]))
    assert (event.needs_location, event.description) == (True, "路灯")
    (request,) = api.get(f"{BASE}/requests/{event.pk}.json").json()
    assert (request["lat"], request["long"], request["status"]) == (None, None, "open")
    assert request["service_notice"] == "待人工定位后分拨 (waiting for manual location before dispatch)"


def test_channel_from_the_callers_group(api, user):
    group = Group.objects.create(name="intake:hotline")
    user.groups.add(group)
    lon, lat = WEST_POINT
    (receipt,) = post(api, service_code="dispute.neighbour", lat=lat, long=lon, description="邻居吵闹").json()
    assert Event.objects.get(pk=int(receipt["service_request_id"])).channel == "hotline"


def test_api_key_carries_the_token(client, city, token):
    taxonomy_seed()
    assert client.get(f"{BASE}/services.json", {"api_key": token}).status_code == 200
    lon, lat = WEST_POINT
    response = post(client, service_code="hazard.fire", lat=lat, long=lon, description="冒烟", api_key=token)
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    "path, query, status, description",
    [
        ("services.xml", {"api_key": "nope"}, 401, "认证令牌无效。"),
        ("requests.json", {"api_key": "nope"}, 401, "认证令牌无效。"),
    ],
)
def test_authentication_errors(chinese_client, city, path, query, status, description):
    """In the default language, Chinese (the client states none)."""
    response = chinese_client.get(f"{BASE}/{path}", query)
    assert response.status_code == status
    if path.endswith(".xml"):
        root = parse_xml(response.content)
        assert [(e.findtext("code"), e.findtext("description")) for e in root] == [(str(status), description)]
    else:
        assert response.json() == [{"code": status, "description": description}]
    assert response["WWW-Authenticate"] == 'Token realm="api"'


LIST_CASES = [
    # (query string, service codes kept or None for all, GeoReport statuses kept or None for all)
    ("service_code=hazard.fire", {"hazard.fire"}, None),
    ("service_code=hazard.fire,environment.noise", {"hazard.fire", "environment.noise"}, None),
    ("service_code=hazard.fire&service_code=environment.noise", {"hazard.fire", "environment.noise"}, None),
    ("service_code=hazard.fire,environment.noise&service_code=hazard.gas",
     {"hazard.fire", "environment.noise", "hazard.gas"}, None),
    ("service_code=%20hazard.fire%20,%20hazard.fire", {"hazard.fire"}, None),
    ("status=open", None, {"open"}),
    ("status=closed", None, {"closed"}),
    ("status=open,closed", None, {"open", "closed"}),
    ("status=open&status=closed", None, {"open", "closed"}),
    ("status=closed&service_code=environment.noise,hazard.gas", {"environment.noise", "hazard.gas"}, {"closed"}),
    ("status=open&status=open&service_code=hazard.fire", {"hazard.fire"}, {"open"}),
    ("service_code=hazard.fire,hazard.unknown", {"hazard.fire"}, None),  # an unknown service has no requests
]  # fmt: skip


@pytest.mark.parametrize("query, codes, statuses", LIST_CASES)
def test_list_filters_take_lists_as_georeport_says(api, user, query, codes, statuses):
    """``service_code`` and ``status`` take comma-separated and repeated values (any of them);
    each answer holds exactly the requests an SQL count over the same events finds."""
    from django.db import connection

    lon, lat = WEST_POINT
    made = []
    for code in (
        "hazard.fire",
        "hazard.fire",
        "environment.noise",
        "environment.noise",
        "hazard.gas",
        "dispute.neighbour",
    ):
        (receipt,) = post(api, service_code=code, lat=lat, long=lon, description="事件").json()
        made.append(int(receipt["service_request_id"]))
    for pk in (made[1], made[3], made[4]):
        event_act(reader=SYSTEM, event=Event.objects.get(pk=pk), action="accept", actor=user)
        event_act(reader=SYSTEM, event=Event.objects.get(pk=pk), action="resolve", actor=user)
    from layers.selectors.open311 import CLOSED_STATUSES

    closed = [str(s) for s in CLOSED_STATUSES]
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT e.id FROM layers_event e JOIN layers_category c ON c.id = e.category_id
               WHERE (%s::text[] IS NULL OR c.code = ANY(%s::text[]))
                 AND (%s::text[] IS NULL OR (CASE WHEN e.status = ANY(%s) THEN 'closed' ELSE 'open' END) = ANY(%s::text[]))
               ORDER BY e.reported_at DESC, e.id DESC""",
            [list(codes) if codes else None, list(codes) if codes else None,
             list(statuses) if statuses else None, closed, list(statuses) if statuses else None],
        )  # fmt: skip
        expected = [row[0] for row in cursor.fetchall()]
    assert expected, "each case keeps some requests"
    response = api.get(f"{BASE}/requests.json?{query}")
    assert response.status_code == 200, response.content
    assert [int(r["service_request_id"]) for r in response.json()] == expected


LON, LAT = WEST_POINT


@pytest.mark.parametrize(
    "method, path, fields, status, description",
    [
        ("get", "services.html", {}, 404, "unknown format 'html'; expected .json or .xml"),
        ("get", "services/hazard.unknown.json", {}, 404, "service_code: unknown service 'hazard.unknown'"),
        ("get", "requests/999999.json", {}, 404, "service_request_id: no service request 999999"),
        ("get", "requests/abc.json", {}, 400, "service_request_id: must be a request id (digits), got 'abc'"),
        ("get", "requests.json", {"start_date": "yesterday"}, 400,
         "start_date: must be an ISO 8601 date-time, got 'yesterday'"),
        ("get", "requests.json", {"end_date": "2025-13-01"}, 400,
         "end_date: must be an ISO 8601 date-time, got '2025-13-01'"),
        ("get", "requests.json", {"start_date": "2025-02-01", "end_date": "2025-01-01"}, 400,
         "end_date: must not be before start_date"),
        ("get", "requests.json", {"status": "pending"}, 400, "status: must be one of open, closed, got 'pending'"),
        ("get", "requests.json", {"status": "open,pending"}, 400,
         "status: must be one of open, closed, got 'pending'"),
        ("get", "requests.json", {"status": "open,"}, 400,
         "status: must be a comma-separated list without empty items"),
        ("get", "requests.json", {"service_code": "hazard.fire,,hazard.gas"}, 400,
         "service_code: must be a comma-separated list without empty items"),
        ("get", "requests.json", {"service_code": "x" * 41}, 400,
         "service_code: each item must be at most 40 characters, got 41"),
        ("get", "requests.json", {"service_request_id": "1,x"}, 400,
         "service_request_id: must be comma-separated request ids, got 'x'"),
        ("post", "requests.json", {"lat": LAT, "long": LON}, 400, "service_code: is required"),
        ("post", "requests.json", {"service_code": "hazard.unknown", "lat": LAT, "long": LON}, 400,
         "service_code: unknown service 'hazard.unknown'; see services.json"),
        ("post", "requests.json", {"service_code": "hazard.fire"}, 400,
         "lat: lat and long, address_string or address_id is required"),
        ("post", "requests.json", {"service_code": "hazard.fire", "lat": "north", "long": LON}, 400,
         "lat: must be a number, got 'north'"),
        ("post", "requests.json", {"service_code": "hazard.fire", "lat": LAT}, 400, "long: is required"),
        ("post", "requests.json", {"service_code": "hazard.fire", "lat": "NaN", "long": LON}, 400,
         "lat: must be a finite number"),
        ("post", "requests.json", {"service_code": "hazard.fire", "lat": LON, "long": LAT}, 400,
         f"lat: must be between -90 and 90, got {LON:g}; are long and lat swapped?"),
        ("post", "requests.json", {"service_code": "hazard.fire", "lat": "48.85", "long": "2.35"}, 400,
         "long: 2.35 is outside China (longitude 73 to 136)"),
        ("post", "requests.json", {"service_code": "hazard.fire", "address_id": "NOPE"}, 400,
         "address_id: unknown standard address 'NOPE'"),
        ("post", "requests.json", {"service_code": "hazard.fire", "address_string": "x" * 301}, 400,
         "address_string: must be at most 300 characters, got 301"),
        ("post", "requests.json", {"service_code": "hazard.fire", "address_string": "畅家巷", "service_request_id": "x" * 65},
         400, "service_request_id: must be at most 64 characters, got 65"),
        ("post", "services.json", {}, 405, 'Method "POST" not allowed.'),
    ],
)  # fmt: skip
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_bad_input_gets_a_georeport_error(api, method, path, fields, status, description, fmt):
    """Each bad input gets its 4xx and one GeoReport error naming the field, in the format asked
    for (an unknown format is answered in JSON); nothing is stored."""
    path = path.replace(".json", f".{fmt}") if not path.endswith(".html") else path
    if method == "get":
        response = api.get(f"{BASE}/{path}", fields)
    else:
        from urllib.parse import urlencode

        response = api.post(f"{BASE}/{path}", urlencode(fields), content_type=FORM)
    assert response.status_code == status, response.content
    if fmt == "xml" and not path.endswith(".html"):
        root = parse_xml(response.content)
        assert root.tag == "errors"
        assert [(e.findtext("code"), e.findtext("description")) for e in root.findall("error")] == [
            (str(status), description)
        ]
    else:
        assert response.json() == [{"code": status, "description": description}]
    assert not Event.objects.exists()


def test_an_analyst_reads_requests_without_the_citizens_free_text(api, user, client, django_user_model):
    """Descriptions and status notes follow the catalog's rule: an analyst gets them empty."""
    from django.contrib.auth.models import Group

    posted = api.post(
        "/open311/v2/requests.json",
        {"service_code": "hazard.fire", "lat": "36.065", "long": "103.832", "description": "张三 13912345678 楼道堆物"},
    )
    request_id = posted.json()[0]["service_request_id"]
    analyst = django_user_model.objects.create_user("analyst-311")
    analyst.groups.add(Group.objects.get_or_create(name="analyst")[0])
    client.force_login(analyst)
    body = client.get(f"/open311/v2/requests/{request_id}.json").json()[0]
    assert (body["description"], body["status_notes"]) == ("", "")
    assert "13912345678" not in client.get("/open311/v2/requests.json").content.decode()
