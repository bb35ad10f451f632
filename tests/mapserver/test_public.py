"""The public map (``/public/``): counts per small grid with small ones merged (k-anonymity),
streets' response and resolution times, the month's categories, approved summaries only, the
feeds, the embeddable view's framing rules, Open311's public read and the moderation page."""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET

import pytest
from django.contrib.auth.models import Group
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.utils import timezone

from layers.models import Event, Grid, PublicSummary, Region
from layers.protection.access import SYSTEM
from layers.selectors.public import month_current
from layers.services.events import event_act
from tests.worlds.events import IN_EAST, IN_WEST, NOWHERE, report, world
from tests.worlds.factories import ORIGIN, SIZE

BASE = "/api/public"
#: A point in the second community of the street (east of the first).
IN_OTHER = (ORIGIN[0] + SIZE * 1.5, ORIGIN[1] + SIZE / 2)


@pytest.fixture
def area(db):
    area = world()
    lon, lat = ORIGIN[0] + SIZE, ORIGIN[1]
    square = MultiPolygon(Polygon.from_bbox((lon, lat, lon + SIZE, lat + SIZE)), srid=4326)
    other = Region.objects.create(
        code="620102001002", name="南关社区", level="community", parent=area["street"], boundary=square
    )
    large = Grid.objects.create(code="62010200100201", name="二大网格", level="large", community=other, boundary=square)
    medium = Grid.objects.create(
        code="6201020010020101", name="二中网格", level="medium", parent=large, community=other, boundary=square
    )
    small = Grid.objects.create(
        code="620102001002010101", name="南小网格", level="small", parent=medium, community=other, boundary=square
    )
    return area | {"other": other, "south": small}


def cases(at, n: int, *, resolved: int = 0, category: str = "municipal.streetlight") -> list[Event]:
    made = []
    for i in range(n):
        event = report(at=at, category=category, description="路灯不亮")
        if i < resolved:
            for action, reason in (("accept", ""), ("resolve", "已修复")):
                event = event_act(event=event, action=action, reader=SYSTEM, reason=reason)
        made.append(event)
    return made


def said(response) -> list[str]:
    """The messages the moderation page showed after a redirect."""
    return [str(message) for message in response.context["messages"]]


def cells(client, **query) -> dict:
    response = client.get(f"{BASE}/cells", query)
    assert response.status_code == 200, response.content
    return response.json()


def drawn(collection: dict) -> list[tuple]:
    return [
        (f["properties"]["kind"], f["properties"]["name"], f["properties"]["cases"], f["properties"]["resolved"])
        for f in collection["features"]
    ]


# --- cells ---------------------------------------------------------------------------------------------


def test_a_grid_with_k_cases_is_drawn_and_one_with_fewer_is_not(area, client):
    cases(IN_WEST, 5, resolved=2)
    cases(IN_EAST, 3)
    collection = cells(client)
    assert collection["threshold"] == 5
    assert drawn(collection) == [("grid", "西小网格", 5, 2)]
    west = collection["features"][0]["properties"]
    assert (west["code"], west["community"], west["street"], west["open"]) == (
        "620102001001010101",
        "畅家巷社区",
        "酒泉路街道",
        3,
    )
    # The east grid's 3 cases: too few for its community, its street, or on their own.
    assert collection["remainder"] == {"cases": None, "below_threshold": True}
    cases(IN_EAST, 2)
    assert drawn(cells(client)) == [("grid", "西小网格", 5, 2), ("grid", "东小网格", 5, 0)]


def test_small_grids_merge_into_their_whole_community(area, client):
    cases(IN_WEST, 3, resolved=1)
    cases(IN_EAST, 3)
    collection = cells(client)
    assert drawn(collection) == [("community", "畅家巷社区", 6, 1)]
    # Drawn as the whole community, never as the grids whose cases it holds.
    ring = collection["features"][0]["geometry"]["coordinates"][0][0]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    assert (min(lons), max(lons), min(lats), max(lats)) == (ORIGIN[0], ORIGIN[0] + SIZE, ORIGIN[1], ORIGIN[1] + SIZE)
    assert collection["remainder"] == {"cases": 0, "below_threshold": False}


def test_communities_below_k_merge_into_their_street_and_the_rest_is_told_as_fewer_than_k(area, client):
    cases(IN_WEST, 2)
    cases(IN_EAST, 1)
    cases(IN_OTHER, 2)
    collection = cells(client)
    assert drawn(collection) == [("street", "酒泉路街道", 5, 0)]
    # The street has no boundary of its own: it is drawn as all its small grids.
    assert collection["features"][0]["geometry"]["type"] == "MultiPolygon"
    cases(None, 2)
    assert cells(client)["remainder"] == {"cases": None, "below_threshold": True}


