"""The benchmarks' city-scale event year (scripts/bench/events.py), made here on the tiny demo
city: made once at the stated rate, every event linked to its areas, the year ending on a
month's first day; and the events tiles benchmark's tile list (scripts/bench/events_tiles.py)
holding exactly the tiles of the stored points."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.utils import timezone

from basemaps.tiles import lonlat_to_tile
from layers.models import Event, EventTransition, Person
from layers.taxonomy import taxonomy_seed
from scripts.bench.events import ensure_event_year, year_end
from scripts.bench.events_tiles import event_tiles

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiny_city():
    call_command("generate_demo_city", "--scale", "tiny", "--seed", "1", verbosity=0)
    taxonomy_seed()


def test_the_year_is_made_once_at_the_rate_and_linked(tiny_city):
    stored = ensure_event_year(rate=150.0)
    residents = Person.objects.count()
    assert stored["events"] == Event.objects.count() == max(round(residents * 150 / 1000), 60)
    assert stored["transitions"] == EventTransition.objects.count() > stored["events"]
    located = Event.objects.filter(location__isnull=False)
    assert located.exists()
    # Linked by the demo writer's polygon join: the located events in a district and a small grid
    # (but the few that the ~25 m jitter put outside every polygon).
    assert located.exclude(district_code="").count() >= 0.99 * located.count()
    assert located.filter(grid_id__isnull=False).count() >= 0.95 * located.count()
    # The year ends at 00:00 local on the first of the month after its last report.
    end = timezone.localtime(stored["end"])
    assert (end.day, end.hour, end.minute) == (1, 0, 0)
    assert stored["last_report"] < stored["end"]
    assert stored["end"] == year_end()
    # A second call finds the year and makes nothing.
    again = ensure_event_year(rate=150.0)
    assert again["events"] == stored["events"] and again["transitions"] == stored["transitions"]


def test_event_tiles_are_the_tiles_of_the_points(tiny_city):
    ensure_event_year(rate=150.0)
    points = Event.objects.filter(location__isnull=False).values_list("location", flat=True)
    for z in (10, 14):
        expected = {lonlat_to_tile(p.x, p.y, z) for p in points}
        assert set(event_tiles(z)) == expected
