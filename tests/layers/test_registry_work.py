"""The registry's upkeep, the building sheet and the grid workers' visits on the demo year.

Registry tasks are made in SQL from unmatched reports and unconfirmed addresses, answered by the
grid's worker (small changes at once, the rest after a steward's approval, never their own),
every applied change audited; the match rate per month agrees with the events; the building
sheet (楼盘表) holds every dwelling of its building and shows care tags only to the roles that may
see them (an analyst's sheet does not change when a tag does); visits are stored once per client
id and the duty figures agree with counts made straight from the tables."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection

from layers.errors import ActionNotPermitted, InvalidInput, TransitionNotAllowed
from layers.models import Address, AuditEntry, Building, Dwelling, Event, Grid, Person, RegistryTask, Visit
from layers.protection.access import SYSTEM, reader_of
from layers.protection.audit import audit_flush
from layers.selectors.buildings import building_sheets
from layers.selectors.duty import duty_figures
from layers.selectors.registry_tasks import grid_tasks, registry_match_rate
from layers.services import registry_tasks as tasks_service
from layers.services.events import event_create
from layers.services.registry_tasks import registry_task_answer, registry_task_decide, registry_tasks_generate
from layers.services.visits import visit_record
from tests import worlds
from tests.worlds.demo import END

pytestmark = pytest.mark.django_db

#: The demo year ends here; "now" of every test.


@pytest.fixture
def demo_year(settings):
    return worlds.demo_year(end=END, days=365, logins=True)


def _count(sql: str, params: list | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()[0]


def _stale_task(grid: Grid) -> RegistryTask:
    return RegistryTask.objects.filter(grid=grid, kind="stale", status="open").order_by("id").first()


def test_tasks_are_made_in_sql_once(demo_year, settings):
    """Unmatched reports of the last 90 days become tasks for the grid of their first candidate;
    unconfirmed addresses at most the cap per grid, none an event matched in the year; a second
    run makes nothing."""
    made = registry_tasks_generate(now=END)
    since = END - dt.timedelta(days=settings.MINQING_REGISTRY_EVENT_DAYS)
    unmatched = Event.objects.filter(address_match__in=["unmatched", "ambiguous"], received_at__gte=since).count()
    assert unmatched > 0 and made["events"] == unmatched
    for task in RegistryTask.objects.filter(kind="unmatched"):
        event = Event.objects.get(pk=task.event_id)
        assert task.grid_id == Address.objects.get(code=event.address_candidates[0]).grid_id
    per_grid = _count(
        "SELECT max(n) FROM (SELECT count(*) n FROM layers_registrytask WHERE kind='stale' GROUP BY grid_id) x"
    )
    assert made["stale"] > 0 and per_grid == settings.MINQING_REGISTRY_STALE_TASKS_PER_GRID
    recently_matched = _count(
        """SELECT count(*) FROM layers_registrytask t JOIN layers_event e ON e.matched_address_id = t.address_id
           WHERE t.kind = 'stale' AND e.received_at >= %s""",
        [END - dt.timedelta(days=365)],
    )
    assert recently_matched == 0
    assert registry_tasks_generate(now=END) == {"events": 0, "stale": 0}


def test_worker_confirms_the_address_of_an_unplaced_report(demo_year):
    """The report is matched and placed at the address's point (and so dispatched), the address
    confirmed, the change audited."""
    registry_tasks_generate(now=END)
    worker, grid = demo_year.users["gridworker"], demo_year.grid
    task = RegistryTask.objects.filter(grid=grid, kind="unmatched").first()
    if task is None:  # the demo's unplaced reports may all lie elsewhere: give one to this grid
        task = RegistryTask.objects.filter(kind="unmatched").first()
        address = Address.objects.filter(grid=grid).exclude(room="").first()
        Event.objects.filter(pk=task.event_id).update(address_candidates=[address.code])
        RegistryTask.objects.filter(pk=task.pk).update(grid=grid, candidates=[address.code])
        task.refresh_from_db()
    code = task.candidates[0]
    done = registry_task_answer(
        task=task, reader=reader_of(worker), actor=worker, resolution="confirm", proposal={"address": code},
        grid_ids=(grid.pk,),
    )  # fmt: skip
    assert done.status == "done"
    event = Event.objects.get(pk=task.event_id)
    address = Address.objects.get(code=code)
    assert event.matched_address_id == address.pk and event.location.equals_exact(address.location, 1e-9)
    assert event.status == "assigned" and event.grid_id == address.grid_id
    assert address.confirmed_at is not None
    audit_flush()
    entry = AuditEntry.objects.get(action="registry.confirm")
    assert entry.target == f"address:{code}" and entry.actor == "gridworker"
    with pytest.raises(TransitionNotAllowed):
        registry_task_answer(task=task, reader=reader_of(worker), actor=worker, resolution="confirm",
                             proposal={"address": code}, grid_ids=(grid.pk,))  # fmt: skip


def test_small_correction_at_once_large_one_after_a_steward(demo_year):
    registry_tasks_generate(now=END)
    users, grid = demo_year.users, demo_year.grid
    worker, steward = users["gridworker"], users["steward"]
    first, second = RegistryTask.objects.filter(grid=grid, kind="stale", status="open").order_by("id")[:2]
    near = Address.objects.get(pk=first.address_id)
    moved = {"lon": near.location.x + 0.00005, "lat": near.location.y}  # about 4.5 m east
    done = registry_task_answer(
        task=first, reader=reader_of(worker), actor=worker, resolution="correct",
        proposal={"location": moved, "fields": {"compound_name": "幸福家园"}}, grid_ids=(grid.pk,),
    )  # fmt: skip
    assert done.status == "done"
    near.refresh_from_db()
    assert near.compound_name == "幸福家园" and abs(near.location.x - moved["lon"]) < 1e-7
    far = Address.objects.get(pk=second.address_id)
    waiting = registry_task_answer(
        task=second, reader=reader_of(worker), actor=worker, resolution="correct",
        proposal={"location": {"lon": far.location.x + 0.003, "lat": far.location.y}}, grid_ids=(grid.pk,),
    )  # fmt: skip
    assert waiting.status == "awaiting"
    assert Address.objects.get(pk=far.pk).location.equals(far.location)
    with pytest.raises(ActionNotPermitted):
        registry_task_decide(task_id=second.pk, reader=reader_of(worker), actor=worker, decision="approve")
    approved = registry_task_decide(task_id=second.pk, reader=reader_of(steward), actor=steward, decision="approve")
    assert approved.status == "done" and approved.decided_by_id == steward.pk
    assert abs(Address.objects.get(pk=far.pk).location.x - (far.location.x + 0.003)) < 1e-7
    audit_flush()
    assert list(AuditEntry.objects.filter(action__startswith="registry.").values_list("action", flat=True)) == [
        "registry.correct", "registry.propose", "registry.correct",
    ]  # fmt: skip


def test_merge_moves_households_then_deletes_the_duplicate(demo_year):
    registry_tasks_generate(now=END)
    users, grid = demo_year.users, demo_year.grid
    task = RegistryTask.objects.filter(grid=grid, kind="stale", status="open", address__dwellings__isnull=False).first()
    duplicate = Address.objects.get(pk=task.address_id)
    into = Address.objects.filter(grid=grid).exclude(pk=duplicate.pk).first()
    households = set(Dwelling.objects.filter(address=duplicate).values_list("id", flat=True))
    worker, steward = users["gridworker"], users["steward"]
    answered = registry_task_answer(task=task, reader=reader_of(worker), actor=worker, resolution="merge",
                                    proposal={"into": into.code}, grid_ids=(grid.pk,))  # fmt: skip
    assert answered.status == "awaiting"
    registry_task_decide(task_id=task.pk, reader=reader_of(steward), actor=steward, decision="approve")
    assert not Address.objects.filter(pk=duplicate.pk).exists()
    assert households <= set(Dwelling.objects.filter(address=into).values_list("id", flat=True))
    assert not Person.objects.filter(address_id=duplicate.pk).exists()


def test_add_the_missing_address_of_a_report(demo_year):
    """A report whose text names no standard address: the worker adds it, a steward approves,
    the new address is linked to its grid and the report placed there."""
    users, grid = demo_year.users, demo_year.grid
    event, _ = event_create(channel="hotline", external_id="T-ADD-1", category_code="hazard.fire",
                            description="楼道堆放杂物", address="新建巷88号")  # fmt: skip
    assert event.address_match == "unmatched" and event.needs_location
    Event.objects.filter(pk=event.pk).update(grid=grid)  # the hotline operator named the grid
    registry_tasks_generate(now=dt.datetime.now(dt.UTC))
    task = RegistryTask.objects.get(event_id=event.pk)
    point = grid.boundary.point_on_surface
    worker, steward = users["gridworker"], users["steward"]
    with pytest.raises(InvalidInput, match="fields.road: is required"):
        registry_task_answer(task=task, reader=reader_of(worker), actor=worker, resolution="add",
                             proposal={"location": {"lon": point.x, "lat": point.y}, "fields": {"full_text": "x"}},
                             grid_ids=(grid.pk,))  # fmt: skip
    proposal = {"location": {"lon": point.x, "lat": point.y}, "fields": {"road": "新建巷", "door_number": "88号",
                                                                         "full_text": "城关区新建巷88号"}}  # fmt: skip
    registry_task_answer(task=task, reader=reader_of(worker), actor=worker, resolution="add", proposal=proposal,
                         grid_ids=(grid.pk,))  # fmt: skip
    registry_task_decide(task_id=task.pk, reader=reader_of(steward), actor=steward, decision="approve")
    added = Address.objects.get(full_text="城关区新建巷88号")
    assert added.grid_id == grid.pk and added.confirmed_at is not None
    event.refresh_from_db()
    assert event.matched_address_id == added.pk and not event.needs_location


def test_ambiguous_verdict_and_candidates_are_kept(monkeypatch, demo_year):
    """An answer the matcher calls ambiguous is stored as such with its candidates' codes."""
    from layers.geocoding.addresses import GeocodeAnswer, GeocodeCandidate

    codes = list(Address.objects.order_by("code").values_list("code", flat=True)[:2])
    answer = GeocodeAnswer(query="q", normalized="q", parsed={}, ambiguous=True, no_match_reason="ambiguous",
                           candidates=[GeocodeCandidate(c, c, 90.0, "room", 103.8, 36.0, {}) for c in codes])  # fmt: skip
    monkeypatch.setattr("layers.services.events.address_geocode", lambda **kwargs: answer)
    event, _ = event_create(channel="web", external_id="T-AMB-1", category_code="hazard.fire", description="漏水",
                            address="幸福家园3号楼")  # fmt: skip
    assert (event.address_match, event.address_candidates, event.needs_location) == ("ambiguous", codes, True)


