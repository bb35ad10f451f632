"""Reads of the moderation page (``/moderation/``): summaries waiting for a moderator, and
completed cases that have none yet, within the reader's data scope.

The page shows staff what they need to write and judge a public text: category, street and
community, when the case was received and resolved, the resolution note (ID numbers and phones
masked) and, for readers who may read it, the description (masked on intake). Never a reporter's
contact.
"""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone

from layers.protection import personal
from layers.protection.scope import Scope

from ..models import Event, EventTransition, PublicSummary, Region
from ..services.residents import DONE_STATUSES

#: Cases listed at most in each part of the page.
LIMIT = 50


def _resolution_notes(event_ids: list[int]) -> dict[int, str]:
    notes: dict[int, str] = {}
    rows = (
        EventTransition.objects.filter(event_id__in=event_ids, action="resolve")
        .order_by("event_id", "at", "id")
        .values_list("event_id", "reason")
    )
    for event_id, reason in rows:
        notes[event_id] = personal.mask_free_text(reason)  # the latest resolution wins
    return notes


def _cases(events: list[dict], *, with_description: bool) -> list[dict]:
    ids = [event["id"] for event in events]
    notes = _resolution_notes(ids)
    region_ids = {event[key] for event in events for key in ("street_id", "community_id") if event[key]}
    names = dict(Region.objects.filter(pk__in=region_ids).values_list("pk", "name"))
    return [
        {
            "id": event["id"],
            "category": event["category__name"],
            "status": event["status"],
            "street": names.get(event["street_id"], ""),
            "community": names.get(event["community_id"], ""),
            "received_at": timezone.localtime(event["received_at"]),
            "resolved_at": timezone.localtime(event["resolved_at"]) if event["resolved_at"] else None,
            "note": notes.get(event["id"], ""),
            "description": event["description"] if with_description else None,
        }
        for event in events
    ]


_EVENT_FIELDS = (
    "id",
    "category__name",
    "status",
    "street_id",
    "community_id",
    "received_at",
    "resolved_at",
    "description",
)


def moderation_pending(*, scope: Scope, with_description: bool) -> list[dict]:
    """Summaries waiting for a moderator, oldest first, of cases in ``scope``: each case as
    :func:`moderation_candidates` gives it, plus ``summary`` (id, text, author id, written_at)."""
    summaries = list(
        PublicSummary.objects.filter(status=PublicSummary.Status.PENDING, event__in=Event.objects.filter(scope.q()))
        .order_by("written_at", "id")
        .values("id", "event_id", "text", "author_id", "author__username", "written_at")[:LIMIT]
    )
    events = {
        row["id"]: row
        for row in _cases(
            list(Event.objects.filter(pk__in=[s["event_id"] for s in summaries]).values(*_EVENT_FIELDS)),
            with_description=with_description,
        )
    }
    return [
        events[s["event_id"]]
        | {
            "summary": {
                "id": s["id"],
                "text": s["text"],
                "author_id": s["author_id"],
                "author": s["author__username"] or "",
                "written_at": timezone.localtime(s["written_at"]),
            }
        }
        for s in summaries
        if s["event_id"] in events
    ]


def moderation_candidates(*, scope: Scope, with_description: bool) -> list[dict]:
    """Completed cases in ``scope`` without a pending or approved summary (a rejected one may be
    written again), most recently resolved first: ``id``, ``category``, ``status``, ``street``,
    ``community``, ``received_at``, ``resolved_at``, ``note`` (the resolution, masked) and
    ``description`` (``None`` unless ``with_description``)."""
    events = list(
        Event.objects.filter(scope.q(), status__in=[str(s) for s in DONE_STATUSES])
        .exclude(public_summary__status__in=[PublicSummary.Status.PENDING, PublicSummary.Status.APPROVED])
        .order_by(F("resolved_at").desc(nulls_last=True), "-id")
        .values(*_EVENT_FIELDS)[:LIMIT]
    )
    return _cases(events, with_description=with_description)


def summary_in_scope(*, summary_id: int, scope: Scope) -> bool:
    """Whether a summary's case lies in ``scope`` (else the summary is not found)."""
    return PublicSummary.objects.filter(pk=summary_id, event__in=Event.objects.filter(scope.q())).exists()
