"""The figures of the monthly situation report (研判报告) of the city, a district or a street.

Every figure is an SQL aggregate over the events linked to the area (their ``district_code`` or
``street_id`` link column, :class:`~layers.models.registry.GridLinked`), in one statement per
table of the report; Python only arranges the few rows that come back. Months are calendar
months in the server's zone (Asia/Shanghai), ``[first day 00:00, next month's first day)`` on
the time of receipt. Three windows are compared: the month, the month before, and the same
month a year before.

Definitions (a *case* is an event; the month's cases are those received in it):

* **completed** (办结): resolved, verified or closed now; **completion rate** completed / cases;
* **on time**: of the completed cases with a deadline, resolved by it;
* **overdue**: cases with a deadline not resolved by it (resolved late, or still open past it at
  ``now``); **escalated**: raised one level or more;
* **satisfaction**: the mean rating (1–5) of the rated cases, and the share rated 4 or 5;
* **channels**: the six data classes of the command centre — 12345 hotline, the 小兰帮办 app, web
  messages, mediation, petitions, and grid and drone patrols (one class);
* **recurring addresses**: the standard address a case was matched to, else the address as
  reported, with two or more cases in the month (and their count over the three months before).

A rate whose denominator is zero is ``None``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.utils import timezone
from django.utils.translation import gettext as _

from layers.database.reading import reading
from layers.protection.scope import CITY, Scope

from ..errors import InvalidInput
from ..models import Region

#: The six data classes, in the order the report lists them; grid and drone patrols are one.
CHANNEL_CLASSES = ("hotline", "app", "web", "mediation", "petition", "patrol")
_CHANNEL_CLASS_SQL = "CASE WHEN e.channel IN ('grid_patrol', 'drone_patrol') THEN 'patrol' ELSE e.channel END"
DONE = ["resolved", "verified", "closed"]
OPEN = ["received", "triaged", "assigned", "in_progress", "returned", "reopened"]
SATISFIED_FROM = 4
#: Rows listed in the report's tables.
TOP = 5
CASES_LISTED = 10
ADDRESSES_LISTED = 10
#: A category's satisfaction is listed only with at least this many ratings.
MIN_RATED = 5

_CODE = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class ReportArea:
    """The area a report covers: the city, a district or a street, with the scope its events are
    read through and the level of the parts it ranks (districts' and the city's streets, a
    street's communities)."""

    code: str
    name: str
    level: str
    scope: Scope
    region_id: int | None
    district_code: str

    @property
    def parts(self) -> str:
        return "community" if self.level == "street" else "street"


def report_area_get(*, code: str, reader_scope: Scope) -> ReportArea:
    """The area named by a 12-digit code, within ``reader_scope``; raises
    :class:`~layers.errors.InvalidInput` for a malformed or unknown code, a community, or an
    area outside the reader's scope (regions are reference data every reader sees, so saying so
    tells nothing new)."""
    if not _CODE.match(code or ""):
        raise InvalidInput(
            "area",
            _("expected a 12-digit code of the city, a district or a street, got %(code)s") % {"code": f"{code!r}"},
        )
    region = Region.objects.filter(code=code).select_related("parent").first()
    if region is None:
        raise InvalidInput("area", _("unknown area %(code)s") % {"code": f"{code!r}"})
    if region.level == Region.Level.COMMUNITY:
        raise InvalidInput(
            "area", _("%(code)s is a community; reports cover the city, a district or a street") % {"code": code}
        )
    if not _within(region, reader_scope):
        raise InvalidInput("area", _("%(code)s lies outside your data scope") % {"code": code})
    if region.level == Region.Level.CITY:
        return ReportArea(code, region.name, "city", CITY, region.id, "")
    if region.level == Region.Level.DISTRICT:
        return ReportArea(code, region.name, "district", Scope("district", district_codes=(code,)), region.id, code)
    district = region.parent.code if region.parent_id else ""
    return ReportArea(code, region.name, "street", Scope("street", street_ids=(region.id,)), region.id, district)


def _within(region: Region, scope: Scope) -> bool:
    """Whether every event of ``region`` lies in ``scope`` (a reader reports only on what they read)."""
    if scope.is_city:
        return True
    if region.level == Region.Level.DISTRICT:
        return region.code in scope.district_codes
    if region.level == Region.Level.STREET:
        district = region.parent.code if region.parent_id else None
        return region.id in scope.street_ids or district in scope.district_codes
    return False  # the city, for a scope narrower than the city


def report_month_check(month: dt.date, *, now: dt.datetime) -> dt.date:
    """``month`` (its first day) when it has begun at ``now``; else
    :class:`~layers.errors.InvalidInput` naming ``month``.

    >>> report_month_check(dt.date(2025, 5, 1), now=dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
    datetime.date(2025, 5, 1)
    """
    today = timezone.localtime(now).date()
    if month > today.replace(day=1):
        raise InvalidInput(
            "month",
            _("%(month)s has not begun (today is %(today)s)") % {"month": f"{month:%Y-%m}", "today": today.isoformat()},
        )
    return month


def report_month_default(*, now: dt.datetime) -> dt.date:
    """The last whole month before ``now`` (what a report on the 1st is about)."""
    return month_add(timezone.localtime(now).date().replace(day=1), -1)


def report_areas(*, reader_scope: Scope) -> list[dict]:
    """The city, districts and streets a reader may report on, in code order, with their level."""
    rows = Region.objects.filter(level__in=["city", "district", "street"]).select_related("parent").order_by("code")
    return [{"code": r.code, "name": r.name, "level": r.level} for r in rows if _within(r, reader_scope)]


def month_add(month: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` after ``month``.

    >>> month_add(dt.date(2025, 1, 1), -1), month_add(dt.date(2025, 12, 1), 1)
    (datetime.date(2024, 12, 1), datetime.date(2026, 1, 1))
    """
    index = month.year * 12 + month.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def month_start(month: dt.date) -> dt.datetime:
    """Local midnight of the month's first day."""
    return timezone.make_aware(dt.datetime.combine(month, dt.time()), timezone.get_current_timezone())


def _windows(month: dt.date) -> dict:
    return {
        "m0": month_start(month),
        "m1": month_start(month_add(month, 1)),
        "p0": month_start(month_add(month, -1)),
        "y0": month_start(month_add(month, -12)),
        "y1": month_start(month_add(month, -11)),
        "r0": month_start(month_add(month, -3)),
    }


def _fetch(sql: str, values: dict) -> list[tuple]:
    with reading().cursor() as cursor:
        cursor.execute(sql, values)
        return cursor.fetchall()


def _area_sql(area: ReportArea) -> tuple[str, dict]:
    if area.level == "district":
        return "e.district_code = %(area_district)s", {"area_district": area.code}
    if area.level == "street":
        return "e.street_id = %(area_street)s", {"area_street": area.region_id}
    return "TRUE", {}


def _rate(part: int | None, whole: int | None) -> float | None:
    return round(part / whole, 4) if whole else None


def _change(now: int, before: int) -> dict:
    return {"before": before, "change": now - before, "change_rate": _rate(now - before, before)}


_WINDOWS = {"month": ("m0", "m1"), "previous": ("p0", "m0"), "last_year": ("y0", "y1")}


def _headline(area: ReportArea, values: dict) -> dict:
    in_area, extra = _area_sql(area)
    columns = []
    for start, end in _WINDOWS.values():
        w = f"e.received_at >= %({start})s AND e.received_at < %({end})s"
        done = f"{w} AND e.status = ANY(%(done)s)"
        columns += [
            f"count(*) FILTER (WHERE {w})",
            f"count(*) FILTER (WHERE {done})",
            f"count(*) FILTER (WHERE {done} AND e.deadline IS NOT NULL AND e.resolved_at <= e.deadline)",
            f"count(*) FILTER (WHERE {done} AND e.deadline IS NOT NULL)",
            f"count(*) FILTER (WHERE {w} AND e.deadline IS NOT NULL AND coalesce(e.resolved_at, %(now)s) > e.deadline)",
            f"count(*) FILTER (WHERE {w} AND e.escalation_level > 0)",
            f"count(e.satisfaction) FILTER (WHERE {w})",
            f"avg(e.satisfaction) FILTER (WHERE {w})",
            f"count(*) FILTER (WHERE {w} AND e.satisfaction >= %(satisfied)s)",
            f"count(*) FILTER (WHERE {w} AND c.family = 'dispute')",
            f"count(*) FILTER (WHERE {w} AND c.family = 'hazard')",
            f"count(*) FILTER (WHERE {w} AND e.status = ANY(%(open)s))",
        ]
    (row,) = _fetch(
        f"""SELECT {", ".join(columns)}
            FROM layers_event e JOIN layers_category c ON c.id = e.category_id
            WHERE ((e.received_at >= %(p0)s AND e.received_at < %(m1)s) OR (e.received_at >= %(y0)s AND e.received_at < %(y1)s))
              AND {in_area}""",
        values | extra,
    )
    windows = {}
    for i, key in enumerate(_WINDOWS):
        (
            cases,
            done,
            on_time,
            with_deadline,
            overdue,
            escalated,
            rated,
            mean,
            satisfied,
            disputes,
            hazards,
            still_open,
        ) = row[i * 12 : (i + 1) * 12]
        windows[key] = {
            "cases": cases,
            "completed": done,
            "completion_rate": _rate(done, cases),
            "on_time_rate": _rate(on_time, with_deadline),
            "overdue": overdue,
            "escalated": escalated,
            "open": still_open,
            "rated": rated,
            "satisfaction_mean": round(float(mean), 2) if mean is not None else None,
            "satisfaction_rate": _rate(satisfied, rated),
            "disputes": disputes,
            "hazards": hazards,
        }
    return windows


def _channels(area: ReportArea, values: dict) -> list[dict]:
    in_area, extra = _area_sql(area)
    rows = _fetch(
        f"""SELECT {_CHANNEL_CLASS_SQL},
                   count(*) FILTER (WHERE e.received_at >= %(m0)s),
                   count(*) FILTER (WHERE e.received_at < %(m0)s AND e.received_at >= %(p0)s),
                   count(*) FILTER (WHERE e.received_at < %(y1)s)
            FROM layers_event e
            WHERE ((e.received_at >= %(p0)s AND e.received_at < %(m1)s) OR (e.received_at >= %(y0)s AND e.received_at < %(y1)s))
              AND {in_area}
            GROUP BY 1""",
        values | extra,
    )
    found = {r[0]: r[1:] for r in rows}
    return [
        {"channel": name, "cases": found.get(name, (0, 0, 0))[0], **_change(*found.get(name, (0, 0, 0))[:2]),
         "last_year": found.get(name, (0, 0, 0))[2]}
        for name in CHANNEL_CLASSES
    ]  # fmt: skip


def _categories(area: ReportArea, values: dict) -> list[dict]:
    in_area, extra = _area_sql(area)
    rows = _fetch(
        f"""SELECT c.code, c.name, c.name_en, c.family,
                   count(*) FILTER (WHERE e.received_at >= %(m0)s),
                   count(*) FILTER (WHERE e.received_at < %(m0)s),
                   count(e.satisfaction) FILTER (WHERE e.received_at >= %(m0)s),
                   avg(e.satisfaction) FILTER (WHERE e.received_at >= %(m0)s)
            FROM layers_event e JOIN layers_category c ON c.id = e.category_id
            WHERE e.received_at >= %(p0)s AND e.received_at < %(m1)s AND {in_area}
            GROUP BY c.code, c.name, c.name_en, c.family
            ORDER BY 5 DESC, c.code""",
        values | extra,
    )
    return [
        {
            "code": code,
            "name": name,
            "name_en": name_en,
            "family": family,
            "cases": now,
            **_change(now, before),
            "rated": rated,
            "satisfaction_mean": round(float(mean), 2) if mean is not None else None,
        }
        for code, name, name_en, family, now, before, rated, mean in rows
    ]


def _parts(area: ReportArea, values: dict) -> list[dict]:
    """Per street (of the city or a district) or community (of a street): the month's cases and
    the month before's, from the regions table so quiet parts are listed too."""
    in_area, extra = _area_sql(area)
    column = "street_id" if area.parts == "street" else "community_id"
    if area.level == "city":
        regions = "r.level = 'street'"
    elif area.level == "district":
        regions = "r.level = 'street' AND r.parent_id = %(area_region)s"
    else:
        regions = "r.level = 'community' AND r.parent_id = %(area_region)s"
    rows = _fetch(
        f"""SELECT r.code, r.name, coalesce(x.now, 0), coalesce(x.before, 0)
            FROM layers_region r
            LEFT JOIN (
                SELECT e.{column} AS id, count(*) FILTER (WHERE e.received_at >= %(m0)s) AS now,
                       count(*) FILTER (WHERE e.received_at < %(m0)s) AS before
                FROM layers_event e
                WHERE e.received_at >= %(p0)s AND e.received_at < %(m1)s AND {in_area}
                GROUP BY 1
            ) x ON x.id = r.id
            WHERE {regions}
            ORDER BY coalesce(x.now, 0) - coalesce(x.before, 0) DESC, r.code""",
        values | extra | {"area_region": area.region_id},
    )
    return [{"code": code, "name": name, "cases": now, **_change(now, before)} for code, name, now, before in rows]


def _late_cases(area: ReportArea, values: dict) -> dict:
    in_area, extra = _area_sql(area)
    late = "e.deadline IS NOT NULL AND e.status = ANY(%(open)s) AND e.deadline < %(now)s"
    rows = _fetch(
        f"""SELECT e.id, c.name, c.name_en, coalesce(s.name, ''), coalesce(d.name, ''), coalesce(d.name_en, ''),
                   e.responsible_level, e.escalation_level, e.deadline,
                   round((extract(epoch FROM (%(now)s - e.deadline)) / 86400.0)::numeric, 1)
            FROM layers_event e
            JOIN layers_category c ON c.id = e.category_id
            LEFT JOIN layers_region s ON s.id = e.street_id
            LEFT JOIN layers_department d ON d.id = e.department_id
            WHERE e.received_at >= %(m0)s AND e.received_at < %(m1)s AND {in_area} AND {late}
            ORDER BY e.deadline, e.id
            LIMIT %(listed)s""",
        values | extra | {"listed": CASES_LISTED},
    )
    departments = _fetch(
        f"""SELECT coalesce(d.name, ''), coalesce(d.name_en, ''),
                   count(*) FILTER (WHERE e.deadline IS NOT NULL AND coalesce(e.resolved_at, %(now)s) > e.deadline),
                   count(*) FILTER (WHERE e.escalation_level > 0), count(*)
            FROM layers_event e LEFT JOIN layers_department d ON d.id = e.department_id
            WHERE e.received_at >= %(m0)s AND e.received_at < %(m1)s AND {in_area}
            GROUP BY 1, 2
            HAVING count(*) FILTER (WHERE e.deadline IS NOT NULL AND coalesce(e.resolved_at, %(now)s) > e.deadline) > 0
                OR count(*) FILTER (WHERE e.escalation_level > 0) > 0
            ORDER BY 3 DESC, 4 DESC, 1
            LIMIT %(top)s""",
        values | extra | {"top": TOP},
    )
    (still,) = _fetch(
        f"SELECT count(*) FROM layers_event e WHERE e.received_at >= %(m0)s AND e.received_at < %(m1)s AND {in_area} AND {late}",
        values | extra,
    )[0]
    return {
        "open_overdue": still,
        "cases": [
            {
                "event": event_id,
                "category": name,
                "category_en": name_en,
                "street": street,
                "department": department,
                "department_en": department_en,
                "level": level,
                "escalations": escalations,
                "deadline": deadline.isoformat(),
                "days_overdue": float(days),
            }
            for event_id, name, name_en, street, department, department_en, level, escalations, deadline, days in rows
        ],
        "departments": [
            {"department": name, "department_en": name_en, "overdue": overdue, "escalated": escalated, "cases": total}
            for name, name_en, overdue, escalated, total in departments
        ],
    }


def _satisfaction(area: ReportArea, values: dict) -> dict:
    in_area, extra = _area_sql(area)
    rows = _fetch(
        f"""SELECT e.satisfaction, count(*) FROM layers_event e
            WHERE e.received_at >= %(m0)s AND e.received_at < %(m1)s AND {in_area} AND e.satisfaction IS NOT NULL
            GROUP BY 1""",
        values | extra,
    )
    found = dict(rows)
    return {"distribution": [{"score": s, "cases": found.get(s, 0)} for s in range(1, 6)]}


def _addresses(area: ReportArea, values: dict) -> list[dict]:
    in_area, extra = _area_sql(area)
    key = "coalesce(a.full_text, nullif(e.address_text, ''))"
    rows = _fetch(
        f"""SELECT {key} AS place,
                   count(*) FILTER (WHERE e.received_at >= %(m0)s),
                   count(*) FILTER (WHERE e.received_at < %(m0)s),
                   count(DISTINCT e.category_id) FILTER (WHERE e.received_at >= %(m0)s),
                   mode() WITHIN GROUP (ORDER BY c.name),
                   max(s.name)
            FROM layers_event e
            LEFT JOIN layers_address a ON a.id = e.matched_address_id
            JOIN layers_category c ON c.id = e.category_id
            LEFT JOIN layers_region s ON s.id = e.street_id
            WHERE e.received_at >= %(r0)s AND e.received_at < %(m1)s AND {in_area} AND {key} IS NOT NULL
            GROUP BY 1
            HAVING count(*) FILTER (WHERE e.received_at >= %(m0)s) >= 2
            ORDER BY 2 DESC, 3 DESC, 1
            LIMIT %(listed)s""",
        values | extra | {"listed": ADDRESSES_LISTED},
    )
    return [
        {
            "address": place,
            "cases": now,
            "before_3_months": before,
            "categories": kinds,
            "main_category": main,
            "street": street,
        }
        for place, now, before, kinds, main, street in rows
    ]


def judgement_figures(*, area: ReportArea, month: dt.date, now: dt.datetime) -> dict:
    """Every figure of the report of ``area`` for ``month`` (see the module docstring), the
    state of open cases taken at ``now``."""
    values = _windows(month) | {
        "now": now,
        "done": DONE,
        "open": OPEN,
        "satisfied": SATISFIED_FROM,
    }
    headline = _headline(area, values)
    categories = _categories(area, values)
    parts = _parts(area, values)
    rising_categories = sorted((c for c in categories if c["change"] > 0), key=lambda c: (-c["change"], c["code"]))[
        :TOP
    ]
    rated = [c for c in categories if c["rated"] >= MIN_RATED and c["satisfaction_mean"] is not None]
    families: dict[str, dict] = {}
    for c in categories:
        family = families.setdefault(c["family"], {"family": c["family"], "cases": 0, "before": 0})
        family["cases"] += c["cases"]
        family["before"] += c["before"]
    return {
        "area": {"code": area.code, "name": area.name, "level": area.level},
        "month": month.strftime("%Y-%m"),
        "previous_month": month_add(month, -1).strftime("%Y-%m"),
        "last_year_month": month_add(month, -12).strftime("%Y-%m"),
        "partial": now < values["m1"],
        "as_of": now.isoformat(),
        "headline": headline,
        "channels": _channels(area, values),
        "families": sorted(families.values(), key=lambda f: (-f["cases"], f["family"])),
        "categories": [c for c in categories if c["cases"] or c["before"]],
        "rising_categories": rising_categories,
        "parts_level": area.parts,
        "rising_parts": [p for p in parts if p["change"] > 0][:TOP],
        "parts": parts,
        "late": _late_cases(area, values),
        "satisfaction": _satisfaction(area, values)
        | {"lowest_categories": sorted(rated, key=lambda c: (c["satisfaction_mean"], c["code"]))[:TOP]},
        "addresses": _addresses(area, values),
        "window": {"since": values["m0"].isoformat(), "until": values["m1"].isoformat()},
    }


# --- the maps' data -------------------------------------------------------------------------------

#: Outlines are simplified to about this many degrees (~5 m) before drawing.
SIMPLIFY_DEGREES = 0.00005


@dataclass(frozen=True)
class MapData:
    """What the report's maps draw: the area's outline(s) and its small grids as WKB (WGS84),
    the month's dispute and hazard points, each grid's Gi* class per family, and the grids an
    early warning names at the month's end (or ``now`` for the month under way)."""

    outlines: list[bytes]
    grid_ids: list[int]
    grid_codes: list[str]
    grids: list[bytes]
    points: dict[str, tuple[list[float], list[float]]]
    hotspots: dict[str, dict[int, str]]
    warnings: dict[str, list[dict]]


def judgement_map_data(*, area: ReportArea, month: dt.date, now: dt.datetime) -> MapData:
    """The maps' data of the report of ``area`` for ``month`` (grids and points in SQL, Gi* and
    early warnings by :mod:`layers.selectors.hotspots` within the area)."""
    from layers.selectors.hotspots import grid_early_warnings, grid_hotspots

    windows = _windows(month)
    since, until = windows["m0"], windows["m1"]
    if area.level == "city":
        outline_sql, outline_values = "r.level = 'district'", {}
    else:
        outline_sql, outline_values = "r.id = %(region)s", {"region": area.region_id}
    outlines = [
        bytes(row[0])
        for row in _fetch(
            f"""SELECT ST_AsBinary(ST_SimplifyPreserveTopology(r.boundary, %(tolerance)s)) FROM layers_region r
                WHERE {outline_sql} AND r.boundary IS NOT NULL ORDER BY r.code""",
            outline_values | {"tolerance": SIMPLIFY_DEGREES},
        )
    ]
    in_grids, grid_values = area.scope.grids("g")
    with reading().cursor() as cursor:
        cursor.execute(
            f"""SELECT g.id, ST_AsBinary(ST_SimplifyPreserveTopology(g.boundary, %s)), g.code FROM layers_grid g
                WHERE g.level = 'small' AND {in_grids} ORDER BY g.id""",
            [SIMPLIFY_DEGREES, *grid_values],
        )
        grid_rows = cursor.fetchall()
    in_area, extra = _area_sql(area)
    points: dict[str, tuple[list[float], list[float]]] = {}
    for family in ("dispute", "hazard"):
        ((xs, ys),) = _fetch(
            f"""SELECT coalesce(array_agg(ST_X(e.location)), '{{}}'), coalesce(array_agg(ST_Y(e.location)), '{{}}')
                FROM layers_event e JOIN layers_category c ON c.id = e.category_id
                WHERE e.received_at >= %(m0)s AND e.received_at < %(m1)s AND {in_area}
                  AND c.family = %(family)s AND e.location IS NOT NULL""",
            windows | extra | {"family": family},
        )
        points[family] = (xs, ys)
    hotspots = {
        family: {
            row["id"]: row["class"] for row in grid_hotspots(family=family, since=since, until=until, scope=area.scope)
        }
        for family in ("dispute", "hazard")
    }
    warnings = {
        family: grid_early_warnings(family=family, now=min(now, until), scope=area.scope)
        for family in ("dispute", "hazard")
    }
    return MapData(
        outlines=outlines,
        grid_ids=[row[0] for row in grid_rows],
        grid_codes=[row[2] for row in grid_rows],
        grids=[bytes(row[1]) for row in grid_rows],
        points=points,
        hotspots=hotspots,
        warnings=warnings,
    )
