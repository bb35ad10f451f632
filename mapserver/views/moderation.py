"""The moderation page (``/moderation/``): staff write the public summary of a completed case;
a moderator who did not write it approves or rejects it. Nothing reaches the public map, its
feeds or Open311's public read before it is approved.

Plain HTML forms (POST with the CSRF token), no script: the page is a queue, not an app.
Who may do what is ``layers.protection.access.SUMMARY_DUTIES``; cases are read within the reader's scope.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from layers.errors import DomainError
from layers.protection.access import SUMMARY_DUTIES
from layers.selectors.events import event_get
from layers.selectors.summaries import moderation_candidates, moderation_pending, summary_in_scope
from layers.services.summaries import DECISIONS, MAX_REASON, MAX_TEXT, public_summary_moderate, public_summary_propose
from layers.services.users import Role

from .. import params
from ..errors import BadParameter, NotFound
from .pages import page_for

#: Who opens the page: whoever may write a summary or moderate one.
ROLES = tuple(Role(role) for role in sorted(SUMMARY_DUTIES["propose"].roles | SUMMARY_DUTIES["moderate"].roles))


@require_http_methods(["GET"])
@page_for(*ROLES)
def moderation_page(request: HttpRequest) -> HttpResponse:
    reader = request.reader
    context = {
        "pending": moderation_pending(scope=reader.scope, with_description=reader.reads_description),
        "candidates": moderation_candidates(scope=reader.scope, with_description=reader.reads_description),
        "may_propose": reader.may_take(SUMMARY_DUTIES["propose"]),
        "may_moderate": reader.may_take(SUMMARY_DUTIES["moderate"]),
        "me": reader.user_id,
        "max_text": MAX_TEXT,
        "max_reason": MAX_REASON,
    }
    return render(request, "mapserver/public/moderation.html", context)


def _done(request: HttpRequest, error: DomainError | BadParameter | None, ok: str) -> HttpResponse:
    if error is None:
        messages.success(request, ok)
    else:
        messages.error(request, error.message)
    return redirect(reverse("residents:moderation"))


@require_POST
@page_for(*ROLES)
def summary_propose(request: HttpRequest, event_id: int) -> HttpResponse:
    event = event_get(event_id=event_id, scope=request.reader.scope)
    if event is None:
        raise NotFound(_("no event %(id)s") % {"id": event_id}, parameter="event_id")
    try:
        text = params.parse_text(request.POST, "text", max_length=MAX_TEXT * 2)
        public_summary_propose(event=event, reader=request.reader, author=request.user, text=text)
    except (DomainError, BadParameter) as error:
        return _done(request, error, "")
    return _done(request, None, _("The summary waits for another moderator's approval."))


@require_POST
@page_for(*ROLES)
def summary_decide(request: HttpRequest, summary_id: int) -> HttpResponse:
    try:
        decision = params.parse_choice(request.POST, "decision", DECISIONS)
        reason = params.parse_text(request.POST, "reason", max_length=MAX_REASON, default="")
        if not summary_in_scope(summary_id=summary_id, scope=request.reader.scope):
            raise NotFound(_("no public summary %(id)s") % {"id": summary_id}, parameter="summary_id")
        public_summary_moderate(
            summary_id=summary_id, reader=request.reader, moderator=request.user, decision=decision, reason=reason
        )
    except NotFound:
        # An error of the web layer too, so under the root: an unknown summary stays a 404, not
        # a refusal said on the page.
        raise
    except (DomainError, BadParameter) as error:
        return _done(request, error, "")
    ok = _("Published on the public map.") if decision == "approve" else _("Rejected; it stays unpublished.")
    return _done(request, None, ok)
