"""Events: idempotent intake, the manual-location queue, the state machine of the closed loop,
the append-only log, protected reporter contact and duplicate clusters."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.contrib.gis.geos import Point
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from layers.errors import InvalidInput, StaleVersion, TransitionNotAllowed
from layers.geocoding.crs import wgs84_to_gcj02
from layers.geocoding.index import address_index_reset
from layers.models import Address, Event, EventCluster, EventTransition
from layers.protection import personal
from layers.protection.access import SYSTEM
from layers.services import events as events_service
from layers.services.clusters import clusters_rebuild
from layers.services.events import allowed_actions, event_act, event_create
from tests.worlds.events import IN_EAST, IN_WEST, NOWHERE, east_of, report, world


@pytest.fixture
def area(db):
    return world()


def actions(event: Event) -> list[tuple[str, str, str]]:
    return list(
        EventTransition.objects.filter(event=event).order_by("id").values_list("action", "from_status", "to_status")
    )


def put(event: Event, status: str) -> Event:
    """Set up a status directly (test setup only; the service always goes through event_act)."""
    Event.objects.filter(pk=event.pk).update(status=status)
    event.refresh_from_db()
    return event


# --- intake -------------------------------------------------------------------------------------


def test_located_report_is_linked_dispatched_and_logged(area):
    """A report with coordinates gets its grid chain, a department and status assigned, with
    receive → triage → assign in the log."""
    event = report(at=IN_WEST)
    assert event.grid == area["west"]
    assert (event.grid_medium, event.grid_large) == (area["medium"], area["large"])
    assert (event.community, event.street, event.district_code) == (area["community"], area["street"], "620102000000")
    assert (event.status, event.department.code, event.needs_location) == ("assigned", "fire", False)
    assert event.geocode_method == "coordinates"
    assert actions(event) == [
        ("receive", "", "received"),
        ("triage", "received", "triaged"),
        ("assign", "triaged", "assigned"),
    ]


def test_gcj02_coordinates_are_converted_before_locating(area):
    """A phone map's GCJ-02 point lands where the WGS84 point is; the input is kept as sent."""
    lon, lat = (float(v) for v in wgs84_to_gcj02(*IN_EAST))
    event = report(at=(lon, lat), crs="gcj02")
    assert event.grid == area["east"]
    assert event.location.x == pytest.approx(IN_EAST[0], abs=1e-7)
    assert event.location_input == {"lon": lon, "lat": lat, "crs": "gcj02"}


def test_retry_with_same_external_id_returns_the_stored_event(area):
    first, created = event_create(
        channel="hotline",
        external_id="12345-0001",
        category_code="dispute",
        description="邻居吵架",
        lon=IN_WEST[0],
        lat=IN_WEST[1],
    )
    again, created_again = event_create(
        channel="hotline", external_id="12345-0001", category_code="hazard", description="另一个描述"
    )
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk and again.description == "邻居吵架"
    assert Event.objects.count() == 1
    assert EventTransition.objects.count() == 3


def test_same_external_id_on_another_channel_is_another_event(area):
    report(channel="hotline", external_id="A-1")
    report(channel="app", external_id="A-1")
    assert Event.objects.filter(external_id="A-1").count() == 2


def test_events_without_external_id_are_never_merged(area):
    report(external_id="")
    report(external_id="")
    assert Event.objects.filter(external_id="").count() == 2


