"""The grid worker's phone (390×844) on the demo year: an address check done (confirmed), the
building sheet opened from a building on the map, a visit recorded and sent; the stewards' page
with the match rate. axe-core finds no serious or critical violation on either page."""

from __future__ import annotations

import pytest

from layers.models import Address, Building, RegistryTask, Visit
from tests import worlds
from tests.worlds.demo import END

PHONE = (390, 844)


@pytest.fixture
def demo_year(transactional_db):
    return worlds.demo_year(end=END, days=365, logins=True, tasks_at=END)


def test_a_task_done_a_building_sheet_and_a_visit_on_the_phone(demo_year, open_page, login, axe, screenshot):
    page = open_page(*PHONE)
    login(page, "gridworker", next="/grid/")
    page.wait_for_selector("body[data-ready=true]")
    # An address check: confirm the first unconfirmed address.
    page.click(".grid-tab[data-tab=tasks]")
    card = page.locator(".grid-task[data-kind=stale]").first
    task_id = int(card.get_attribute("data-task"))
    card.locator("button.grid-button-primary").click()
    # Kept in the queue first (the toast says so), then sent.
    page.wait_for_selector("#toast:not(.mq-hidden)")
    page.wait_for_function("() => MinqingGrid.state.queue.length === 0")
    task = RegistryTask.objects.get(pk=task_id)
    assert task.status == "done" and Address.objects.get(pk=task.address_id).confirmed_at is not None
    screenshot(page, "grid-tasks")
    # The building sheet from a building on the map.
    page.click(".grid-tab[data-tab=map]")
    code = page.evaluate("Object.keys(MinqingGrid.state.pkg.sheets)[0]")
    page.evaluate(f"window.dispatchEvent(new CustomEvent('minqing:sheet', {{detail: {code!r}}}))")
    dialog = page.locator("#sheet-dialog")
    dialog.wait_for(state="visible")
    building = Building.objects.get(code=code)
    assert dialog.locator(".sheet-cell").count() == building.dwellings.count()
    screenshot(page, "grid-building-sheet")
    assert axe(page) == []
    page.click("#sheet-close")
    # A visit to a household, placed at its building.
    page.click(".grid-tab[data-tab=visits]")
    household = page.locator("#visit-household option").nth(1).get_attribute("value")
    page.select_option("#visit-household", household)
    page.fill("#visit-notes", "老人身体良好，已提醒冬季取暖安全")
    page.click("#visit-here")
    assert page.locator("#visit-message").text_content() == ""
    page.click("#visit-submit")
    assert page.locator("#visit-message").text_content() == ""
    page.wait_for_selector("#visits-list .grid-visit")
    page.wait_for_function("() => MinqingGrid.state.queue.length === 0")
    visit = Visit.objects.get()
    assert visit.dwelling.code == household and visit.location_source == "tap"
    assert axe(page) == []
    screenshot(page, "grid-visits")


def test_the_stewards_page_shows_the_match_rate(demo_year, open_page, login, axe):
    page = open_page(1280, 800)
    login(page, "steward", next="/registry/")
    assert page.locator(".rg-rates tbody tr").count() == 12
    assert axe(page) == []


# --- the other answers: move the point, merge duplicates, add the missing address ----------------

TABLET = (1024, 768)


def _my_grid_unmatched_task() -> RegistryTask:
    """The demo year's unmatched reports lie in other grids: hand one to the grid worker's grid."""
    task = RegistryTask.objects.filter(kind="unmatched").order_by("id").first()
    stale = RegistryTask.objects.filter(kind="stale").order_by("id").first()
    RegistryTask.objects.filter(pk=task.pk).update(grid_id=stale.grid_id)
    return task


def _metres(a, b) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_Distance(%s::geography, %s::geography)", [a.ewkt, b.ewkt])
        return cursor.fetchone()[0]


def _sent(page, task_id: int) -> None:
    """Wait until the answer to ``task_id`` was sent: done (its card left) or waiting for a steward."""
    page.wait_for_function(
        """(id) => MinqingGrid.state.queue.length === 0
                 && !document.querySelector(`.grid-task[data-task='${id}']:not([data-state=awaiting])`)""",
        arg=task_id,
    )