def test_only_the_month_asked_for_counts(area, client):
    old = cases(IN_WEST, 5, resolved=5)
    month = month_current()
    previous = month.start - dt.timedelta(days=1)
    Event.objects.filter(pk__in=[e.pk for e in old]).update(received_at=previous)
    assert drawn(cells(client)) == []
    assert drawn(cells(client, month=f"{timezone.localtime(previous):%Y-%m}")) == [("grid", "西小网格", 5, 5)]


@pytest.mark.parametrize(
    ("month", "message"),
    [
        ("2026-13", "month: must be a month as YYYY-MM, got '2026-13'"),
        ("may", "month: must be a month as YYYY-MM, got 'may'"),
        ("1850-01", "month: must lie between the years 1900 and 2100, got 1850"),
    ],
)
def test_a_bad_month_is_named(area, client, month, message):
    response = client.get(f"{BASE}/month", {"month": month})
    assert response.status_code == 400
    assert response.json()["error"] == {"code": "bad_parameter", "message": message, "parameter": "month"}


def test_a_future_month_is_refused(area, client):
    following = month_current().end + dt.timedelta(days=1)
    label = f"{following:%Y-%m}"
    response = client.get(f"{BASE}/cells", {"month": label})
    assert response.json()["error"]["message"] == (
        f"month: must not be after the current month {month_current().label}, got {label}"
    )


# --- the month's figures -----------------------------------------------------------------------------


def test_streets_times_and_categories_follow_the_threshold(area, client):
    month = month_current()
    unit = min(dt.timedelta(hours=1), (timezone.now() - month.start) / 7)
    made = cases(IN_WEST, 5, resolved=5)
    # Received 1 to 5 units ago, handled now: the median response and resolution take 3 units.
    for i, event in enumerate(made, start=1):
        Event.objects.filter(pk=event.pk).update(received_at=timezone.now() - i * unit, satisfaction=4 + i % 2)
    cases(IN_OTHER, 1, category="municipal.manhole")
    cases(IN_OTHER, 1, category="municipal.water")
    cases(IN_EAST, 2, category="environment.noise")
    body = client.get(f"{BASE}/month").json()
    (street,) = body["streets"]["streets"]
    assert (street["name"], street["cases"], street["resolved"], street["completion_rate"]) == (
        "酒泉路街道",
        9,
        5,
        0.556,
    )
    expected = round(3 * unit.total_seconds() / 3600, 1)
    assert abs(street["response_hours"] - expected) <= 0.1 and abs(street["resolution_hours"] - expected) <= 0.1
    assert street["satisfaction"] == 4.6
    assert body["streets"]["others"] == 0
    assert body["categories"]["categories"] == [
        {"code": "municipal.streetlight", "name": "路灯", "name_en": "Streetlight", "family": "municipal", "cases": 5}
    ]
    # manhole 1 + water 1 (municipal, below 5) and noise 2: the month's "other", itself below 5.
    assert body["categories"]["other"] is None
    assert body["totals"] == {
        "month": month.label,
        "threshold": 5,
        "cases": 9,
        "resolved": 5,
        "open": 4,
        "completion_rate": 0.556,
        "on_time_rate": 1.0,
        "satisfaction": 4.6,
    }


def test_a_street_with_few_cases_shows_no_times(area, client, settings):
    settings.MINQING_PUBLIC_MIN_COUNT = 3
    cases(IN_WEST, 3, resolved=2)
    body = client.get(f"{BASE}/month").json()
    (street,) = body["streets"]["streets"]
    assert (street["cases"], street["response_hours"], street["resolution_hours"], street["satisfaction"]) == (
        3,
        None,
        None,
        None,
    )
    settings.MINQING_PUBLIC_MIN_COUNT = 4
    body = client.get(f"{BASE}/month").json()
    assert (body["streets"]["streets"], body["streets"]["others"], body["totals"]["cases"]) == ([], None, None)


def test_public_answers_may_be_kept_by_shared_caches(area, client):
    for path in (f"{BASE}/month", f"{BASE}/cells", f"{BASE}/cases", "/public/feed.json", "/public/feed.rss"):
        assert client.get(path)["Cache-Control"] == "public, max-age=60", path


# --- approved cases, feeds ---------------------------------------------------------------------------


@pytest.fixture
def moderators(django_user_model):
    group = Group.objects.get_or_create(name="command_center")[0]
    users = []
    for name in ("author", "moderator"):
        user = django_user_model.objects.create_user(name, password=f"{name}-password")
        user.groups.add(group)
        users.append(user)
    return users


