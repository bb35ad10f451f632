"""``/api/statistics/areas`` and ``/api/statistics/series`` on a hand-built city whose every
expected number is worked out below by hand, and the events layer's ``region`` / ``grid``
filters that the workbench's exports, tiles and OGC links pass on.

The city: district 城关区 with three streets.

* 酒泉路街道 (street A) › 畅家巷社区 (community A1) › one large › one medium grid › 西小网格 (W)
  and 东小网格 (E), from ``tests.worlds.factories``;
* 张掖路街道 (street B) › 水车园社区 (community B1) › 北小网格 (N), one grid of each level;
* 雁南街道 (street C) › 雁南社区: no grids, so never listed (areas come from the grid chain).

Residents (linked through their addresses, by the real linking): W 4, E 1, N 0.

Events (times in Asia/Shanghai; 办结 = resolved, verified, closed):

====  ====  =================  ===========  ==================  ============
 #    grid  category           status       received            satisfaction
====  ====  =================  ===========  ==================  ============
 1    W     dispute.neighbour  closed       2026-05-04 10:00    5
 2    W     dispute.labour     resolved     2026-05-05 10:00    3
 3    W     hazard.fire        in_progress  2026-05-12 10:00
 4    E     hazard.gas         verified     2026-05-11 00:30    4
 5    E     dispute.family     suspended    2026-06-01 09:00
 6    N     environment.noise  received     2026-05-04 12:00
 7    —     dispute.other      received     2026-05-05 08:00    (no location)
====  ====  =================  ===========  ==================  ============

Event 4 is received on Monday 11 May in Shanghai but on Sunday 10 May in UTC: the weekly and
daily buckets must be local.
"""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
import yaml
from django.contrib.auth.models import Group
from django.contrib.gis.geos import Point
from rest_framework.authtoken.models import Token

from layers.models import Address, Category, Event, Grid, Person, Region
from layers.models.scope import ReaderScope
from layers.services import linking
from layers.services.regeocoding import EVENT
from layers.taxonomy import taxonomy_seed
from tests.worlds.factories import ORIGIN, SIZE, box, grid_tree, region_chain

SHANGHAI = ZoneInfo("Asia/Shanghai")
STREET_A, STREET_B, STREET_C = "620102001000", "620102002000", "620102003000"
COMMUNITY_A1, COMMUNITY_B1 = "620102001001", "620102002001"
W, E, N = "620102001001010101", "620102001001010102", "620102002001010101"
MEDIUM_A, LARGE_A = "6201020010010101", "62010200100101"
#: A resident's name and ID number: neither may appear in any answer.
RESIDENT_NAME, RESIDENT_ID = "李秀英", "62010219800101123X"

EVENTS = [
    # (grid, category, status, received (local), satisfaction)
    ("W", "dispute.neighbour", "closed", (2026, 5, 4, 10, 0), 5),
    ("W", "dispute.labour", "resolved", (2026, 5, 5, 10, 0), 3),
    ("W", "hazard.fire", "in_progress", (2026, 5, 12, 10, 0), None),
    ("E", "hazard.gas", "verified", (2026, 5, 11, 0, 30), 4),
    ("E", "dispute.family", "suspended", (2026, 6, 1, 9, 0), None),
    ("N", "environment.noise", "received", (2026, 5, 4, 12, 0), None),
    (None, "dispute.other", "received", (2026, 5, 5, 8, 0), None),
]


def _centre(grid: Grid) -> Point:
    return grid.boundary.point_on_surface