def test_move_merge_and_add_on_the_phone(demo_year, open_page, login, axe, screenshot, problems):
    event_task = _my_grid_unmatched_task()
    page = open_page(*PHONE)
    login(page, "gridworker", next="/grid/")
    page.wait_for_selector("body[data-ready=true]")
    page.click(".grid-tab[data-tab=tasks]")
    stale = page.locator(".grid-task[data-kind=stale]")

    # A small move by the nudges (keyboard-reachable buttons): 15 m north applies at once.
    card = stale.nth(0)
    task_id = int(card.get_attribute("data-task"))
    before = Address.objects.get(pk=RegistryTask.objects.get(pk=task_id).address_id).location
    card.locator("button[data-mode=move]").click()
    for _ in range(3):
        page.click(f"#task-{task_id}-nudge-north")
    where = page.locator(f"#task-{task_id}-where")
    assert where.get_attribute("data-approval") == "now"
    assert "15" in where.text_content() and "立即生效" in where.text_content()
    assert axe(page) == []
    screenshot(page, "grid-task-move")
    page.locator(f".grid-task[data-task='{task_id}'] button[data-do=send]").click()
    _sent(page, task_id)
    task = RegistryTask.objects.get(pk=task_id)
    moved = Address.objects.get(pk=task.address_id)
    assert task.status == "done" and task.resolution == "correct"
    assert 14 < _metres(before, moved.location) < 16 and moved.location.y > before.y
    assert page.locator(f".grid-task[data-task='{task_id}']").count() == 0

    # A big move by a tap on the map: the map shows for the tap, the form comes back, a steward decides.
    card = stale.nth(0)
    task_id = int(card.get_attribute("data-task"))
    address = Address.objects.get(pk=RegistryTask.objects.get(pk=task_id).address_id)
    card.locator("button[data-mode=move]").click()
    page.locator(f".grid-task[data-task='{task_id}'] button[data-do=tap]").click()
    page.wait_for_selector("#grid-map", state="visible")
    lat, lon = address.location.y + 0.0008, address.location.x
    page.evaluate(f"void MinqingGrid.map.setView([{lat}, {lon}], 17, {{animate: false}})")
    point = page.evaluate(f"MinqingGrid.map.latLngToContainerPoint([{lat}, {lon}])")
    box = page.locator("#grid-map").bounding_box()
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    where = page.locator(f"#task-{task_id}-where")
    where.wait_for(state="visible")
    assert where.get_attribute("data-approval") == "steward"
    assert "数据管理员" in where.text_content()
    page.locator(f".grid-task[data-task='{task_id}'] button[data-do=send]").click()
    _sent(page, task_id)
    task = RegistryTask.objects.get(pk=task_id)
    assert task.status == "awaiting" and task.resolution == "correct"
    assert abs(task.proposal["location"]["lat"] - lat) < 2e-5
    assert Address.objects.get(pk=address.pk).location.equals_exact(address.location, 1e-9)
    page.locator(f".grid-task[data-task='{task_id}'][data-state=awaiting]").wait_for()

    # Merge: the nearest other addresses of my grid to choose from; a steward decides.
    card = stale.nth(1)
    task_id = int(card.get_attribute("data-task"))
    card.locator("button[data-mode=merge]").click()
    card = page.locator(f".grid-task[data-task='{task_id}']")
    card.locator("button[data-do=send]").click()
    assert page.locator(f"#task-{task_id}-into-error").text_content() == "请选择要保留的地址。"
    assert card.locator("input[type=radio]").count() == 8
    kept = card.locator("input[type=radio]").first.get_attribute("value")
    card.locator("label.grid-choice").first.click()
    screenshot(page, "grid-task-merge")
    card.locator("button[data-do=send]").click()
    _sent(page, task_id)
    task = RegistryTask.objects.get(pk=task_id)
    assert task.status == "awaiting" and task.resolution == "merge" and task.proposal["into"] == kept

    # Add the missing address of a report: required fields are said next to them, the place by a tap.
    card = page.locator(f".grid-task[data-task='{event_task.pk}']")
    card.locator("button[data-mode=add]").click()
    # A sync redraws the list while someone types: the field keeps its text, caret and selection.
    full_text = f"task-{event_task.pk}-full_text"
    page.locator(f"#{full_text}").evaluate("(node) => { node.focus(); node.setSelectionRange(1, 3); }")
    page.evaluate("window.dispatchEvent(new CustomEvent('minqing:queue'))")
    focused = "[document.activeElement.id, document.activeElement.selectionStart, document.activeElement.selectionEnd]"
    assert page.evaluate(focused) == [full_text, 1, 3]
    page.fill(f"#{full_text}", "")
    card.locator("button[data-do=send]").click()
    assert page.locator(f"#task-{event_task.pk}-road-error").text_content() == "道路为必填项。"
    assert page.locator(f"#task-{event_task.pk}-full_text").get_attribute("aria-invalid") == "true"
    assert page.locator(f"#task-{event_task.pk}-location-error").text_content() != ""
    page.fill(f"#task-{event_task.pk}-road", "民主西路")
    page.fill(f"#task-{event_task.pk}-door_number", "88号")
    page.fill(f"#task-{event_task.pk}-full_text", "城关区民主西路88号")
    card.locator("button[data-do=tap]").click()
    lat, lon = address.location.y - 0.0005, address.location.x + 0.0005
    page.evaluate(f"void MinqingGrid.map.setView([{lat}, {lon}], 17, {{animate: false}})")
    point = page.evaluate(f"MinqingGrid.map.latLngToContainerPoint([{lat}, {lon}])")
    box = page.locator("#grid-map").bounding_box()
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    page.locator(f"#task-{event_task.pk}-where").wait_for(state="visible")
    assert axe(page) == []
    screenshot(page, "grid-task-add")
    card.locator("button[data-do=send]").click()
    _sent(page, event_task.pk)
    task = RegistryTask.objects.get(pk=event_task.pk)
    assert task.status == "awaiting" and task.resolution == "add"
    assert task.proposal["fields"] == {"road": "民主西路", "door_number": "88号", "full_text": "城关区民主西路88号"}
    assert abs(task.proposal["location"]["lon"] - lon) < 2e-5

    # The steward's queue holds the three proposals.
    from layers.protection.scope import CITY
    from layers.selectors.registry_tasks import tasks_awaiting

    assert len(tasks_awaiting(scope=CITY, with_description=False)) == 3


