"""走访: a grid worker's household visits, recorded on the tablet and queued offline.

:func:`visit_record` stores one visit idempotently per (worker, the tablet's ``client_id``): a
queued visit sent twice (a lost answer, a double tap) is stored once and the resend gets the
stored visit. The place follows the reports' rule (:func:`layers.services.gridwork.gps_fix_check`:
a GPS fix no vaguer than ``MINQING_GPS_MAX_ACCURACY_M``, else a tap on the map). ID numbers and
phones written into the notes are masked like a report's description. A visit to a household
confirms that household's standard address (the registry tasks read ``Address.confirmed_at``).
"""

from __future__ import annotations

import datetime as dt
import math

from django.contrib.gis.geos import Point
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from layers.geocoding.crs import CLIENT_CRS, to_wgs84
from layers.protection import personal
from layers.protection.access import VISIT_DUTIES, Reader

from ..errors import ActionNotPermitted, InvalidInput
from ..models import Address, Dwelling, Visit
from .events import REPORTED_AT_SKEW
from .gridwork import gps_fix_check

MAX_NOTES = 2_000
#: A visit recorded offline may be sent days later, but not one from before this many days.
MAX_AGE_DAYS = 62


def visit_record(
    *,
    reader: Reader,
    actor,
    grid: dict,
    client_id: str,
    visited_at: dt.datetime | None,
    lon: float,
    lat: float,
    crs: str = "wgs84",
    source: str,
    accuracy_m: float | None = None,
    household: str = "",
    notes: str = "",
    follow_up: str = "",
    follow_up_due: dt.date | None = None,
) -> tuple[Visit, bool]:
    """Store a visit in ``grid`` (one of the reader's, from ``worker_grid_get``) and return
    ``(visit, created)``. ``household`` is a dwelling code of that grid (or empty: a visit to a
    place, not a household). Raises :class:`~layers.errors.InvalidInput` naming the field."""
    duty = VISIT_DUTIES["record"]
    if not reader.may_take(duty):
        raise ActionNotPermitted("visit", "", roles=sorted(duty.roles))
    stored = Visit.objects.filter(worker_id=actor.pk, client_id=client_id).first()
    if stored is not None:
        return stored, False
    gps_fix_check(source=source, accuracy_m=accuracy_m)
    if crs not in CLIENT_CRS:
        raise InvalidInput("location.crs", _("must be one of %(value)s") % {"value": ", ".join(CLIENT_CRS)})
    for name, value, bound in (("lon", lon, 180.0), ("lat", lat, 90.0)):
        if not math.isfinite(value) or abs(value) > bound:
            raise InvalidInput(
                f"location.{name}", _("expected a number in degrees within ±%(bound)s") % {"bound": bound}
            )
    now = timezone.now()
    visited_at = visited_at or now
    if visited_at > now + REPORTED_AT_SKEW:
        raise InvalidInput("visited_at", _("lies in the future (%(value)s)") % {"value": visited_at.isoformat()})
    if visited_at < now - dt.timedelta(days=MAX_AGE_DAYS):
        raise InvalidInput(
            "visited_at", _("lies more than %(days)s days in the past (%(value)s)") % {"days": MAX_AGE_DAYS,
                                                                                       "value": visited_at.isoformat()}
        )  # fmt: skip
    for name, text in (("notes", notes), ("follow_up", follow_up)):
        if len(text) > MAX_NOTES:
            raise InvalidInput(name, _("longer than %(MAX_NOTE)s characters") % {"MAX_NOTE": MAX_NOTES})
    if not (notes.strip() or follow_up.strip()):
        raise InvalidInput("notes", _("say what the visit found (notes or a follow-up)"))
    dwelling = None
    if household:
        dwelling = Dwelling.objects.filter(code=household, grid_id=grid["id"]).first()
        if dwelling is None:
            raise InvalidInput("household", _("no household %(code)s in your grid") % {"code": household[:40]})
    wlon, wlat = (float(v) for v in to_wgs84(lon, lat, crs))
    visit = Visit(
        worker_id=actor.pk,
        grid_id=grid["id"],
        dwelling=dwelling,
        client_id=client_id,
        visited_at=visited_at,
        location=Point(wlon, wlat, srid=4326),
        location_source=source,
        accuracy_m=accuracy_m,
        notes=personal.mask_free_text(notes.strip()),
        follow_up=personal.mask_free_text(follow_up.strip()),
        follow_up_due=follow_up_due,
        created_at=now,
        district_code=dwelling.district_code if dwelling else "",
    )
    try:
        with transaction.atomic():
            visit.save(force_insert=True)
            if dwelling is not None and dwelling.address_id is not None:
                # The worker stood at the door: the household's address is confirmed.
                Address.objects.filter(pk=dwelling.address_id).filter(
                    Q(confirmed_at__isnull=True) | Q(confirmed_at__lt=visited_at)
                ).update(confirmed_at=Greatest("confirmed_at", visited_at))
    except IntegrityError:
        # A resend racing the first one: the unique (worker, client_id) index kept one.
        return Visit.objects.get(worker_id=actor.pk, client_id=client_id), False
    return visit, True


def visit_describe(visit: Visit) -> dict:
    """A visit as the tablet's API answers it."""
    return {
        "id": visit.pk,
        "client_id": visit.client_id,
        "household": Dwelling.objects.filter(pk=visit.dwelling_id).values_list("code", flat=True).first(),
        "visited_at": timezone.localtime(visit.visited_at).isoformat(),
        "location": {"lon": round(visit.location.x, 6), "lat": round(visit.location.y, 6)},
        "source": visit.location_source,
        "accuracy_m": visit.accuracy_m,
        "notes": visit.notes,
        "follow_up": visit.follow_up,
        "follow_up_due": visit.follow_up_due.isoformat() if visit.follow_up_due else None,
    }