def town_build() -> dict[str, Grid]:
    """The city of the module docstring (the browser tests of the workbench build it too);
    answers the small grids W, E and N by letter."""
    taxonomy_seed()
    regions = region_chain()
    grids = grid_tree(regions["community"])
    district = regions["district"]
    lon, lat = ORIGIN[0] + 0.02, ORIGIN[1]
    street_b = Region.objects.create(code=STREET_B, name="张掖路街道", level="street", parent=district)
    community_b = Region.objects.create(
        code=COMMUNITY_B1,
        name="水车园社区",
        level="community",
        parent=street_b,
        boundary=box(lon, lat, lon + SIZE, lat + SIZE),
    )
    street_c = Region.objects.create(code=STREET_C, name="雁南街道", level="street", parent=district)
    Region.objects.create(code="620102003001", name="雁南社区", level="community", parent=street_c)
    large = Grid.objects.create(
        code=COMMUNITY_B1 + "01", name="北大网格", level="large", community=community_b, boundary=community_b.boundary
    )
    medium = Grid.objects.create(
        code=COMMUNITY_B1 + "0101",
        name="北中网格",
        level="medium",
        parent=large,
        community=community_b,
        boundary=community_b.boundary,
    )
    grids["north"] = Grid.objects.create(
        code=N, name="北小网格", level="small", parent=medium, community=community_b, boundary=community_b.boundary
    )
    by_letter = {"W": grids["west"], "E": grids["east"], "N": grids["north"]}

    for letter, residents in (("W", 4), ("E", 1)):
        address = Address.objects.create(
            code=f"A-{letter}", full_text=f"{letter}地址", location=_centre(by_letter[letter])
        )
        Person.objects.bulk_create(
            Person(
                name=RESIDENT_NAME,
                id_number_digest=f"{letter}{i}",
                id_number_cipher="cipher",
                id_number_masked="620102***********X",
                gender="F",
                birth_date=dt.date(1980, 1, 1),
                residence="registered",
                address=address,
            )
            for i in range(residents)
        )
    linking.relink_all()

    categories = {c.code: c for c in Category.objects.all()}
    rows = []
    for i, (letter, category, status, received, satisfaction) in enumerate(EVENTS, start=1):
        at = dt.datetime(*received, tzinfo=SHANGHAI)
        rows.append(
            Event(
                channel="hotline",
                external_id=f"T-{i}",
                category=categories[category],
                description=f"事件{i}",
                status=status,
                satisfaction=satisfaction,
                reported_at=at,
                received_at=at,
                location=_centre(by_letter[letter]) if letter else None,
                needs_location=letter is None,
            )
        )
    Event.objects.bulk_create(rows)
    linking.link(EVENT)
    return by_letter


@pytest.fixture
def town(db):
    return town_build()


def _user(django_user_model, name: str, *groups: str, superuser: bool = False):
    user = django_user_model.objects.create_user(name, f"{name}@example.org", "pw-" + name)
    user.is_superuser = superuser
    user.save()
    for group in groups:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


@pytest.fixture
def analyst(client, django_user_model):
    client.force_login(_user(django_user_model, "ana", "analyst"))
    return client


def _areas(client, **query) -> dict:
    response = client.get("/api/statistics/areas", query)
    assert response.status_code == 200, response.content
    return response.json()


def _row(code, name, parent, residents, events, closed, rate, per_1000, satisfaction) -> dict:
    return {
        "code": code,
        "name": name,
        "parent": parent,
        "residents": residents,
        "events": events,
        "closed": closed,
        "open": events - closed,
        "completion_rate": rate,
        "events_per_1000": per_1000,
        "satisfaction": satisfaction,
    }


def _totals(residents, events, closed, rate, per_1000, satisfaction) -> dict:
    row = _row("", "", None, residents, events, closed, rate, per_1000, satisfaction)
    return {k: v for k, v in row.items() if k not in ("code", "name", "parent")}


DISTRICT = {"code": "620102000000", "name": "城关区"}
A1 = {"code": COMMUNITY_A1, "name": "畅家巷社区"}
B1 = {"code": COMMUNITY_B1, "name": "水车园社区"}


# --- per area ------------------------------------------------------------------------------------


def test_streets_without_filters(analyst, town):
    """Street A: events 1–5, closed 1, 2, 4 (3 of 5 = 0.6), residents 5 (1000 × 5 / 5 = 1000),
    ratings 5, 3, 4 (mean 4). Street B: event 6, open, nobody lives there. Street C has no grids
    and is not listed; event 7 (no location) lies outside every area."""
    body = _areas(analyst)
    assert body == {
        "level": "street",
        "areas": [
            _row(STREET_A, "酒泉路街道", DISTRICT, 5, 5, 3, 0.6, 1000.0, 4.0),
            _row(STREET_B, "张掖路街道", DISTRICT, 0, 1, 0, 0.0, None, None),
        ],
        "totals": _totals(5, 6, 3, 0.5, 1200.0, 4.0),
        "events_outside_areas": 1,
    }


def test_small_grids_without_filters(analyst, town):
    """W: events 1–3, closed 2 of 3, residents 4 (750 per 1,000), ratings 5 and 3. E: events 4
    and 5, closed 1 of 2, one resident (2,000 per 1,000), rating 4. N: event 6."""
    body = _areas(analyst, level="grid")
    assert body["areas"] == [
        _row(W, "西小网格", A1, 4, 3, 2, 0.6667, 750.0, 4.0),
        _row(E, "东小网格", A1, 1, 2, 1, 0.5, 2000.0, 4.0),
        _row(N, "北小网格", B1, 0, 1, 0, 0.0, None, None),
    ]
    assert body["totals"] == _totals(5, 6, 3, 0.5, 1200.0, 4.0)