def test_match_rate_per_month_agrees_with_the_events(demo_year):
    since, until = END - dt.timedelta(days=365), END
    rows = registry_match_rate(scope=SYSTEM.scope, since=since, until=until)
    assert len(rows) in (12, 13)
    total = sum(r["texts"] for r in rows)
    assert (
        total == Event.objects.exclude(address_match="").filter(received_at__gte=since, received_at__lt=until).count()
    )
    last = rows[-1]
    assert last["unmatched"] > 0 and last["rate"] == round(last["matched"] / last["texts"], 4) < 1


def test_building_sheet_holds_every_dwelling_and_masks_care_tags(demo_year):
    building = Building.objects.filter(dwellings__residents__care_tags__len__gt=0).distinct().first()
    analyst = reader_of(demo_year.users["analyst"])
    assert not analyst.reads_care_tags and reader_of(demo_year.users["gridworker"]).reads_care_tags
    full = building_sheets(building_ids=[building.pk], care=True)[building.pk]
    cells = [cell for floor in full["floors"] for cell in floor["cells"]]
    assert sorted(c["code"] for c in cells) == sorted(
        Dwelling.objects.filter(building=building).values_list("code", flat=True)
    )
    assert sum(c["household_size"] for c in cells) == Person.objects.filter(dwelling__building=building).count()
    assert any(c["care_tags"] for c in cells)
    masked = building_sheets(building_ids=[building.pk], care=False)[building.pk]
    assert all("care_tags" not in c for floor in masked["floors"] for c in floor["cells"])
    # Nothing the analyst sees depends on the tags: clear them all, the answer is the same.
    ids = list(Person.objects.filter(dwelling__building=building).values_list("id", flat=True))
    Person.objects.filter(pk__in=ids).update(care_tags=[])
    assert building_sheets(building_ids=[building.pk], care=False)[building.pk] == masked
    floors = [f["floor"] for f in full["floors"]]
    assert floors == sorted(floors, key=lambda f: int(f) if f.isdigit() else -1, reverse=True)


