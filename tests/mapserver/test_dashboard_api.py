"""The wall's JSON: /api/dashboard/kpis, /cases, /streets and /api/areas/<code>/summary.

Numbers are checked against a hand-made set of eight events (below) whose every figure is
worked out by hand; bad parameters against tables of exact messages."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone

from layers.models import Category, Event, Grid, Region
from layers.selectors.dashboard import local_midnight
from layers.services.users import Role, roles_ensure
from layers.taxonomy import taxonomy_seed
from tests.worlds.city import EAST_POINT, WEST_POINT

ZONE = ZoneInfo("Asia/Shanghai")
#: The window every figure below is computed for: [5 Jan, 12 Jan) 2026, local time.
SINCE = dt.datetime(2026, 1, 5, tzinfo=ZONE)
UNTIL = dt.datetime(2026, 1, 12, tzinfo=ZONE)
WINDOW = {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}


def at(day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2026, 1, day, hour, tzinfo=ZONE)


@pytest.fixture
def events(city):
    """Eight events (E1–E8); the comments give what each one counts towards.

    window [5 Jan, 12 Jan): E1 E2 E3 E4 E8 (E5 before it, E6 at its end, E7 today)
    done in the window: E1 E2 E3 E8; with a deadline: E1 (on time) E2 (late) E8 (on time)
    rated in the window: E1 5, E2 3, E8 4 → mean 4.0, satisfied (≥ 4) 2 of 3
    open now: E4 E5 E6 (E7 is suspended: neither open nor done); overdue: E4 E6; escalated: E4 E6
    west grid: E1 E2 E5 E6; east grid: E3 E4 E7; E8 has no location and no links
    """
    taxonomy_seed()
    now = timezone.now()
    west, east = city.grids["west"], city.grids["east"]
    street, community = city.regions["street"], city.regions["community"]
    hazard = Category.objects.get(code="hazard.fire")
    dispute = Category.objects.get(code="dispute.neighbour")

    def make(name, grid, category, received_at, status, **fields):
        links = {}
        if grid is not None:
            point = WEST_POINT if grid == west else EAST_POINT
            links = {
                "location": Point(*point, srid=4326),
                "grid": grid,
                "grid_medium": grid.parent,
                "grid_large": grid.parent.parent,
                "community": community,
                "street": street,
                "district_code": "620102000000",
            }
        return Event.objects.create(
            channel="hotline",
            external_id=name,
            category=category,
            description=f"测试事件 {name}",
            reported_at=received_at,
            received_at=received_at,
            status=status,
            **links,
            **fields,
        )

    return {
        "E1": make("E1", west, hazard, at(6), "closed", resolved_at=at(6, 12), deadline=at(7), satisfaction=5),
        "E2": make("E2", west, dispute, at(7, 9), "resolved", resolved_at=at(10, 9), deadline=at(8, 9), satisfaction=3),
        "E3": make("E3", east, hazard, at(8), "verified", resolved_at=at(8, 11)),
        "E4": make("E4", east, hazard, at(9), "in_progress", deadline=now - dt.timedelta(hours=2), escalation_level=1),
        "E5": make("E5", west, hazard, at(4, 23), "assigned", deadline=now + dt.timedelta(hours=2)),
        "E6": make("E6", west, dispute, UNTIL, "received", deadline=now - dt.timedelta(hours=1), escalation_level=2),
        "E7": make("E7", east, dispute, local_midnight(now) + dt.timedelta(seconds=1), "suspended"),
        "E8": make("E8", None, dispute, at(10), "closed", resolved_at=at(10), deadline=at(11), satisfaction=4),
    }


@pytest.fixture
def commander(client, django_user_model):
    user = django_user_model.objects.create_user("commander")
    user.groups.add(roles_ensure()[Role.COMMAND_CENTER])
    client.force_login(user)
    return client


@pytest.fixture
def second_street(city):
    """A street with no events: the city's ranking lists it with zeros."""
    return Region.objects.create(
        code="620102002000", name="广武门街道", level="street", parent=city.regions["district"]
    )


# --- KPIs -------------------------------------------------------------------------------------------


