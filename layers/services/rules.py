"""The keyword library's versions: draft, replay, approve or discard (four eyes), audited.

A change to the keyword library is a draft (:class:`~layers.models.KeywordLibrary`) holding the
whole library as it would be. Its author replays it over past cases
(:func:`library_draft_replay`, :mod:`layers.selectors.replay`); someone else — never the author —
approves it once its present rules have been replayed, and only while the version it started
from is still the live one. Approval numbers the version, supersedes the live one and writes
the rules into :class:`~layers.models.KeywordRule`, which dispatch reads (every process within
``MINQING_REFERENCE_SECONDS``; this one at once). Every draft, edit, replay, approval and
discard is an entry of the audit log (``rules.*``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from layers.protection.access import JUDGEMENT_DUTIES, Reader
from layers.protection.audit import actor_of, audit_record

from ..errors import Conflict, InvalidInput, NotPermitted, RecordNotFound
from ..models import Category, Department, KeywordLibrary, KeywordRule
from ..selectors.replay import cases_read, library_replay
from .dispatch import RuleSpec, reference, reference_forget

#: At most this many rules in a library (a few hundred in practice).
MAX_RULES = 2_000
MAX_NOTE = 300
MAX_KEYWORD = 40
#: Months of cases a replay may read.
MAX_MONTHS = 24


def rules_digest(rules: list[dict]) -> str:
    """SHA-256 of the rules in a canonical form: equal libraries, equal digests."""
    return hashlib.sha256(json.dumps(rules, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def rule_specs(rules: list[dict]) -> tuple[RuleSpec, ...]:
    """The active rules of a library as dispatch orders them (priority descending, then keyword)."""
    active = [r for r in rules if r.get("active", True)]
    ordered = sorted(active, key=lambda r: (-r["priority"], r["keyword"], r["department"], r["category"] or ""))
    return tuple(RuleSpec(r["keyword"], r["department"], r["priority"], r["category"]) for r in ordered)


def live_rules() -> list[dict]:
    """The live library: the approved version's rules, else (before the first approval) the
    keyword rules as stored."""
    live = KeywordLibrary.objects.filter(status=KeywordLibrary.Status.APPROVED).first()
    if live is not None:
        return live.rules
    return [
        {
            "keyword": r.keyword,
            "department": r.department.code,
            "priority": r.priority,
            "category": r.category.code if r.category_id else None,
            "active": r.active,
        }
        for r in KeywordRule.objects.select_related("department", "category").order_by("-priority", "keyword", "id")
    ]


def rules_clean(value: object) -> list[dict]:
    """Check a library sent by a client and return it in canonical form (sorted), or raise
    :class:`~layers.errors.InvalidInput` naming the first bad field (``rules[3].department``)."""
    if not isinstance(value, list):
        raise InvalidInput("rules", _("must be a list of rules"))
    if len(value) > MAX_RULES:
        raise InvalidInput("rules", _("at most %(n)s rules") % {"n": MAX_RULES})
    departments = set(Department.objects.filter(active=True).values_list("code", flat=True))
    categories = set(Category.objects.values_list("code", flat=True))
    seen: dict[tuple, int] = {}
    cleaned = []
    for i, rule in enumerate(value):
        where = f"rules[{i}]"
        if not isinstance(rule, dict):
            raise InvalidInput(where, _("must be an object"))
        unknown = sorted(set(rule) - {"keyword", "department", "priority", "category", "active"})
        if unknown:
            raise InvalidInput(f"{where}.{unknown[0]}", _("unknown field"))
        keyword = rule.get("keyword")
        if not isinstance(keyword, str) or not keyword.strip() or len(keyword.strip()) > MAX_KEYWORD:
            raise InvalidInput(f"{where}.keyword", _("must be 1 to %(n)s characters") % {"n": MAX_KEYWORD})
        department = rule.get("department")
        if department not in departments:
            raise InvalidInput(f"{where}.department", _("unknown department %(code)s") % {"code": f"{department!r}"})
        priority = rule.get("priority", 10)
        if isinstance(priority, bool) or not isinstance(priority, int) or not -1000 <= priority <= 1000:
            raise InvalidInput(f"{where}.priority", _("must be an integer from -1000 to 1000"))
        category = rule.get("category") or None
        if category is not None and category not in categories:
            raise InvalidInput(f"{where}.category", _("unknown category %(code)s") % {"code": f"{category!r}"})
        active = rule.get("active", True)
        if not isinstance(active, bool):
            raise InvalidInput(f"{where}.active", _("must be true or false"))
        key = (keyword.strip(), department, category)
        if key in seen:
            raise InvalidInput(
                where, _("repeats rule %(i)s (same keyword, department and category)") % {"i": seen[key]}
            )
        seen[key] = i
        cleaned.append(
            {"keyword": key[0], "department": department, "priority": priority, "category": category, "active": active}
        )
    cleaned.sort(key=lambda r: (-r["priority"], r["keyword"], r["department"], r["category"] or ""))
    return cleaned


def library_changes(before: list[dict], after: list[dict]) -> dict:
    """Rules added, removed and changed (priority or active) between two libraries."""
    key = lambda r: (r["keyword"], r["department"], r["category"])  # noqa: E731
    old, new = {key(r): r for r in before}, {key(r): r for r in after}
    changed = [
        {"from": old[k], "to": new[k]}
        for k in sorted(old.keys() & new.keys(), key=str)
        if (old[k]["priority"], old[k].get("active", True)) != (new[k]["priority"], new[k].get("active", True))
    ]
    return {
        "added": [new[k] for k in sorted(new.keys() - old.keys(), key=str)],
        "removed": [old[k] for k in sorted(old.keys() - new.keys(), key=str)],
        "changed": changed,
    }


def _check(reader: Reader, duty: str) -> None:
    if not reader.may_take(JUDGEMENT_DUTIES[duty]):
        raise NotPermitted(
            _("%(duty)s is for the roles: %(roles)s")
            % {"duty": duty, "roles": ", ".join(sorted(JUDGEMENT_DUTIES[duty].roles))}
        )


def _draft(library_id: int, *, lock: bool = False) -> KeywordLibrary:
    rows = KeywordLibrary.objects.select_for_update() if lock else KeywordLibrary.objects
    library = rows.filter(pk=library_id).first()
    if library is None:
        raise RecordNotFound(_("no draft %(id)s") % {"id": library_id})
    if library.status != KeywordLibrary.Status.DRAFT:
        raise Conflict(
            "not_a_draft",
            _("version %(id)s is %(status)s, not a draft") % {"id": library_id, "status": library.status},
        )
    return library


def library_draft_create(*, reader: Reader, actor, rules: object | None = None, note: str = "") -> KeywordLibrary:
    """A new draft from the live library, or with ``rules`` (the whole library) when given."""
    _check(reader, "rules_draft")
    if len(note) > MAX_NOTE:
        raise InvalidInput("note", _("longer than %(n)s characters") % {"n": MAX_NOTE})
    now = timezone.now()
    with transaction.atomic():
        live = KeywordLibrary.objects.filter(status=KeywordLibrary.Status.APPROVED).first()
        cleaned = rules_clean(rules) if rules is not None else rules_clean(live_rules())
        draft = KeywordLibrary.objects.create(
            status=KeywordLibrary.Status.DRAFT,
            base=live,
            rules=cleaned,
            note=note.strip(),
            author=actor,
            author_label=actor.get_username() if actor is not None else "system",
            created_at=now,
            updated_at=now,
        )
        audit_record(
            actor=_who(actor),
            action="rules.draft",
            target=f"keyword_library:draft {draft.pk}",
            detail={"base": live.number if live else None, **_counts(library_changes(live_rules(), cleaned))},
        )
    return draft


def _who(actor):
    """The audit log's actor: the user acting (a service may be called outside a request)."""
    return actor_of(actor) if actor is not None else None


