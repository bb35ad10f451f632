"""Writes of the grid worker's tablet: a report from the field, a note, a photo.

* :func:`grid_event_report` takes a report through the one intake service on the ``grid_patrol``
  channel; the tablet's id for the report becomes its external id, so a report queued offline
  and sent twice (a lost answer, a double tap) is stored once.
* :func:`event_note_add` appends a note to an event's log without moving its status.
* :func:`event_photo_add` checks a photo with Pillow (JPEG, PNG or WebP; at most
  ``MINQING_PHOTO_MAX_BYTES``), stores it under ``MEDIA_ROOT`` and logs it; the tablet's id for
  the upload makes a resend find the stored photo.

Accept and resolve are the closed loop's own actions (:func:`layers.services.events.event_act`).
The caller checks the scope (``layers.selectors.gridpack``) and hands over the event.
"""

from __future__ import annotations

import io
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

from layers.protection.access import ACTIONS, Reader

from ..errors import ActionNotPermitted, DomainError, InvalidInput
from ..models import Event, EventPhoto, EventTransition
from .events import event_act, event_create

#: The tablet's channel, and the prefix that keeps its report ids apart from other patrol systems'.
CHANNEL = Event.Channel.GRID_PATROL
EXTERNAL_ID_PREFIX = "GW-"

#: How a report's point was found: a GPS fix (with its accuracy) or a tap on the map.
SOURCES = ("gps", "tap")

#: Pillow's format name → the content type stored (the only formats accepted).
PHOTO_FORMATS = {
    "JPEG": EventPhoto.ContentType.JPEG,
    "PNG": EventPhoto.ContentType.PNG,
    "WEBP": EventPhoto.ContentType.WEBP,
}

#: Largest photo in pixels: a phone camera makes 12–50 Mpx; more is a crafted file, and decoding
#: it would hold the worker's memory.
PHOTO_MAX_PIXELS = 60_000_000

MAX_NOTE = 2_000

#: What the tablet does to an event besides a photo.
WORKER_STEPS = ("accept", "resolve", "note")


class PhotoTooLarge(DomainError):
    """A photo (or an upload claiming to be one) above ``MINQING_PHOTO_MAX_BYTES``."""

    status = 413
    code = "payload_too_large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            _("photo: the photo is %(size)s bytes; at most %(limit)s bytes are accepted")
            % {"size": f"{size:,}", "limit": f"{limit:,}"},
            parameter="photo",
            size=size,
            limit=limit,
        )


def external_id_for(client_id: str) -> str:
    """The intake external id of a tablet report.

    >>> external_id_for("3f2b9c1e-0d6a-4f5e-9a7b-2c8d1e0f4a6b")
    'GW-3f2b9c1e-0d6a-4f5e-9a7b-2c8d1e0f4a6b'
    """
    return EXTERNAL_ID_PREFIX + client_id


def grid_event_report(
    *,
    actor,
    client_id: str,
    category_code: str,
    description: str,
    lon: float,
    lat: float,
    crs: str = "wgs84",
    source: str,
    accuracy_m: float | None = None,
    reported_at=None,
) -> tuple[Event, bool]:
    """Store a grid worker's report at a point and return ``(event, created)``.

    A GPS fix must say its accuracy and be no vaguer than ``MINQING_GPS_MAX_ACCURACY_M``: a
    2 km circle cannot say which grid the problem is in, so the worker is asked to tap the map.
    Idempotent per ``client_id`` (see the module docstring). Raises
    :class:`~layers.errors.InvalidInput` naming the field."""
    gps_fix_check(source=source, accuracy_m=accuracy_m)
    return event_create(
        channel=CHANNEL,
        external_id=external_id_for(client_id),
        category_code=category_code,
        description=description,
        lon=lon,
        lat=lat,
        crs=crs,
        reported_at=reported_at,
        actor=actor,
    )


def gps_fix_check(*, source: str, accuracy_m: float | None) -> None:
    """The tablet's rule for a place (reports and visits alike): a GPS fix must say its accuracy
    and be no vaguer than ``MINQING_GPS_MAX_ACCURACY_M``, else the worker taps the map. Raises
    :class:`~layers.errors.InvalidInput` naming the field."""
    if source not in SOURCES:
        raise InvalidInput(
            "source",
            _("must be one of %(value)s, got %(source)s") % {"value": ", ".join(SOURCES), "source": f"{source!r}"},
        )
    if source == "gps":
        limit = settings.MINQING_GPS_MAX_ACCURACY_M
        if accuracy_m is None:
            raise InvalidInput("location.accuracy_m", _("is required for a GPS fix"))
        if accuracy_m > limit:
            raise InvalidInput(
                "location.accuracy_m",
                _("a fix accurate to %(accuracy)s m is too vague; at most %(limit)s m: tap the map instead")
                % {"accuracy": f"{accuracy_m:,.0f}", "limit": f"{limit:,.0f}"},
            )


