"""A registry that repairs itself: tasks for grid workers, their answers, a steward's approval.

* :func:`registry_tasks_generate` makes the tasks in set-based SQL (one INSERT … SELECT per kind,
  ``ON CONFLICT DO NOTHING`` against the one-live-task-per-row indexes, so it can run from a
  timer as often as one likes): reports of the last ``MINQING_REGISTRY_EVENT_DAYS`` whose
  address text matched no standard address (``unmatched``) or several equally (``ambiguous``),
  for the worker of the grid the report lies in, else of the grid of the geocoder's first
  candidate; and standard addresses that no report matched and no worker confirmed for
  ``MINQING_REGISTRY_STALE_DAYS`` (``stale``), at most ``MINQING_REGISTRY_STALE_TASKS_PER_GRID``
  open per grid, the longest unconfirmed first.
* :func:`registry_task_answer` takes the worker's answer: **confirm** (the address is right; for
  a report, which address it meant), **correct** (move the point, fix the text), **merge** (this
  address duplicates another) or **add** (the report's address is missing). A confirmation and a
  small correction (a move of at most ``MINQING_REGISTRY_FREE_MOVE_M`` inside the same grid,
  road and door number unchanged) are applied at once; everything else waits for a steward.
* :func:`registry_task_decide` is the steward's approval (applied) or rejection.

Every applied change is audited (``registry.<resolution>``, the address code and what changed);
who may answer and decide is ``layers.protection.access.REGISTRY_DUTIES``.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.gis.geos import Point
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from layers.protection.access import REGISTRY_DUTIES, SYSTEM, Reader
from layers.protection.audit import actor_of, audit_record

from ..errors import ActionNotPermitted, InvalidInput, RecordNotFound, TransitionNotAllowed
from ..models import Address, Dwelling, Event, Grid, Person, RegistryTask, Unit
from .linking import ADDRESS, DWELLING, PERSON, link

K, S, R = RegistryTask.Kind, RegistryTask.Status, RegistryTask.Resolution

#: Which answers each kind of task takes.
RESOLUTIONS: dict[str, tuple[str, ...]] = {
    K.UNMATCHED: (R.CONFIRM, R.ADD),
    K.AMBIGUOUS: (R.CONFIRM, R.ADD),
    K.STALE: (R.CONFIRM, R.CORRECT, R.MERGE),
}

#: Text fields of a standard address a worker may correct or give for a new one.
ADDRESS_FIELDS = (
    "road",
    "door_number",
    "compound_name",
    "building_number",
    "entrance",
    "floor",
    "room",
    "full_text",
)


def address_field_lengths() -> dict[str, int]:
    """The fields a worker may give, each with its longest text (the tablet's forms)."""
    return {name: Address._meta.get_field(name).max_length for name in ADDRESS_FIELDS}


#: Fields whose change makes another address (a steward decides).
IDENTITY_FIELDS = ("road", "door_number")

DECISIONS = ("approve", "reject")
MAX_REASON = 300

# --- generation -----------------------------------------------------------------------------------

_EVENT_TASKS_SQL = """
INSERT INTO layers_registrytask (kind, status, grid_id, event_id, address_id, candidates, created_at, resolution,
                                 proposal, reason)
SELECT e.address_match, 'open',
       coalesce(e.grid_id, first_candidate.grid_id), e.id, NULL, e.address_candidates, %(now)s, '', '{}'::jsonb, ''
FROM layers_event e
LEFT JOIN layers_address first_candidate ON first_candidate.code = e.address_candidates ->> 0
WHERE e.address_match IN ('unmatched', 'ambiguous') AND e.received_at >= %(since)s
  -- a report is asked about once: an answered or rejected task is not made again
  AND NOT EXISTS (SELECT 1 FROM layers_registrytask t WHERE t.event_id = e.id)
ON CONFLICT DO NOTHING
"""

# Stale: no report matched the address and no worker confirmed it since the cutoff, and no task
# about it is live or was answered since then. Ranked per grid, oldest confirmation first, and
# only as many as the grid has room for under the cap.
_STALE_TASKS_SQL = """
WITH stale AS (
    SELECT a.id, a.grid_id,
           row_number() OVER (PARTITION BY a.grid_id ORDER BY a.confirmed_at NULLS FIRST, a.id) AS rank
    FROM layers_address a
    WHERE a.grid_id IS NOT NULL
      AND (a.confirmed_at IS NULL OR a.confirmed_at < %(cutoff)s)
      AND NOT EXISTS (SELECT 1 FROM layers_event e
                      WHERE e.matched_address_id = a.id AND e.received_at >= %(cutoff)s)
      AND NOT EXISTS (SELECT 1 FROM layers_registrytask t
                      WHERE t.address_id = a.id AND t.kind = 'stale'
                        AND (t.status IN ('open', 'awaiting') OR t.answered_at >= %(cutoff)s))
), live AS (
    SELECT grid_id, count(*) AS n FROM layers_registrytask
    WHERE kind = 'stale' AND status IN ('open', 'awaiting') GROUP BY grid_id
)
INSERT INTO layers_registrytask (kind, status, grid_id, event_id, address_id, candidates, created_at, resolution,
                                 proposal, reason)
SELECT 'stale', 'open', s.grid_id, NULL, s.id, '[]'::jsonb, %(now)s, '', '{}'::jsonb, ''
FROM stale s LEFT JOIN live ON live.grid_id = s.grid_id
WHERE s.rank <= %(per_grid)s - coalesce(live.n, 0)
ON CONFLICT DO NOTHING
"""


def registry_tasks_generate(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Make the tasks due at ``now`` (default: now); returns how many of each kind were made.
    Idempotent: a second run at the same moment makes none."""
    now = now or timezone.now()
    made = {}
    with transaction.atomic(), connection.cursor() as cursor:
        since = now - dt.timedelta(days=settings.MINQING_REGISTRY_EVENT_DAYS)
        cursor.execute(_EVENT_TASKS_SQL, {"now": now, "since": since})
        made["events"] = cursor.rowcount
        cutoff = now - dt.timedelta(days=settings.MINQING_REGISTRY_STALE_DAYS)
        per_grid = settings.MINQING_REGISTRY_STALE_TASKS_PER_GRID
        cursor.execute(_STALE_TASKS_SQL, {"now": now, "cutoff": cutoff, "per_grid": per_grid})
        made["stale"] = cursor.rowcount
    return made


# --- answers --------------------------------------------------------------------------------------


def _point(proposal: dict, field: str = "location") -> Point | None:
    where = proposal.get(field)
    if where is None:
        return None
    if not isinstance(where, dict):
        raise InvalidInput(field, _("must be an object with lon and lat"))
    lon, lat = where.get("lon"), where.get("lat")
    for name, value, bound in (("lon", lon, 180.0), ("lat", lat, 90.0)):
        if isinstance(value, bool) or not isinstance(value, int | float) or abs(value) > bound:
            raise InvalidInput(
                f"{field}.{name}", _("expected a number in degrees within ±%(bound)s") % {"bound": f"{bound:g}"}
            )
    return Point(float(lon), float(lat), srid=4326)


def _fields(proposal: dict, *, required: tuple[str, ...] = ()) -> dict[str, str]:
    given = proposal.get("fields") or {}
    if not isinstance(given, dict):
        raise InvalidInput("fields", _("must be an object"))
    unknown = sorted(set(given) - set(ADDRESS_FIELDS))
    if unknown:
        raise InvalidInput(
            f"fields.{unknown[0]}",
            _("is not an address field; expected some of %(value)s") % {"value": ", ".join(ADDRESS_FIELDS)},
        )
    cleaned = {}
    for name, value in given.items():
        limit = Address._meta.get_field(name).max_length
        if not isinstance(value, str) or "\x00" in value:
            raise InvalidInput(f"fields.{name}", _("must be text"))
        if len(value.strip()) > limit:
            raise InvalidInput(f"fields.{name}", _("longer than %(limit)s characters") % {"limit": limit})
        cleaned[name] = value.strip()
    for name in required:
        if not cleaned.get(name):
            raise InvalidInput(f"fields.{name}", _("is required"))
    return cleaned


def _address_in(code: object, *, field: str, grid_ids: tuple[int, ...]) -> Address:
    """A standard address by code within the answering worker's grids (or any, for the system)."""
    if not isinstance(code, str) or not code.strip():
        raise InvalidInput(field, _("is required: the code of a standard address"))
    found = Address.objects.filter(code=code.strip())
    if grid_ids:
        found = found.filter(grid_id__in=grid_ids)
    address = found.first()
    if address is None:
        raise InvalidInput(field, _("no standard address %(code)s in your grids") % {"code": code.strip()[:40]})
    return address


def _distance_m(a: Point, b: Point) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_Distance(%s::geography, %s::geography)", [a.ewkt, b.ewkt])
        return float(cursor.fetchone()[0])


def _grid_of(point: Point) -> int | None:
    from ..geocoding.points import grid_locate

    return grid_locate(lon=point.x, lat=point.y).grid_small_id


def _check_proposal(task: RegistryTask, resolution: str, proposal: dict, grid_ids: tuple[int, ...]) -> dict:
    """The proposal as it will be applied (codes, points and fields checked); raises
    :class:`~layers.errors.InvalidInput` naming the field."""
    if resolution == R.CONFIRM:
        if task.kind == K.STALE:
            return {"address": task_address(task).code}
        code = proposal.get("address")
        # The geocoder's candidates may lie in other grids (that is what made it ambiguous).
        address = _address_in(code, field="address", grid_ids=() if code in task.candidates else grid_ids)
        return {"address": address.code}
    if resolution == R.CORRECT:
        point = _point(proposal)
        fields = _fields(proposal)
        if point is None and not fields:
            raise InvalidInput("location", _("a correction moves the point or changes a field; neither was given"))
        checked = {"address": task_address(task).code, "fields": fields}
        if point is not None:
            checked["location"] = {"lon": round(point.x, 7), "lat": round(point.y, 7)}
        return checked
    if resolution == R.MERGE:
        into = _address_in(proposal.get("into"), field="into", grid_ids=grid_ids)
        if into.pk == task.address_id:
            raise InvalidInput("into", _("an address cannot be merged into itself"))
        return {"address": task_address(task).code, "into": into.code}
    # add
    point = _point(proposal)
    if point is None:
        raise InvalidInput("location", _("is required: where the new address lies"))
    fields = _fields(proposal, required=("full_text", "road"))
    return {"fields": fields, "location": {"lon": round(point.x, 7), "lat": round(point.y, 7)}}


def _needs_approval(task: RegistryTask, resolution: str, proposal: dict) -> bool:
    """Whether a steward must approve (see the module docstring)."""
    if resolution == R.CONFIRM:
        return False
    if resolution in (R.MERGE, R.ADD):
        return True
    address = task_address(task)
    if any(proposal["fields"].get(name, getattr(address, name)) != getattr(address, name) for name in IDENTITY_FIELDS):
        return True
    if "location" in proposal:
        point = Point(proposal["location"]["lon"], proposal["location"]["lat"], srid=4326)
        if _distance_m(address.location, point) > settings.MINQING_REGISTRY_FREE_MOVE_M:
            return True
        if _grid_of(point) != address.grid_id:
            return True
    return False


def task_address(task: RegistryTask) -> Address:
    return Address.objects.get(pk=task.address_id)


def registry_task_answer(
    *, task: RegistryTask, reader: Reader, actor, resolution: str, proposal: dict, grid_ids: tuple[int, ...]
) -> RegistryTask:
    """Take a worker's answer to an open task (``grid_ids``: the worker's grids, where the
    addresses named must lie). Applied at once or left for a steward (status ``awaiting``);
    returns the task as it is afterwards. Raises :class:`~layers.errors.InvalidInput`,
    :class:`~layers.errors.ActionNotPermitted` and, for a task no longer open,
    :class:`~layers.errors.TransitionNotAllowed` (409)."""
    duty = REGISTRY_DUTIES["answer"]
    if not reader.may_take(duty):
        raise ActionNotPermitted("answer", task.status, roles=sorted(duty.roles))
    allowed = RESOLUTIONS[task.kind]
    if resolution not in allowed:
        raise InvalidInput(
            "resolution",
            _("must be one of %(value)s for this task, got %(resolution)s")
            % {"value": ", ".join(allowed), "resolution": f"{resolution!r}"},
        )
    if not isinstance(proposal, dict):
        raise InvalidInput("proposal", _("must be an object"))
    now = timezone.now()
    with transaction.atomic():
        current = RegistryTask.objects.select_for_update().get(pk=task.pk)
        if current.status != S.OPEN:
            raise TransitionNotAllowed(current.status, "answer", [])
        checked = _check_proposal(current, resolution, proposal, grid_ids)
        current.resolution, current.proposal = resolution, checked
        current.answered_by, current.answered_at = actor, now
        if _needs_approval(current, resolution, checked):
            current.status = S.AWAITING
            audit_record(
                action="registry.propose",
                target=f"registrytask:{current.pk}",
                detail=_detail(current),
                actor=actor_of(actor),
            )
        else:
            _apply(current, reader=reader, actor=actor, now=now)
            current.status = S.DONE
        current.save()
    return current


def registry_task_decide(*, task_id: int, reader: Reader, actor, decision: str, reason: str = "") -> RegistryTask:
    """A steward's decision on an answer that waits: ``approve`` applies it, ``reject`` leaves the
    registry as it was. The worker who answered never decides. Raises as
    :func:`registry_task_answer` does, and :class:`~layers.errors.RecordNotFound`."""
    duty = REGISTRY_DUTIES["decide"]
    if not reader.may_take(duty):
        raise ActionNotPermitted("decide", "awaiting", roles=sorted(duty.roles))
    if decision not in DECISIONS:
        raise InvalidInput(
            "decision", _("must be one of %(value)s, got %(decision)s") % {"value": ", ".join(DECISIONS),
                                                                           "decision": f"{decision!r}"}
        )  # fmt: skip
    if len(reason) > MAX_REASON:
        raise InvalidInput("reason", _("longer than %(limit)s characters") % {"limit": MAX_REASON})
    now = timezone.now()
    with transaction.atomic():
        current = RegistryTask.objects.select_for_update().filter(pk=task_id).first()
        if current is None:
            raise RecordNotFound(_("No registry task %(id)s.") % {"id": task_id}, parameter="task_id")
        if current.status != S.AWAITING:
            raise TransitionNotAllowed(current.status, decision, [])
        if reader.user_id is not None and current.answered_by_id == reader.user_id:
            raise ActionNotPermitted("decide", current.status, roles=sorted(duty.roles), author=True)
        current.decided_by, current.decided_at, current.reason = actor, now, reason.strip()
        if decision == "approve":
            _apply(current, reader=reader, actor=actor, now=now)
            current.status = S.DONE
        else:
            current.status = S.REJECTED
            audit_record(
                action="registry.reject",
                target=f"registrytask:{current.pk}",
                detail=_detail(current),
                actor=actor_of(actor),
            )
        current.save()
    return current


def _detail(task: RegistryTask) -> dict:
    return {"kind": task.kind, "resolution": task.resolution, "proposal": task.proposal, "event": task.event_id}


# --- applying a change ----------------------------------------------------------------------------


def _apply(task: RegistryTask, *, reader: Reader, actor, now: dt.datetime) -> None:
    """Write the answer of ``task`` into the registry (and the report it is about), audited."""
    proposal = task.proposal
    if task.resolution == R.ADD:
        address = _address_add(task, proposal, now=now)
    elif task.resolution == R.MERGE:
        address = _address_merge(proposal["address"], proposal["into"], now=now)
    else:
        address = Address.objects.select_for_update().get(code=proposal["address"])
        before = {name: getattr(address, name) for name in proposal.get("fields", {})}
        if task.resolution == R.CORRECT:
            for name, value in proposal["fields"].items():
                setattr(address, name, value)
            if "location" in proposal:
                before["location"] = [address.location.x, address.location.y]
                address.location = Point(proposal["location"]["lon"], proposal["location"]["lat"], srid=4326)
        address.confirmed_at = now
        address.save()
        if task.resolution == R.CORRECT and "location" in proposal:
            _relink(address)
        proposal = {**proposal, "before": before}
    if task.event_id is not None:
        _event_place(task.event_id, address, reader=reader, actor=actor)
    audit_record(
        action=f"registry.{task.resolution}",
        target=f"address:{address.code}",
        detail={**_detail(task), "proposal": proposal, "task": task.pk},
        actor=actor_of(actor),
    )


def _relink(address: Address) -> None:
    link(ADDRESS, where="t.id = %s", params=[address.pk])
    link(DWELLING, where="t.address_id = %s", params=[address.pk])
    link(PERSON, where="t.address_id = %s", params=[address.pk])


def _address_add(task: RegistryTask, proposal: dict, *, now: dt.datetime) -> Address:
    grid = Grid.objects.filter(pk=task.grid_id).values_list("code", flat=True).first() or "X"
    fields = proposal["fields"]
    address = Address(
        code=f"{grid}R{task.pk:06d}"[:32],
        location=Point(proposal["location"]["lon"], proposal["location"]["lat"], srid=4326),
        confirmed_at=now,
        **fields,
    )
    address.full_clean(exclude=["grid", "grid_medium", "grid_large", "community", "street", "building"])
    address.save()
    link(ADDRESS, where="t.id = %s", params=[address.pk])
    address.refresh_from_db()
    return address


def _address_merge(code: str, into_code: str, *, now: dt.datetime) -> Address:
    """Move everything that points at the duplicate ``code`` to ``into_code``, then delete it."""
    duplicate = Address.objects.select_for_update().get(code=code)
    into = Address.objects.select_for_update().get(code=into_code)
    Dwelling.objects.filter(address_id=duplicate.pk).update(address_id=into.pk)
    Person.objects.filter(address_id=duplicate.pk).update(address_id=into.pk)
    Unit.objects.filter(address_id=duplicate.pk).update(address_id=into.pk)
    Event.objects.filter(matched_address_id=duplicate.pk).update(matched_address_id=into.pk)
    # Live tasks about the duplicate are settled by the merge.
    RegistryTask.objects.filter(address_id=duplicate.pk, status=S.OPEN).update(status=S.DONE, answered_at=now)
    link(DWELLING, where="t.address_id = %s", params=[into.pk])
    link(PERSON, where="t.address_id = %s", params=[into.pk])
    duplicate.delete()
    into.confirmed_at = now
    into.save(update_fields=["confirmed_at"])
    return into


def _event_place(event_id: int, address: Address, *, reader: Reader, actor) -> None:
    """The report meant ``address``: match it, and place an unplaced report at its point (the
    closed loop's own ``locate`` step, so it is dispatched like any located report)."""
    from .events import event_act

    event = Event.objects.get(pk=event_id)
    if event.location is None and event.status != Event.Status.CLOSED:
        # The worker holds the locate duty; a steward approving an addition acts for the system.
        who = reader if reader.has_any_role(*REGISTRY_DUTIES["answer"].roles) else SYSTEM
        event_act(
            event=event,
            action="locate",
            reader=who,
            actor=actor,
            reason=_("Address confirmed on the spot: %(text)s") % {"text": address.full_text},
            data={"lon": address.location.x, "lat": address.location.y, "crs": "wgs84"},
        )
    # After the locate step, which places by the point and clears the match it had.
    Event.objects.filter(pk=event_id).update(matched_address_id=address.pk)
