"""Dispatch: which department handles an event, at which level, by when, and why.

The department comes from the keyword library (:class:`~layers.models.KeywordRule`): every
active keyword found in the description proposes its department, the highest priority wins, and
several departments tied at the top make a joint case (联合处置) for the command center, as does
an event that no rule and no category default claims. Without a keyword hit the category's
default department (or its family's) handles it. The level is the lowest one the location
allows (community when the point lies in a community, else street, else district, else city),
raised to the category's ``min_level`` (a gas leak is never a community's alone). Joint cases
go to the city. The deadline is the SLA hours of the family at that level after receipt.

Every decision is written down in ``dispatch_trace`` so that a supervisor can see why.

The keyword library, the categories, the SLA table and the command center are read once per
``MINQING_REFERENCE_SECONDS`` in each process (:func:`reference`), not on every event: dispatch
runs on every intake, and the library's queries were most of its cost (issue 6 load test). An
edit in the admin reaches intake within that many seconds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings

from ..memo import Remembered
from ..models import Category, Department, Event, KeywordRule, Level, SlaRule
from ..models.events import LEVEL_ORDER
from ..taxonomy import COMMAND_CENTER


@dataclass(frozen=True)
class DispatchDecision:
    """The outcome of dispatch: department (``None`` only if even the command center is
    missing), responsible level, joint handling, deadline and the trace explaining them."""

    department: Department | None
    responsible_level: str
    joint_handling: bool
    deadline: dt.datetime | None
    reason: str
    trace: dict = field(default_factory=dict)


def category_lineage(code: str) -> list[str]:
    """The codes a category inherits from, itself first.

    >>> category_lineage("dispute.neighbour")
    ['dispute.neighbour', 'dispute']
    >>> category_lineage("hazard")
    ['hazard']
    """
    parts = code.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)]


def level_raise(level: str, floor: str) -> str:
    """The higher of two responsible levels.

    >>> level_raise("community", "street"), level_raise("district", "street")
    ('street', 'district')
    """
    return LEVEL_ORDER[max(LEVEL_ORDER.index(level), LEVEL_ORDER.index(floor))].value


def level_next(level: str) -> str | None:
    """The level an overdue case escalates to; ``None`` at the top.

    >>> level_next("community"), level_next("district"), level_next("city")
    ('street', 'city', None)
    """
    index = LEVEL_ORDER.index(level)
    return LEVEL_ORDER[index + 1].value if index + 1 < len(LEVEL_ORDER) else None


@dataclass(frozen=True)
class Reference:
    """What dispatch reads: active keyword rules of active departments, best first (priority
    descending, then keyword and id), with their department and category loaded; categories by
    code with their department; SLA hours by (family, level); the active command center."""

    rules: tuple[KeywordRule, ...]
    categories: dict[str, Category]
    sla: dict[tuple[str, str], int]
    command_center: Department | None


_reference: Remembered[Reference] = Remembered(lambda: settings.MINQING_REFERENCE_SECONDS)


def reference() -> Reference:
    """The dispatch tables as read at most ``MINQING_REFERENCE_SECONDS`` ago in this process
    (0: read now). The instances are shared: callers must not change them."""
    known = _reference.get("dispatch")
    if known is None:
        known = Reference(
            rules=tuple(
                KeywordRule.objects.filter(active=True, department__active=True)
                .select_related("department", "category")
                .order_by("-priority", "keyword", "id")
            ),
            categories={category.code: category for category in Category.objects.select_related("department")},
            sla={(rule.family, rule.level): rule.hours for rule in SlaRule.objects.all()},
            command_center=Department.objects.filter(code=COMMAND_CENTER, active=True).first(),
        )
        _reference.put("dispatch", known)
    return known


def category_get(*, code: str) -> Category | None:
    """The category with ``code`` (its department loaded), from :func:`reference`."""
    return reference().categories.get(code)


def sla_hours(*, family: str, level: str) -> int | None:
    """Hours allowed at ``level`` for events of ``family``; ``None`` when no SLA row exists."""
    return reference().sla.get((family, level))


def sla_deadline(*, family: str, level: str, start: dt.datetime) -> dt.datetime | None:
    hours = sla_hours(family=family, level=level)
    return None if hours is None else start + dt.timedelta(hours=hours)


def keyword_hits(*, description: str, category: Category) -> list[KeywordRule]:
    """Active rules whose keyword occurs in ``description`` and that apply to ``category``
    (unrestricted rules, or rules for the category or one of its ancestors), best first.

    A substring test over the library held in memory (a few hundred short keywords: cheaper
    than a query per event)."""
    lineage = set(category_lineage(category.code))
    return [
        rule
        for rule in reference().rules
        if (rule.category_id is None or rule.category.code in lineage) and rule.keyword in description
    ]


def _location_level(event: Event) -> tuple[str, str]:
    if event.community_id:
        return Level.COMMUNITY.value, f"located in community {event.community_id}"
    if event.street_id:
        return Level.STREET.value, f"located in street {event.street_id}, in no community"
    if event.district_code:
        return Level.DISTRICT.value, f"located in district {event.district_code}, in no street"
    if event.location is None:
        return Level.CITY.value, "not located yet (manual-location queue)"
    return Level.CITY.value, "located outside every district"


def _category_default(category: Category) -> tuple[Department | None, str]:
    """The category's own default department, else the nearest ancestor's."""
    if category.department_id:
        return category.department, category.code
    ancestors = reference().categories
    for code in category_lineage(category.code)[1:]:
        parent = ancestors.get(code)
        if parent is not None and parent.department_id:
            return parent.department, code
    return None, ""


def dispatch_decide(*, event: Event) -> DispatchDecision:
    """Decide department, level, joint handling and deadline for ``event`` (read-only).

    ``event.received_at`` must be set: the deadline counts from it."""
    category = event.category
    hits = keyword_hits(description=event.description, category=category)
    rules = [
        {
            "rule": rule.pk,
            "keyword": rule.keyword,
            "department": rule.department.code,
            "priority": rule.priority,
            "category": rule.category.code if rule.category_id else None,
        }
        for rule in hits
    ]
    joint = False
    department: Department | None
    if hits:
        top = hits[0].priority
        leaders = {rule.department.code: rule.department for rule in hits if rule.priority == top}
        if len(leaders) == 1:
            department = next(iter(leaders.values()))
            reason = f"keyword {hits[0].keyword!r} (priority {top}) → {department.code}"
        else:
            joint, department = True, None
            reason = f"keywords name {len(leaders)} departments at priority {top} ({', '.join(sorted(leaders))})"
        default_code = ""
    else:
        department, default_code = _category_default(category)
        if department is not None:
            reason = f"no keyword matched; default department of category {default_code} → {department.code}"
        else:
            joint = True
            reason = f"no keyword matched and category {category.code} has no default department"
    level, level_reason = _location_level(event)
    raised = level_raise(level, category.min_level)
    if raised != level:
        level = raised
        level_reason += f"; raised to {level}, the lowest level for {category.code}"
    if joint:
        department = reference().command_center
        level = Level.CITY.value
        reason += "; joint handling by the command center"
        level_reason += "; joint cases are handled at city level"
    deadline = sla_deadline(family=category.family, level=level, start=event.received_at)
    trace = {
        "rules": rules,
        "category_default": default_code or None,
        "department": department.code if department else None,
        "joint_handling": joint,
        "level": level,
        "level_reason": level_reason,
        "reason": reason,
        "deadline": deadline.isoformat() if deadline else None,
    }
    return DispatchDecision(department, level, joint, deadline, reason, trace)


def event_dispatch(*, event: Event) -> DispatchDecision:
    """Decide as :func:`dispatch_decide` and write the decision onto ``event`` (department,
    level, joint handling, deadline, trace); saved when the event is already stored."""
    decision = dispatch_decide(event=event)
    event.department = decision.department
    event.responsible_level = decision.responsible_level
    event.joint_handling = decision.joint_handling
    event.deadline = decision.deadline
    event.dispatch_trace = decision.trace
    if event.pk:
        event.save(update_fields=["department", "responsible_level", "joint_handling", "deadline", "dispatch_trace"])
    return decision