def test_visits_once_per_client_id_and_duty_figures_against_sql(demo_year, settings):
    worker, grid = demo_year.users["gridworker"], demo_year.grid
    reader = reader_of(worker)
    mine = {"id": grid.pk, "code": grid.code}
    homes = list(Dwelling.objects.filter(grid=grid, use="residential").order_by("code")[:3])
    point = grid.boundary.point_on_surface
    now = dt.datetime.now(dt.UTC)
    client_ids = [str(uuid.uuid4()) for _ in range(4)]
    for client_id, home in zip(client_ids, [homes[0], homes[0], homes[1], homes[2]], strict=True):
        visit, created = visit_record(reader=reader, actor=worker, grid=mine, client_id=client_id, visited_at=now,
                                      lon=point.x, lat=point.y, source="gps", accuracy_m=12, household=home.code,
                                      notes="独居老人身体良好，电话13912345678")  # fmt: skip
        assert created
    again, created = visit_record(reader=reader, actor=worker, grid=mine, client_id=client_ids[0], visited_at=now,
                                  lon=point.x, lat=point.y, source="gps", accuracy_m=12, notes="x")  # fmt: skip
    assert not created and Visit.objects.count() == 4
    assert "13912345678" not in again.notes
    assert Address.objects.get(pk=homes[0].address_id).confirmed_at is not None
    with pytest.raises(InvalidInput, match="location.accuracy_m: a fix accurate to 500 m is too vague"):
        visit_record(reader=reader, actor=worker, grid=mine, client_id=str(uuid.uuid4()), visited_at=now,
                     lon=point.x, lat=point.y, source="gps", accuracy_m=500, notes="x")  # fmt: skip
    month = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    figures = duty_figures(scope=SYSTEM.scope, month=month)
    row = next(r for r in figures["results"] if r["grid"]["code"] == grid.code)
    assert (row["visits"], row["households_visited"], row["worker"]) == (4, 3, "gridworker")
    assert row["households"] == Dwelling.objects.filter(grid=grid, use="residential").count()
    # The demo year's month: reports found on patrol and received, and the medians, from SQL.
    figures = duty_figures(scope=SYSTEM.scope, month=dt.date(2025, 5, 1))
    row = next(r for r in figures["results"] if r["grid"]["code"] == grid.code)
    start, end = dt.datetime(2025, 5, 1, tzinfo=END.tzinfo), END
    events = Event.objects.filter(grid=grid, received_at__gte=start, received_at__lt=end)
    assert row["found_on_patrol"] == events.filter(channel="grid_patrol").count()
    assert row["received"] == events.exclude(channel="grid_patrol").count()
    hours = sorted((e.resolved_at - e.received_at).total_seconds() / 3600 for e in events if e.resolved_at)
    if hours:
        middle = len(hours) // 2
        median = hours[middle] if len(hours) % 2 else (hours[middle - 1] + hours[middle]) / 2
        assert row["resolution_hours_median"] == round(median, 1)


def test_grid_tasks_lists_reports_first(demo_year):
    registry_tasks_generate(now=END)
    grid = demo_year.grid
    listed = grid_tasks(grid_id=grid.pk, with_description=False)
    kinds = [t["kind"] for t in listed]
    assert kinds == sorted(kinds, key=lambda k: k == "stale") and all(t["event"] is None or "description" in t["event"]
                                                                         for t in listed)  # fmt: skip
    assert tasks_service.RESOLUTIONS["stale"] == ("confirm", "correct", "merge")
