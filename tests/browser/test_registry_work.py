"""The grid worker's phone (390×844) on the demo year: an address check done (confirmed), the
building sheet opened from a building on the map, a visit recorded and sent; the stewards' page
with the match rate. axe-core finds no serious or critical violation on either page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command

from layers.models import Address, Building, RegistryTask, Visit
from layers.services.registry_tasks import registry_tasks_generate
from layers.taxonomy import taxonomy_seed

PHONE = (390, 844)
END = dt.datetime(2025, 6, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@pytest.fixture
def demo_year(demo_users):
    call_command("generate_demo_city", "--scale", "tiny", "--seed", "1", verbosity=0)
    taxonomy_seed()
    call_command("generate_demo_events", "--days", "365", "--seed", "1", "--end", END.isoformat(), verbosity=0)
    demo_users()
    registry_tasks_generate(now=END)


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
