"""The keyword library proven before it goes live: the page ``/rules/`` (plain forms, no script)
and the API ``/api/rules…``.

A draft holds the whole library as it would be; its author replays it over the last months of
cases (how many would go elsewhere, to whom, examples with each one's rule trace, precision and
recall against the cases staff re-routed by hand); someone else approves it or it is discarded.
Glue only: :mod:`layers.services.rules` decides and audits, :mod:`layers.selectors.rules`
reads. Who may do what is ``layers.protection.access.JUDGEMENT_DUTIES``.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from layers.errors import DomainError, InvalidInput
from layers.protection.access import JUDGEMENT_DUTIES
from layers.selectors.rules import departments_active, library_describe, library_get, library_list
from layers.services.rules import (
    MAX_MONTHS,
    MAX_NOTE,
    library_approve,
    library_discard,
    library_draft_create,
    library_draft_replay,
    library_draft_update,
    live_rules,
)
from layers.services.users import Role

from .. import params
from ..auth import roles_required
from ..errors import BadParameter, NotFound
from ..schema import error_response, integer_parameter
from .pages import page_for

ROLES = tuple(Role(role) for role in sorted(JUDGEMENT_DUTIES["rules_read"].roles))
RULE_READERS = roles_required(
    *ROLES, message=gettext_lazy("The keyword library is for analysts, leaders and the command center.")
)
ERROR = error_response("names the field (400), the role (403), the draft (404) or why the state refuses it (409)")


# The bodies are JSON only (parsed by params.parse_json_object); a rule's own fields are checked
# by the service, which names the rule and field it refuses.
def _draft_body(name: str, *, rules_required: bool):
    """A new draft's body (``rules`` absent or null: a copy of the live rules) or a draft's
    replacement (``rules`` required)."""
    return inline_serializer(
        name=name,
        fields={
            "rules": serializers.ListField(
                child=serializers.DictField(),
                required=rules_required,
                allow_null=not rules_required,
                help_text="[{keyword, department, priority, category, active}]",
            ),
            "note": serializers.CharField(required=False, allow_null=True, max_length=MAX_NOTE),
        },
    )


_DRAFT = _draft_body("RulesDraft", rules_required=False)
_DRAFT_UPDATE = _draft_body("RulesDraftUpdate", rules_required=True)
_DISCARD = inline_serializer(
    name="RulesDiscard", fields={"reason": serializers.CharField(required=False, allow_null=True, max_length=300)}
)


def _months(body, default: int | None = None) -> int:
    return params.parse_int(body, "months", low=1, high=MAX_MONTHS, default=default or settings.MINQING_REPLAY_MONTHS)


def _found(library_id: int):
    library = library_get(library_id=library_id)
    if library is None:
        raise NotFound(_("no keyword library version %(id)s") % {"id": library_id}, parameter="library_id")
    return library


# --- API ------------------------------------------------------------------------------------------


class RuleLibrary(APIView):
    """The live keyword library, the drafts and the history; POST starts a draft."""

    permission_classes = [RULE_READERS]

    @extend_schema(operation_id="rules_list", summary="Keyword library: live version, drafts, history",
                   responses={200: OpenApiTypes.OBJECT, 403: ERROR})  # fmt: skip
    def get(self, request: Request) -> Response:
        return Response(library_list())

    @extend_schema(
        operation_id="rules_draft_create",
        summary="Start a draft: {rules?: [{keyword, department, priority, category, active}], note?}",
        request={"application/json": _DRAFT},
        responses={201: OpenApiTypes.OBJECT, 400: ERROR, 403: ERROR},
    )
    def post(self, request: Request) -> Response:
        body = params.parse_json_object(request.body) if request.body else {}
        note = params.parse_text(body, "note", max_length=MAX_NOTE, default="")
        draft = library_draft_create(reader=request.reader, actor=request.user, rules=body.get("rules"), note=note)
        return Response(library_describe(draft), status=201)


class RuleVersion(APIView):
    """One version (live, draft, superseded or discarded); PUT replaces a draft's rules."""

    permission_classes = [RULE_READERS]

    @extend_schema(operation_id="rules_version", summary="One version of the keyword library",
                   responses={200: OpenApiTypes.OBJECT, 404: ERROR})  # fmt: skip
    def get(self, request: Request, library_id: int) -> Response:
        return Response(library_describe(_found(library_id)))

    @extend_schema(operation_id="rules_draft_update", summary="Replace a draft's rules (its author only)",
                   request={"application/json": _DRAFT_UPDATE},
                   responses={200: OpenApiTypes.OBJECT, 400: ERROR, 404: ERROR, 409: ERROR})  # fmt: skip
    def put(self, request: Request, library_id: int) -> Response:
        body = params.parse_json_object(request.body)
        if "rules" not in body:
            raise BadParameter("rules", _("is required"))
        note = params.parse_text(body, "note", max_length=MAX_NOTE, default=None)
        _found(library_id)
        draft = library_draft_update(
            reader=request.reader, actor=request.user, library_id=library_id, rules=body["rules"], note=note
        )
        return Response(library_describe(draft))


