"""Reads of the keyword library's versions: the live one, the drafts, the history."""

from __future__ import annotations

from ..models import Department, KeywordLibrary
from ..services.rules import library_changes, live_rules, rules_digest


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def library_describe(library: KeywordLibrary, *, with_rules: bool = True) -> dict:
    """One version as the API answers it; a draft says what it changes against the live library
    and whether its present rules were replayed."""
    body = {
        "id": library.pk,
        "number": library.number,
        "status": library.status,
        "base": library.base.number if library.base_id else None,
        "note": library.note,
        "author": library.author_label,
        "author_id": library.author_id,
        "created_at": _iso(library.created_at),
        "updated_at": _iso(library.updated_at),
        "decided_by": library.decided_by_label or None,
        "decided_at": _iso(library.decided_at),
        "rule_count": len(library.rules),
    }
    if library.status == KeywordLibrary.Status.DRAFT:
        body["changes"] = library_changes(live_rules(), library.rules)
        body["replayed"] = bool(library.replay_digest) and library.replay_digest == rules_digest(library.rules)
    if with_rules:
        body["rules"] = library.rules
        body["replay"] = library.replay
    return body


def library_list() -> dict:
    """The live version (with its rules), the open drafts and the history, newest first."""
    rows = list(KeywordLibrary.objects.select_related("base").order_by("-id")[:200])
    live = next((r for r in rows if r.status == KeywordLibrary.Status.APPROVED), None)
    return {
        "live": library_describe(live) if live else None,
        "drafts": [library_describe(r, with_rules=False) for r in rows if r.status == KeywordLibrary.Status.DRAFT],
        "history": [
            library_describe(r, with_rules=False)
            for r in rows
            if r.status in (KeywordLibrary.Status.SUPERSEDED, KeywordLibrary.Status.DISCARDED)
        ],
    }


def library_get(*, library_id: int) -> KeywordLibrary | None:
    return KeywordLibrary.objects.select_related("base").filter(pk=library_id).first()


def departments_active() -> list[Department]:
    """The departments a rule may route to, by code."""
    return list(Department.objects.filter(active=True).order_by("code"))
