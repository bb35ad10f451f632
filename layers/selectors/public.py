"""Reads of the public map (``/public/``, its embeddable view, feeds and Open311's public read):
what the city solves, with no personal data and no count small enough to point at a household.

**The threshold** ``k`` (``MINQING_PUBLIC_MIN_COUNT``, default 5) applies to every published
count. Per calendar month (the only window offered: free windows could be subtracted from each
other to isolate one case):

* **cells** (:func:`public_cells`): cases received in the month per small grid, with how many are
  resolved. A grid with fewer than ``k`` cases is not drawn on its own: its cases join its
  community's "other grids" bucket (drawn as the whole community), a community bucket below ``k``
  joins its street's, a street's below ``k`` the city's remainder, which is told as "fewer than
  k" when it is. A grid with no case and a grid with a few look the same (both undrawn), so a
  bucket never says which of its grids had the cases; a bucket of ``k`` or more holds at least
  two grids' cases. Only counts per status group (open, resolved) are given: no category, no
  point, no description. (The unit of anonymity is an area's number of cases: once it is ``k`` or
  more, its split by status is published.)
* **streets** (:func:`public_streets`): cases, resolved, completion rate, median hours to the
  first response (accepted or started) and to resolution, mean satisfaction — each median or mean
  only over ``k`` or more cases; streets with fewer than ``k`` cases are merged into "other
  streets".
* **categories** (:func:`public_categories`): the month's cases per category; a category below
  ``k`` joins its family's "other", a family's below ``k`` the month's "other".
* **cases** (:func:`public_cases`): completed cases whose public summary a moderator approved,
  with the summary, category, street and community, month received and days to resolve.

Reads are SQL aggregates; only the suppression cascade (one row per grid with cases) runs here.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.utils import timezone

from ..errors import InvalidInput
from ..models import PublicSummary

#: Statuses counted as resolved (办结): the work is done, awaiting checks or finished.
DONE = ["resolved", "verified", "closed"]
#: Decimal places of the cells' outlines (1e-5° ≈ 1 m) and their simplification tolerance (°).
DIGITS = 5
SIMPLIFY = 0.00001
#: The most approved cases one page lists.
CASES_LIMIT = 50


def _threshold() -> int:
    return settings.MINQING_PUBLIC_MIN_COUNT


def _fetch(sql: str, values: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return cursor.fetchall()


# --- the month ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Month:
    """A calendar month in the city's time zone: ``[start, end)``."""

    first: dt.date
    start: dt.datetime
    end: dt.datetime

    @property
    def label(self) -> str:
        return f"{self.first:%Y-%m}"


