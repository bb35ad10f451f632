"""generate_demo_events: a year of events for the tiny demo city, deterministic for a seed,
every status present, winter heating complaints, hot spots, and transition logs that agree with
each event's status."""

from __future__ import annotations

import datetime as dt
import io

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from importers.demo_events import HOT_SPOT_FACTOR, STATUSES, demo_events_build
from layers.models import Event, EventTransition
from layers.services.events import TRANSITIONS
from layers.taxonomy import taxonomy_seed

pytestmark = pytest.mark.django_db

END = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


@pytest.fixture
def tiny_city():
    call_command("generate_demo_city", "--scale", "tiny", "--seed", "1", verbosity=0)
    taxonomy_seed()


def test_same_seed_same_events(tiny_city):
    one, two = demo_events_build(seed=3, end=END), demo_events_build(seed=3, end=END)
    pd.testing.assert_frame_equal(one.events, two.events)
    pd.testing.assert_frame_equal(one.transitions, two.transitions)
    other = demo_events_build(seed=4, end=END)
    assert not one.events["category"].equals(other.events["category"])


def test_the_shape_of_the_year(tiny_city):
    demo = demo_events_build(seed=3, end=END)
    events = demo.events
    assert set(events["status"]) == set(STATUSES)
    # The 365 local (UTC+8) days before END's day.
    assert events["reported_at"].max() <= END and events["reported_at"].min() >= END - dt.timedelta(days=365, hours=8)
    local = events["reported_at"].dt.tz_convert("Asia/Shanghai")
    winter = local.dt.month.isin([11, 12, 1, 2, 3])
    heating = events["category"] == "municipal.heating"
    assert heating[winter].mean() > 5 * heating[~winter].mean()
    summer = local.dt.month.isin([7, 8])
    flood = events["category"] == "hazard.flood"
    assert flood[summer].mean() > 5 * flood[~summer].mean()
    # Hotline is the largest channel; weekdays carry more than weekends.
    assert events["channel"].value_counts().idxmax() == "hotline"
    assert (local.dt.dayofweek < 5).mean() > 5 / 7
    # Old events are closed, the open ones recent.
    old = events["reported_at"] < END - dt.timedelta(days=60)
    assert (events.loc[old, "status"] == "closed").mean() > 0.9
    assert events.loc[events["needs_location"], "status"].eq("received").all()
    assert events.loc[events["status"] == "closed", "satisfaction"].notna().all()
    assert events.loc[events["status"].isin(["received", "assigned"]), "satisfaction"].isna().all()
    assert (events["escalation_level"] > 0).any()


def test_hot_spots_have_higher_rates(tiny_city):
    from layers.services.bulk import fetch

    demo = demo_events_build(seed=3, end=END)
    residents = dict(
        fetch(
            "SELECT a.community_id, count(*) FROM layers_person p JOIN layers_address a ON a.id = p.address_id GROUP BY 1"
        )
    )
    community = dict(fetch("SELECT id, community_id FROM layers_address"))
    events = demo.events.assign(community=demo.events["address_id"].map(community))
    for family, spots in demo.hot_spots.items():
        rates = events[events["family"] == family].groupby("community").size() / pd.Series(residents)
        hot, cold = rates[rates.index.isin(spots)].mean(), rates[~rates.index.isin(spots)].mean()
        assert hot > (HOT_SPOT_FACTOR / 2) * cold, (family, hot, cold)


def test_written_events_and_their_logs_agree(tiny_city):
    out = io.StringIO()
    call_command("generate_demo_events", "--seed", "3", "--end", END.isoformat(), stdout=out, verbosity=0)
    assert out.getvalue().startswith(f"demo events (seed 3, 365 days to {END.isoformat()}): ")
    events = {e.pk: e for e in Event.objects.all()}
    assert {e.status for e in events.values()} == set(STATUSES)
    logs: dict[int, list[EventTransition]] = {}
    for row in EventTransition.objects.order_by("event_id", "at", "id"):
        logs.setdefault(row.event_id, []).append(row)
    assert set(logs) == set(events)
    for pk, event in events.items():
        log = logs[pk]
        assert (log[0].action, log[0].from_status, log[0].to_status) == ("receive", "", "received")
        for before, after in zip(log, log[1:], strict=False):
            assert after.from_status == before.to_status, (pk, before, after)
            assert before.at <= after.at
            if after.action != "escalate":
                assert after.from_status in TRANSITIONS[after.action].sources, (pk, after)
        assert log[-1].to_status == event.status
        assert event.version == len(log) - 1
        assert event.reopen_count == sum(row.action == "reopen" for row in log)
        assert event.escalation_level == sum(row.action == "escalate" for row in log)
        assert (event.closed_at is not None) == (event.status == "closed")
        assert event.needs_location == (event.location is None)
    located = [e for e in events.values() if e.location is not None]
    assert sum(e.grid_id is not None for e in located) > 0.95 * len(located)
    assert sum(e.cluster_id is not None for e in located) == len(located)
    with pytest.raises(CommandError) as error:
        call_command("generate_demo_events", verbosity=0)
    assert str(error.value) == "events already exist; pass --replace to replace the demo events"
    call_command("generate_demo_events", "--seed", "3", "--end", END.isoformat(), "--replace", stdout=io.StringIO())
    assert Event.objects.count() == len(events)


@pytest.mark.parametrize(
    "options, message",
    [
        (("--days", "0"), "--days must be between 1 and 3660, got 0"),
        (("--seed", "-1"), "--seed must be 0 or more, got -1"),
        (("--end", "soon"), "--end 'soon': expected an ISO 8601 date-time"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(CommandError) as error:
        call_command("generate_demo_events", *options, verbosity=0)
    assert str(error.value) == message


def test_no_city_no_events():
    with pytest.raises(CommandError) as error:
        call_command("generate_demo_events", verbosity=0)
    assert str(error.value) == "no standard addresses: generate the demo city first (generate_demo_city)"