def test_retry_that_passes_the_lookup_meets_the_unique_index(area, monkeypatch):
    """The look-up before the insert misses a ticket committed a moment later; the unique index
    catches it and the stored event is returned."""
    first = report(channel="hotline", external_id="LATE-1")
    monkeypatch.setattr(events_service, "_stored", lambda channel, external_id: None)
    again, created = event_create(channel="hotline", external_id="LATE-1", category_code="hazard", description="重复")
    assert (again.pk, created) == (first.pk, False)
    assert Event.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_store_one_event(monkeypatch):
    """Two connections posting the same ticket at the same moment, both past the look-up: one
    event; the second insert waits for the first to commit, then returns its row."""
    world()
    monkeypatch.setattr(events_service, "_stored", lambda channel, external_id: None)
    barrier = threading.Barrier(2)
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def post() -> None:
        try:
            barrier.wait()
            event, created = event_create(
                channel="hotline", external_id="RACE-1", category_code="hazard.fire", description="着火了",
                lon=IN_WEST[0], lat=IN_WEST[1],
            )  # fmt: skip
            results.append((event.pk, created))
        except BaseException as error:  # surfaced below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(created for _, created in results) == [False, True]
    assert len({pk for pk, _ in results}) == 1
    assert Event.objects.filter(channel="hotline", external_id="RACE-1").count() == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"channel": "fax"},
            "channel: unknown channel 'fax'; expected one of hotline, app, web, mediation, petition, grid_patrol, drone_patrol",
        ),
        ({"category_code": "hazard.meteor"}, "category: unknown category 'hazard.meteor'"),
        ({"description": "   "}, "description: must not be empty"),
        ({"description": "x" * 10_001}, "description: longer than 10000 characters"),
        ({"external_id": "x" * 65}, "external_id: longer than 64 characters"),
        ({"lat": None}, "location: lon and lat must be given together"),
        ({"lon": float("nan")}, "location.lon: expected a number in degrees within ±180, got nan"),
        ({"lat": 91.0}, "location.lat: expected a number in degrees within ±90, got 91.0"),
        ({"crs": "epsg:3857"}, "crs: unknown CRS 'epsg:3857'; expected one of wgs84, cgcs2000, gcj02, bd09"),
        ({"address": "路" * 301}, "address: longer than 300 characters"),
        (
            # Naive on purpose: the service must refuse a time without its zone.
            {"reported_at": dt.datetime(2026, 5, 1, 8)},  # noqa: DTZ001
            "reported_at: needs a time zone offset, e.g. 2026-05-01T08:00:00+08:00",
        ),
        (
            {"reported_at": dt.datetime(2099, 5, 1, 8, tzinfo=dt.UTC)},
            "reported_at: lies in the future (2099-05-01T08:00:00+00:00)",
        ),
    ],
)
def test_bad_intake_names_the_field(area, changes, message):
    arguments = {
        "channel": "app",
        "external_id": "BAD-1",
        "category_code": "hazard.fire",
        "description": "着火",
        "lon": IN_WEST[0],
        "lat": IN_WEST[1],
    } | changes
    with pytest.raises(InvalidInput) as caught:
        event_create(**arguments)
    assert caught.value.message == message
    assert Event.objects.count() == 0


def test_reporter_contact_is_never_stored_in_clear(area):
    event = report(reporter_name="王小明", reporter_phone="13912345678")
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(e)::text FROM layers_event e WHERE id = %s", [event.pk])
        stored = cursor.fetchone()[0]
    assert "13912345678" not in stored and "王小明" not in stored
    assert (event.reporter_phone_masked, event.reporter_name_masked) == ("139****5678", "王**")
    assert personal.decrypt(event.reporter_phone_cipher) == "13912345678"
    assert event.reporter_phone_digest == personal.digest("13912345678")


# --- the manual-location queue ------------------------------------------------------------------


def test_unlocatable_report_is_stored_and_queued(area):
    """No point and an address nothing matches: stored, status received, in the queue."""
    event = report(at=None, address="火星市不存在路1号")
    assert (event.status, event.needs_location, event.location, event.geocode_method) == (
        "received",
        True,
        None,
        "none",
    )
    assert event.responsible_level == "city"
    assert list(Event.objects.filter(needs_location=True)) == [event]
    assert actions(event) == [("receive", "", "received")]