def test_kpis_match_the_hand_count(commander, events):
    """Every figure of the window and of now, as worked out in the fixture's docstring."""
    response = commander.get("/api/dashboard/kpis", WINDOW)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["since"] == "2026-01-05T00:00:00+08:00"
    assert body["until"] == "2026-01-12T00:00:00+08:00"
    assert body["kpis"] == {
        "received": 5,
        "received_today": 1,
        "open": 3,
        "overdue": 2,
        "escalated": 2,
        "completed": 4,
        "completion_rate": 0.8,
        "on_time": 2,
        "on_time_rate": 0.6667,
        "rated": 3,
        "satisfaction_mean": 4.0,
        "satisfaction_rate": 0.6667,
        "by_status": {"closed": 2, "in_progress": 1, "resolved": 1, "verified": 1},
        "by_family": {"dispute": 2, "hazard": 3},
    }


def test_kpis_default_window_is_today(commander, events):
    """No since/until: today from local midnight to now; only E7 was received today."""
    body = commander.get("/api/dashboard/kpis").json()
    assert body["since"] == local_midnight(timezone.now()).isoformat()
    assert body["kpis"]["received"] == 1
    assert body["kpis"]["completion_rate"] == 0.0
    assert body["kpis"]["on_time_rate"] is None
    assert body["kpis"]["satisfaction_rate"] is None


def test_kpis_are_scoped_to_a_grid_workers_grid(client, django_user_model, events, city):
    """A grid worker on the east grid counts E3, E4 (window) and E4 (open) only."""
    worker = django_user_model.objects.create_user("worker")
    worker.groups.add(roles_ensure()[Role.GRID_WORKER])
    Grid.objects.filter(pk=city.grids["east"].pk).update(worker=worker)
    client.force_login(worker)
    kpis = client.get("/api/dashboard/kpis", WINDOW).json()["kpis"]
    assert (kpis["received"], kpis["completed"], kpis["completion_rate"]) == (2, 1, 0.5)
    assert (kpis["open"], kpis["overdue"], kpis["escalated"]) == (1, 1, 1)


def test_a_new_event_counts_at_once(commander, events, city):
    """The wall's figures come from live SQL: an event received now is in today's count."""
    before = commander.get("/api/dashboard/kpis").json()["kpis"]["received_today"]
    Event.objects.create(
        channel="app",
        category=Category.objects.get(code="hazard.gas"),
        description="燃气味",
        reported_at=timezone.now(),
        received_at=timezone.now(),
    )
    assert commander.get("/api/dashboard/kpis").json()["kpis"]["received_today"] == before + 1


# --- cases ------------------------------------------------------------------------------------------


def test_cases_lists_overdue_and_escalated_most_urgent_first(commander, events, city):
    body = commander.get("/api/dashboard/cases").json()
    assert [case["id"] for case in body["overdue"]["results"]] == [events["E4"].pk, events["E6"].pk]
    assert [case["id"] for case in body["escalated"]["results"]] == [events["E6"].pk, events["E4"].pk]
    assert (body["overdue"]["total"], body["escalated"]["total"]) == (2, 2)
    first = body["overdue"]["results"][0]
    assert first["category"] == {"code": "hazard.fire", "name": "Fire hazard", "family": "hazard"}
    assert first["street"] == {"code": "620102001000", "name": "酒泉路街道"}
    assert first["grid"] == {"code": city.grids["east"].code, "name": "东小网格"}
    assert 1.9 <= first["overdue_hours"] <= 2.1
    assert first["escalation_level"] == 1
    assert "description" not in first


def test_cases_limit_cuts_the_lists_not_the_totals(commander, events):
    body = commander.get("/api/dashboard/cases", {"limit": "1"}).json()
    assert [len(body[kind]["results"]) for kind in ("overdue", "escalated")] == [1, 1]
    assert (body["overdue"]["total"], body["escalated"]["total"]) == (2, 2)


# --- streets ----------------------------------------------------------------------------------------