def _counts(changes: dict) -> dict:
    return {name: len(rows) for name, rows in changes.items()}


def library_draft_update(
    *, reader: Reader, actor, library_id: int, rules: object, note: str | None = None
) -> KeywordLibrary:
    """Replace a draft's rules (and note); only its author edits it. The last replay no longer
    counts for the new rules (approval needs a replay of what is approved)."""
    _check(reader, "rules_draft")
    with transaction.atomic():
        draft = _draft(library_id, lock=True)
        if draft.author_id is None or actor is None or draft.author_id != actor.pk:
            raise Conflict("not_the_author", _("only the author of a draft edits it; start a draft of your own"))
        draft.rules = rules_clean(rules)
        if note is not None:
            if len(note) > MAX_NOTE:
                raise InvalidInput("note", _("longer than %(n)s characters") % {"n": MAX_NOTE})
            draft.note = note.strip()
        draft.updated_at = timezone.now()
        draft.save(update_fields=["rules", "note", "updated_at"])
        audit_record(
            actor=_who(actor),
            action="rules.edit",
            target=f"keyword_library:draft {draft.pk}",
            detail=_counts(library_changes(live_rules(), draft.rules)),
        )
    return draft


def library_draft_replay(
    *,
    reader: Reader,
    library_id: int,
    months: int,
    actor=None,
    now: dt.datetime | None = None,
    with_description: bool = False,
) -> dict:
    """Replay a draft over the cases received in the last ``months`` months before ``now``
    against the live library; the summary (without examples' texts) is kept on the draft with
    the digest of the rules replayed, and audited."""
    _check(reader, "rules_draft")
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
        raise InvalidInput("months", _("must be an integer from 1 to %(n)s") % {"n": MAX_MONTHS})
    now = now or timezone.now()
    since = now - dt.timedelta(days=round(months * 365.25 / 12))
    draft = _draft(library_id)
    known = reference()
    started = timezone.now()
    cases = cases_read(since=since, until=now)
    summary = library_replay(
        cases=cases,
        live=rule_specs(live_rules()),
        draft=rule_specs(draft.rules),
        defaults=known.defaults,
        with_description=with_description,
    )
    summary = {
        "draft": draft.pk,
        "base": draft.base.number if draft.base_id else None,
        "months": months,
        "since": since.isoformat(),
        "until": now.isoformat(),
        "seconds": round((timezone.now() - started).total_seconds(), 3),
        "changes": library_changes(live_rules(), draft.rules),
        **summary,
    }
    kept = {**summary, "examples": [{**e, "description": None} for e in summary["examples"]]}
    with transaction.atomic():
        KeywordLibrary.objects.filter(pk=draft.pk, status=KeywordLibrary.Status.DRAFT).update(
            replay=kept, replay_digest=rules_digest(draft.rules)
        )
        audit_record(
            actor=_who(actor),
            action="rules.replay",
            target=f"keyword_library:draft {draft.pk}",
            detail={
                "months": months,
                "cases": summary["cases"],
                "changed": summary["changed"],
                "precision": summary["manual"]["precision"],
                "recall": summary["manual"]["recall"],
            },
        )
    return summary