def grid_event_act(
    *, event: Event, reader: Reader, actor, action: str, note: str = "", version: int | None = None
) -> Event:
    """One step of the tablet on an event: ``accept`` and ``resolve`` go through the closed loop's
    action service (the note becomes the step's reason; a resolution must say what was done),
    ``note`` is :func:`event_note_add`. Returns the event as it is afterwards. Raises what
    :func:`~layers.services.events.event_act` raises, and :class:`~layers.errors.InvalidInput`."""
    if action not in WORKER_STEPS:
        raise InvalidInput(
            "action",
            _("must be one of %(value)s, got %(action)s") % {"value": ", ".join(WORKER_STEPS), "action": f"{action!r}"},
        )
    if len(note) > MAX_NOTE:
        raise InvalidInput("note", _("longer than %(MAX_NOTE)s characters") % {"MAX_NOTE": MAX_NOTE})
    if action == "note":
        if not reader.may_take(ACTIONS["note"]):
            raise ActionNotPermitted("note", event.status, roles=sorted(ACTIONS["note"].roles))
        event_note_add(event=event, actor=actor, note=note)
        return Event.objects.get(pk=event.pk)
    if action == "resolve" and not note.strip():
        raise InvalidInput("note", _("resolve needs a note saying what was done"))
    return event_act(event=event, action=action, reader=reader, actor=actor, reason=note.strip(), version=version)


def event_note_add(*, event: Event, actor, note: str) -> EventTransition:
    """Append a note (what the worker saw or did) to the event's log; the status stays.

    The event row is locked while the note is written, so the note lands between the steps that
    came before and after it. Raises :class:`~layers.errors.InvalidInput` for an empty or long note."""
    if not note.strip():
        raise InvalidInput("note", _("must not be empty"))
    if len(note) > MAX_NOTE:
        raise InvalidInput("note", _("longer than %(MAX_NOTE)s characters") % {"MAX_NOTE": MAX_NOTE})
    with transaction.atomic():
        current = Event.objects.select_for_update().only("id", "status").get(pk=event.pk)
        return _log(current, actor=actor, action="note", reason=note.strip(), data={})


def _log(event: Event, *, actor, action: str, reason: str, data: dict, label: str = "") -> EventTransition:
    return EventTransition.objects.create(
        event_id=event.pk,
        from_status=event.status,
        to_status=event.status,
        action=action,
        actor=actor,
        actor_label=label or (actor.get_username() if actor is not None else "system"),
        at=timezone.now(),
        reason=reason,
        data=data,
    )


def photo_check(*, content: BinaryIO, size: int) -> tuple[str, int, int]:
    """``(content type, width, height)`` of a photo, read by Pillow and fully decoded (a
    truncated or corrupt file fails here, not in the browser of whoever looks at it later).

    Raises :class:`PhotoTooLarge` above ``MINQING_PHOTO_MAX_BYTES`` and
    :class:`~layers.errors.InvalidInput` (field ``photo``) for anything that is not a whole JPEG,
    PNG or WebP image of at most :data:`PHOTO_MAX_PIXELS`."""
    limit = settings.MINQING_PHOTO_MAX_BYTES
    if size > limit:
        raise PhotoTooLarge(size, limit)
    if size == 0:
        raise InvalidInput("photo", _("is empty; send a JPEG, PNG or WebP photo"))
    try:
        with Image.open(content) as image:
            kind = image.format
            if kind not in PHOTO_FORMATS:
                raise InvalidInput("photo", _("must be a JPEG, PNG or WebP image, got %(kind)s") % {"kind": kind})
            width, height = image.size
            if width * height > PHOTO_MAX_PIXELS:
                raise InvalidInput(
                    "photo",
                    _("%(width)s×%(height)s pixels is too large; at most %(value)s megapixels")
                    % {"width": width, "height": height, "value": PHOTO_MAX_PIXELS // 1_000_000},
                )
            image.load()
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise InvalidInput("photo", _("is not an image; send a JPEG, PNG or WebP photo")) from None
    except (OSError, SyntaxError, ValueError):
        # Pillow reports a truncated or corrupt file as OSError (and a few decoders as the others).
        raise InvalidInput("photo", _("is a damaged or truncated image; take the photo again")) from None
    return PHOTO_FORMATS[kind], width, height


def event_photo_add(
    *, event: Event, actor, content: bytes, client_id: str = "", actor_label: str = ""
) -> tuple[EventPhoto, bool]:
    """Check a photo (:func:`photo_check`), store its file under ``MEDIA_ROOT`` and its row, log
    it on the event (naming ``actor``, or ``actor_label`` for a sender with no account), and
    return ``(photo, created)``.

    With a ``client_id`` the upload is idempotent: a resend (even one racing the first) returns
    the stored photo with ``created`` false and stores nothing. The file is removed again when the
    row cannot be written, so no file is left without its row."""
    if client_id:
        stored = EventPhoto.objects.filter(event_id=event.pk, client_id=client_id).first()
        if stored is not None:
            return stored, False
    content_type, width, height = photo_check(content=io.BytesIO(content), size=len(content))
    photo = EventPhoto(
        event_id=event.pk,
        content_type=content_type,
        size=len(content),
        width=width,
        height=height,
        uploaded_by=actor,
        uploaded_at=timezone.now(),
        client_id=client_id,
    )
    photo.file.save("photo", File(io.BytesIO(content)), save=False)
    try:
        with transaction.atomic():
            photo.save(force_insert=True)
            current = Event.objects.select_for_update().only("id", "status").get(pk=event.pk)
            _log(
                current,
                actor=actor,
                action="photo",
                reason="",
                data={"photo": photo.pk, "size": photo.size},
                label=actor_label,
            )
    except IntegrityError:
        photo.file.delete(save=False)
        if not client_id:
            raise
        # A racing resend stored it first (the unique (event, client_id) index waited for its
        # commit): answer with that one.
        return EventPhoto.objects.get(event_id=event.pk, client_id=client_id), False
    except Exception:
        photo.file.delete(save=False)
        raise
    return photo, True