def month_of(first: dt.date) -> Month:
    """The month starting on ``first`` (a date on the 1st), as aware datetimes.

    >>> m = month_of(dt.date(2026, 12, 1)); (m.label, m.end.date().isoformat())
    ('2026-12', '2027-01-01')
    """
    following = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    zone = timezone.get_default_timezone()
    start = dt.datetime.combine(first, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(following, dt.time(), tzinfo=zone)
    return Month(first, start, end)


def month_current(now: dt.datetime | None = None) -> Month:
    local = timezone.localtime(now or timezone.now())
    return month_of(local.date().replace(day=1))


def _window(month: Month) -> dict:
    return {"start": month.start, "end": month.end, "done": DONE}


def _count(value: int, k: int) -> int | None:
    """A published count: itself from ``k`` up; 0 stays 0 (nothing to hide); else ``None``."""
    return value if value >= k or value == 0 else None


# --- cells -------------------------------------------------------------------------------------------

# Cases per small grid, or per community / street / nothing for those no small grid holds.
_CELLS_SQL = """
SELECT e.grid_id, e.community_id, e.street_id, count(*),
       count(*) FILTER (WHERE e.status = ANY(%(done)s))
FROM layers_event e
WHERE e.received_at >= %(start)s AND e.received_at < %(end)s
GROUP BY e.grid_id, e.community_id, e.street_id
"""

# Outlines of the drawn cells: small grids, and whole communities or streets for the buckets (a
# region without a boundary of its own is drawn as the union of all its small grids, never of
# the grids whose cases it holds).
_OUTLINES_SQL = f"""
SELECT 'grid', g.id, g.code, g.name, c.name, s.name,
       ST_AsGeoJSON(ST_Multi(ST_SimplifyPreserveTopology(g.boundary, {SIMPLIFY})), {DIGITS})::json
FROM layers_grid g
LEFT JOIN layers_region c ON c.id = g.community_id
LEFT JOIN layers_region s ON s.id = c.parent_id
WHERE g.id = ANY(%(grids)s)
UNION ALL
SELECT r.level, r.id, r.code, r.name, CASE WHEN r.level = 'community' THEN r.name END, p.name,
       ST_AsGeoJSON(ST_Multi(ST_SimplifyPreserveTopology(coalesce(r.boundary, (
           SELECT ST_Union(g.boundary) FROM layers_grid g
           JOIN layers_region gc ON gc.id = g.community_id
           WHERE g.level = 'small' AND (gc.id = r.id OR gc.parent_id = r.id))), {SIMPLIFY})), {DIGITS})::json
FROM layers_region r
LEFT JOIN layers_region p ON p.id = r.parent_id AND r.level = 'community'
WHERE r.id = ANY(%(regions)s)
"""


def public_cells(*, month: Month) -> dict:
    """The month's cases per cell as a GeoJSON FeatureCollection (see the module docstring):
    each feature's properties are ``kind`` (grid, community or street: a bucket of that area's
    grids with fewer than k cases each), ``code``, ``name``, ``community``, ``street``,
    ``cases``, ``open``, ``resolved``. Also ``remainder`` (cases in no drawn cell: ``cases`` or
    ``None`` when fewer than k) and ``threshold``."""
    k = _threshold()
    rows = _fetch(_CELLS_SQL, _window(month))
    grids: dict[int, list[int]] = {}
    communities: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    streets: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    remainder = [0, 0]

    def add(bucket: list[int], cases: int, resolved: int) -> None:
        bucket[0] += cases
        bucket[1] += resolved

    for grid_id, community_id, street_id, cases, resolved in rows:
        if grid_id is not None and cases >= k:
            grids[grid_id] = [cases, resolved]
        elif community_id is not None:
            add(communities[community_id], cases, resolved)
        elif street_id is not None:
            add(streets[street_id], cases, resolved)
        else:
            add(remainder, cases, resolved)
    parents = dict(
        _fetch("SELECT id, parent_id FROM layers_region WHERE id = ANY(%(ids)s)", {"ids": list(communities)})
    )
    drawn_regions: dict[int, list[int]] = {}
    for community_id, counts in communities.items():
        if counts[0] >= k:
            drawn_regions[community_id] = counts
        elif parents.get(community_id) is not None:
            add(streets[parents[community_id]], *counts)
        else:
            add(remainder, *counts)
    for street_id, counts in streets.items():
        if counts[0] >= k:
            drawn_regions[street_id] = counts
        else:
            add(remainder, *counts)
    features = []
    outlines = _fetch(_OUTLINES_SQL, {"grids": list(grids), "regions": list(drawn_regions)})
    # Streets, then communities, then grids: a map draws the buckets under the grids drawn in them.
    order = {"street": 0, "community": 1, "grid": 2}
    for kind, pk, code, name, community, street, geometry in sorted(outlines, key=lambda r: (order[r[0]], r[2])):
        cases, resolved = grids[pk] if kind == "grid" else drawn_regions[pk]
        features.append(
            {
                "type": "Feature",
                "geometry": geometry,
                "properties": {
                    "kind": kind,
                    "code": code,
                    "name": name,
                    "community": community,
                    "street": street,
                    "cases": cases,
                    "open": cases - resolved,
                    "resolved": resolved,
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "month": month.label,
        "threshold": k,
        "features": features,
        "remainder": {"cases": _count(remainder[0], k), "below_threshold": 0 < remainder[0] < k},
    }


# --- streets, categories, totals ---------------------------------------------------------------------

_STREETS_SQL = """
SELECT s.code, s.name, count(*) AS cases,
       count(*) FILTER (WHERE e.status = ANY(%(done)s)) AS resolved,
       count(r.at) AS responded,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.at - e.received_at)) AS response_s,
       count(e.resolved_at) FILTER (WHERE e.status = ANY(%(done)s)) AS timed,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM e.resolved_at - e.received_at))
           FILTER (WHERE e.status = ANY(%(done)s)) AS resolution_s,
       count(e.satisfaction) AS rated, avg(e.satisfaction) AS satisfaction
FROM layers_event e
JOIN layers_region s ON s.id = e.street_id
-- The first response: a handler accepted or started the case.
LEFT JOIN LATERAL (
    SELECT min(t.at) AS at FROM layers_eventtransition t
    WHERE t.event_id = e.id AND t.action IN ('accept', 'start')
) r ON TRUE
WHERE e.received_at >= %(start)s AND e.received_at < %(end)s
GROUP BY s.code, s.name
ORDER BY s.code
"""


def _hours(seconds: float | None, count: int, k: int) -> float | None:
    return round(seconds / 3600, 1) if seconds is not None and count >= k else None


def public_streets(*, month: Month) -> dict:
    """Per street with ``k`` or more cases in the month: ``code``, ``name``, ``cases``,
    ``resolved``, ``completion_rate``, ``response_hours`` and ``resolution_hours`` (medians) and
    ``satisfaction`` (mean, 1–5), each ``None`` over fewer than ``k`` cases; the other streets'
    cases summed in ``others`` (``None`` when fewer than ``k``)."""
    k = _threshold()
    shown, others = [], 0
    for code, name, cases, resolved, responded, response_s, timed, resolution_s, rated, mean in _fetch(
        _STREETS_SQL, _window(month)
    ):
        if cases < k:
            others += cases
            continue
        shown.append(
            {
                "code": code,
                "name": name,
                "cases": cases,
                "resolved": resolved,
                "completion_rate": round(resolved / cases, 3),
                "response_hours": _hours(response_s, responded, k),
                "resolution_hours": _hours(resolution_s, timed, k),
                "satisfaction": round(float(mean), 2) if mean is not None and rated >= k else None,
            }
        )
    return {"month": month.label, "threshold": k, "streets": shown, "others": _count(others, k)}


_CATEGORIES_SQL = """
SELECT c.code, c.name, c.name_en, c.family, count(*)
FROM layers_event e JOIN layers_category c ON c.id = e.category_id
WHERE e.received_at >= %(start)s AND e.received_at < %(end)s
GROUP BY c.code, c.name, c.name_en, c.family
ORDER BY count(*) DESC, c.code
"""

_FAMILY_NAMES_SQL = "SELECT code, name, name_en FROM layers_category WHERE code = family"


def public_categories(*, month: Month) -> dict:
    """The month's cases per category, most first: ``code``, ``name``, ``name_en``, ``family``,
    ``cases``. Categories below ``k`` are summed per family (``code`` = ``<family>.*``), a family's
    sum below ``k`` into ``other`` (``None`` when below ``k`` itself)."""
    k = _threshold()
    shown, by_family, other = [], defaultdict(int), 0
    for code, name, name_en, family, cases in _fetch(_CATEGORIES_SQL, _window(month)):
        if cases >= k:
            shown.append({"code": code, "name": name, "name_en": name_en, "family": family, "cases": cases})
        else:
            by_family[family] += cases
    names = {code: (name, name_en) for code, name, name_en in _fetch(_FAMILY_NAMES_SQL, {})}
    for family, cases in sorted(by_family.items()):
        if cases >= k:
            name, name_en = names.get(family, (family, family))
            shown.append(
                {
                    "code": f"{family}.*",
                    "name": f"其他{name}",
                    "name_en": f"Other: {name_en}",
                    "family": family,
                    "cases": cases,
                }
            )
        else:
            other += cases
    shown.sort(key=lambda row: (-row["cases"], row["code"]))
    return {"month": month.label, "threshold": k, "categories": shown, "other": _count(other, k)}


_TOTALS_SQL = """
SELECT count(*), count(*) FILTER (WHERE e.status = ANY(%(done)s)),
       count(e.satisfaction), avg(e.satisfaction),
       count(*) FILTER (WHERE e.status = ANY(%(done)s) AND e.deadline IS NOT NULL),
       count(*) FILTER (WHERE e.status = ANY(%(done)s) AND e.deadline IS NOT NULL AND e.resolved_at <= e.deadline)
FROM layers_event e
WHERE e.received_at >= %(start)s AND e.received_at < %(end)s
"""


def public_totals(*, month: Month) -> dict:
    """The month in the whole city: ``cases``, ``resolved``, ``open`` (all ``None`` when fewer
    than ``k`` cases), ``completion_rate``, ``on_time_rate`` and ``satisfaction`` (over ``k`` or more)."""
    k = _threshold()
    ((cases, resolved, rated, mean, timed, on_time),) = _fetch(_TOTALS_SQL, _window(month))
    shown = cases >= k
    return {
        "month": month.label,
        "threshold": k,
        "cases": _count(cases, k),
        "resolved": resolved if shown else None,
        "open": cases - resolved if shown else None,
        "completion_rate": round(resolved / cases, 3) if cases >= k else None,
        "on_time_rate": round(on_time / timed, 3) if timed >= k else None,
        "satisfaction": round(float(mean), 2) if mean is not None and rated >= k else None,
    }


# --- approved cases ----------------------------------------------------------------------------------

_CASES_SQL = """
SELECT p.id, p.text, p.moderated_at, e.id, c.code, c.name, c.name_en, s.name, m.name,
       e.received_at, e.resolved_at
FROM layers_publicsummary p
JOIN layers_event e ON e.id = p.event_id
JOIN layers_category c ON c.id = e.category_id
LEFT JOIN layers_region s ON s.id = e.street_id
LEFT JOIN layers_region m ON m.id = e.community_id
WHERE p.status = 'approved' AND e.status = ANY(%(done)s) AND {where}
ORDER BY p.moderated_at DESC, p.id DESC
LIMIT %(limit)s
"""


def cases_cursor(moderated_at: dt.datetime, summary_id: int) -> str:
    """An opaque cursor just past one listed case.

    >>> t = dt.datetime(2026, 5, 1, tzinfo=dt.UTC); cases_cursor_decode(cases_cursor(t, 7)) == (t, 7)
    True
    """
    return base64.urlsafe_b64encode(f"{moderated_at.isoformat()}|{summary_id}".encode()).decode().rstrip("=")


def cases_cursor_decode(cursor: str) -> tuple[dt.datetime, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, summary_id = text.partition("|")
        moderated_at = dt.datetime.fromisoformat(stamp)
        if moderated_at.tzinfo is None:
            raise ValueError("naive")
        return moderated_at, int(summary_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor", "is not a cursor from this list; follow its 'next' link") from None


def public_cases(*, limit: int = CASES_LIMIT, after: str | None = None, ids: list[int] | None = None) -> dict:
    """Completed cases with an approved public summary, most recently approved first (at most
    ``limit``; ``after`` is the previous page's cursor; ``ids`` picks events): ``id`` (the event's,
    as Open311 names it), ``summary``, ``category`` (code, name, name_en), ``street``,
    ``community``, ``received_month``, ``resolved_on`` (a date), ``days_to_resolve``,
    ``published_at``; ``next`` is the cursor of the next page or ``None``. A summary whose case was
    reopened is not listed while it is being worked again."""
    where, values = ["TRUE"], {"done": DONE, "limit": limit + 1}
    if after:
        moderated_at, summary_id = cases_cursor_decode(after)
        where.append("(p.moderated_at, p.id) < (%(at)s, %(sid)s)")
        values |= {"at": moderated_at, "sid": summary_id}
    if ids is not None:
        where.append("e.id = ANY(%(ids)s)")
        values["ids"] = ids
    rows = _fetch(_CASES_SQL.format(where=" AND ".join(where)), values)
    more, rows = len(rows) > limit, rows[:limit]
    results = []
    for sid, text, moderated_at, event_id, code, name, name_en, street, community, received, resolved in rows:
        days = (resolved - received).total_seconds() / 86400 if resolved else None
        results.append(
            {
                "id": event_id,
                "summary": text,
                "category": {"code": code, "name": name, "name_en": name_en},
                "street": street,
                "community": community,
                "received_month": f"{timezone.localtime(received):%Y-%m}",
                "resolved_on": timezone.localtime(resolved).date().isoformat() if resolved else None,
                "days_to_resolve": round(days, 1) if days is not None else None,
                "published_at": timezone.localtime(moderated_at).isoformat(timespec="seconds"),
                "_cursor": cases_cursor(moderated_at, sid),
            }
        )
    next_cursor = results[-1]["_cursor"] if more and results else None
    for row in results:
        del row["_cursor"]
    return {"results": results, "next": next_cursor}


def public_summary_pending_count() -> int:
    """Summaries waiting for a moderator."""
    return PublicSummary.objects.filter(status=PublicSummary.Status.PENDING).count()
