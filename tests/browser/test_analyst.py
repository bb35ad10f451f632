"""The analyst workbench in headless chromium, on the hand-built city of the statistics tests
(tests/mapserver/test_statistics_api.py: streets A and B, small grids W, E, N, seven events).

Every test fails on a console error, a failed request or one leaving the machine (conftest)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from tests.mapserver.test_statistics_api import COMMUNITY_A1, STREET_A, W, town_build


@pytest.fixture
def analyst_page(open_page, role_user, login):
    """The hand-built city, an analyst logged in, the workbench open at 1920×1080 with its
    statistics loaded."""

    def open_workbench(query: str = "", *, width: int = 1920, height: int = 1080, locale: str = "zh-CN"):
        town_build()
        role_user("analyst")
        page = open_page(width, height, locale=locale)
        login(page, "analyst", next="/analyst/")
        if query:  # the login form's next= would keep only the first parameter of a query
            page.goto("/analyst/" + query)
        page.wait_for_selector("#stats-table tbody tr")
        page.wait_for_selector("#catalog button[data-layer=events]")
        return page

    return open_workbench


def kpi(page, name: str) -> str:
    return page.locator(f"[data-kpi={name}]").inner_text()


def rows(page) -> list[str]:
    return page.locator("#stats-table tbody tr td:first-child").all_inner_texts()


def query_of(href: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(href).query).items()}


def test_the_workbench_loads_in_chinese_without_errors(analyst_page, screenshot):
    """At 1920×1080: the catalog with descriptions, the city's figures, both streets in the table,
    an export link per format, the OGC address, the heat links; a screenshot for review."""
    page = analyst_page()
    assert page.locator(".mq-page-title").inner_text() == "分析工作台"
    assert "民情事件" in page.locator("#catalog").inner_text()
    assert "Citizen events" in page.locator("#catalog").inner_text()
    assert kpi(page, "events") == "6"
    assert kpi(page, "completion_rate") == "50.0%"
    assert rows(page) == ["酒泉路街道", "张掖路街道"]
    assert "另有 1 件事件" in page.locator("#table-note").inner_text()
    formats = page.locator("#exports a").evaluate_all("links => links.map(a => a.dataset.format)")
    assert formats == ["geojson", "gpkg", "csv", "shp"]
    assert page.locator("#ogc-landing").input_value().endswith("/ogc/")
    assert page.locator("#heat-links a").count() == 2
    page.wait_for_selector("#series-chart canvas")
    page.wait_for_timeout(500)  # tiles and charts settle before the picture
    screenshot(page, "analyst")


def test_filters_update_the_statistics_and_the_links(analyst_page):
    """Street A, then disputes, then the small-grid level: the figures, the table, the export and
    OGC links and the query string follow each choice."""
    page = analyst_page()
    page.select_option("#f-street", STREET_A)
    expect(page.locator("[data-kpi=events]")).to_have_text("5")
    assert page.locator("#f-community option").all_inner_texts() == ["全部社区", "畅家巷社区"]
    assert rows(page) == ["酒泉路街道"]
    assert query_of(page.locator("#exports a[data-format=geojson]").get_attribute("href")) == {"region": STREET_A}

    page.select_option("#f-category", "dispute")
    # Disputes of street A: events 1 and 2 (closed) and 5 (suspended).
    expect(page.locator("[data-kpi=events]")).to_have_text("3")
    assert kpi(page, "completion_rate") == "66.7%"
    href = page.locator("#exports a[data-format=csv]").get_attribute("href")
    assert urlsplit(href).path == "/exports/events.csv"
    assert query_of(href) == {"region": STREET_A, "category": "dispute"}
    assert query_of(page.locator("#ogc-items").input_value()) == {
        "f": "json",
        "region": STREET_A,
        "category": "dispute",
    }
    assert query_of(page.url)["category"] == "dispute"

    page.click("#level-switch button[data-level=grid]")
    expect(page.locator("#stats-table tbody tr")).to_have_count(2)
    assert rows(page) == ["西小网格", "东小网格"]  # by events, most first

    # The window 11 May – 31 May (inclusive): events 3 and 4, neither a dispute: nothing.
    page.fill("#f-since", "2026-05-11")
    page.fill("#f-until", "2026-05-31")
    page.locator("#f-until").dispatch_event("change")
    expect(page.locator("[data-kpi=events]")).to_have_text("0")
    assert page.locator("#series-state").inner_text() == "没有符合筛选条件的事件。"
    href = page.locator("#exports a[data-format=geojson]").get_attribute("href")
    assert query_of(href) == {"region": STREET_A, "category": "dispute", "since": "2026-05-11", "until": "2026-06-01"}


def test_a_row_of_the_table_becomes_the_filter(analyst_page):
    """Clicking grid W in the small-grid table chooses its street, community and grid."""
    page = analyst_page("?level=grid")
    page.click(f"#stats-table tbody tr[data-code='{W}']")
    expect(page.locator("[data-kpi=events]")).to_have_text("3")
    assert page.locator("#f-street").input_value() == STREET_A
    assert page.locator("#f-community").input_value() == COMMUNITY_A1
    assert page.locator("#f-grid").input_value() == W
    assert query_of(page.locator("#exports a[data-format=gpkg]").get_attribute("href")) == {
        "region": COMMUNITY_A1,
        "grid": W,
    }


def test_the_geojson_export_downloads_the_filtered_events(analyst_page):
    """The analyst clicks GeoJSON: the file is a FeatureCollection of street A's disputes (3)."""
    page = analyst_page(f"?street={STREET_A}&category=dispute")
    expect(page.locator("[data-kpi=events]")).to_have_text("3")
    with page.expect_download() as download:
        page.click("#exports a[data-format=geojson]")
    collection = json.loads(download.value.path().read_text(encoding="utf-8"))
    assert download.value.suggested_filename == "events.geojson"
    assert collection["type"] == "FeatureCollection"
    assert len(collection["features"]) == 3
    assert {f["properties"]["family"] for f in collection["features"]} == {"dispute"}


