"""geocode_events: located events relinked to the grids in force; unlocated events with address
text geocoded in bulk, logged, dispatched; the rest left in the manual-location queue."""

from __future__ import annotations

import io

import pytest
from django.contrib.gis.geos import Point
from django.core.management import CommandError, call_command

from layers.models import Address, Event, EventTransition
from layers.services.bulk import execute
from tests.worlds.events import IN_EAST, report, world

pytestmark = pytest.mark.django_db


def run(*options: str) -> str:
    out = io.StringIO()
    call_command("geocode_events", *options, stdout=out, verbosity=0)
    return out.getvalue().strip()


@pytest.fixture
def places():
    return world()


def test_relinks_points_and_geocodes_addresses(places):
    located = report(description="楼道堆放杂物")
    queued = report(at=None, address="城关区庆阳路1号", category="environment.garbage", description="垃圾堆积")
    hopeless = report(at=None, address="火星基地9号", category="environment.garbage", description="垃圾")
    assert (queued.needs_location, queued.status) == (True, "received")
    # Stale links, as after a grid redraw; and a standard address the queued text now matches.
    execute("UPDATE layers_event SET grid_id = NULL, community_id = NULL WHERE id = %s", [located.pk])
    Address.objects.create(
        code="A9", road="庆阳路", door_number="1号", full_text="城关区庆阳路1号", location=Point(*IN_EAST, srid=4326)
    )

    assert run() == (
        "relinked 1 event(s); address geocoding: 1 of 2 located, 1 dispatched; 1 event(s) still without a point"
    )
    located.refresh_from_db()
    queued.refresh_from_db()
    hopeless.refresh_from_db()
    assert (located.grid_id, located.community_id) == (places["west"].pk, places["community"].pk)
    assert (queued.grid_id, queued.needs_location, queued.geocode_method) == (places["east"].pk, False, "address")
    assert queued.matched_address_id == Address.objects.get(code="A9").pk
    assert queued.status == "assigned" and queued.department.code == "urban_management"
    assert queued.cluster_id is not None
    assert list(EventTransition.objects.filter(event=queued).values_list("action", "actor_label")) == [
        ("receive", "system"),
        ("locate", "system:geocode_events"),
        ("triage", "system:dispatch"),
        ("assign", "system:dispatch"),
    ]
    assert (hopeless.needs_location, hopeless.location) == (True, None)
    # A second run finds nothing new to do.
    assert run() == (
        "relinked 0 event(s); address geocoding: 0 of 1 located, 0 dispatched; 1 event(s) still without a point"
    )


def test_only_unlocated_and_since_limit_the_work(places):
    located = report()
    execute("UPDATE layers_event SET street_id = NULL WHERE id = %s", [located.pk])
    assert run("--only-unlocated").startswith("relinked 0 event(s)")
    assert run("--since", "2999-01-01").startswith("relinked 0 event(s)")
    assert run("--since", "2000-01-01T00:00:00+08:00").startswith("relinked 1 event(s)")
    assert Event.objects.get().street_id == places["street"].pk


@pytest.mark.parametrize(
    "options, message",
    [
        (("--since", "last week"), "--since 'last week': expected an ISO date or date-time such as 2026-05-01"),
        (("--since", "2025-02-30"), "--since '2025-02-30': expected an ISO date or date-time such as 2026-05-01"),
        (("--batch", "0"), "--batch must be 1 or more, got 0"),
        (("--workers", "0"), "--workers must be 1 or more, got 0"),
    ],
)
def test_bad_options(places, options, message):
    with pytest.raises(CommandError) as error:
        run(*options)
    assert str(error.value) == message
