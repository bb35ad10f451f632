"""The analyst's workflows on the tiny demo city: sorting and filtering by keyboard alone, ranking
labels that tell small grids apart, an inverted date range said in the reader's language with no
stale figures, a preview map fitted to the data, and an events export an analyst can group by
street, community and grid."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.contrib.gis.db.models import Extent
from django.core.management import call_command
from playwright.sync_api import expect

from layers.models import Event, Grid
from layers.services.users import demo_users_ensure
from layers.taxonomy import taxonomy_seed


@pytest.fixture
def workbench(transactional_db, open_page, login):
    """The tiny demo city with its demo events; ``workbench(query, locale=…)`` opens /analyst/
    as the demo analyst with the statistics loaded."""
    call_command("generate_demo_city", "--scale", "tiny", "--seed", "1", verbosity=0)
    taxonomy_seed()
    call_command("generate_demo_events", "--seed", "1", verbosity=0)
    demo_users_ensure()

    def open_workbench(query: str = "", *, locale: str = "zh-CN", width: int = 1920, height: int = 1080):
        page = open_page(width, height, locale=locale)
        login(page, "analyst", next="/analyst/")
        if query:
            page.goto("/analyst/" + query)
        page.wait_for_selector("#stats-table tbody tr")
        return page

    return open_workbench


def tab_to(page, selector: str, limit: int = 200) -> None:
    """Press Tab until the focused element matches ``selector`` (the keyboard is the only input)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => !!document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} is never reached with the Tab key")


def test_the_table_is_sorted_and_filtered_with_the_keyboard(workbench):
    page = workbench()
    header = page.locator("#stats-table th[data-sort=name]")
    assert header.get_attribute("aria-sort") == "none"
    tab_to(page, "#stats-table th[data-sort=name] button")
    page.keyboard.press("Enter")
    expect(header).to_have_attribute("aria-sort", "ascending")
    page.keyboard.press(" ")
    expect(header).to_have_attribute("aria-sort", "descending")
    first = page.locator("#stats-table tbody tr").first
    code = first.get_attribute("data-code")
    tab_to(page, "#stats-table tbody tr button")
    focused_code = page.evaluate("document.activeElement.closest('tr').dataset.code")
    assert focused_code == code
    page.keyboard.press("Enter")
    expect(page.locator("#f-street")).to_have_value(code)
    expect(page).to_have_url(re.compile(f"street={code}"))


def test_ranking_labels_tell_the_small_grids_apart(workbench):
    page = workbench("?level=grid")
    page.wait_for_selector("#ranking-chart svg text")
    grids = Grid.objects.filter(level="small").count()
    labels = [
        text
        for text in page.locator("#ranking-chart svg text").evaluate_all("nodes => nodes.map(n => n.textContent)")
        if any(not (ch.isdigit() or ch in ".,") for ch in text)
    ]
    assert len(labels) == min(15, grids)
    assert len(set(labels)) == len(labels), labels
    assert all(len(label) <= 12 for label in labels), labels


@pytest.mark.parametrize(
    ("locale", "message"),
    [
        ("zh-CN", "结束日期早于开始日期：请选择不早于开始日期的结束日期。"),
        ("en-US", "The end date is before the start date: choose an end on or after the start."),
    ],
)
def test_an_inverted_date_range_is_explained_and_no_stale_figure_stays(workbench, locale, message):
    page = workbench(locale=locale)
    expect(page.locator("[data-kpi=events]")).not_to_have_text("—")
    asked = []
    page.on("request", lambda r: asked.append(r.url) if "/api/statistics/" in r.url else None)
    page.fill("#f-since", "2026-05-10")
    page.locator("#f-since").dispatch_event("change")
    page.fill("#f-until", "2026-05-01")
    page.locator("#f-until").dispatch_event("change")
    expect(page.locator("#filter-error")).to_have_text(message)
    expect(page.locator("#f-until")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("[data-kpi=events]")).to_have_text("—")
    expect(page.locator("#stats-table tbody tr")).to_have_count(0)
    page.wait_for_timeout(500)
    assert [url for url in asked if "until=2026-05-02" in url] == []


def test_the_preview_map_opens_on_the_data(workbench):
    page = workbench()
    west, south, east, north = Grid.objects.filter(level="small").aggregate(box=Extent("boundary"))["box"]
    bounds = page.evaluate(
        """() => { const b = MinqingAnalyst.map.getBounds();
                   return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth(), MinqingAnalyst.map.getZoom()]; }"""
    )
    assert bounds[0] <= west and bounds[1] <= south and bounds[2] >= east and bounds[3] >= north
    # Fitted, not the configured city-wide view: the data fill a good part of the map.
    assert (east - west) / (bounds[2] - bounds[0]) > 0.3 or (north - south) / (bounds[3] - bounds[1]) > 0.3
    assert bounds[4] >= 13


def test_the_events_export_carries_street_community_and_grid_codes(workbench):
    page = workbench()
    link = page.locator("#exports a[data-format=csv]")
    with page.expect_download() as download:
        link.click()
    text = open(download.value.path(), encoding="utf-8-sig").read()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {"street_code", "community_code", "grid_code"} <= set(rows[0])
    located = Event.objects.filter(location__isnull=False).select_related("street", "community", "grid")
    expected = {str(e.pk): (e.street.code, e.community.code, e.grid.code) for e in located if e.grid_id}
    got = {r["id"]: (r["street_code"], r["community_code"], r["grid_code"]) for r in rows}
    assert len(expected) > 100
    assert {key: got[key] for key in expected} == expected
