"""Dispatch: the keyword library picks the department, the location and category the level, the
SLA table the deadline; ties and orphans go to the command center; the trace says why."""

from __future__ import annotations

import datetime as dt

import pytest

from layers.models import Department, KeywordRule, SlaRule
from layers.services.dispatch import dispatch_decide
from tests.worlds.events import IN_WEST, NOWHERE, report, world


@pytest.fixture
def area(db):
    return world()


def test_highest_priority_keyword_wins_and_the_trace_lists_every_hit(area):
    event = report(category="hazard.gas", description="楼道里有燃气泄漏的味道")
    fire, housing = (KeywordRule.objects.get(keyword=k) for k in ("燃气泄漏", "燃气"))
    assert (event.department.code, event.joint_handling) == ("fire", False)
    assert event.dispatch_trace["rules"] == [
        {"rule": fire.pk, "keyword": "燃气泄漏", "department": "fire", "priority": 20, "category": None},
        {"rule": housing.pk, "keyword": "燃气", "department": "housing", "priority": 10, "category": None},
    ]
    assert event.dispatch_trace["reason"] == "keyword '燃气泄漏' (priority 20) → fire"


def test_category_floor_raises_the_level_above_the_location(area):
    """Located in a community, but a gas hazard is never below street level."""
    event = report(category="hazard.gas", description="燃气管道老化")
    assert event.responsible_level == "street"
    assert event.dispatch_trace["level_reason"] == (
        f"located in community {area['community'].pk}; raised to street, the lowest level for hazard.gas"
    )


def test_tied_departments_make_a_joint_case_for_the_command_center(area):
    event = report(category="dispute.property", description="物业不管事，暖气一直不热")
    assert (event.department.code, event.joint_handling, event.responsible_level) == ("command_center", True, "city")
    assert event.dispatch_trace["reason"] == (
        "keywords name 2 departments at priority 10 (heating, housing); joint handling by the command center"
    )


def test_without_keyword_the_category_default_decides(area):
    event = report(category="dispute.neighbour", description="楼上邻居半夜拖椅子")
    assert (event.department.code, event.responsible_level, event.joint_handling) == ("justice", "community", False)
    assert event.dispatch_trace["category_default"] == "dispute.neighbour"
    assert event.dispatch_trace["reason"] == (
        "no keyword matched; default department of category dispute.neighbour → justice"
    )


def test_a_category_without_owner_goes_to_joint_handling(area):
    event = report(category="consultation", description="想问一下办居住证需要什么材料")
    assert (event.department.code, event.joint_handling, event.responsible_level) == ("command_center", True, "city")
    assert event.dispatch_trace["reason"] == (
        "no keyword matched and category consultation has no default department; joint handling by the command center"
    )


def test_restricted_keyword_applies_only_to_its_category_family(area):
    """家暴 is a dispute keyword: it sends a family dispute to the women's federation, but a
    hazard report mentioning it is not dispatched by it."""
    dispute = report(category="dispute.family", description="疑似家暴，经常听到哭喊")
    hazard = report(category="hazard.other", description="家暴后砸坏了燃气表")
    assert dispute.department.code == "women_federation"
    assert [r["keyword"] for r in hazard.dispatch_trace["rules"]] == ["燃气"]


def test_inactive_rules_and_departments_are_ignored(area):
    KeywordRule.objects.filter(keyword="垃圾").update(active=False)
    Department.objects.filter(code="ecology").update(active=False)
    event = report(category="environment", description="垃圾堆旁边噪音很大")
    assert event.dispatch_trace["rules"] == []
    assert event.department.code == "urban_management"


def test_an_admin_edit_of_the_library_applies_to_the_next_event(area):
    KeywordRule.objects.create(keyword="广场舞", department=Department.objects.get(code="police"), priority=30)
    event = report(category="environment.noise", description="广场舞噪音扰民")
    assert event.department.code == "police"


@pytest.mark.parametrize(
    ("category", "at", "level", "hours"),
    [
        ("hazard.fire", IN_WEST, "community", 24),
        ("dispute.neighbour", IN_WEST, "community", 72),
        ("hazard.gas", IN_WEST, "street", 12),
        ("suggestion", IN_WEST, "community", 168),
        ("hazard.fire", NOWHERE, "city", 4),
        ("hazard.fire", None, "city", 4),
    ],
)
def test_deadline_is_receipt_plus_the_sla_hours_of_family_and_level(area, category, at, level, hours):
    event = report(category=category, description="情况说明", at=at)
    assert event.responsible_level == level
    assert event.deadline == event.received_at + dt.timedelta(hours=hours)


def test_sla_hours_are_read_from_the_editable_table(area):
    SlaRule.objects.filter(family="hazard", level="community").update(hours=2)
    event = report(category="hazard.fire")
    assert event.deadline == event.received_at + dt.timedelta(hours=2)


def test_decide_is_read_only(area):
    event = report(category="hazard.fire", description="楼道堆放杂物")
    before = event.dispatch_trace
    event.description = "有人打架"
    decision = dispatch_decide(event=event)
    event.refresh_from_db()
    assert (decision.department.code, event.dispatch_trace) == ("police", before)
