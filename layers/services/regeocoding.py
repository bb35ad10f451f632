"""Bulk re-geocoding of stored events, for the ``geocode_events`` command.

Two passes, both set-based where the work is:

1. events with a point are relinked to their grids and regions by the polygon-driven join of
   :func:`layers.services.linking.link` (after grids were redrawn, say); only changed rows are
   written;
2. events with no point but with address text are geocoded in batches by
   :func:`layers.geocoding.addresses.addresses_geocode`; the matches are COPYed to a staging
   table and written in one UPDATE, with one ``locate`` row each in the transition log, then
   linked by pass 1's join. A newly located event still waiting at intake is dispatched and
   clustered as a live report would be (few: that is the manual-location queue).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd
from django.db import transaction
from django.utils import timezone

from ..geocoding.addresses import addresses_geocode
from ..models import Event
from .bulk import copy_frame, create_staging, fetch
from .clusters import event_cluster_assign
from .events import event_auto_dispatch
from .linking import PointSource, link

EVENT = PointSource("layers_event")
#: Label of the log rows this service writes.
SYSTEM_GEOCODE = "system:geocode_events"

_STAGING = {"id": "bigint", "lon": "double precision", "lat": "double precision", "confidence": "double precision",
            "precision": "text", "code": "text"}  # fmt: skip

# One statement per batch: the matched events get their point, method and matched address
# (looked up by code), leave the queue, and each gets a log row saying how it was found.
_APPLY_SQL = """
WITH moved AS (
    UPDATE layers_event e
    SET location = ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326), geocode_method = 'address',
        geocode_confidence = s.confidence, geocode_precision = s.precision, matched_address_id = a.id,
        needs_location = FALSE, address_match = 'matched', address_candidates = '[]'::jsonb,
        version = e.version + 1
    FROM staging_regeocode s LEFT JOIN layers_address a ON a.code = s.code
    WHERE e.id = s.id AND e.location IS NULL
    RETURNING e.id, e.status, s.lon, s.lat, s.confidence, s.code
)
INSERT INTO layers_eventtransition (event_id, from_status, to_status, action, actor_label, at, reason, data)
SELECT id, status, status, 'locate', %(label)s, %(now)s, '地址批量匹配 (bulk address geocoding)',
       jsonb_build_object('method', 'address', 'lon', lon, 'lat', lat, 'confidence', confidence, 'address', code)
FROM moved
RETURNING event_id
"""


def _where(*, only_unlocated: bool, since: dt.datetime | None) -> tuple[str, list]:
    clauses, params = [], []
    if only_unlocated:
        clauses.append("t.grid_id IS NULL")
    if since is not None:
        clauses.append("t.received_at >= %s")
        params.append(since)
    return " AND ".join(clauses) or "TRUE", params


def events_geocode(
    *,
    only_unlocated: bool = False,
    since: dt.datetime | None = None,
    batch: int = 5000,
    workers: int = 1,
    on_batch: Callable[[int], object] | None = None,
) -> dict[str, int]:
    """Relink located events and geocode unlocated ones with address text (see the module
    docstring); ``only_unlocated`` limits both passes to events without a small grid, ``since``
    to events received since then. Returns counts: ``relinked`` (events whose links changed),
    ``address_tried``, ``address_located``, ``dispatched`` and ``still_unlocated`` (events
    with no point left in the queue)."""
    now = timezone.now()
    where, params = _where(only_unlocated=only_unlocated, since=since)
    counts = dict.fromkeys(("relinked", "address_tried", "address_located", "dispatched"), 0)
    with transaction.atomic():
        counts["relinked"] = link(EVENT, where=f"t.location IS NOT NULL AND {where}", params=params)
        pending = fetch(
            f"""SELECT t.id, t.address_text FROM layers_event t
                WHERE t.location IS NULL AND t.address_text <> '' AND t.status <> 'closed' AND {where}
                ORDER BY t.id""",
            params,
        )
        located: list[int] = []
        for start in range(0, len(pending), batch):
            chunk = pending[start : start + batch]
            answers = addresses_geocode(texts=[text for _, text in chunk], workers=workers)
            rows = [
                (pk, best.lon, best.lat, round(best.score / 100.0, 3), best.precision, best.code)
                for (pk, _), best in ((row, answer.best) for row, answer in zip(chunk, answers, strict=True))
                if best is not None and best.lon is not None
            ]
            counts["address_tried"] += len(chunk)
            if rows:
                create_staging("staging_regeocode", _STAGING)
                copy_frame("staging_regeocode", pd.DataFrame(rows, columns=list(_STAGING)), _STAGING)
                located += [pk for (pk,) in fetch(_APPLY_SQL, {"label": SYSTEM_GEOCODE, "now": now})]
            if on_batch:
                on_batch(len(chunk))
        counts["address_located"] = len(located)
        if located:
            link(EVENT, where="t.id = ANY(%s)", params=[located])
            for event in Event.objects.filter(pk__in=located).select_related("category", "department"):
                event_cluster_assign(event=event)
                if event.status == Event.Status.RECEIVED:
                    event_auto_dispatch(event, now=now)
                    counts["dispatched"] += event.status != Event.Status.RECEIVED
        counts["still_unlocated"] = fetch("SELECT count(*) FROM layers_event WHERE location IS NULL")[0][0]
    return counts