def test_street_ranking_counts_and_orders_streets(commander, events, second_street):
    body = commander.get("/api/dashboard/streets", WINDOW).json()
    assert body["streets"] == [
        {
            "rank": 1,
            "code": "620102001000",
            "name": "酒泉路街道",
            "received": 4,
            "open": 3,
            "overdue": 2,
            "completion_rate": 0.75,
            "satisfaction_mean": 4.0,
        },
        {
            "rank": 2,
            "code": "620102002000",
            "name": "广武门街道",
            "received": 0,
            "open": 0,
            "overdue": 0,
            "completion_rate": None,
            "satisfaction_mean": None,
        },
    ]


# --- area summary -----------------------------------------------------------------------------------


def test_summary_of_a_small_grid(commander, events, city):
    """West grid: the fixture city's one resident, dwelling, building and unit; E1 E2 in the
    window, E5 E6 open, E6 overdue; the trend lists the window's seven days."""
    body = commander.get(f"/api/areas/{city.grids['west'].code}/summary", WINDOW).json()
    assert (body["name"], body["kind"]) == ("西小网格", "grid_small")
    assert body["parent"] == {"code": "620102001001", "name": "畅家巷社区"}
    assert (body["residents"], body["dwellings"], body["buildings"], body["units"]) == (1, 1, 1, 1)
    assert body["events"] == {
        "open": 2,
        "overdue": 1,
        "received": 2,
        "completed": 2,
        "completion_rate": 1.0,
        "by_family": {"dispute": 1, "hazard": 1},
    }
    assert body["trend"] == [
        {"date": "2026-01-05", "count": 0},
        {"date": "2026-01-06", "count": 1},
        {"date": "2026-01-07", "count": 1},
        {"date": "2026-01-08", "count": 0},
        {"date": "2026-01-09", "count": 0},
        {"date": "2026-01-10", "count": 0},
        {"date": "2026-01-11", "count": 0},
    ]


@pytest.mark.parametrize(
    ("area", "kind", "residents", "received", "open_"),
    [
        ("east", "grid_small", 0, 2, 1),
        ("medium", "grid_medium", 1, 4, 3),
        ("large", "grid_large", 1, 4, 3),
        ("community", "community", 1, 4, 3),
        ("street", "street", 1, 4, 3),
        ("district", "district", 1, 4, 3),
        ("city", "city", 1, 4, 3),
    ],
)
def test_summary_of_every_kind_of_area(commander, events, city, area, kind, residents, received, open_):
    """Grids of every level and regions of every level add up their small grids' rows."""
    code = (city.grids | city.regions)[area].code
    body = commander.get(f"/api/areas/{code}/summary", WINDOW).json()
    assert (body["kind"], body["residents"], body["events"]["received"], body["events"]["open"]) == (
        kind,
        residents,
        received,
        open_,
    )


def test_summary_trend_keeps_to_the_last_92_days_of_a_long_window(commander, events, city):
    body = commander.get(
        f"/api/areas/{city.grids['west'].code}/summary", {"since": "2025-06-01", "until": "2026-01-12"}
    ).json()
    assert len(body["trend"]) == 92
    assert body["trend"][-1]["date"] == "2026-01-11"
    assert body["events"]["received"] == 3  # E1 E2 and E5 (4 Jan) are in this longer window


def test_summary_of_an_unknown_area_is_404(commander, city):
    response = commander.get("/api/areas/620102999999/summary")
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "not_found",
            "message": "No such grid or region: 620102999999",
            "area": "620102999999",
        }
    }


# --- bad input --------------------------------------------------------------------------------------