def test_manual_locate_links_dispatches_and_leaves_the_queue(area):
    event = report(at=None, category="environment.garbage", description="垃圾没人清运")
    event = event_act(
        reader=SYSTEM,
        event=event,
        action="locate",
        actor=None,
        actor_label="operator",
        data={"lon": IN_EAST[0], "lat": IN_EAST[1]},
    )
    assert (event.needs_location, event.grid, event.geocode_method) == (False, area["east"], "manual")
    assert (event.status, event.department.code, event.responsible_level) == (
        "assigned",
        "urban_management",
        "community",
    )
    assert event.cluster is not None
    assert actions(event) == [
        ("receive", "", "received"),
        ("locate", "received", "received"),
        ("triage", "received", "triaged"),
        ("assign", "triaged", "assigned"),
    ]


def test_point_outside_every_grid_is_located_but_unlinked(area):
    event = report(at=NOWHERE)
    assert (event.needs_location, event.grid, event.community, event.responsible_level) == (False, None, None, "city")


# --- the state machine --------------------------------------------------------------------------

WALK = [
    ("accept", {}, "", "in_progress"),
    ("suspend", {}, "等待业主回家", "suspended"),
    ("resume", {}, "", "in_progress"),
    ("resolve", {}, "已清理", "resolved"),
    ("return", {}, "现场未清理干净", "returned"),
    ("assign", {"department": "urban_management", "responsible_level": "street"}, "", "assigned"),
    ("start", {}, "", "in_progress"),
    ("resolve", {}, "", "resolved"),
    ("verify", {}, "", "verified"),
    ("close", {}, "", "closed"),
    ("rate", {"satisfaction": 2}, "", "closed"),
    ("reopen", {}, "群众不满意", "reopened"),
    ("triage", {"category": "hazard.other"}, "", "triaged"),
    ("assign", {}, "", "assigned"),
]


def test_a_case_walks_the_whole_loop(area):
    """Every allowed step moves the status and appends one log row with actor and reason."""
    event = report()
    for action, data, reason, expected in WALK:
        before = EventTransition.objects.filter(event=event).count()
        event = event_act(
            reader=SYSTEM, event=event, action=action, actor=None, actor_label="tester", reason=reason, data=data
        )
        assert event.status == expected, action
        row = EventTransition.objects.filter(event=event).order_by("-id").first()
        assert (EventTransition.objects.filter(event=event).count(), row.action, row.to_status) == (
            before + 1,
            action,
            expected,
        )
        assert (row.actor_label, row.reason) == ("tester", reason)
    assert (event.reopen_count, event.satisfaction, event.closed_at, event.category.code) == (
        1,
        2,
        None,
        "hazard.other",
    )
    assert event.department.code == "emergency"


def test_resume_returns_to_the_status_before_suspension_and_moves_the_deadline(area):
    event = report()
    deadline = event.deadline
    event = event_act(reader=SYSTEM, event=event, action="suspend", reason="等待鉴定")
    event = event_act(reader=SYSTEM, event=event, action="resume")
    suspended, resumed = EventTransition.objects.filter(event=event, action__in=["suspend", "resume"]).order_by("id")
    assert event.status == "assigned"
    assert event.deadline == deadline + (resumed.at - suspended.at)


@pytest.mark.parametrize(
    ("status", "action", "message"),
    [
        (
            "closed",
            "close",
            "action 'close' is not allowed from status 'closed'; allowed: rate, reopen",
        ),
        (
            "received",
            "resolve",
            "action 'resolve' is not allowed from status 'received'; allowed: escalate, locate, triage",
        ),
        (
            "assigned",
            "close",
            "action 'close' is not allowed from status 'assigned'; allowed: accept, escalate, locate, return, start, suspend",
        ),
        (
            "suspended",
            "accept",
            "action 'accept' is not allowed from status 'suspended'; allowed: locate, resume",
        ),
        (
            "in_progress",
            "verify",
            "action 'verify' is not allowed from status 'in_progress'; allowed: escalate, locate, resolve, return, suspend",
        ),
        (
            "closed",
            "locate",
            "action 'locate' is not allowed from status 'closed'; allowed: rate, reopen",
        ),
        (
            "triaged",
            "reopen",
            "action 'reopen' is not allowed from status 'triaged'; allowed: assign, escalate, locate",
        ),
    ],
)
def test_refused_transitions_name_status_and_allowed_actions(area, status, action, message):
    event = put(report(), status)
    count = EventTransition.objects.count()
    with pytest.raises(TransitionNotAllowed) as caught:
        event_act(reader=SYSTEM, event=event, action=action, reason="r", data={"satisfaction": 1})
    assert caught.value.message == message
    assert (caught.value.status, caught.value.as_dict()["error"]["allowed"]) == (409, allowed_actions(status))
    assert EventTransition.objects.count() == count
    event.refresh_from_db()
    assert event.status == status


