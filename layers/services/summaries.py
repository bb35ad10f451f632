"""The moderation queue of the public map: staff write a public summary of a completed case, and
a moderator who did not write it approves or rejects it. Nothing is public before approval
(``layers.selectors.public.public_cases`` lists approved summaries only).

* :func:`public_summary_propose` writes (or rewrites) a summary of a resolved, verified or
  closed case in the writer's data scope; it goes back to the queue as pending. A text holding
  an ID number or a phone number is refused outright (the author must take it out: masked digits
  are no better on a public page), as is one naming the case's reporter.
* :func:`public_summary_moderate` approves or rejects a pending summary (the author may not).

Who may do which is ``layers.protection.access.SUMMARY_DUTIES``; both steps are audited.
"""

from __future__ import annotations

import re

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from layers.protection import personal
from layers.protection.access import SUMMARY_DUTIES, Reader
from layers.protection.audit import audit_record

from ..errors import ActionNotPermitted, InvalidInput, RecordNotFound
from ..models import Event, PublicSummary
from .residents import DONE_STATUSES

#: A masked phone or ID number (139****5678, 620102***********X): masked digits are no better on a
#: public page than the number, and they are the sign that someone copied a field in.
_MASKED = re.compile(r"[0-9]\*{3,}[0-9Xx]")
MAX_TEXT = 300
MIN_TEXT = 10
MAX_REASON = 300
DECISIONS = ("approve", "reject")


def _check_duty(reader: Reader, duty_name: str, status: str) -> None:
    duty = SUMMARY_DUTIES[duty_name]
    if not reader.may_take(duty):
        raise ActionNotPermitted(duty_name, status, roles=sorted(duty.roles))


def summary_text_check(*, text: str, event: Event) -> str:
    """The summary as it will be published (trimmed), or :class:`~layers.errors.InvalidInput`
    naming what must come out: an ID number or phone number, or the reporter's name."""
    shown = " ".join(text.split())
    if not MIN_TEXT <= len(shown) <= MAX_TEXT:
        raise InvalidInput(
            "text", _("a summary of %(low)s to %(high)s characters") % {"low": MIN_TEXT, "high": MAX_TEXT}
        )
    if personal.mask_free_text(shown) != shown or _MASKED.search(shown):
        raise InvalidInput("text", _("a public summary must not hold an ID number or a phone number"))
    if event.reporter_name_cipher:
        name = personal.decrypt(event.reporter_name_cipher)
        if len(name) >= 2 and name in shown:
            raise InvalidInput("text", _("a public summary must not name the reporter"))
    return shown


def public_summary_propose(*, event: Event, reader: Reader, author, text: str) -> PublicSummary:
    """Write the public summary of ``event`` (the caller found it in the reader's scope) and put
    it in the moderation queue; an existing summary is replaced and waits for approval again."""
    _check_duty(reader, "propose", event.status)
    if event.status not in DONE_STATUSES:
        raise InvalidInput(
            "event", _("only completed cases are published; this one is %(status)s") % {"status": event.status}
        )
    shown = summary_text_check(text=text, event=event)
    now = timezone.now()
    with transaction.atomic():
        summary, _created = PublicSummary.objects.update_or_create(
            event=event,
            defaults={
                "text": shown,
                "status": PublicSummary.Status.PENDING,
                "author": author,
                "written_at": now,
                "moderator": None,
                "moderated_at": None,
                "reason": "",
            },
        )
        audit_record(action="summary.propose", target=f"event:{event.pk}", detail={"summary": summary.pk})
    return summary


def public_summary_moderate(
    *, summary_id: int, reader: Reader, moderator, decision: str, reason: str = ""
) -> PublicSummary:
    """Approve or reject a pending summary. Raises :class:`~layers.errors.ActionNotPermitted`
    for a reader without the duty or for the summary's own author, and
    :class:`~layers.errors.InvalidInput` for anything but a pending summary or a known decision."""
    if decision not in DECISIONS:
        raise InvalidInput("decision", f"must be one of {', '.join(DECISIONS)}, got {decision!r}")
    if len(reason) > MAX_REASON:
        raise InvalidInput("reason", f"at most {MAX_REASON} characters")
    with transaction.atomic():
        summary = PublicSummary.objects.select_for_update().filter(pk=summary_id).first()
        if summary is None:
            raise RecordNotFound(f"no public summary {summary_id}", parameter="summary")
        _check_duty(reader, "moderate", summary.status)
        if summary.author_id is not None and summary.author_id == reader.user_id:
            raise ActionNotPermitted(
                "moderate", summary.status, roles=sorted(SUMMARY_DUTIES["moderate"].roles), author=True
            )
        if summary.status != PublicSummary.Status.PENDING:
            raise InvalidInput("summary", _("already moderated: %(status)s") % {"status": summary.status})
        summary.status = PublicSummary.Status.APPROVED if decision == "approve" else PublicSummary.Status.REJECTED
        summary.moderator, summary.moderated_at, summary.reason = moderator, timezone.now(), reason.strip()
        summary.save(update_fields=["status", "moderator", "moderated_at", "reason"])
        audit_record(
            action=f"summary.{decision}",
            target=f"event:{summary.event_id}",
            detail={"summary": summary.pk, "author": summary.author_id},
        )
    return summary