def published(event: Event, text: str, moderators, *, approve: bool = True) -> PublicSummary:
    from layers.protection.access import reader_of
    from layers.services.summaries import public_summary_moderate, public_summary_propose

    author, moderator = moderators
    summary = public_summary_propose(event=event, reader=reader_of(author), author=author, text=text)
    if approve is not None:
        decision = "approve" if approve else "reject"
        summary = public_summary_moderate(
            summary_id=summary.pk, reader=reader_of(moderator), moderator=moderator, decision=decision
        )
    return summary


def test_only_approved_summaries_of_completed_cases_are_listed(area, client, moderators):
    shown, pending, rejected, reopened = cases(IN_WEST, 4, resolved=4)
    published(shown, "南关巷路灯已更换，恢复照明。", moderators)
    published(pending, "待审核的摘要内容十个字以上。", moderators, approve=None)
    published(rejected, "被驳回的摘要内容十个字以上。", moderators, approve=False)
    published(reopened, "重办中的案例摘要十个字以上。", moderators)
    event_act(event=reopened, action="reopen", reader=SYSTEM, data={"satisfaction": 1})
    page = client.get(f"{BASE}/cases").json()
    assert [(c["id"], c["summary"]) for c in page["results"]] == [(shown.pk, "南关巷路灯已更换，恢复照明。")]
    case = page["results"][0]
    assert (case["street"], case["community"], case["category"]["name"]) == ("酒泉路街道", "畅家巷社区", "路灯")
    assert case["received_month"] == f"{timezone.localtime(shown.received_at):%Y-%m}"
    assert page["next"] is None


def test_the_cases_list_pages_by_cursor(area, client, moderators):
    made = cases(IN_WEST, 3, resolved=3)
    for event in made:
        published(event, f"第{event.pk}号路灯已修复，恢复照明。", moderators)
    first = client.get(f"{BASE}/cases", {"limit": 2}).json()
    assert [c["id"] for c in first["results"]] == [made[2].pk, made[1].pk]
    second = client.get(first["next"]).json()
    assert ([c["id"] for c in second["results"]], second["next"]) == ([made[0].pk], None)
    bad = client.get(f"{BASE}/cases", {"cursor": "nonsense"})
    assert bad.json()["error"]["message"] == "cursor: is not a cursor from this list; follow its 'next' link"


def test_the_feeds_carry_the_approved_cases(area, client, moderators):
    (event,) = cases(IN_WEST, 1, resolved=1)
    published(event, "南关巷路灯已更换，恢复照明。", moderators)
    feed = client.get("/public/feed.json")
    assert feed["Content-Type"] == "application/feed+json; charset=utf-8"
    body = feed.json()
    assert body["version"] == "https://jsonfeed.org/version/1.1"
    assert [(i["id"], i["title"], i["content_text"]) for i in body["items"]] == [
        (f"minqing-case-{event.pk}", "路灯 · 酒泉路街道 畅家巷社区", "南关巷路灯已更换，恢复照明。")
    ]
    assert body["items"][0]["url"] == f"http://testserver/public/#case-{event.pk}"
    rss = ET.fromstring(client.get("/public/feed.rss").content)  # noqa: S314 - our own answer
    items = rss.findall("./channel/item")
    assert [(i.findtext("title"), i.findtext("description"), i.findtext("guid")) for i in items] == [
        ("路灯 · 酒泉路街道 畅家巷社区", "南关巷路灯已更换，恢复照明。", f"minqing-case-{event.pk}")
    ]


# --- framing ---------------------------------------------------------------------------------------------


