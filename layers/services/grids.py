"""Writes of the three-level grids: set-based upsert from a frame, and the redraw of one grid.

A redrawn grid keeps its row (foreign keys from the registry, events and workers stay valid);
its old shape moves to :class:`~layers.models.BoundaryVersion` with ``valid_to`` set to the new
``valid_from``. Registry rows near every changed shape are relinked afterwards, in SQL, by
:func:`layers.services.linking.relink_area`.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon, Polygon
from django.db import transaction

from layers.selectors.topology import Problem, grid_topology_problems, problems_added

from ..models import BoundaryVersion, Grid
from .bulk import analyze, copy_frame, create_staging, execute, fetch
from .linking import Sample, relink_area

#: Columns of the frame :func:`grids_upsert` takes; ``boundary_wkb`` is hex WKB in WGS84.
FRAME_COLUMNS = {
    "code": "text",
    "name": "text",
    "level": "text",
    "parent_code": "text",
    "community_code": "text",
    "boundary_wkb": "text",
}

_STAGING = "staging_grids"
_INCOMING = "incoming_grids"

#: Levels in the order they are written: a parent row must exist before its children, because
#: the CHECK constraint grid_parent_by_level refuses a medium or small grid without a parent.
_WRITE_ORDER = (Grid.Level.LARGE, Grid.Level.MEDIUM, Grid.Level.SMALL)


class GridUpsertError(ValueError):
    """Rows the database cannot take; ``problems`` maps each grid code to its reason."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        listed = "; ".join(f"{code}: {reason}" for code, reason in sorted(problems.items())[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"{len(problems)} grid(s) refused: {listed}{more}")


class GridTopologyRefused(ValueError):
    """The grids would leave gaps, overlaps or grids outside their parent; nothing was written.

    ``topology`` lists the problem parts (with their places); ``result`` holds what the upsert
    would have done (the counts of :func:`grids_upsert`, the relink sample).
    """

    def __init__(self, topology: list[Problem], result: dict) -> None:
        self.topology = topology
        self.result = result
        listed = "; ".join(problem.describe() for problem in topology[:5])
        more = f" (and {len(topology) - 5} more)" if len(topology) > 5 else ""
        super().__init__(f"{len(topology)} topology problem(s) the import would leave: {listed}{more}")


def grids_upsert(
    *,
    frame: pd.DataFrame,
    valid_from: dt.date,
    source: str = "",
    accept_topology: bool = False,
    relink_sample: int = 0,
) -> dict:
    """Create or update the grids in ``frame`` (columns :data:`FRAME_COLUMNS`) by code.

    Parents are resolved by code, from the frame or the database. A grid whose boundary changed
    is *redrawn*: its old boundary is archived in BoundaryVersion (valid until ``valid_from``)
    and its ``valid_from`` becomes ``valid_from``; other updates keep their date. Registry rows
    inside the envelope of every changed shape (old and new boundaries of redrawn grids, new
    small grids, grids that moved to another parent or community) are relinked.

    The topology of every community the rows touch is checked inside the transaction, before
    and after the write (:mod:`layers.selectors.topology`, ``MINQING_TOPOLOGY_TOLERANCE_M``): gaps,
    overlaps and grids outside their parent or community that the write brings (new ones, or
    old ones grown) raise :class:`GridTopologyRefused` and nothing is written, unless
    ``accept_topology`` is set; problems the grids already had do not stop it.

    Returns ``{"created", "updated", "redrawn", "unchanged", "relinked", "envelope", "topology",
    "relinked_sample"}``, where ``relinked`` counts registry rows whose links changed,
    ``envelope`` is the WKT that was relinked ('' when nothing needed it), ``topology`` the
    problems brought (accepted) and ``relinked_sample`` up to ``relink_sample`` addresses and
    units that moved to another grid, as ``(lon, lat, table, old grid id, new grid id)``.
    Raises :class:`GridUpsertError` before writing anything when a row cannot be stored.
    Atomic: all rows or none.
    """
    with transaction.atomic():
        return _upsert(frame, valid_from, source, accept_topology, relink_sample)