@pytest.mark.parametrize(
    ("status", "action", "data", "reason", "message"),
    [
        (
            "assigned",
            "fly",
            {},
            "",
            "action: unknown action 'fly'; expected one of accept, assign, close, escalate, locate, rate, reopen, resolve, resume, return, start, suspend, triage, verify",
        ),
        ("assigned", "return", {}, " ", "reason: return needs a reason"),
        ("assigned", "suspend", {}, "", "reason: suspend needs a reason"),
        ("resolved", "rate", {"satisfaction": 6}, "", "satisfaction: expected an integer from 1 to 5, got 6"),
        ("resolved", "rate", {"satisfaction": "5"}, "", "satisfaction: expected an integer from 1 to 5, got '5'"),
        (
            "closed",
            "reopen",
            {"satisfaction": 4},
            "",
            "satisfaction: reopening needs an unsatisfied citizen (satisfaction 1 or 2), got 4",
        ),
        (
            "closed",
            "reopen",
            {},
            "",
            "satisfaction: reopening needs an unsatisfied citizen (satisfaction 1 or 2), got None",
        ),
        ("triaged", "assign", {"department": "nasa"}, "", "department: unknown department 'nasa'"),
        (
            "triaged",
            "assign",
            {"responsible_level": "planet"},
            "",
            "responsible_level: unknown level 'planet'; expected one of community, street, district, city",
        ),
        ("triaged", "triage", {}, "", None),
        ("received", "locate", {"lon": 103.8}, "", "location: lon and lat are required"),
        (
            "received",
            "locate",
            {"lon": 200.0, "lat": 36.0},
            "",
            "location.lon: expected a number in degrees within ±180, got 200.0",
        ),
        (
            "received",
            "locate",
            {"lon": 103.8, "lat": 36.0, "crs": "osgb"},
            "",
            "crs: unknown CRS 'osgb'; expected one of wgs84, cgcs2000, gcj02, bd09",
        ),
    ],
)
def test_bad_action_data_names_the_field(area, status, action, data, reason, message):
    event = put(report(), status)
    if message is None:  # triage is not allowed from triaged: the state machine answers first
        with pytest.raises(TransitionNotAllowed):
            event_act(reader=SYSTEM, event=event, action=action, data=data, reason=reason)
        return
    with pytest.raises(InvalidInput) as caught:
        event_act(reader=SYSTEM, event=event, action=action, data=data, reason=reason)
    assert caught.value.message == message
    event.refresh_from_db()
    assert event.status == status


def test_stale_version_is_refused(area):
    event = report()
    with pytest.raises(StaleVersion) as caught:
        event_act(reader=SYSTEM, event=event, action="accept", version=event.version - 1)
    assert caught.value.message == (
        f"The event changed (version {event.version}, you sent {event.version - 1}): reload and retry."
    )
    assert event_act(reader=SYSTEM, event=event, action="accept", version=event.version).status == "in_progress"