def test_communities_of_a_street(analyst, town):
    body = _areas(analyst, level="community", region=STREET_A)
    assert body["areas"] == [
        _row(COMMUNITY_A1, "畅家巷社区", {"code": STREET_A, "name": "酒泉路街道"}, 5, 5, 3, 0.6, 1000.0, 4.0)
    ]
    # Event 7 has no district: the region filter leaves it out before it could lie outside.
    assert body["events_outside_areas"] == 0


@pytest.mark.parametrize(
    "query, expected, totals, outside",
    [
        # Disputes: W events 1, 2 (both closed, 2 per 4 residents); E event 5 (suspended: open); event 7 outside.
        (
            {"category": "dispute"},
            [(W, 2, 2, 1.0, 500.0, 4.0), (E, 1, 0, 0.0, 1000.0, None), (N, 0, 0, None, None, None)],
            (5, 3, 2, 0.6667, 600.0, 4.0),
            1,
        ),
        # One category code.
        (
            {"category": "hazard.fire"},
            [(W, 1, 0, 0.0, 250.0, None), (E, 0, 0, None, 0.0, None), (N, 0, 0, None, None, None)],
            (5, 1, 0, 0.0, 200.0, None),
            0,
        ),
        ({"status": "received"}, [(W, 0, 0, None, 0.0, None), (E, 0, 0, None, 0.0, None), (N, 1, 0, 0.0, None, None)], (5, 1, 0, 0.0, 200.0, None), 1),
        # 11 May 00:00 (local, inclusive) to 1 June 00:00 (exclusive): events 3 and 4; event 5 falls just after.
        (
            {"since": "2026-05-11", "until": "2026-06-01"},
            [(W, 1, 0, 0.0, 250.0, None), (E, 1, 1, 1.0, 1000.0, 4.0), (N, 0, 0, None, None, None)],
            (5, 2, 1, 0.5, 400.0, 4.0),
            0,
        ),
        # The instant matters, not the day: 00:30 in Shanghai is 16:30 UTC the day before.
        ({"since": "2026-05-10T16:31:00Z", "until": "2026-05-12"}, [(W, 0, 0, None, 0.0, None), (E, 0, 0, None, 0.0, None), (N, 0, 0, None, None, None)], (5, 0, 0, None, 0.0, None), 0),
        # The same instant with an offset ISO 8601 allows and PostgreSQL does not (beyond ±15:59).
        ({"since": "2026-05-11T10:49:00+18:18", "until": "2026-05-12"}, [(W, 0, 0, None, 0.0, None), (E, 0, 0, None, 0.0, None), (N, 0, 0, None, None, None)], (5, 0, 0, None, 0.0, None), 0),
        # The medium grid of community A1: W and E only, and only their residents.
        (
            {"grid": MEDIUM_A},
            [(W, 3, 2, 0.6667, 750.0, 4.0), (E, 2, 1, 0.5, 2000.0, 4.0)],
            (5, 5, 3, 0.6, 1000.0, 4.0),
            0,
        ),
        ({"grid": LARGE_A, "region": STREET_B}, [], (0, 0, 0, None, None, None), 0),
        ({"region": COMMUNITY_B1}, [(N, 1, 0, 0.0, None, None)], (0, 1, 0, 0.0, None, None), 0),
        # The city and the district: every located event (event 7 has no district).
        ({"region": "620100000000"}, [(W, 3, 2, 0.6667, 750.0, 4.0), (E, 2, 1, 0.5, 2000.0, 4.0), (N, 1, 0, 0.0, None, None)], (5, 6, 3, 0.5, 1200.0, 4.0), 0),
        ({"region": "620102000000", "status": "closed"}, [(W, 1, 1, 1.0, 250.0, 5.0), (E, 0, 0, None, 0.0, None), (N, 0, 0, None, None, None)], (5, 1, 1, 1.0, 200.0, 5.0), 0),
        # A street without grids has no area and no event.
        ({"region": STREET_C}, [], (0, 0, 0, None, None, None), 0),
    ],
)  # fmt: skip
def test_small_grids_filtered(analyst, town, query, expected, totals, outside):
    body = _areas(analyst, level="grid", **query)
    assert [
        (a["code"], a["events"], a["closed"], a["completion_rate"], a["events_per_1000"], a["satisfaction"])
        for a in body["areas"]
    ] == expected
    residents, events, closed, rate, per_1000, satisfaction = totals
    assert body["totals"] == _totals(residents, events, closed, rate, per_1000, satisfaction)
    assert body["events_outside_areas"] == outside