class RuleReplay(APIView):
    """Replay a draft over the last ``months`` of cases against the live library."""

    permission_classes = [RULE_READERS]

    @extend_schema(
        operation_id="rules_draft_replay",
        summary="Replay a draft: cases routed differently, flows, examples with traces, precision/recall",
        parameters=[integer_parameter("months", 1, MAX_MONTHS, description="default 12")],
        request=None,
        responses={200: OpenApiTypes.OBJECT, 400: ERROR, 404: ERROR, 409: ERROR},
    )
    def post(self, request: Request, library_id: int) -> Response:
        months = _months(request.query_params)
        _found(library_id)
        summary = library_draft_replay(
            reader=request.reader,
            library_id=library_id,
            months=months,
            with_description=request.reader.reads_description,
        )
        return Response(summary)


class RuleApprove(APIView):
    """Approve a draft: it becomes the next version (never one's own draft)."""

    permission_classes = [RULE_READERS]

    @extend_schema(operation_id="rules_draft_approve", summary="Approve a draft (not one's own)", request=None,
                   responses={200: OpenApiTypes.OBJECT, 403: ERROR, 404: ERROR, 409: ERROR})  # fmt: skip
    def post(self, request: Request, library_id: int) -> Response:
        _found(library_id)
        library = library_approve(reader=request.reader, actor=request.user, library_id=library_id)
        return Response(library_describe(library))


class RuleDiscard(APIView):
    """Discard a draft (its author, or whoever may approve drafts)."""

    permission_classes = [RULE_READERS]

    @extend_schema(operation_id="rules_draft_discard", summary="Discard a draft: {reason?}",
                   request={"application/json": _DISCARD},
                   responses={200: OpenApiTypes.OBJECT, 400: ERROR, 403: ERROR, 404: ERROR, 409: ERROR})  # fmt: skip
    def post(self, request: Request, library_id: int) -> Response:
        _found(library_id)
        body = params.parse_json_object(request.body) if request.body else {}
        reason = params.parse_text(body, "reason", max_length=300, default="")
        library = library_discard(reader=request.reader, actor=request.user, library_id=library_id, reason=reason)
        return Response(library_describe(library))


# --- the page -------------------------------------------------------------------------------------

_RULE_FIELD = re.compile(r"^rules\[(\d+)\]")


def _rules_message(error: DomainError, rules: list[dict], text: str) -> str:
    """A service's ``rules[i].field: …`` said as the line of the text box it came from."""
    found = isinstance(error, InvalidInput) and _RULE_FIELD.match(error.field)
    if not found:
        return error.message
    index = int(found.group(1))
    lines = [
        n for n, line in enumerate(text.splitlines(), start=1) if line.strip() and not line.strip().startswith("#")
    ]
    number = lines[index] if index < len(lines) else index + 1
    return _("rules: line %(n)s: %(message)s") % {"n": number, "message": error.message.split(": ", 1)[1]}