def test_the_ogc_addresses_shown_answer(analyst_page):
    """The service address and the filtered items address both answer 200 for the analyst; the
    items are the filtered events."""
    page = analyst_page(f"?street={STREET_A}&category=hazard")
    landing = page.request.get(page.locator("#ogc-landing").input_value())
    assert landing.status == 200
    assert landing.json()["title"]
    items = page.request.get(page.locator("#ogc-items").input_value())
    assert items.status == 200
    assert len(items.json()["features"]) == 2  # events 3 and 4


def test_other_layers_say_which_filters_they_ignore(analyst_page):
    """Choosing the small grids: no filter reaches their links, and the page says so."""
    page = analyst_page(f"?street={STREET_A}&category=dispute")
    page.click("#catalog button[data-layer=grids_small]")
    href = page.locator("#exports a[data-format=shp]").get_attribute("href")
    assert href == "/exports/grids_small.shp"
    assert page.locator("#export-note").inner_text() == "此图层不支持以下筛选条件：区域、分类。"
    assert query_of(page.url)["layer"] == "grids_small"


def test_the_heat_links_follow_the_family_and_answer_a_geotiff(analyst_page):
    """A hazard category leaves one heat link, for hazards; it answers a GeoTIFF."""
    page = analyst_page("?category=hazard.fire")
    links = page.locator("#heat-links a")
    assert links.count() == 1
    href = links.first.get_attribute("href")
    assert query_of(href)["family"] == "hazard"
    response = page.request.get(href)
    assert response.status == 200
    assert response.headers["content-type"] == "image/tiff"


def test_english(analyst_page):
    """The language switch turns the page, its script's texts and the catalog titles to English."""
    page = analyst_page()
    with page.expect_navigation():
        page.click(".mq-language button[value=en]")
    page.wait_for_selector("#stats-table tbody tr")
    assert page.locator(".mq-page-title").inner_text() == "Analyst workbench"
    assert page.locator("#f-street option").first.inner_text() == "All streets"
    assert page.locator("#catalog button[data-layer=events] .an-layer-title").inner_text() == "Events"


def test_a_grid_worker_may_not_open_the_workbench(open_page, role_user, login, problems):
    """The page is for analysts (and administrators): a grid worker gets the 403 page."""
    town_build()
    role_user("grid_worker")
    problems.allow("403")
    page = open_page()
    login(page, "grid_worker", next="/analyst/")
    assert "当前账号不能打开此页面。" in page.locator("body").inner_text()
