"""Open311 GeoReport v2 reads: our categories as services, our events as service requests.

GeoReport has its own vocabulary, so these reads map ours onto it:

* services: a category is a service (``service_code`` = the dotted category code, ``group`` =
  its family); GeoReport's ``metadata`` is false (no extra attributes), ``type`` realtime;
* requests: an event is a service request (``service_request_id`` = the event id); the closed
  loop collapses onto GeoReport's two statuses (:data:`CLOSED_STATUSES` → ``closed``, every
  other status, suspended included, → ``open``); ``status_notes`` is the reason on the event's
  last transition; ``expected_datetime`` is the SLA deadline; ``address_id`` the code of the
  standard address the geocoder matched.

Requests are read within the reader's data scope (:mod:`layers.protection.scope`): a request
outside it is neither listed nor found (404). Reads are hand-written SQL: one query with a
lateral join for the last transition beats an ORM prefetch of whole transition logs. The two
encodings (JSON, XML) are the edge's: :mod:`mapserver.open311`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.utils import timezone, translation
from django.utils.translation import gettext as _

from layers.errors import InvalidInput, RecordNotFound
from layers.models import Address, Category, Event, KeywordRule, SlaRule
from layers.protection.scope import CITY, Scope, named_parameters
from layers.services.bulk import fetch

#: The most requests one GET answers (GeoReport's default limit).
MAX_REQUESTS = 1000

S = Event.Status
#: Statuses GeoReport calls ``closed``: the work is done (awaiting checks or finished).
CLOSED_STATUSES = (S.RESOLVED, S.VERIFIED, S.CLOSED)

#: Keys of a service request, in the order of the GeoReport documentation.
REQUEST_KEYS = (
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
)

LEVEL_LABELS = dict(Event._meta.get_field("responsible_level").choices)


# --- services ---------------------------------------------------------------------------------


def _keywords() -> dict[str, list[str]]:
    """Keywords per category code: rules bound to the category, and unbound rules of its default
    department (the words that would send a report to the same desk)."""
    by_department: dict[int, list[str]] = {}
    by_category: dict[int, list[str]] = {}
    for keyword, category_id, department_id in KeywordRule.objects.filter(active=True).values_list(
        "keyword", "category_id", "department_id"
    ):
        if category_id is None:
            by_department.setdefault(department_id, []).append(keyword)
        else:
            by_category.setdefault(category_id, []).append(keyword)
    return {"category": by_category, "department": by_department}


def services_list(*, code: str | None = None) -> list[dict]:
    """The services (one per category), by code; with ``code`` only that one (404 if unknown)."""
    categories = Category.objects.select_related("department").order_by("code")
    if code is not None:
        categories = categories.filter(code=code)
    rows = list(categories)
    if code is not None and not rows:
        raise RecordNotFound(f"service_code: unknown service {code!r}")
    keywords = _keywords()
    hours = {(r.family, r.level): r.hours for r in SlaRule.objects.all()}
    services = []
    for category in rows:
        words = keywords["category"].get(category.pk, []) + keywords["department"].get(category.department_id, [])
        sla = hours.get((category.family, category.min_level))
        desk = category.department.name if category.department else "按关键字分拨 (dispatched by keywords)"
        description = f"{category.name_en}. 办理部门 {desk}"
        if sla:
            description += f"; 办理时限 {sla} 小时 (resolved within {sla} h)"
        services.append(
            {
                "service_code": category.code,
                "service_name": category.name,
                "description": description,
                "metadata": False,
                "type": "realtime",
                "keywords": ", ".join(dict.fromkeys(words)),
                "group": category.family,
            }
        )
    return services


def service_name(*, code: str) -> str:
    """The name of the service a POST names; an unknown one is a bad parameter (400)."""
    name = Category.objects.filter(code=code).values_list("name", flat=True).first()
    if name is None:
        raise InvalidInput(
            "service_code", _("unknown service %(value)s; see services.json") % {"value": f"{code[:40]!r}"}
        )
    return name


def service_definition(*, code: str) -> dict:
    """A service's definition: no extra attributes (``metadata`` is false for every service)."""
    services_list(code=code)
    return {"service_code": code, "attributes": []}


# --- requests ---------------------------------------------------------------------------------

_REQUESTS_SQL = """
SELECT e.id, e.status, c.code, c.name, e.description, d.name, e.responsible_level, e.deadline,
       e.reported_at, coalesce(t.at, e.received_at), t.reason, e.address_text, a.code,
       ST_Y(e.location), ST_X(e.location), e.needs_location
FROM layers_event e
JOIN layers_category c ON c.id = e.category_id
LEFT JOIN layers_department d ON d.id = e.department_id
LEFT JOIN layers_address a ON a.id = e.matched_address_id
LEFT JOIN LATERAL (
    SELECT x.at, x.reason FROM layers_eventtransition x WHERE x.event_id = e.id ORDER BY x.at DESC, x.id DESC LIMIT 1
) t ON TRUE
WHERE {where}
ORDER BY e.reported_at DESC, e.id DESC
LIMIT %(limit)s
"""


