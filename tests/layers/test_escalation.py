"""Escalation: ``escalate_events`` raises overdue open cases community → street → district →
city, once per run, resetting the deadline for the new level and logging each step."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from layers.errors import InvalidInput
from layers.models import Event, EventTransition
from layers.protection.access import SYSTEM
from layers.services.events import event_act
from tests.worlds.events import report, world


@pytest.fixture
def area(db):
    return world()


def escalate(now: dt.datetime, *extra: str) -> str:
    out = StringIO()
    call_command("escalate_events", "--now", now.isoformat(), *extra, stdout=out)
    return out.getvalue()


def test_overdue_hazard_climbs_level_by_level(area):
    """Hazard SLA: 24 h at community, 12 h at street, 8 h at district, then the city keeps it."""
    event = report(category="hazard.fire")
    start = event.received_at
    assert (event.responsible_level, event.deadline) == ("community", start + dt.timedelta(hours=24))

    steps = [
        (start + dt.timedelta(hours=25), "street", 12),
        (start + dt.timedelta(hours=38), "district", 8),
        (start + dt.timedelta(hours=47), "city", 4),
    ]
    for now, level, hours in steps:
        escalate(now)
        event.refresh_from_db()
        assert (event.responsible_level, event.deadline) == (level, now + dt.timedelta(hours=hours))
    assert event.escalation_level == 3
    assert escalate(start + dt.timedelta(days=30)).startswith("escalated 0 overdue event(s)")
    event.refresh_from_db()
    assert (event.responsible_level, event.escalation_level) == ("city", 3)
    log = EventTransition.objects.filter(event=event, action="escalate").order_by("id")
    assert [(row.data["from_level"], row.data["to_level"]) for row in log] == [
        ("community", "street"),
        ("street", "district"),
        ("district", "city"),
    ]
    assert {(row.from_status, row.to_status, row.actor_label) for row in log} == {
        ("assigned", "assigned", "system:escalate_events")
    }
    assert [row.at for row in log] == [now for now, _, _ in steps]


def test_a_second_run_at_the_same_instant_changes_nothing(area):
    event = report(category="dispute.neighbour")
    now = event.received_at + dt.timedelta(hours=73)
    first = escalate(now)
    second = escalate(now)
    assert "escalated 1 event(s) community → street" in first
    assert second == f"escalated 0 overdue event(s) as of {now.isoformat()}\n"
    assert EventTransition.objects.filter(action="escalate").count() == 1


def test_dry_run_lists_and_changes_nothing(area):
    event = report(category="hazard.fire")
    now = event.received_at + dt.timedelta(hours=25)
    out = escalate(now, "--dry-run")
    assert out == (
        f"would escalate 1 event(s) community → street\nwould escalate 1 overdue event(s) as of {now.isoformat()}\n"
    )
    event.refresh_from_db()
    assert (event.responsible_level, event.escalation_level) == ("community", 0)
    assert not EventTransition.objects.filter(action="escalate").exists()


@pytest.mark.parametrize(
    ("steps", "escalated"),
    [
        ([], True),
        ([("accept", "")], True),
        ([("accept", ""), ("suspend", "等待鉴定")], False),
        ([("accept", ""), ("resolve", "")], False),
        ([("accept", ""), ("resolve", ""), ("verify", ""), ("close", "")], False),
        ([("accept", ""), ("return", "不属于本部门")], True),
    ],
)
def test_only_open_cases_are_escalated(area, steps, escalated):
    """Suspended cases wait with their clock stopped; resolved, verified and closed ones are done."""
    event = report(category="hazard.fire")
    for action, reason in steps:
        event = event_act(reader=SYSTEM, event=event, action=action, reason=reason)
    escalate(event.received_at + dt.timedelta(hours=25))
    event.refresh_from_db()
    assert (event.responsible_level == "street") is escalated


def test_unlocated_case_waits_at_city_level(area):
    """The manual-location queue belongs to the city: nothing to escalate it to."""
    event = report(category="hazard.fire", at=None)
    escalate(event.received_at + dt.timedelta(days=3))
    event.refresh_from_db()
    assert (event.responsible_level, event.escalation_level) == ("city", 0)


def test_manual_escalation_and_its_ceiling(area):
    event = report(category="dispute.neighbour")
    event = event_act(reader=SYSTEM, event=event, action="escalate", reason="群众情绪激动")
    assert (event.responsible_level, event.escalation_level) == ("street", 1)
    Event.objects.filter(pk=event.pk).update(responsible_level="city")
    with pytest.raises(InvalidInput) as caught:
        event_act(reader=SYSTEM, event=event, action="escalate")
    assert caught.value.message == "responsible_level: already at city level; cannot escalate further"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "--now 'yesterday': expected an ISO 8601 date-time such as 2026-05-01T08:00+08:00"),
        ("2026-13-01", "--now '2026-13-01': expected an ISO 8601 date-time such as 2026-05-01T08:00+08:00"),
    ],
)
def test_bad_now_is_refused(area, value, message):
    with pytest.raises(CommandError) as caught:
        call_command("escalate_events", "--now", value, stdout=StringIO())
    assert str(caught.value) == message


def test_naive_now_is_read_in_the_project_time_zone(area):
    """A wall-clock time without offset means Asia/Shanghai (TIME_ZONE)."""
    event = report(category="hazard.fire")
    local = (event.received_at + dt.timedelta(hours=25)).astimezone(dt.timezone(dt.timedelta(hours=8)))
    out = StringIO()
    call_command("escalate_events", "--now", local.replace(tzinfo=None).isoformat(), stdout=out)
    event.refresh_from_db()
    assert event.responsible_level == "street"