# --- the append-only log ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    ["UPDATE layers_eventtransition SET reason = 'rewritten'", "DELETE FROM layers_eventtransition"],
)
def test_transition_log_refuses_update_and_delete(area, statement):
    report()
    with pytest.raises(IntegrityError, match="layers_eventtransition is append-only: (UPDATE|DELETE) refused"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert EventTransition.objects.filter(reason="rewritten").count() == 0
    assert EventTransition.objects.count() == 3


# --- duplicate clusters -------------------------------------------------------------------------

T0 = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("second", "same"),
    [
        ({"at": east_of(IN_WEST, 60), "reported_at": T0 + dt.timedelta(hours=5)}, True),
        ({"at": east_of(IN_WEST, 99), "reported_at": T0 + dt.timedelta(hours=71)}, True),
        ({"at": east_of(IN_WEST, 150), "reported_at": T0 + dt.timedelta(hours=1)}, False),
        ({"at": east_of(IN_WEST, 10), "reported_at": T0 + dt.timedelta(hours=73)}, False),
        ({"at": east_of(IN_WEST, 10), "reported_at": T0 - dt.timedelta(hours=73)}, False),
        ({"at": east_of(IN_WEST, 10), "reported_at": T0, "category": "hazard.gas"}, False),
        ({"at": east_of(IN_WEST, 10), "reported_at": T0, "channel": "hotline"}, True),
    ],
)
def test_duplicate_reports_share_a_cluster_within_distance_and_window(area, second, same):
    """100 m and 72 h by default; other channels join, other categories do not."""
    first = report(at=IN_WEST, reported_at=T0)
    other = report(**second)
    assert (first.cluster_id == other.cluster_id) is same
    assert EventCluster.objects.count() == (1 if same else 2)
    if same:
        cluster = EventCluster.objects.get()
        assert cluster.event_count == 2
        assert (cluster.first_seen, cluster.last_seen) == tuple(sorted([T0, second["reported_at"]]))


def test_triage_into_a_subtype_moves_the_report_into_that_cluster(area):
    """A report filed under the bare family joins its subtype's case once triaged."""
    typed = report(at=IN_WEST, reported_at=T0, category="hazard.fire")
    bare = report(at=east_of(IN_WEST, 20), reported_at=T0, category="hazard")
    assert bare.cluster_id != typed.cluster_id
    event_act(reader=SYSTEM, event=put(bare, "received"), action="triage", data={"category": "hazard.fire"})
    bare.refresh_from_db()
    assert bare.cluster_id == typed.cluster_id
    assert list(EventCluster.objects.values_list("event_count", flat=True)) == [2]


def test_unlocated_reports_join_no_cluster(area):
    assert report(at=None).cluster is None
    assert EventCluster.objects.count() == 0


def test_clusters_rebuild_matches_intake_on_clear_cases(area):
    """Three reports near together, one far, one late, one of another category → 4 clusters."""
    events = [
        report(at=IN_WEST, reported_at=T0),
        report(at=east_of(IN_WEST, 40), reported_at=T0 + dt.timedelta(hours=2)),
        report(at=east_of(IN_WEST, 70), reported_at=T0 + dt.timedelta(hours=3)),
        report(at=IN_EAST, reported_at=T0 + dt.timedelta(hours=1)),
        report(at=IN_WEST, reported_at=T0 + dt.timedelta(days=10)),
        report(at=IN_WEST, reported_at=T0, category="hazard.gas"),
    ]
    intake = [e.cluster_id for e in events]
    assert clusters_rebuild() == 4
    rebuilt = [Event.objects.get(pk=e.pk).cluster_id for e in events]
    assert rebuilt[0] == rebuilt[1] == rebuilt[2]
    assert len(set(rebuilt)) == 4
    assert len(set(intake)) == 4
    assert sorted(EventCluster.objects.values_list("event_count", flat=True)) == [1, 1, 1, 3]


def test_reported_at_defaults_to_receipt(area):
    before = timezone.now()
    event = report()
    assert before <= event.received_at == event.reported_at


def test_relocating_a_report_moves_it_between_clusters(area):
    """The cluster it leaves is recomputed, and deleted when nothing is left in it."""
    first = report(at=IN_WEST, reported_at=T0)
    second = report(at=east_of(IN_WEST, 30), reported_at=T0)
    assert first.cluster_id == second.cluster_id
    event_act(reader=SYSTEM, event=second, action="locate", data={"lon": IN_EAST[0], "lat": IN_EAST[1]})
    second.refresh_from_db()
    assert second.cluster_id != first.cluster_id
    assert sorted(EventCluster.objects.values_list("event_count", flat=True)) == [1, 1]
    event_act(reader=SYSTEM, event=second, action="locate", data={"lon": IN_WEST[0], "lat": IN_WEST[1]})
    second.refresh_from_db()
    assert second.cluster_id == first.cluster_id
    assert list(EventCluster.objects.values_list("event_count", flat=True)) == [2]