def _iso(value: dt.datetime | None) -> str | None:
    return timezone.localtime(value).isoformat(timespec="seconds") if value else None


def _notice(department: str | None, level: str, deadline: dt.datetime | None, needs_location: bool) -> str:
    if needs_location:
        return "待人工定位后分拨 (waiting for manual location before dispatch)"
    if not department:
        return "待分拨 (waiting for dispatch)"
    # GeoReport's status notes are Chinese text (as the department names are), whoever reads them.
    with translation.override("zh-hans"):
        level_name = str(LEVEL_LABELS.get(level, level))
    text = f"{department}办理，{level_name}级负责"
    if deadline:
        text += f"，{timezone.localtime(deadline):%Y-%m-%d %H:%M}前办结"
    return text


def _request(row: tuple, *, with_description: bool) -> dict:
    (pk, status, code, name, description, department, level, deadline, reported, updated, reason, address,
     address_code, lat, lon, needs_location) = row  # fmt: skip
    return {
        "service_request_id": str(pk),
        "status": "closed" if status in CLOSED_STATUSES else "open",
        "status_notes": (reason or "") if with_description else "",
        "service_name": name,
        "service_code": code,
        "description": description if with_description else "",
        "agency_responsible": department or "",
        "service_notice": _notice(department, level, deadline, needs_location),
        "requested_datetime": _iso(reported),
        "updated_datetime": _iso(updated),
        "expected_datetime": _iso(deadline),
        "address": address,
        "address_id": address_code or "",
        "zipcode": "",
        "lat": round(lat, 7) if lat is not None else None,
        "long": round(lon, 7) if lon is not None else None,
        "media_url": "",
    }


def requests_list(
    *,
    scope: Scope,
    ids: list[int] | None = None,
    service_codes: Sequence[str] | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    statuses: Sequence[str] | None = None,
    limit: int = MAX_REQUESTS,
    with_description: bool = False,
) -> list[dict]:
    """Service requests in the reader's ``scope``, newest report first, at most ``limit``. ``ids``
    overrides every other filter (as GeoReport says; never the scope); ``service_codes`` keeps
    requests of any of those services, ``statuses`` of any of GeoReport's statuses (``open``,
    ``closed``); ``start``/``end`` bound the report time, inclusive. The free texts (``description``, ``status_notes``) are empty
    unless ``with_description``."""
    in_scope, scope_values = named_parameters(*scope.condition("e"))
    clauses, values = [in_scope], {"limit": limit, **scope_values}
    if ids is not None:
        clauses.append("e.id = ANY(%(ids)s)")
        values["ids"] = ids
    else:
        if service_codes is not None:
            clauses.append("c.code = ANY(%(codes)s)")
            values["codes"] = service_codes
        if start is not None:
            clauses.append("e.reported_at >= %(start)s")
            values["start"] = start
        if end is not None:
            clauses.append("e.reported_at <= %(end)s")
            values["end"] = end
        if statuses is not None and set(statuses) != {"open", "closed"}:
            # One of GeoReport's two statuses (both together, or none, is every request).
            negate = "" if "closed" in statuses else "NOT "
            clauses.append(f"{negate}(e.status = ANY(%(closed)s))")
            values["closed"] = [str(s) for s in CLOSED_STATUSES]
    sql = _REQUESTS_SQL.format(where=" AND ".join(clauses) or "TRUE")
    return [_request(row, with_description=with_description) for row in fetch(sql, values)]


def standard_address(*, code: str, scope: Scope) -> tuple[float, float, str]:
    """Longitude, latitude and text of the standard address a request names by ``address_id``;
    one outside the reader's ``scope`` is as unknown as a made-up code (400)."""
    found = Address.objects.filter(scope.q(), code=code).values_list("location", "full_text").first()
    if found is None:
        raise InvalidInput("address_id", _("unknown standard address %(address_id)s") % {"address_id": f"{code!r}"})
    point, full_text = found
    return point.x, point.y, full_text


def request_get(*, pk: int, scope: Scope, with_description: bool = False) -> dict:
    """One service request; :class:`~layers.errors.RecordNotFound` when there is no such event in ``scope``."""
    found = requests_list(scope=scope, ids=[pk], limit=1, with_description=with_description)
    if not found:
        raise RecordNotFound(f"service_request_id: no service request {pk}")
    return found[0]


