"""Revealing one personal value in clear: an ID number or phone of a resident, or the name or
phone of an event's reporter.

Only a holder of ``layers.reveal_personal_data`` may, only for a record inside their data scope
(:mod:`layers.protection.scope`), only naming a purpose, and every reveal writes an audit entry in the
same transaction (target, field, purpose, the masked value; never the clear one). A refused
attempt is audited too. Everything else in the platform shows the masked form only.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext as _

from layers.protection import personal
from layers.protection.access import Reader
from layers.protection.audit import actor_of, audit_record

from ..errors import InvalidInput, NotPermitted, RecordNotFound
from ..models import Event, Person

#: The permission a reveal needs.
REVEAL_PERMISSION = "layers.reveal_personal_data"


@dataclass(frozen=True)
class Revealable:
    """Where one personal value lives: its model, ciphertext and masked columns."""

    model: type
    cipher: str
    masked: str


#: What can be revealed: (subject, field) → columns. Subjects name the API path (persons, events).
REVEALABLE: dict[tuple[str, str], Revealable] = {
    ("person", "id_number"): Revealable(Person, "id_number_cipher", "id_number_masked"),
    ("person", "phone"): Revealable(Person, "phone_cipher", "phone_masked"),
    ("event", "reporter_phone"): Revealable(Event, "reporter_phone_cipher", "reporter_phone_masked"),
    ("event", "reporter_name"): Revealable(Event, "reporter_name_cipher", "reporter_name_masked"),
    # The description as the citizen wrote it, when it held an ID number or a phone.
    ("event", "description"): Revealable(Event, "description_cipher", "description"),
}


def revealable_fields(subject: str) -> list[str]:
    """The fields of ``subject`` that can be revealed, sorted.

    >>> revealable_fields("person")
    ['id_number', 'phone']
    """
    return sorted(field for kind, field in REVEALABLE if kind == subject)


@dataclass(frozen=True)
class Revealed:
    subject: str
    id: int
    field: str
    value: str
    masked: str


def personal_data_reveal(*, reader: Reader, user, subject: str, object_id: int, field: str, purpose: str) -> Revealed:
    """The clear value of ``field`` of record ``object_id`` of ``subject`` for ``reader`` (the
    audit log names ``user``).

    Raises :class:`~layers.errors.InvalidInput` for an unknown field or an empty purpose,
    :class:`~layers.errors.NotPermitted` (403) without ``layers.reveal_personal_data`` (the
    attempt is audited), and :class:`~layers.errors.RecordNotFound` (404) when the record does
    not exist, lies outside the user's data scope or holds no such value."""
    where = REVEALABLE.get((subject, field))
    if where is None:
        raise InvalidInput(
            "field",
            _("must be one of %(value)s, got %(value2)s")
            % {"value": ", ".join(revealable_fields(subject)), "value2": f"{field[:40]!r}"},
        )
    purpose = purpose.strip()
    if len(purpose) < 2:
        raise InvalidInput("purpose", _("must say why the data is needed, at least 2 characters"))
    if not 0 < object_id < 2**63:
        raise RecordNotFound(
            _("No %(subject)s with id %(id)s.") % {"subject": subject, "id": object_id}, parameter="id"
        )
    target = f"{subject}:{object_id}"
    if not reader.may_reveal or (field == "description" and not reader.reads_description):
        audit_record(
            action="personal.reveal_denied",
            target=target,
            detail={"field": field, "purpose": purpose},
            actor=actor_of(user),
        )
        raise NotPermitted(
            _("Revealing %(field)s needs the permission %(permission)s.")
            % {"field": field, "permission": REVEAL_PERMISSION}
        )
    scope = reader.scope
    with transaction.atomic():
        row = where.model.objects.filter(scope.q(), pk=object_id).values_list(where.cipher, where.masked).first()
        if row is None:
            raise RecordNotFound(
                _("No %(subject)s with id %(id)s.") % {"subject": subject, "id": object_id}, parameter="id"
            )
        cipher, masked = row
        if not cipher:
            raise RecordNotFound(f"{field}: {subject} {object_id} has none on record", parameter="field")
        value = personal.decrypt(cipher)
        # In the reveal's transaction: no clear value leaves without its entry committed.
        audit_record(
            action="personal.reveal",
            target=target,
            detail={"field": field, "purpose": purpose, "masked": masked},
            actor=actor_of(user),
        )
    return Revealed(subject=subject, id=object_id, field=field, value=value, masked=masked)