def _upsert(frame: pd.DataFrame, valid_from: dt.date, source: str, accept_topology: bool, relink_sample: int) -> dict:
    create_staging(_STAGING, FRAME_COLUMNS)
    copy_frame(_STAGING, frame, FRAME_COLUMNS)
    # One pass that decodes geometry and resolves every key, so the checks and the writes below
    # read a table that already holds the old state of each grid next to its new one.
    execute(f"DROP TABLE IF EXISTS {_INCOMING}")
    execute(
        f"""
        CREATE TEMPORARY TABLE {_INCOMING} ON COMMIT DROP AS
        SELECT s.code, s.name, s.level, nullif(s.parent_code, '') AS parent_code, s.community_code,
               c.id AS community_id, n.boundary,
               g.id AS old_id, g.level AS old_level, g.boundary AS old_boundary, g.valid_from AS old_valid_from,
               g.parent_id AS old_parent_id, g.community_id AS old_community_id,
               g.id IS NOT NULL AND ST_IsValid(n.boundary) AND NOT ST_Equals(g.boundary, n.boundary) AS redrawn
        FROM {_STAGING} s
        CROSS JOIN LATERAL (
            SELECT ST_Multi(ST_GeomFromWKB(decode(s.boundary_wkb, 'hex'), 4326)) AS boundary
        ) n
        LEFT JOIN layers_region c ON c.code = s.community_code AND c.level = 'community'
        LEFT JOIN layers_grid g ON g.code = s.code"""
    )
    analyze(_INCOMING)
    problems = _refusals(valid_from)
    if problems:
        raise GridUpsertError(problems)
    communities = _touched_communities()
    tolerance = settings.MINQING_TOPOLOGY_TOLERANCE_M
    before = grid_topology_problems(community_codes=communities, tolerance_m=tolerance)

    # Archive before the update overwrites the old shapes.
    redrawn = execute(
        f"""
        INSERT INTO layers_boundaryversion (subject, code, level, boundary, valid_from, valid_to, source)
        SELECT 'grid', i.code, i.old_level, i.old_boundary, i.old_valid_from, %s, %s
        FROM {_INCOMING} i WHERE i.redrawn""",
        [valid_from, source[:200]],
    )
    created = updated = 0
    for level in _WRITE_ORDER:
        rows = fetch(
            f"""
            INSERT INTO layers_grid AS g (code, name, level, parent_id, community_id, boundary, valid_from)
            SELECT i.code, i.name, i.level, p.id, i.community_id, i.boundary,
                   CASE WHEN i.old_id IS NULL OR i.redrawn THEN %s ELSE i.old_valid_from END
            FROM {_INCOMING} i
            LEFT JOIN layers_grid p ON p.code = i.parent_code
            WHERE i.level = %s
            ON CONFLICT (code) DO UPDATE SET
                name = EXCLUDED.name, level = EXCLUDED.level, parent_id = EXCLUDED.parent_id,
                community_id = EXCLUDED.community_id, boundary = EXCLUDED.boundary, valid_from = EXCLUDED.valid_from
            -- Identical rows are left alone: no dead tuples, and "updated" means changed.
            WHERE (g.name, g.level, g.parent_id, g.community_id, g.valid_from)
                  IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.level, EXCLUDED.parent_id, EXCLUDED.community_id,
                                    EXCLUDED.valid_from)
               OR NOT ST_Equals(g.boundary, EXCLUDED.boundary)
            RETURNING xmax = 0""",
            [valid_from, level],
        )
        created += sum(1 for (inserted,) in rows if inserted)
        updated += sum(1 for (inserted,) in rows if not inserted)

    after = grid_topology_problems(community_codes=communities, tolerance_m=tolerance)
    envelope = _relink_envelope()
    sample = Sample(relink_sample)
    relinked = relink_area(envelope, sample=sample) if envelope else {}
    result = {
        "created": created,
        "updated": updated,
        "redrawn": redrawn,
        "unchanged": len(frame) - created - updated,
        "relinked": sum(relinked.values()),
        "envelope": envelope,
        "topology": problems_added(before, after, tolerance_m=tolerance),
        "relinked_sample": sample.rows,
    }
    # Refused after the relink, so that a dry run shows both what would move and why it stops.
    if result["topology"] and not accept_topology:
        raise GridTopologyRefused(result["topology"], result)
    return result


def _touched_communities() -> list[str]:
    """Codes of the communities the incoming grids belong to, now or before."""
    rows = fetch(
        f"""SELECT community_code FROM {_INCOMING} WHERE community_id IS NOT NULL
            UNION SELECT c.code FROM {_INCOMING} i JOIN layers_region c ON c.id = i.old_community_id"""
    )
    return sorted(code for (code,) in rows)


