"""Writes of the residents' side (小兰帮办): a report without an account, its photos, and the
resident's one answer to a resolution (a rating, or a reopening).

* :func:`resident_report` takes a report through the one intake service on the ``app`` channel
  and answers with a ticket number and a **follow-up token**. The page makes a UUID for each
  report (``client_id``); the event's external id is a digest of it and the token an HMAC of it
  under a key derived from ``MINQING_PERSONAL_DATA_KEY``. So a resend (a lost answer, a double
  tap) is stored once *and* gets the same link again, while the database keeps only the token's
  SHA-256: neither a copy of the database nor anyone who reads the event (staff see the external
  id, a digest) can open the case.
* :func:`resident_case_get` finds the ticket of a token (the only way in: never by ticket number
  or event id, which are not secret).
* :func:`resident_photo_add` checks a photo like the grid worker's (``gridwork.photo_check``), at
  most ``MINQING_RESIDENT_PHOTOS`` per report within ``MINQING_RESIDENT_PHOTO_HOURS``.
* :func:`resident_answer` records the resident's rating, or reopens the case within
  ``MINQING_RESIDENT_REOPEN_DAYS`` of its resolution, through the closed loop's own action
  service as :data:`layers.protection.access.RESIDENT_READER` (the duty table's resident role), once per
  resolution; audited with the client's address.

Abuse: the per-phone limit is counted here in the database (every process sees the same
count); the per-address limit is the HTTP edge's throttle (``mapserver.throttles``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from layers.database.transactions import committed
from layers.protection import personal
from layers.protection.access import RESIDENT_READER
from layers.protection.audit import audit_record

from ..errors import DomainError, InvalidInput, RecordNotFound
from ..models import Event, EventPhoto, ResidentTicket
from .bulk import fetch
from .events import event_act, event_create
from .gridwork import event_photo_add

CHANNEL = Event.Channel.APP
#: External ids of residents' reports: the prefix and a digest of the page's id for the report.
EXTERNAL_ID_PREFIX = "XL-"
#: How a report's place was given: a GPS fix, a tap on the map, or a typed address.
SOURCES = ("gps", "tap", "address")
#: The transition log's and the audit log's name for a resident (they have no account).
RESIDENT_LABEL = "居民 (resident)"
#: Statuses in which the work is done and the resident may answer.
DONE_STATUSES = (Event.Status.RESOLVED, Event.Status.VERIFIED, Event.Status.CLOSED)
#: What a resident may do to their case.
ANSWERS = ("rate", "reopen")
MAX_COMMENT = 500

#: The page's id of a report: a UUID (crypto.randomUUID), so that it cannot be guessed.
_CLIENT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: A mainland mobile number: what a resident leaves to be called back.
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
#: A follow-up token as issued: 32 URL-safe base64 characters (192 bits).
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")


class ResidentRefused(DomainError):
    """Something the resident may not do to their case now (409), and why."""

    status = 409
    code = "not_allowed_now"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", parameter=field)


class TooManyReports(DomainError):
    """The per-phone limit (429); ``retry_after`` seconds until the oldest report leaves the window."""

    status = 429
    code = "throttled"

    def __init__(self, limit: int, hours: float, retry_after: int) -> None:
        super().__init__(
            _("phone: this phone number sent %(limit)s reports within %(hours)s hours; try again later or call 12345")
            % {"limit": limit, "hours": f"{hours:g}"},
            parameter="phone",
            retry_after=retry_after,
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class Receipt:
    """The answer to a report: the event, its ticket, the follow-up token (given to the resident
    only, never stored) and whether this request stored it (``False``: a resend)."""

    event: Event
    ticket: ResidentTicket
    token: str
    created: bool


# --- tokens -----------------------------------------------------------------------------------------


def _token_keys() -> list[bytes]:
    # Subkeys of their own: the follow-up tokens reveal nothing of the encryption or digest keys.
    # The current key's first, then the previous keys' (a rotation under way).
    return [hmac.new(key, b"minqing:follow-up", hashlib.sha256).digest() for key in personal.master_keys()]


def _token_under(key: bytes, client_id: str) -> str:
    return base64.urlsafe_b64encode(hmac.new(key, client_id.encode(), hashlib.sha256).digest()[:24]).decode()


def follow_token(client_id: str) -> str:
    """The follow-up token of the report the page called ``client_id``: 32 URL-safe characters
    (192 bits of an HMAC under the server's key; the same id always gives the same token)."""
    return _token_under(_token_keys()[0], client_id)


def held_token(client_id: str, ticket: ResidentTicket) -> str:
    """The token the resident holds for a stored report: the one, under the current key or a
    previous one, whose digest the ticket keeps. A report stored before a key rotation keeps its
    link (the stored digest is of the token issued then; nothing re-keys it). Raises
    :class:`ResidentRefused` when no configured key gives it (the key it was issued under has
    been removed): the resident opens the case with the link the first answer gave."""
    for key in _token_keys():
        token = _token_under(key, client_id)
        if hmac.compare_digest(token_digest(token), ticket.token_digest):
            return token
    raise ResidentRefused(
        "client_id",
        _("this report was stored before the server's key changed: open it with the link the first answer gave"),
    )


def token_digest(token: str) -> str:
    """What is stored of a token: its SHA-256, hex.

    >>> token_digest("x" * 32)[:16]
    'c62e4615bd39e222'
    """
    return hashlib.sha256(token.encode()).hexdigest()


def external_id_for(client_id: str) -> str:
    """The intake external id of a resident's report: a digest of the page's id (staff read
    external ids; the id itself would let them ask for the token with a resend).

    >>> external_id_for("3f2b9c1e-0d6a-4f5e-9a7b-2c8d1e0f4a6b")
    'XL-2b8234dde44b4945791c9d3cba21612f5511df377e9a48c6'
    """
    return EXTERNAL_ID_PREFIX + hashlib.sha256(f"minqing:report:{client_id}".encode()).hexdigest()[:48]


def ticket_number(event: Event) -> str:
    """The ticket number a resident quotes: ``XL``, the local date of receipt and the event id."""
    return f"XL{timezone.localtime(event.received_at):%Y%m%d}{event.pk:06d}"


# --- a report ---------------------------------------------------------------------------------------


def _check_report(
    client_id: str,
    description: str,
    source: str,
    lon: float | None,
    accuracy_m: float | None,
    address: str,
    phone: str,
) -> None:
    if not _CLIENT_ID.fullmatch(client_id):
        raise InvalidInput("client_id", "must be a UUID made by the page (lower-case, 36 characters)")
    limit = settings.MINQING_RESIDENT_DESCRIPTION_MAX
    if len(description) > limit:
        raise InvalidInput(
            "description",
            _("at most %(limit)s characters, got %(length)s")
            % {"limit": f"{limit:,}", "length": f"{len(description):,}"},
        )
    if source not in SOURCES:
        raise InvalidInput("location.source", f"must be one of {', '.join(SOURCES)}, got {source!r}")
    if source == "address":
        if not address.strip():
            raise InvalidInput("address", _("type the address, or choose the place on the map"))
    elif lon is None:
        raise InvalidInput("location", f"is required when the place comes from {source}")
    if source == "gps":
        worst = settings.MINQING_GPS_MAX_ACCURACY_M
        if accuracy_m is None:
            raise InvalidInput("location.accuracy_m", "is required for a GPS fix")
        if accuracy_m > worst:
            raise InvalidInput(
                "location.accuracy_m",
                _("a fix accurate to %(accuracy)s m is too vague; at most %(worst)s m: tap the map or type the address")
                % {"accuracy": f"{accuracy_m:,.0f}", "worst": f"{worst:,.0f}"},
            )
    if phone and not _MOBILE.fullmatch(phone):
        raise InvalidInput("phone", _("an 11-digit mobile number, e.g. 13912345678"))


def _phone_limit(phone: str, now: dt.datetime) -> None:
    """Refuse a report beyond ``MINQING_RESIDENT_PHONE_REPORTS`` from one phone within the window.
    The count is taken under a transaction-level advisory lock on the phone's digest, so two
    reports racing from one phone are counted one after the other."""
    limit, hours = settings.MINQING_RESIDENT_PHONE_REPORTS, settings.MINQING_RESIDENT_PHONE_WINDOW_HOURS
    since = now - dt.timedelta(hours=hours)
    # The lock is on the current key's digest; the count matches reports whose digest is still
    # under a previous key too (a rotation under way).
    digests = personal.digests(phone)
    ((count, oldest),) = fetch(
        """
        WITH lock AS (SELECT pg_advisory_xact_lock(hashtextextended(%(digest)s, 0)))
        SELECT count(*), min(e.received_at) FROM lock, layers_event e
        WHERE e.reporter_phone_digest = ANY(%(digests)s) AND e.received_at >= %(since)s AND e.channel = %(channel)s""",
        {"digest": digests[0], "digests": digests, "since": since, "channel": CHANNEL},
    )
    if count >= limit:
        wait = (oldest + dt.timedelta(hours=hours) - now).total_seconds()
        raise TooManyReports(limit, hours, max(1, int(wait) + 1))


def resident_report(
    *,
    client_id: str,
    category_code: str,
    description: str,
    source: str,
    lon: float | None = None,
    lat: float | None = None,
    crs: str = "wgs84",
    accuracy_m: float | None = None,
    address: str = "",
    phone: str = "",
) -> Receipt:
    """Store a resident's report and return its :class:`Receipt`.

    The place is a point (``source`` gps or tap; a GPS fix no vaguer than
    ``MINQING_GPS_MAX_ACCURACY_M``) or a typed ``address`` geocoded by intake (``source``
    address). ``phone`` (optional, a mainland mobile) is stored protected like every phone and
    limits the reports per phone. A resend with the same ``client_id`` stores nothing and gets the
    same receipt with ``created`` false. Raises :class:`~layers.errors.InvalidInput` naming the
    field and :class:`TooManyReports` beyond the per-phone limit."""
    client_id, phone = client_id.strip(), phone.strip()
    _check_report(client_id, description, source, lon, accuracy_m, address, phone)
    external_id = external_id_for(client_id)
    stored = ResidentTicket.objects.filter(event__channel=CHANNEL, event__external_id=external_id).first()
    if stored is not None:
        return Receipt(stored.event, stored, held_token(client_id, stored), False)
    token = follow_token(client_id)
    digest = token_digest(token)
    now = timezone.now()
    with committed():
        if phone:
            _phone_limit(phone, now)
        event, created = event_create(
            channel=CHANNEL,
            external_id=external_id,
            category_code=category_code,
            description=description,
            lon=lon if source != "address" else None,
            lat=lat if source != "address" else None,
            crs=crs,
            address=address,
            reporter_phone=phone,
            actor=None,
            actor_label=RESIDENT_LABEL,
        )
        if not created:
            # A resend that raced the first request: event_create waited for its commit, which
            # wrote the ticket in the same transaction.
            stored = ResidentTicket.objects.get(event=event)
            return Receipt(event, stored, held_token(client_id, stored), False)
        ticket = ResidentTicket.objects.create(
            event=event, ticket=ticket_number(event), token_digest=digest, created_at=event.received_at
        )
        audit_record(action="resident.report", target=f"event:{event.pk}", detail={"ticket": ticket.ticket})
    return Receipt(event, ticket, token, True)


# --- the follow-up link -----------------------------------------------------------------------------


def resident_case_get(*, token: str) -> ResidentTicket:
    """The ticket a follow-up token opens, with its event (category, department loaded).
    Raises :class:`~layers.errors.RecordNotFound` for a token that opens nothing (malformed,
    unknown or made up: the three are not told apart)."""
    found = None
    if _TOKEN.fullmatch(token or ""):
        found = (
            ResidentTicket.objects.select_related("event", "event__category", "event__department")
            .filter(token_digest=token_digest(token))
            .first()
        )
    if found is None:
        raise RecordNotFound(_("token: this follow-up link opens no case; check the link you saved"), parameter="token")
    return found


def resident_photo_count(*, event_id: int) -> int:
    """Photos the resident attached (the handlers' photos name their uploader)."""
    return EventPhoto.objects.filter(event_id=event_id, uploaded_by__isnull=True).count()


def resident_photo_add(*, ticket: ResidentTicket, content: bytes, client_id: str) -> tuple[EventPhoto, bool]:
    """Attach a photo to the resident's report (checked like the grid worker's) and return
    ``(photo, created)``; a resend with the same ``client_id`` stores nothing. At most
    ``MINQING_RESIDENT_PHOTOS`` photos, within ``MINQING_RESIDENT_PHOTO_HOURS`` of the report
    (:class:`ResidentRefused` otherwise)."""
    stored = EventPhoto.objects.filter(event_id=ticket.event_id, client_id=client_id).first()
    if stored is not None:
        return stored, False
    hours, most = settings.MINQING_RESIDENT_PHOTO_HOURS, settings.MINQING_RESIDENT_PHOTOS
    if timezone.now() - ticket.created_at > dt.timedelta(hours=hours):
        raise ResidentRefused(
            "photo", _("photos can be added within %(hours)s hours of the report") % {"hours": f"{hours:g}"}
        )
    with transaction.atomic():
        # The ticket row serialises a resident's uploads, so two at once cannot pass the count.
        ResidentTicket.objects.select_for_update().filter(pk=ticket.pk).exists()
        if resident_photo_count(event_id=ticket.event_id) >= most:
            raise ResidentRefused("photo", _("at most %(most)s photos per report") % {"most": most})
        return event_photo_add(
            event=ticket.event, actor=None, content=content, client_id=client_id, actor_label=RESIDENT_LABEL
        )


# --- the resident's answer --------------------------------------------------------------------------


def reopen_until(event: Event) -> dt.datetime | None:
    """Until when the resident may reopen ``event`` as not solved (``None``: not resolved)."""
    if event.resolved_at is None or event.status not in DONE_STATUSES:
        return None
    return event.resolved_at + dt.timedelta(days=settings.MINQING_RESIDENT_REOPEN_DAYS)


def answered(ticket: ResidentTicket, event: Event) -> bool:
    """Whether the resident already answered the event's latest resolution."""
    if ticket.answered_at is None:
        return False
    return event.resolved_at is None or ticket.answered_at >= event.resolved_at


def resident_answer(
    *, ticket: ResidentTicket, action: str, satisfaction: int, comment: str = "", now: dt.datetime | None = None
) -> ResidentTicket:
    """The resident's answer to the resolution of their case: ``rate`` (satisfaction 1–5, which
    feeds the satisfaction figures) or ``reopen`` (not solved: satisfaction 1 or 2, within
    ``MINQING_RESIDENT_REOPEN_DAYS`` of the resolution). Once per resolution: after a reopening
    the case is worked again and its next resolution may be answered. The comment becomes the
    step's reason, with ID numbers and phones masked. Returns the ticket as it is afterwards.
    Raises :class:`ResidentRefused`,
    :class:`~layers.errors.InvalidInput` and what :func:`~layers.services.events.event_act` raises."""
    if action not in ANSWERS:
        raise InvalidInput("action", f"must be one of {', '.join(ANSWERS)}, got {action!r}")
    if len(comment) > MAX_COMMENT:
        raise InvalidInput("comment", f"at most {MAX_COMMENT} characters, got {len(comment)}")
    now = now or timezone.now()
    with committed():
        current = ResidentTicket.objects.select_for_update().get(pk=ticket.pk)
        event = Event.objects.get(pk=current.event_id)
        if event.status not in DONE_STATUSES:
            raise ResidentRefused("action", _("the case is not resolved yet; answer once it is"))
        if answered(current, event):
            raise ResidentRefused("action", _("you already answered this resolution"))
        if action == "reopen":
            until = reopen_until(event)
            if until is None or now > until:
                days = settings.MINQING_RESIDENT_REOPEN_DAYS
                raise ResidentRefused(
                    "action",
                    _("a case can be reopened within %(days)s days of its resolution; call 12345")
                    % {"days": f"{days:g}"},
                )
        event = event_act(
            event=event,
            action=action,
            reader=RESIDENT_READER,
            actor=None,
            actor_label=f"{RESIDENT_LABEL} {current.ticket}",
            reason=personal.mask_free_text(comment.strip()),
            data={"satisfaction": satisfaction},
        )
        current.answered_at, current.answer = now, action
        current.save(update_fields=["answered_at", "answer"])
        audit_record(
            action=f"resident.{action}",
            target=f"event:{event.pk}",
            detail={"ticket": current.ticket, "satisfaction": satisfaction},
        )
    return current
