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
runs on every intake, and the library's queries were most of its cost under load. An
edit in the admin reaches intake within that many seconds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property

from django.conf import settings

from layers.database.memo import Remembered

from ..models import Category, Department, Event, KeywordLibrary, KeywordRule, Level, SlaRule
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
    #: The keyword library version that decided (``None`` before the first approval).
    library_version: int | None = None


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
    #: The number of the live keyword library version (``None`` before the first approval).
    library_version: int | None = None

    @cached_property
    def specs(self) -> tuple[RuleSpec, ...]:
        """The rules as values, in the same order."""
        return tuple(rule_spec(rule) for rule in self.rules)

    @cached_property
    def rule_ids(self) -> dict[RuleSpec, int]:
        return {rule_spec(rule): rule.pk for rule in self.rules}

    @cached_property
    def defaults(self) -> dict[str, str | None]:
        """Each category code's own default department code."""
        return {code: c.department.code if c.department_id else None for code, c in self.categories.items()}

    @cached_property
    def departments(self) -> dict[str, Department]:
        """The departments the rules and the categories name, by code."""
        named = {c.department.code: c.department for c in self.categories.values() if c.department_id}
        return named | {rule.department.code: rule.department for rule in self.rules}


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
            library_version=KeywordLibrary.objects.filter(status=KeywordLibrary.Status.APPROVED)
            .values_list("number", flat=True)
            .first(),
        )
        _reference.put("dispatch", known)
    return known


def reference_forget() -> None:
    """Read the dispatch tables again on the next event in this process (after an approval)."""
    _reference.forget("dispatch")


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


@dataclass(frozen=True)
class RuleSpec:
    """One keyword rule as a value: what a library version holds and what replays read."""

    keyword: str
    department: str
    priority: int
    category: str | None = None


@dataclass(frozen=True)
class Routing:
    """Which department the keyword library (or the category's default) picks, and why:
    ``department`` is ``None`` for a joint case (or when no rule and no default claims it);
    ``hits`` the rules that fired, best first."""

    department: str | None
    joint: bool
    reason: str
    hits: tuple[RuleSpec, ...]
    category_default: str | None


def route_decide(
    *, description: str, category_code: str, rules: tuple[RuleSpec, ...], defaults: dict[str, str | None]
) -> Routing:
    """The department rule of dispatch, on values: ``rules`` best first (priority descending,
    then keyword), ``defaults`` each category code's own default department code. The live
    dispatch (:func:`dispatch_decide`) and the replay of a draft library
    (:mod:`layers.selectors.replay`, whose vectorised answer a test compares with this one) both
    decide by it.

    >>> rules = (RuleSpec("火灾", "fire", 20), RuleSpec("漏水", "water", 10), RuleSpec("物业", "housing", 10))
    >>> route_decide(description="楼上漏水", category_code="dispute.neighbour", rules=rules,
    ...              defaults={"dispute.neighbour": "justice"}).department
    'water'
    >>> r = route_decide(description="物业不管漏水", category_code="dispute.property", rules=rules, defaults={})
    >>> r.joint, r.reason
    (True, 'keywords name 2 departments at priority 10 (housing, water)')
    >>> route_decide(description="咨询", category_code="dispute.family", rules=rules,
    ...              defaults={"dispute": "justice"}).reason
    'no keyword matched; default department of category dispute → justice'
    """
    lineage = category_lineage(category_code)
    within = set(lineage)
    hits = tuple(
        rule for rule in rules if (rule.category is None or rule.category in within) and rule.keyword in description
    )
    if hits:
        top = hits[0].priority
        leaders = sorted({rule.department for rule in hits if rule.priority == top})
        if len(leaders) == 1:
            return Routing(
                leaders[0], False, f"keyword {hits[0].keyword!r} (priority {top}) → {leaders[0]}", hits, None
            )
        reason = f"keywords name {len(leaders)} departments at priority {top} ({', '.join(leaders)})"
        return Routing(None, True, reason, hits, None)
    for code in lineage:
        department = defaults.get(code)
        if department:
            reason = f"no keyword matched; default department of category {code} → {department}"
            return Routing(department, False, reason, hits, code)
    return Routing(None, True, f"no keyword matched and category {category_code} has no default department", hits, None)


def rule_spec(rule: KeywordRule) -> RuleSpec:
    """A stored rule (its department and category loaded) as a value."""
    return RuleSpec(rule.keyword, rule.department.code, rule.priority, rule.category.code if rule.category_id else None)


def rule_trace(rule: RuleSpec) -> dict:
    """A fired rule as the dispatch trace lists it."""
    return {
        "keyword": rule.keyword,
        "department": rule.department,
        "priority": rule.priority,
        "category": rule.category,
    }


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


def dispatch_decide(*, event: Event) -> DispatchDecision:
    """Decide department, level, joint handling and deadline for ``event`` (read-only).

    ``event.received_at`` must be set: the deadline counts from it."""
    category = event.category
    known = reference()
    routing = route_decide(
        description=event.description, category_code=category.code, rules=known.specs, defaults=known.defaults
    )
    rules = [{"rule": known.rule_ids[hit], **rule_trace(hit)} for hit in routing.hits]
    joint, reason, default_code = routing.joint, routing.reason, routing.category_default or ""
    department = known.departments.get(routing.department) if routing.department is not None else None
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
        "library_version": known.library_version,
    }
    return DispatchDecision(department, level, joint, deadline, reason, trace, known.library_version)


def event_dispatch(*, event: Event) -> DispatchDecision:
    """Decide as :func:`dispatch_decide` and write the decision onto ``event`` (department,
    level, joint handling, deadline, trace); saved when the event is already stored."""
    decision = dispatch_decide(event=event)
    event.department = decision.department
    event.responsible_level = decision.responsible_level
    event.joint_handling = decision.joint_handling
    event.deadline = decision.deadline
    event.dispatch_trace = decision.trace
    event.rule_version = decision.library_version
    if event.pk:
        event.save(
            update_fields=[
                "department",
                "responsible_level",
                "joint_handling",
                "deadline",
                "dispatch_trace",
                "rule_version",
            ]
        )
    return decision