def test_a_refused_answer_comes_back_with_the_message_at_its_field(demo_year, open_page, login, problems):
    """An answer the server refuses (400: a road longer than the registry takes, as a tablet
    with an older page could send) returns to its form, the message under the field."""
    problems.allow("400 POST")
    problems.allow("status of 400")
    event_task = _my_grid_unmatched_task()
    page = open_page(*PHONE)
    login(page, "gridworker", next="/grid/")
    page.wait_for_selector("body[data-ready=true]")
    page.click(".grid-tab[data-tab=tasks]")
    page.evaluate(
        """(taskId) => { const id = MinqingGrid.uuid(); return MinqingGrid.queuePut({
             client_id: id, user: MinqingGrid.username, kind: "task", task_id: taskId,
             created_at: new Date().toISOString(), url: MinqingGrid.urls.taskAnswer.replace("{id}", taskId),
             state: "pending", label: "add",
             body: {client_id: id, resolution: "add", proposal: {fields: {road: "路".repeat(500), full_text: "某地"},
                    location: {lon: 103.83, lat: 36.06}}}}).then(MinqingGrid.sync); }""",
        event_task.pk,
    )
    error = page.locator(f"#task-{event_task.pk}-road-error")
    error.wait_for(state="visible")
    assert "fields.road" in error.text_content()
    assert page.locator(f"#task-{event_task.pk}-road").get_attribute("aria-invalid") == "true"
    card = page.locator(f".grid-task[data-task='{event_task.pk}']")
    assert card.get_attribute("data-state") == "refused"
    # Corrected and sent again: the refused answer gives way to the new one.
    page.fill(f"#task-{event_task.pk}-road", "民主西路")
    card.locator("button[data-do=send]").click()
    _sent(page, event_task.pk)
    assert RegistryTask.objects.get(pk=event_task.pk).proposal["fields"]["road"] == "民主西路"