def request_receipt(*, event: Event, account_id: str) -> dict:
    """GeoReport's answer to a POST: the new (or retried) request's id and notice (the caller
    checked that a retry's stored request may be answered to this reader)."""
    row = request_get(pk=event.pk, scope=CITY)
    return {"service_request_id": row["service_request_id"], "service_notice": row["service_notice"],
            "account_id": account_id or None}  # fmt: skip


# --- the public read (no key) -----------------------------------------------------------------
# GeoReport lets anyone read requests. Without a key, only what the public map shows is read: a
# case is published once a moderator approved its public summary (layers.selectors.public), and
# then with public fields only — the summary as its description, no status notes, the community
# (not the address) and a point inside the community, days (not times) of receipt and
# resolution, so that nothing narrows it to a household. A filter by date compares those days,
# never the hidden times (a search by minutes would otherwise recover them).

_PUBLIC_REQUESTS_SQL = """
SELECT e.id, c.code, c.name, p.text, d.name, dr.name, s.name, m.name,
       (e.received_at AT TIME ZONE %(tz)s)::date AS received_day,
       (e.resolved_at AT TIME ZONE %(tz)s)::date AS resolved_day,
       round(ST_Y(pt.at)::numeric, 4), round(ST_X(pt.at)::numeric, 4)
FROM layers_publicsummary p
JOIN layers_event e ON e.id = p.event_id
JOIN layers_category c ON c.id = e.category_id
LEFT JOIN layers_department d ON d.id = e.department_id
LEFT JOIN layers_region dr ON dr.code = e.district_code AND e.district_code <> ''
LEFT JOIN layers_region s ON s.id = e.street_id
LEFT JOIN layers_region m ON m.id = e.community_id
LEFT JOIN LATERAL (SELECT ST_PointOnSurface(coalesce(m.boundary, s.boundary)) AS at) pt ON TRUE
WHERE p.status = 'approved' AND e.status = ANY(%(done)s) AND {where}
ORDER BY e.received_at DESC, e.id DESC
LIMIT %(limit)s
"""

#: What GeoReport's service notice says of a published case.
PUBLIC_NOTICE = "已办结，摘要经审核公开 (resolved; the summary was approved for publication)"


def _day(value: dt.date | None) -> str | None:
    if value is None:
        return None
    zone = timezone.get_default_timezone()
    return dt.datetime.combine(value, dt.time(), tzinfo=zone).isoformat(timespec="seconds")


def _public_request(row: tuple) -> dict:
    pk, code, name, summary, department, district, street, community, received, resolved, lat, lon = row
    return {
        "service_request_id": str(pk),
        "status": "closed",
        "status_notes": "",
        "service_name": name,
        "service_code": code,
        "description": summary,
        "agency_responsible": department or "",
        "service_notice": PUBLIC_NOTICE,
        "requested_datetime": _day(received),
        "updated_datetime": _day(resolved or received),
        "expected_datetime": None,
        "address": " ".join(part for part in (district, street, community) if part),
        "address_id": "",
        "zipcode": "",
        "lat": float(lat) if lat is not None else None,
        "long": float(lon) if lon is not None else None,
        "media_url": "",
    }


def public_requests_list(
    *,
    ids: list[int] | None = None,
    service_codes: Sequence[str] | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    statuses: Sequence[str] | None = None,
    limit: int = MAX_REQUESTS,
) -> list[dict]:
    """The requests anyone may read (see above), newest first, filtered as
    :func:`requests_list` is; ``start``/``end`` compare the day of receipt (inclusive)."""
    if statuses is not None and "closed" not in statuses:
        return []  # only completed cases are ever published
    clauses = ["TRUE"]
    values: dict = {
        "limit": limit,
        "done": [str(s) for s in CLOSED_STATUSES],
        "tz": timezone.get_default_timezone_name(),
    }
    if ids is not None:
        clauses.append("e.id = ANY(%(ids)s)")
        values["ids"] = ids
    else:
        if service_codes is not None:
            clauses.append("c.code = ANY(%(codes)s)")
            values["codes"] = service_codes
        if start is not None:
            clauses.append("(e.received_at AT TIME ZONE %(tz)s)::date >= %(start)s")
            values["start"] = timezone.localtime(start).date()
        if end is not None:
            clauses.append("(e.received_at AT TIME ZONE %(tz)s)::date <= %(end)s")
            values["end"] = timezone.localtime(end).date()
    rows = fetch(_PUBLIC_REQUESTS_SQL.format(where=" AND ".join(clauses)), values)
    return [_public_request(row) for row in rows]


def public_request_get(*, pk: int) -> dict:
    """One published request; :class:`~layers.errors.RecordNotFound` for any other (unpublished ones included)."""
    found = public_requests_list(ids=[pk], limit=1)
    if not found:
        raise RecordNotFound(f"service_request_id: no service request {pk}")
    return found[0]