def test_only_the_embeddable_view_may_be_framed_and_only_by_the_configured_origins(area, client, settings):
    page = client.get("/public/")
    assert page["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page["Content-Security-Policy"]
    embed = client.get("/public/embed/")
    assert embed["X-Frame-Options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self';" in embed["Content-Security-Policy"] + ";"
    settings.MINQING_PUBLIC_EMBED_ORIGINS = ["https://news.example.cn", "https://m.example.cn"]
    embed = client.get("/public/embed/")
    assert "X-Frame-Options" not in embed
    policy = dict(part.strip().split(" ", 1) for part in embed["Content-Security-Policy"].split(";"))
    assert policy["frame-ancestors"] == "'self' https://news.example.cn https://m.example.cn"
    assert policy["script-src"] == "'self'"
    for path in ("/report/", "/report/follow/", "/public/", f"{BASE}/month"):
        assert client.get(path)["X-Frame-Options"] == "DENY", path


# --- Open311: the public read ------------------------------------------------------------------------


def test_open311_without_a_key_reads_published_requests_with_public_fields_only(area, client, moderators):
    shown, hidden = cases(IN_WEST, 2, resolved=2)
    Event.objects.filter(pk=shown.pk).update(address_text="畅家巷1号1单元101室")
    published(shown, "南关巷路灯已更换，恢复照明。", moderators)
    listed = client.get("/open311/v2/requests.json")
    assert listed.status_code == 200
    (request,) = listed.json()
    day = timezone.localtime(shown.received_at).date()
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=timezone.get_default_timezone()).isoformat()
    assert request == {
        "service_request_id": str(shown.pk),
        "status": "closed",
        "status_notes": "",
        "service_name": "路灯",
        "service_code": "municipal.streetlight",
        "description": "南关巷路灯已更换，恢复照明。",
        "agency_responsible": "城管局",
        "service_notice": "已办结，摘要经审核公开 (resolved; the summary was approved for publication)",
        "requested_datetime": midnight,
        "updated_datetime": midnight,
        "expected_datetime": None,
        "address": "城关区 酒泉路街道 畅家巷社区",
        "address_id": "",
        "zipcode": "",
        "lat": round(ORIGIN[1] + SIZE / 2, 4),
        "long": round(ORIGIN[0] + SIZE / 2, 4),
        "media_url": "",
    }
    assert client.get(f"/open311/v2/requests/{shown.pk}.json").json() == [request]
    missing = client.get(f"/open311/v2/requests/{hidden.pk}.json")
    assert missing.status_code == 404
    assert missing.json() == [{"code": 404, "description": f"service_request_id: no service request {hidden.pk}"}]
    assert client.get("/open311/v2/requests.json", {"status": "open"}).json() == []
    # A date filter compares days: a search by the minute cannot recover the hidden time.
    later = timezone.localtime(shown.received_at) + dt.timedelta(minutes=1)
    assert len(client.get("/open311/v2/requests.json", {"start_date": later.isoformat()}).json()) == 1
    xml = ET.fromstring(client.get("/open311/v2/requests.xml").content)  # noqa: S314 - our own answer
    assert [r.findtext("description") for r in xml] == ["南关巷路灯已更换，恢复照明。"]


def test_open311_needs_a_key_to_post(area, client):
    response = client.post(
        "/open311/v2/requests.json", {"service_code": "municipal.streetlight", "lat": IN_WEST[1], "long": IN_WEST[0]}
    )
    assert response.status_code == 401
    assert response.json() == [{"code": 401, "description": "Authentication credentials were not provided."}]
    assert not Event.objects.exists()


# --- the moderation page -------------------------------------------------------------------------------


def test_the_moderation_page(area, client, moderators, django_user_model):
    (event,) = cases(IN_WEST, 1, resolved=1)
    analyst = django_user_model.objects.create_user("analyst")
    analyst.groups.add(Group.objects.get_or_create(name="analyst")[0])
    client.force_login(analyst)
    assert client.get("/moderation/").status_code == 403
    author, moderator = moderators
    client.force_login(author)
    page = client.get("/moderation/").content.decode()
    assert f'id="candidate-{event.pk}"' in page
    response = client.post(f"/moderation/events/{event.pk}/summary", {"text": "电话 13912345678 已回访"}, follow=True)
    assert said(response) == ["text: a public summary must not hold an ID number or a phone number"]
    response = client.post(
        f"/moderation/events/{event.pk}/summary", {"text": "南关巷路灯已更换，恢复照明。"}, follow=True
    )
    assert said(response) == ["The summary waits for another moderator's approval."]
    summary = PublicSummary.objects.get()
    assert f'id="pending-{summary.pk}"' in response.content.decode()
    refused = client.post(f"/moderation/summaries/{summary.pk}/decide", {"decision": "approve"}, follow=True)
    assert said(refused) == [
        "action 'moderate': the author of a public summary may not moderate it; another moderator must"
    ]
    client.force_login(moderator)
    client.post(f"/moderation/summaries/{summary.pk}/decide", {"decision": "approve"})
    summary.refresh_from_db()
    assert (summary.status, summary.moderator) == ("approved", moderator)
    assert client.post("/moderation/summaries/999999/decide", {"decision": "approve"}).status_code == 404
    assert client.get(f"/moderation/events/{event.pk}/summary").status_code == 405
    client.logout()
    assert client.get("/moderation/")["Location"] == "/accounts/login/?next=/moderation/"


def test_an_unlocated_case_is_counted_in_the_remainder_only(area, client):
    cases(NOWHERE, 5, resolved=1)
    collection = cells(client)
    assert (drawn(collection), collection["remainder"]) == ([], {"cases": 5, "below_threshold": False})
    body = json.dumps(collection)
    assert str(round(NOWHERE[0], 4)) not in body