def test_a_coarser_level_than_the_filter_lists_the_enclosing_area(analyst, town):
    """Street level filtered to grid W: street A, counting W's residents and events only."""
    body = _areas(analyst, region=STREET_A, grid=W)
    assert body["areas"] == [_row(STREET_A, "酒泉路街道", DISTRICT, 4, 3, 2, 0.6667, 750.0, 4.0)]


def test_no_personal_data_in_any_answer(analyst, town):
    for path, query in (("/api/statistics/areas", {"level": "grid"}), ("/api/statistics/series", {})):
        text = analyst.get(path, query).content.decode()
        assert RESIDENT_NAME not in text and "123X" not in text and "事件" not in text


# --- over time -------------------------------------------------------------------------------------


def _series(client, **query) -> list[tuple]:
    response = client.get("/api/statistics/series", query)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["time_zone"] == "Asia/Shanghai"
    return [(b["start"], b["events"], b["closed"], b["open"], b["completion_rate"]) for b in body["buckets"]]


def test_weekly_series_in_local_weeks(analyst, town):
    """Weeks from Monday, local time: 4 May holds events 1, 2, 6, 7 (1 and 2 closed); 11 May holds
    events 4 (00:30 local, still 10 May in UTC) and 3; two empty weeks; 1 June holds event 5."""
    assert _series(analyst) == [
        ("2026-05-04", 4, 2, 2, 0.5),
        ("2026-05-11", 2, 1, 1, 0.5),
        ("2026-05-18", 0, 0, 0, None),
        ("2026-05-25", 0, 0, 0, None),
        ("2026-06-01", 1, 0, 1, 0.0),
    ]


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"interval": "month"}, [("2026-05-01", 6, 3, 3, 0.5), ("2026-06-01", 1, 0, 1, 0.0)]),
        # The window sets the buckets, empty ones included; until is exclusive (event 3 is on the 12th).
        (
            {"interval": "day", "since": "2026-05-10", "until": "2026-05-12"},
            [("2026-05-10", 0, 0, 0, None), ("2026-05-11", 1, 1, 0, 1.0)],
        ),
        (
            {"interval": "day", "since": "2026-05-04", "until": "2026-05-06", "region": STREET_A},
            [("2026-05-04", 1, 1, 0, 1.0), ("2026-05-05", 1, 1, 0, 1.0)],
        ),
        ({"interval": "week", "category": "hazard"}, [("2026-05-11", 2, 1, 1, 0.5)]),
        ({"interval": "week", "grid": N}, [("2026-05-04", 1, 0, 1, 0.0)]),
        ({"status": "suspended", "interval": "month"}, [("2026-06-01", 1, 0, 1, 0.0)]),
        # Nothing selected and no window: no buckets.
        ({"category": "municipal"}, []),
        # A window without events: its buckets, all empty.
        ({"interval": "month", "since": "2027-01-15", "until": "2027-03-01"}, [("2027-01-01", 0, 0, 0, None), ("2027-02-01", 0, 0, 0, None)]),
    ],
)  # fmt: skip
def test_series(analyst, town, query, expected):
    assert _series(analyst, **query) == expected


# --- who may ask ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "groups, superuser, status",
    [(("analyst",), False, 200), (("administrator",), False, 200), ((), True, 200), (("grid_worker",), False, 403),
     (("command_center",), False, 403), ((), False, 403)],
)  # fmt: skip
def test_roles(client, django_user_model, town, groups, superuser, status):
    client.force_login(_user(django_user_model, "someone", *groups, superuser=superuser))
    for path in ("/api/statistics/areas", "/api/statistics/series"):
        response = client.get(path)
        assert response.status_code == status
        if status == 403:
            assert response.json()["error"] == {
                "code": "permission_denied",
                "message": "Statistics are for analysts and administrators.",
            }