@pytest.mark.parametrize(
    "url",
    [
        "/admin/layers/event/",
        "/admin/layers/event/{pk}/change/",
        "/admin/layers/category/",
        "/admin/layers/department/",
        "/admin/layers/keywordrule/",
        "/admin/layers/slarule/",
        "/admin/layers/eventcluster/",
    ],
)
def test_admin_pages_render_without_personal_data(area, admin_client, url):
    event = report(reporter_phone="13912345678")
    response = admin_client.get(url.format(pk=event.pk))
    assert response.status_code == 200
    assert "13912345678" not in response.content.decode()
    assert event.reporter_phone_cipher not in response.content.decode()


def test_admin_map_edit_is_a_manual_locate(area, admin_client):
    event = report(at=None)
    response = admin_client.post(
        f"/admin/layers/event/{event.pk}/change/",
        {"location": f"SRID=4326;POINT ({IN_EAST[0]} {IN_EAST[1]})", **INLINE_MANAGEMENT},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    event.refresh_from_db()
    assert (event.needs_location, event.grid, event.status) == (False, area["east"], "assigned")
    locate = EventTransition.objects.get(event=event, action="locate")
    assert (locate.actor_label, locate.reason) == ("admin", "admin map")


INLINE_MANAGEMENT = {
    "transitions-TOTAL_FORMS": "0",
    "transitions-INITIAL_FORMS": "0",
    "transitions-MIN_NUM_FORMS": "0",
    "transitions-MAX_NUM_FORMS": "1000",
}


def test_address_text_alone_is_geocoded_to_the_standard_address(area):
    """No coordinates, a matching address: located at the standard address, method ``address``."""
    address = Address.objects.create(
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
    event = report(at=None, address="兰州市城关区张掖路10号")
    assert (event.geocode_method, event.matched_address_id, event.needs_location) == ("address", address.pk, False)
    assert (event.grid, event.status) == (area["east"], "assigned")
    assert 0.75 <= event.geocode_confidence <= 1.0


def test_an_address_naming_no_room_places_the_event_at_the_building(area):
    """Intake asks the matcher for one candidate; it gets the API's answer: the building's own
    address, never one of its rooms picked by a tie."""
    rows = [("B-0", "", ""), ("B-101", "2单元", "101室"), ("B-102", "2单元", "102室"), ("B-601", "2单元", "601室")]
    Address.objects.bulk_create(
        Address(
            code=code,
            district_name="城关区",
            street_name="酒泉路街道",
            road="金昌路",
            door_number="11号",
            compound_name="雁滩苑四期",
            building_number="3号楼",
            entrance=entrance,
            room=room,
            full_text=f"甘肃省兰州市城关区酒泉路街道金昌路11号雁滩苑四期3号楼{entrance}{room}",
            location=Point(*IN_EAST, srid=4326),
            grid=area["east"],
        )
        for code, entrance, room in rows
    )
    address_index_reset()
    event = report(at=None, address="您好，我是城关区金昌路11号3栋2单元的住户，楼上漏水")
    assert (event.geocode_method, event.geocode_precision, event.matched_address.code) == ("address", "building", "B-0")
    assert event.grid == area["east"]


def test_a_failing_address_matcher_loses_no_event(area, monkeypatch, caplog):
    """The matcher raising is logged; the report waits in the manual-location queue."""

    def broken(**kwargs):
        raise RuntimeError("index unavailable")

    monkeypatch.setattr(events_service, "address_geocode", broken)
    event = report(at=None, address="兰州市城关区张掖路10号")
    assert (event.needs_location, event.status, event.geocode_method) == (True, "received", "none")
    assert "address geocoding failed" in caplog.text