BAD = [
    ("/api/dashboard/kpis", {"since": "yesterday"}, "since: must be an ISO 8601 date-time, got 'yesterday'"),
    ("/api/dashboard/kpis", {"until": "2026-13-01"}, "until: must be an ISO 8601 date-time, got '2026-13-01'"),
    (
        "/api/dashboard/kpis",
        {"since": "2026-01-12", "until": "2026-01-05"},
        "until: must be after since",
    ),
    (
        "/api/dashboard/kpis",
        {"since": "2024-01-01", "until": "2026-01-01"},
        "until: the window from since to until must be at most 366 days",
    ),
    ("/api/dashboard/kpis", {"until": ""}, "until: must be an ISO 8601 date-time, got ''"),
    ("/api/dashboard/streets", {"since": " "}, "since: must be an ISO 8601 date-time, got ' '"),
    ("/api/dashboard/kpis", {"family": "hazard"}, "family: is not a parameter here; known: since, until"),
    ("/api/dashboard/streets", {"since": "1800-01-01"}, "since: must lie between the years 1900 and 2100, got 1800"),
    ("/api/dashboard/cases", {"limit": "0"}, "limit: must be between 1 and 100, got 0"),
    ("/api/dashboard/cases", {"limit": "many"}, "limit: must be an integer, got 'many'"),
    ("/api/dashboard/cases", {"since": "2026-01-01"}, "since: is not a parameter here; known: limit"),
    ("/api/areas/62010200100101/summary", {"since": "x"}, "since: must be an ISO 8601 date-time, got 'x'"),
    ("/api/areas/abc/summary", {}, "code: must be a region or grid code (4 to 24 letters, digits, _ or -), got 'abc'"),
    (
        "/api/areas/6201.0200/summary",
        {},
        "code: must be a region or grid code (4 to 24 letters, digits, _ or -), got '6201.0200'",
    ),
]


@pytest.mark.parametrize(("path", "query", "message"), BAD, ids=[f"{p}?{q}" for p, q, _ in BAD])
def test_bad_parameters_are_refused_naming_the_field(commander, city, path, query, message):
    response = commander.get(path, query)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["message"] == message
    assert response.json()["error"]["code"] == "bad_parameter"


@pytest.mark.parametrize(
    "path", ["/api/dashboard/kpis", "/api/dashboard/cases", "/api/dashboard/streets", "/api/areas/620102001000/summary"]
)
def test_dashboard_needs_a_login(client, db, path):
    response = client.get(path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_new_endpoints_are_in_the_openapi_schema(client, db):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert {
        "/api/dashboard/kpis",
        "/api/dashboard/cases",
        "/api/dashboard/streets",
        "/api/areas/{code}/summary",
    } <= set(paths)
    names = {parameter["name"] for parameter in paths["/api/dashboard/kpis"]["get"]["parameters"]}
    assert {"since", "until"} <= names


# --- the page ---------------------------------------------------------------------------------------


def test_wall_page_opens_on_the_governed_city(commander, city):
    """The page's json_script config carries the small grids' extent (the community square)."""
    response = commander.get("/wall/")
    assert response.status_code == 200
    config = response.context["wall_config"]
    assert config["bounds"] == pytest.approx((103.83, 36.06, 103.84, 36.07))
    assert b'<script id="wall-config" type="application/json">' in response.content
    assert b"<script>" not in response.content  # no inline script: CSP script-src 'self'


@pytest.mark.parametrize(
    ("role", "status"), [(None, 302), (Role.ANALYST, 403), (Role.GRID_WORKER, 403), (Role.ADMINISTRATOR, 200)]
)
def test_wall_page_is_for_the_command_center_and_administrators(client, django_user_model, db, role, status):
    if role is not None:
        user = django_user_model.objects.create_user(f"user-{role}")
        user.groups.add(roles_ensure()[role])
        client.force_login(user)
    response = client.get("/wall/")
    assert response.status_code == status
    if status == 302:
        assert response["Location"] == "/accounts/login/?next=/wall/"


def test_until_alone_opens_the_window_at_the_start_of_its_day(commander, city):
    """Without since, the window starts at 00:00 of the day until ends in (today when until is
    not given either), so a past until alone is a day's window, never an empty one."""
    body = commander.get("/api/dashboard/kpis", {"until": "2020-01-01T15:00:00+08:00"}).json()
    assert (body["since"], body["until"]) == ("2020-01-01T00:00:00+08:00", "2020-01-01T15:00:00+08:00")
    body = commander.get("/api/dashboard/kpis", {"until": "2020-01-02T00:00:00+08:00"}).json()
    assert body["since"] == "2020-01-01T00:00:00+08:00"
