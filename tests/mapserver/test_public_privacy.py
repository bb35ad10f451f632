"""No personal data on any public surface.

Every route of the URL map is asked for without a login, with real ids filled in (a case with
an approved summary, a handler's photo, a resident, …). The routes that answer 200 must be the
public ones listed here (a new public route needs a look, and a place in this list); each of
their answers, and a resident's own follow-up answers, is searched for ID numbers, phone
numbers (clear or masked), and the names of residents and reporters (clear or masked), in a
world where all of those exist: the registry, reporters' contacts, descriptions and staff notes
that hold phone and ID numbers and names."""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import re
import uuid

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from PIL import Image

from layers.geocoding.index import address_index_reset
from layers.models import Event, Grid, Person
from layers.protection.access import SYSTEM, reader_of
from layers.services.events import event_act
from layers.services.gridwork import event_photo_add
from layers.services.summaries import public_summary_moderate, public_summary_propose
from tests.worlds.events import IN_EAST, IN_WEST, report, world
from tests.worlds.grid_worker import grid_worker, populate

#: Routes anyone may read (answering 200 without a login), by URL name; the Open311 ones in both
#: formats.
PUBLIC = {
    "pages:home",
    "api:schema",
    # The OGC API's description and its page, as public as /api/schema/ (an anonymous reader's
    # own collections: none).
    "ogc:api",
    "ogc:api-html",
    "pages:login",
    "pages:javascript-catalog",
    "grid:service-worker",
    "tiles:basemap-tile",
    "open311:services",
    "open311:service",
    "open311:requests",
    "open311:request",
    "residents:report",
    "residents:report-follow",
    "residents:api-categories",
    "residents:api-place",
    "residents:api-geocode",
    "residents:public",
    "residents:public-embed",
    "residents:public-feed-json",
    "residents:public-feed-rss",
    "residents:api-public-month",
    "residents:api-public-cells",
    "residents:api-public-cases",
    # Operations: health for the proxy's checks; metrics only to MINQING_METRICS_ALLOWED, which
    # holds the loopback address the test client comes from (their text is scanned all the same).
    "operations:healthz",
    "operations:readyz",
    "operations:metrics",
}

# The digits after a decimal point (a metric's 0.018653209001058713 seconds) are a fraction,
# not a number someone holds.
ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(?<![0-9]\.)[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
MOBILE = re.compile(r"(?<![0-9])(?<![0-9]\.)(?:\+?86[- ]?)?1[3-9][0-9][- ]?[0-9]{4}[- ]?[0-9]{4}(?![0-9])")
LANDLINE = re.compile(r"(?<![0-9])0[0-9]{2,3}-[0-9]{7,8}(?![0-9])")
#: Masked forms: 139****5678, 620102***********X, 张*.
MASKED_NUMBER = re.compile(r"[0-9]\*{3,}[0-9Xx]")
MASKED_NAME = re.compile(r"[\u4e00-\u9fff]\*+")

REPORTER = "欧阳明远"
REPORTER_PHONE = "13698765432"
RESIDENT_PHONE = "13587654321"


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (1, 2, 3)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def town(db, settings, tmp_path, django_user_model):
    """A grid full of residents, and cases whose every free text holds personal data."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MINQING_PUBLIC_MIN_COUNT = 2
    area = world()
    populate(area["west"], households=12, prefix="P", first=("62010219800101123X", "13912345678"))
    address_index_reset()
    worker = grid_worker(django_user_model, "worker", area["west"])
    names = list(Person.objects.values_list("name", flat=True))
    resident = names[0]
    staff = []
    for name in ("author", "moderator"):
        user = django_user_model.objects.create_user(name)
        user.groups.add(Group.objects.get_or_create(name="command_center")[0])
        staff.append(user)
    events = []
    for i, at in enumerate((IN_WEST, IN_WEST, IN_EAST, IN_EAST)):
        event = report(
            at=at,
            channel="hotline",
            category="municipal.streetlight",
            description=f"{resident}家门口路灯不亮，电话{REPORTER_PHONE}，身份证62010219800101123X，座机0931-8123456",
            reporter_name=REPORTER,
            reporter_phone=REPORTER_PHONE,
            address=f"南关巷{i + 1}号1单元101室",
        )
        event = event_act(event=event, action="accept", reader=SYSTEM, actor=worker)
        event_photo_add(event=event, actor=worker, content=jpeg())
        event = event_act(
            event=event,
            action="resolve",
            reader=SYSTEM,
            actor=worker,
            reason=f"已联系{resident}（{RESIDENT_PHONE}）更换灯泡",
        )
        events.append(event)
    summary = public_summary_propose(
        event=events[0], reader=reader_of(staff[0]), author=staff[0], text="南关巷路灯已更换灯泡，恢复照明。"
    )
    public_summary_moderate(summary_id=summary.pk, reader=reader_of(staff[1]), moderator=staff[1], decision="approve")
    yield {
        "area": area,
        "published": events[0],
        "photo": events[0].photos.first(),
        "person": Person.objects.first(),
        "summary": summary,
        "names": set(names) | {REPORTER},
    }
    address_index_reset()


def _routes(patterns, prefix: str = "", namespace: str = ""):
    """(route, namespaced URL name or None) of every pattern, included ones too."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), f"{namespace}{pattern.name}" if pattern.name else None


def _urls(town) -> list[tuple[str, str]]:
    """Every route of the URL map but the admin's, as concrete URLs (Open311 in both formats)."""
    z, x, y = tile_of(*IN_WEST, 15)
    values = {
        "event_id": town["published"].pk,
        "pk": town["published"].pk,
        "photo_id": town["photo"].pk,
        "person_id": town["person"].pk,
        "summary_id": town["summary"].pk,
        "job_id": 1,
        "library_id": 1,
        "task_id": 1,
        "action": "replay",
        "code": "municipal.streetlight",
        "layer": "events",
        "layer_id": "events",
        "collection": "events",
        "feature_id": town["published"].pk,
        "name": "offline",
        "z": z,
        "x": x,
        "y": y,
        "ext": "png",
    }
    by_route = {
        "wall:api-area-summary": {"code": "620102001001010101"},
        "exports:print-map": {"code": "620102001001010101"},
    }
    query = {
        "residents:api-place": f"?lon={IN_WEST[0]}&lat={IN_WEST[1]}",
        "residents:api-geocode": "?q=南关巷1号1号楼",
        "api:locate": f"?lon={IN_WEST[0]}&lat={IN_WEST[1]}",
        "api:geocode": "?q=南关巷1号",
    }
    urls = []
    for route, name in _routes(get_resolver().url_patterns):
        if route.startswith("admin/"):
            continue
        formats = ["json", "xml"] if name and name.startswith("open311") else ["geojson"]
        for fmt in formats:
            filled = {**values, "fmt": fmt, **by_route.get(name, {})}
            # A re_path route's named groups, (?P<action>replay|approve), are filled as a
            # path()'s converters are.
            path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"<\1>", route).strip("^$")
            path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m, filled=filled: str(filled[m.group(1)]), path)
            urls.append((name or path, "/" + path + query.get(name, "")))
    return urls