def test_anonymous_is_401_and_a_token_works(client, django_user_model, town):
    assert client.get("/api/statistics/areas").status_code == 401
    token = Token.objects.create(user=_user(django_user_model, "tok", "analyst"))
    response = client.get("/api/statistics/areas", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
    assert response.json()["totals"]["events"] == 6


def test_a_scoped_analyst_sees_only_their_street(client, django_user_model, town):
    """An analyst narrowed to street B by a scope row: street B's areas, events and residents."""
    user = _user(django_user_model, "narrow", "analyst")
    scope = ReaderScope.objects.create(user=user, level="street")
    scope.regions.add(Region.objects.get(code=STREET_B))
    client.force_login(user)
    assert [a["code"] for a in _areas(client, level="grid")["areas"]] == [N]
    assert _areas(client)["totals"] == _totals(0, 1, 0, 0.0, None, None)
    assert _series(client) == [("2026-05-04", 1, 0, 1, 0.0)]


# --- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, query, message",
    [
        ("areas", {"level": "district"}, "level: must be one of street, community, grid, got 'district'"),
        ("areas", {"interval": "day"}, "interval: is not a parameter here; known: level, region, grid, category, status, since, until"),
        ("series", {"level": "grid"}, "level: is not a parameter here; known: interval, region, grid, category, status, since, until"),
        ("series", {"interval": "year"}, "interval: must be one of day, week, month, got 'year'"),
        ("areas", {"region": "6201"}, "region: must be a 12-digit region code, got '6201'"),
        ("areas", {"region": "６２０１０２００１０００"}, "region: must be a 12-digit region code, got '６２０１０２００１０００'"),
        ("series", {"region": "999999999999"}, "region: unknown region code '999999999999'"),
        ("areas", {"grid": "W"}, "grid: must be a grid code (a 12-digit community code and a serial, up to 24 characters), got 'W'"),
        ("areas", {"grid": COMMUNITY_A1}, f"grid: must be a grid code (a 12-digit community code and a serial, up to 24 characters), got '{COMMUNITY_A1}'"),
        ("areas", {"grid": COMMUNITY_A1 + "99"}, f"grid: unknown grid code '{COMMUNITY_A1}99'"),
        ("areas", {"category": "Hazard"}, "category: must be a category family or code such as hazard.fire, got 'Hazard'"),
        ("areas", {"category": "meteor"}, "category: unknown category 'meteor'"),
        ("series", {"category": "hazard.meteor"}, "category: unknown category 'hazard.meteor'"),
        ("areas", {"status": "done"}, "status: must be one of received, triaged, assigned, in_progress, resolved, verified, closed, returned, suspended, reopened, got 'done'"),
        ("areas", {"since": "yesterday"}, "since: must be an ISO 8601 date-time, got 'yesterday'"),
        ("series", {"until": "1899-12-31"}, "until: must lie between the years 1900 and 2100, got 1899"),
        ("areas", {"since": "2026-05-02", "until": "2026-05-01"}, "until: must be after since"),
        ("series", {"since": "2026-05-01", "until": "2026-05-01"}, "until: must be after since"),
        ("series", {"interval": "day", "since": "2020-01-01", "until": "2026-01-01"}, "interval: day gives more than 1000 buckets for this time window; choose a longer interval or a shorter window"),
    ],
)  # fmt: skip
def test_bad_parameters(analyst, town, path, query, message):
    response = analyst.get(f"/api/statistics/{path}", query)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == message
    assert response.json()["error"]["code"] == "bad_parameter"


# --- the events layer's area filters (exports, tiles and OGC read the catalog) ----------------------


@pytest.mark.parametrize(
    "query, numbers",
    [
        ({"region": STREET_A}, [1, 2, 3, 4, 5]),
        ({"region": COMMUNITY_B1}, [6]),
        ({"region": "620102000000", "category": "dispute"}, [1, 2, 5]),
        ({"region": "620100000000", "status": "received"}, [6]),
        ({"grid": W}, [1, 2, 3]),
        ({"grid": MEDIUM_A, "category": "hazard"}, [3, 4]),
        ({"grid": LARGE_A, "since": "2026-05-11", "until": "2026-06-01"}, [3, 4]),
        ({"grid": "620102009999010101"}, []),
        ({"region": STREET_C}, []),
    ],
)
def test_event_exports_filter_by_region_and_grid(analyst, town, query, numbers):
    """The same filters as the statistics reach the GeoJSON export (event 7 has no point)."""
    response = analyst.get("/exports/events.geojson", query)
    assert response.status_code == 200
    collection = json.loads(b"".join(response.streaming_content))
    ids = {e.pk: int(e.external_id[2:]) for e in Event.objects.all()}
    assert sorted(ids[f["id"]] for f in collection["features"]) == numbers


def test_the_catalog_lists_the_area_filters(analyst, town):
    layer = next(entry for entry in analyst.get("/api/layers").json()["layers"] if entry["id"] == "events")
    assert [f["name"] for f in layer["filters"]] == ["category", "status", "since", "until", "region", "grid"]


def test_the_schema_documents_the_statistics(client, db):
    paths = yaml.safe_load(client.get("/api/schema/").content)["paths"]
    assert {"/api/statistics/areas", "/api/statistics/series"} <= set(paths)
    names = [p["name"] for p in paths["/api/statistics/areas"]["get"]["parameters"]]
    assert names == ["category", "grid", "level", "region", "since", "status", "until"]