def _page(
    request: HttpRequest, *, library_id: int | None = None, status: int = 200, text: str | None = None
) -> HttpResponse:
    reader = request.reader
    listing = library_list()
    chosen = library_get(library_id=library_id) if library_id else None
    if library_id and chosen is None:
        raise NotFound(_("no keyword library version %(id)s") % {"id": library_id}, parameter="library_id")
    # Before the first approval the library is the keyword rules as stored, not yet a version.
    shown = (
        library_describe(chosen)
        if chosen
        else listing["live"] or {"id": None, "status": "unversioned", "rules": live_rules()}
    )
    context = {
        "listing": listing,
        "shown": shown,
        "text": text if text is not None else params.rules_text(shown["rules"] if shown else []),
        "departments": departments_active(),
        "may_draft": reader.may_take(JUDGEMENT_DUTIES["rules_draft"]),
        "may_approve": reader.may_take(JUDGEMENT_DUTIES["rules_approve"]),
        "me": reader.user_id,
        "months": settings.MINQING_REPLAY_MONTHS,
        "max_months": MAX_MONTHS,
        "max_note": MAX_NOTE,
    }
    return render(request, "mapserver/judgement/rules.html", context, status=status)


@require_http_methods(["GET"])
@page_for(*ROLES)
def rules_page(request: HttpRequest) -> HttpResponse:
    return _page(request)


@require_http_methods(["GET"])
@page_for(*ROLES)
def rules_version_page(request: HttpRequest, library_id: int) -> HttpResponse:
    return _page(request, library_id=library_id)


@require_POST
@page_for(*ROLES)
def rules_draft_save(request: HttpRequest) -> HttpResponse:
    """Start a draft (no ``draft`` field) or save one's draft, from the text box."""
    text = request.POST.get("rules", "")
    draft_id = request.POST.get("draft") or None
    rules: list[dict] = []
    try:
        rules = params.parse_rules_text(request.POST, "rules")
        note = params.parse_text(request.POST, "note", max_length=MAX_NOTE, default="")
        if draft_id:
            draft_id = params.parse_int(request.POST, "draft", low=1, high=2**62)
            draft = library_draft_update(
                reader=request.reader, actor=request.user, library_id=draft_id, rules=rules, note=note
            )
        else:
            draft = library_draft_create(reader=request.reader, actor=request.user, rules=rules, note=note)
    except (DomainError, BadParameter) as error:
        messages.error(request, _rules_message(error, rules, text))
        return _page(
            request, library_id=int(draft_id) if str(draft_id or "").isdigit() else None, status=400, text=text
        )
    messages.success(request, _("Draft saved. Replay it before it can be approved."))
    return redirect(reverse("judgement:rules-version", args=[draft.pk]))


@require_POST
@page_for(*ROLES)
def rules_draft_act(request: HttpRequest, library_id: str, action: str) -> HttpResponse:
    """Replay, approve or discard a draft from its page."""
    library_id = int(library_id)
    _found(library_id)
    try:
        if action == "replay":
            summary = library_draft_replay(
                reader=request.reader, library_id=library_id, months=_months(request.POST), actor=request.user
            )
            ok = _("Replayed over %(cases)s cases: %(changed)s would be routed differently.") % summary
        elif action == "approve":
            library = library_approve(reader=request.reader, actor=request.user, library_id=library_id)
            ok = _("Approved: version %(number)s is live.") % {"number": library.number}
        else:
            reason = params.parse_text(request.POST, "reason", max_length=300, default="")
            library_discard(reader=request.reader, actor=request.user, library_id=library_id, reason=reason)
            ok = _("Draft discarded.")
    except (DomainError, BadParameter) as error:
        messages.error(request, error.message)
    else:
        messages.success(request, ok)
    return redirect(reverse("judgement:rules-version", args=[library_id]))