def _text(response) -> str | None:
    kind = response.get("Content-Type", "")
    if kind.startswith("image/"):
        return None
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode("utf-8")


def _birth_date(value: str) -> bool:
    try:
        born = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return 1890 <= born.year <= timezone.localdate().year


def _findings(text: str, names: set[str]) -> list[str]:
    # 18 digits are an ID number when they hold a birth date where the standard puts it (grid
    # codes, 18 digits too, hold none): the registry's numbers, valid or not, are all caught.
    found = [f"ID number: {match}" for match in ID_NUMBER.findall(text) if _birth_date(match)]
    for label, pattern in (
        ("mobile", MOBILE),
        ("landline", LANDLINE),
        ("masked number", MASKED_NUMBER),
        ("masked name", MASKED_NAME),
    ):
        found += [f"{label}: {match}" for match in pattern.findall(text)]
    found += [f"name: {name}" for name in names if name in text]
    return found


def test_no_public_answer_holds_personal_data(town):
    client = Client()
    public, answers = set(), {}
    for name, url in _urls(town):
        response = client.get(url)
        if response.status_code == 200:
            public.add(name)
            answers[url] = _text(response)
    assert public == PUBLIC
    # The published case and the streets' and grids' figures are there to be searched.
    assert "南关巷路灯已更换灯泡，恢复照明。" in answers["/api/public/cases"]
    assert json.loads(answers["/api/public/cells"])["features"]
    assert json.loads(answers[f"/open311/v2/requests/{town['published'].pk}.json"])[0]["description"]
    found = {url: _findings(text, town["names"]) for url, text in answers.items() if text is not None}
    assert {url: hits for url, hits in found.items() if hits} == {}


def test_a_residents_own_answers_hold_no_personal_data_but_their_own_choices(town):
    """The report's receipt and the follow-up answers: the resident's phone is masked in the
    description they wrote, never echoed; staff notes are masked; no one is named."""
    client = Client()
    client.get("/report/")
    body = {
        "client_id": str(uuid.uuid4()),
        "category": "municipal.streetlight",
        "description": "路灯不亮",
        "source": "tap",
        "location": {"lon": IN_WEST[0], "lat": IN_WEST[1]},
        "phone": RESIDENT_PHONE,
    }
    receipt = client.post("/api/resident/reports", json.dumps(body), content_type="application/json")
    assert receipt.status_code == 201
    token = receipt.json()["token"]
    event = Event.objects.get(channel="app")
    worker = Grid.objects.get(code="620102001001010101").worker
    event = event_act(event=event, action="accept", reader=SYSTEM, actor=worker)
    event_act(event=event, action="resolve", reader=SYSTEM, actor=worker, reason=f"已回访，电话{RESIDENT_PHONE}")
    case = client.get("/api/resident/case", HTTP_X_FOLLOW_TOKEN=token)
    for response in (receipt, case):
        text = response.content.decode()
        assert _findings(text.replace(RESIDENT_PHONE[:3] + "****" + RESIDENT_PHONE[-4:], ""), town["names"]) == []
        assert RESIDENT_PHONE not in text and worker.username not in text
    assert case.json()["resolution"]["note"] == "已回访，电话135****4321"


def test_the_scan_finds_each_kind_of_personal_data():
    """The detectors the scans rely on do fire (a clean scan then means something), and a grid
    code, 18 digits with no birth date in it, and a metric's fraction of a second are not taken
    for an ID number or a phone."""
    text = (
        "0.018653209001058713 0.13912345678 620102198001011234 62010219800101123X 139 1234 5678 +8613912345678 0931-8123456 "
        "139****5678 620102***********X 王* 王伟芳 网格 620102001001010101"
    )
    assert _findings(text, {"王伟芳"}) == [
        "ID number: 620102198001011234",
        "ID number: 62010219800101123X",
        "mobile: 139 1234 5678",
        "mobile: +8613912345678",
        "landline: 0931-8123456",
        "masked number: 9****5",
        "masked number: 2***********X",
        "masked name: 王*",
        "name: 王伟芳",
    ]