def test_the_marker_is_dragged_on_a_tablet(demo_year, open_page, login, axe):
    page = open_page(*TABLET)
    login(page, "gridworker", next="/grid/")
    page.wait_for_selector("body[data-ready=true]")
    page.click(".grid-tab[data-tab=tasks]")
    card = page.locator(".grid-task[data-kind=stale]").first
    task_id = int(card.get_attribute("data-task"))
    address = Address.objects.get(pk=RegistryTask.objects.get(pk=task_id).address_id)
    card.locator("button[data-mode=move]").click()
    page.evaluate(f"void MinqingGrid.map.setView([{address.location.y}, {address.location.x}], 18, {{animate: false}})")
    marker = page.locator(".grid-move-marker").bounding_box()
    x, y = marker["x"] + marker["width"] / 2, marker["y"] + marker["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 40, y, steps=5)
    page.mouse.move(x + 120, y, steps=5)
    page.mouse.up()
    # About 58 m east at zoom 18: more than the free move, so a steward decides.
    where = page.locator(f"#task-{task_id}-where")
    assert where.get_attribute("data-approval") == "steward"
    assert axe(page) == []
    page.locator(f".grid-task[data-task='{task_id}'] button[data-do=send]").click()
    _sent(page, task_id)
    task = RegistryTask.objects.get(pk=task_id)
    assert task.status == "awaiting" and task.resolution == "correct"
    assert task.proposal["location"]["lon"] > address.location.x
    assert abs(task.proposal["location"]["lat"] - address.location.y) < 2e-5


# --- the wall opens the building sheet --------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (3840, 2160)])
def test_the_wall_opens_a_buildings_sheet(demo_year, open_page, login, screenshot, width, height):
    page = open_page(width, height)
    login(page, "command", next="/wall/")
    building = Building.objects.filter(dwellings__isnull=False).distinct().order_by("code").first()
    center = building.footprint.point_on_surface
    page.evaluate(f"void MinqingWall.map.setView([{center.y}, {center.x}], 17, {{animate: false}})")
    point = page.evaluate(f"MinqingWall.map.latLngToContainerPoint([{center.y}, {center.x}])")
    box = page.locator("#wall-map").bounding_box()
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    sheet = page.locator("#wall-sheet")
    sheet.wait_for(state="visible")
    assert sheet.get_attribute("data-building") == building.code
    dwellings = building.dwellings.select_related("address")
    floors = {d.address.floor if d.address else "" for d in dwellings}
    assert sheet.locator(".sheet-matrix tr").count() == len(floors)
    assert sheet.locator(".sheet-cell").count() == len(dwellings)
    # Occupancy in words, not codes; readable on the wall's own scale.
    assert "occupied" not in sheet.locator(".sheet-matrix").text_content()
    size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('#wall-sheet .sheet-cell')).fontSize)")
    assert size >= (14 if width < 3000 else 28)
    frame = sheet.bounding_box()
    assert frame["x"] >= box["x"] and frame["y"] + frame["height"] <= box["y"] + box["height"] + 1
    screenshot(page, f"wall-building-sheet-{width}")
    # Not modal: the wall goes on (its controls answer while the sheet shows) and rotates its cases.
    assert page.evaluate("document.querySelector('#wall-sheet').matches(':modal')") is False
    page.click("#family-switch button[data-family=hazard]")
    assert page.locator("#family-switch button[data-family=hazard]").get_attribute("aria-pressed") == "true"
    page.evaluate("MinqingWall.rotateCases()")
    page.click("#wall-sheet-close")
    sheet.wait_for(state="hidden")