def _refusals(valid_from: dt.date) -> dict[str, str]:
    """Why rows of the incoming table cannot be written (code → reason); empty when all can."""
    rows = fetch(
        f"""
        SELECT i.code,
            CASE
                WHEN i.level NOT IN ('large', 'medium', 'small') THEN 'level must be large, medium or small'
                WHEN i.community_id IS NULL THEN 'community ' || i.community_code || ' is not a community region'
                WHEN i.boundary IS NULL OR ST_IsEmpty(i.boundary) THEN 'boundary is empty'
                WHEN NOT ST_IsValid(i.boundary) THEN 'boundary is invalid: ' || ST_IsValidReason(i.boundary)
                WHEN i.level = 'large' AND i.parent_code IS NOT NULL THEN 'a large grid has no parent'
                WHEN i.level <> 'large' AND i.parent_code IS NULL THEN 'a ' || i.level || ' grid needs a parent'
                WHEN i.level <> 'large' AND coalesce(fp.level, dp.level) IS DISTINCT FROM
                     CASE i.level WHEN 'medium' THEN 'large' ELSE 'medium' END
                    THEN 'parent ' || i.parent_code || ' is not a grid of the level above'
                WHEN i.redrawn AND i.old_valid_from > %s
                    THEN 'the current boundary is valid from ' || i.old_valid_from || ', after the new date'
            END AS reason
        FROM {_INCOMING} i
        LEFT JOIN {_INCOMING} fp ON fp.code = i.parent_code
        LEFT JOIN layers_grid dp ON dp.code = i.parent_code""",
        [valid_from],
    )
    problems = {code: reason for code, reason in rows if reason}
    duplicated = fetch(f"SELECT code FROM {_INCOMING} GROUP BY code HAVING count(*) > 1")
    problems.update({code: "code appears more than once" for (code,) in duplicated})
    return problems


def _relink_envelope() -> str:
    """WKT of the box around every shape whose registry links may have changed, or ''.

    One box keeps relinking to one statement per registry table; a city-wide reimport with
    scattered changes relinks most of the city, which is what it needs anyway.
    """
    ((envelope,),) = fetch(
        f"""
        SELECT ST_AsText(ST_Extent(shape)::geometry)
        FROM (
            SELECT i.old_boundary AS shape FROM {_INCOMING} i WHERE i.redrawn
            UNION ALL
            SELECT i.boundary FROM {_INCOMING} i
            LEFT JOIN layers_grid g ON g.code = i.code
            WHERE i.redrawn
               OR (i.old_id IS NULL AND i.level = 'small')
               -- re-parenting changes the medium/large links of the points below without a redraw
               OR (i.old_id IS NOT NULL AND (g.parent_id IS DISTINCT FROM i.old_parent_id
                                             OR g.community_id IS DISTINCT FROM i.old_community_id
                                             OR i.level IS DISTINCT FROM i.old_level))
        ) changed"""
    )
    return envelope or ""


def grid_redraw(*, grid: Grid, boundary: GEOSGeometry, valid_from: dt.date, source: str = "") -> dict:
    """Give ``grid`` a new boundary from ``valid_from`` on, archive the old one, relink around both.

    ``boundary`` is a Polygon or MultiPolygon with SRID 4326 (another SRID is transformed).
    Returns ``{"redrawn": 0 or 1, "relinked": rows, "envelope": WKT}``; a boundary equal to
    the current one changes nothing. Raises ValueError for an unusable boundary or a date
    before the current boundary's.
    """
    if boundary.srid is None:
        raise ValueError("boundary has no SRID; give it one (4326 for WGS84)")
    if boundary.srid != 4326:
        boundary = boundary.transform(4326, clone=True)
    if isinstance(boundary, Polygon):
        boundary = MultiPolygon(boundary, srid=4326)
    if not isinstance(boundary, MultiPolygon) or boundary.empty:
        raise ValueError(f"boundary must be a non-empty Polygon or MultiPolygon, not {boundary.geom_type}")
    if not boundary.valid:
        raise ValueError(f"boundary is invalid: {boundary.valid_reason}")
    with transaction.atomic():
        grid = Grid.objects.select_for_update().get(pk=grid.pk)
        old = grid.boundary
        if old.equals(boundary):
            return {"redrawn": 0, "relinked": 0, "envelope": ""}
        if grid.valid_from and grid.valid_from > valid_from:
            raise ValueError(f"the current boundary of {grid.code} is valid from {grid.valid_from}, after {valid_from}")
        version = BoundaryVersion(
            subject=BoundaryVersion.Subject.GRID,
            code=grid.code,
            level=grid.level,
            boundary=old,
            valid_from=grid.valid_from,
            valid_to=valid_from,
            source=source[:200],
        )
        version.full_clean()
        version.save()
        grid.boundary, grid.valid_from = boundary, valid_from
        grid.full_clean()
        grid.save(update_fields=["boundary", "valid_from"])
        envelope = old.envelope.union(boundary.envelope).envelope.wkt
        relinked = relink_area(envelope)
    return {"redrawn": 1, "relinked": sum(relinked.values()), "envelope": envelope}
