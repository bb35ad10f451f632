"""Writes to the administrative regions: the hierarchy in bulk, and one boundary at a time.

Grid writes live in :mod:`layers.services.grids`.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from django.contrib.gis.geos import MultiPolygon
from django.db import transaction

from ..models import BoundaryVersion, Region
from .bulk import copy_frame, create_staging, execute, fetch

_STAGING = "staging_region"
_STAGING_COLUMNS = {"code": "text", "name": "text", "level": "text", "parent_code": "text"}


def regions_upsert(*, frame: pd.DataFrame) -> dict[str, int]:
    """Create or update one Region per row of ``frame`` (columns code, name, level, parent_code).

    Rows are matched on the 12-digit ``code``; name, level and parent follow the frame. A
    city's parent (the province) is not stored, so cities get no parent. Every other parent
    must already be in the table or in the frame, at any position: parents are linked after all
    rows are in. Codes must be unique within the frame. Returns the counts ``created``,
    ``updated`` (existing rows whose name, level or parent changed) and ``unchanged``.

    Raises ValueError (and writes nothing) for duplicate codes, unknown levels or a parent that
    cannot be found; callers validate first, so these are programming errors.
    """
    frame = frame.loc[:, list(_STAGING_COLUMNS)]
    duplicated = frame["code"][frame["code"].duplicated()]
    if not duplicated.empty:
        raise ValueError(f"duplicate codes: {', '.join(sorted(set(duplicated)))}")
    unknown = set(frame["level"]) - set(Region.Level.values)
    if unknown:
        raise ValueError(f"unknown levels: {', '.join(sorted(unknown))}")
    if frame.empty:
        return {"created": 0, "updated": 0, "unchanged": 0}

    with transaction.atomic():
        create_staging(_STAGING, _STAGING_COLUMNS)
        copy_frame(_STAGING, frame, _STAGING_COLUMNS)
        # xmax = 0 only on the rows this INSERT created; rows left as they were are not
        # returned (the WHERE of DO UPDATE skips them, so they are not rewritten either).
        upserted = fetch(
            f"""
            INSERT INTO layers_region (code, name, level, boundary_source)
            SELECT code, name, level, '' FROM {_STAGING}
            ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level
            WHERE (layers_region.name, layers_region.level) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.level)
            RETURNING code, xmax = 0
            """
        )
        # One UPDATE … FROM links every row to its parent, so the order of the rows does not matter.
        reparented = fetch(
            f"""
            UPDATE layers_region r SET parent_id = p.id
            FROM {_STAGING} s LEFT JOIN layers_region p ON p.code = s.parent_code AND s.level <> 'city'
            WHERE r.code = s.code AND r.parent_id IS DISTINCT FROM p.id
            RETURNING r.code
            """
        )
        orphans = fetch(
            f"""
            SELECT s.code FROM {_STAGING} s JOIN layers_region r ON r.code = s.code
            WHERE s.level <> 'city' AND r.parent_id IS NULL ORDER BY s.code LIMIT 10
            """
        )
        if orphans:
            raise ValueError(f"parents not found for: {', '.join(code for (code,) in orphans)}")
        execute(f"DROP TABLE {_STAGING}")

    created = {code for code, inserted in upserted if inserted}
    updated = ({code for code, inserted in upserted if not inserted} | {code for (code,) in reparented}) - created
    return {"created": len(created), "updated": len(updated), "unchanged": len(frame) - len(created) - len(updated)}


def region_set_boundary(*, region: Region, boundary: MultiPolygon, valid_from: dt.date, source: str) -> bool:
    """Give ``region`` a new boundary valid from ``valid_from``; return whether anything changed.

    A boundary equal to the current one (ST_Equals) changes nothing and returns False. A
    different current boundary is kept in :class:`BoundaryVersion` with its own ``valid_from``
    and source and ``valid_to`` = the new ``valid_from``. Raises ValueError for a boundary that
    is not a MultiPolygon in SRID 4326, or for a ``valid_from`` before the current one.
    """
    if not isinstance(boundary, MultiPolygon) or boundary.srid != 4326:
        raise ValueError(f"boundary must be a MultiPolygon with SRID 4326, not {boundary.geom_type} ({boundary.srid})")
    with transaction.atomic():
        current = Region.objects.select_for_update().get(pk=region.pk)
        if current.boundary is not None:
            if Region.objects.filter(pk=region.pk, boundary__equals=boundary).exists():
                return False
            if current.valid_from and valid_from < current.valid_from:
                raise ValueError(
                    f"valid_from {valid_from} is before {current.valid_from}, when the current boundary took effect"
                )
            version = BoundaryVersion(
                subject=BoundaryVersion.Subject.REGION,
                code=current.code,
                level=current.level,
                boundary=current.boundary,
                valid_from=current.valid_from,
                valid_to=valid_from,
                source=current.boundary_source,
            )
            version.full_clean()
            version.save()
        current.boundary = boundary
        current.valid_from = valid_from
        current.boundary_source = source[:200]
        current.full_clean()
        current.save(update_fields=["boundary", "valid_from", "boundary_source"])
    region.boundary, region.valid_from, region.boundary_source = boundary, valid_from, current.boundary_source
    return True