def library_approve(*, reader: Reader, actor, library_id: int) -> KeywordLibrary:
    """Make a draft the live library (see the module docstring); raises
    :class:`~layers.errors.Conflict` when its author approves it (four eyes), when its present
    rules were never replayed, or when another version went live since it was drafted."""
    _check(reader, "rules_approve")
    with transaction.atomic():
        # One approval at a time: the live row (or, before the first, the table) is locked.
        live = KeywordLibrary.objects.select_for_update().filter(status=KeywordLibrary.Status.APPROVED).first()
        draft = _draft(library_id, lock=True)
        if actor is None or draft.author_id == actor.pk:
            raise Conflict("four_eyes", _("a draft is approved by someone other than its author"))
        if draft.replay_digest != rules_digest(draft.rules):
            raise Conflict("not_replayed", _("replay the draft's present rules before approving it"))
        if (live.pk if live else None) != draft.base_id:
            raise Conflict(
                "stale_draft",
                _("the draft started from version %(base)s but version %(live)s is live now; start a new draft")
                % {"base": draft.base.number if draft.base_id else None, "live": live.number if live else None},
            )
        changes = library_changes(live.rules if live else live_rules(), draft.rules)
        number = (KeywordLibrary.objects.aggregate(n=Max("number"))["n"] or 0) + 1
        now = timezone.now()
        if live is not None:
            live.status = KeywordLibrary.Status.SUPERSEDED
            live.save(update_fields=["status"])
        draft.status, draft.number = KeywordLibrary.Status.APPROVED, number
        draft.decided_by, draft.decided_by_label, draft.decided_at = actor, actor.get_username(), now
        draft.save(update_fields=["status", "number", "decided_by", "decided_by_label", "decided_at"])
        _keyword_rules_write(draft.rules)
        audit_record(
            actor=_who(actor),
            action="rules.approve",
            target=f"keyword_library:v{number}",
            detail={
                "draft": draft.pk,
                "author": draft.author_label,
                "replaced": live.number if live else None,
                "changes": changes,
                "replay": {k: (draft.replay or {}).get(k) for k in ("months", "cases", "changed")}
                | {"manual": (draft.replay or {}).get("manual")},
            },
        )
        transaction.on_commit(reference_forget)
    return draft


def library_discard(*, reader: Reader, actor, library_id: int, reason: str = "") -> KeywordLibrary:
    """Set a draft aside (its author, or whoever may approve drafts)."""
    _check(reader, "rules_draft")
    with transaction.atomic():
        draft = _draft(library_id, lock=True)
        own = actor is not None and draft.author_id == actor.pk
        if not own:
            _check(reader, "rules_approve")
        draft.status = KeywordLibrary.Status.DISCARDED
        draft.decided_by = actor
        draft.decided_by_label = actor.get_username() if actor is not None else "system"
        draft.decided_at = timezone.now()
        draft.save(update_fields=["status", "decided_by", "decided_by_label", "decided_at"])
        audit_record(
            actor=_who(actor),
            action="rules.discard",
            target=f"keyword_library:draft {draft.pk}",
            detail={"reason": reason[:300]},
        )
    return draft


def _keyword_rules_write(rules: list[dict]) -> None:
    """Make :class:`~layers.models.KeywordRule` hold exactly ``rules`` (matched by keyword,
    department and category; priority and active updated, the rest removed)."""
    departments = dict(Department.objects.values_list("code", "id"))
    categories = dict(Category.objects.values_list("code", "id"))
    wanted = {(r["keyword"], departments[r["department"]], categories.get(r["category"])): r for r in rules}
    for row in KeywordRule.objects.all():
        key = (row.keyword, row.department_id, row.category_id)
        rule = wanted.pop(key, None)
        if rule is None:
            row.delete()
        elif (row.priority, row.active) != (rule["priority"], rule["active"]):
            row.priority, row.active = rule["priority"], rule["active"]
            row.save(update_fields=["priority", "active"])
    KeywordRule.objects.bulk_create(
        KeywordRule(keyword=k, department_id=d, category_id=c, priority=r["priority"], active=r["active"])
        for (k, d, c), r in wanted.items()
    )
