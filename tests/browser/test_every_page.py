"""Every page on the tiny demo city, in both languages, at the four screen sizes people use
(a 1920×1080 and a 3840×2160 wall, a 1280×800 tablet, a 390×844 phone): a screenshot of each in
var/screenshots/<page>-<language>-<w>x<h>.png, no serious or critical axe-core violation, nothing
wider than the screen, no console error, failed request or request off the machine (conftest)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from layers.services.users import demo_users_ensure
from layers.taxonomy import taxonomy_seed

SIZES = [(1920, 1080), (3840, 2160), (1280, 800), (390, 844)]
LANGUAGES = {"zh": "zh-CN", "en": "en-US"}


@pytest.fixture
def demo(transactional_db):
    """The tiny demo city with a year of demo events and the demo logins."""
    call_command("generate_demo_city", "--scale", "tiny", "--seed", "1", verbosity=0)
    taxonomy_seed()  # a transactional test before this one flushed the migration's rows
    call_command("generate_demo_events", "--seed", "1", verbosity=0)
    demo_users_ensure()


def _wall_ready(page):
    expect(page.locator("#feed li[data-id]").first).to_be_visible()
    expect(page.locator("#street-ranking li[data-code]").first).to_be_visible()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")


def _grid_ready(page):
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector("#events-list .grid-card, #events-list .mq-empty")


def _data_ready(page):
    page.wait_for_selector("body[data-ready=true]")


def _analyst_ready(page):
    page.wait_for_selector("#stats-table tbody tr")
    page.wait_for_selector("#catalog button[data-layer=events]")


#: page name → (path, user or None, wait until ready)
PAGES = {
    "login": ("/accounts/login/", None, lambda page: page.wait_for_selector("#login-form")),
    "wall": ("/wall/", "command", _wall_ready),
    "grid": ("/grid/", "gridworker", _grid_ready),
    "analyst": ("/analyst/", "analyst", _analyst_ready),
    "report": ("/report/", None, _data_ready),
    "public": ("/public/", None, _data_ready),
    "moderation": ("/moderation/", "command", lambda page: page.wait_for_selector("#candidates-heading")),
    "imports": ("/imports/", "steward", lambda page: page.wait_for_selector("#upload-form")),
}


@pytest.mark.parametrize("language", list(LANGUAGES))
@pytest.mark.parametrize("name", list(PAGES))
def test_the_page_at_every_size_in_both_languages(demo, open_page, login, screenshot, axe, name, language):
    path, user, ready = PAGES[name]
    page = open_page(*SIZES[0], locale=LANGUAGES[language])
    if user:
        login(page, user, next=path)
    else:
        page.goto(path)
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.reload()
        ready(page)
        assert page.locator("html").get_attribute("lang") == ("zh-hans" if language == "zh" else "en")
        # Nothing wider than the screen (a phone scrolls down, never sideways).
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        screenshot(page, f"{name}-{language}")
        assert axe(page) == [], f"{name} ({language}) at {width}×{height}"


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_the_home_and_error_pages_pass_axe(demo, open_page, login, axe, problems, language):
    problems.allow("403")
    page = open_page(1280, 800, locale=LANGUAGES[language])
    page.goto("/")
    assert axe(page) == []
    login(page, "analyst", next="/analyst/")
    page.goto("/wall/")
    assert axe(page) == []


def test_the_demo_city_looks_like_a_city_on_the_grid_page(demo, open_page, login):
    """The demo worker's grid, as the page draws it, is a block between roads that run at angles
    (not an upright rectangle of a rectangle of rectangles), and the buildings stand inside it."""
    page = open_page(390, 844)
    login(page, "gridworker", next="/grid/")
    page.wait_for_selector("body[data-ready=true]")
    ring = page.evaluate(
        """() => { const b = MinqingGrid.state.pkg.grid.boundary;
                   return (b.type === 'MultiPolygon' ? b.coordinates[0][0] : b.coordinates[0]); }"""
    )
    edges = [(x1 - x0, y1 - y0) for (x0, y0), (x1, y1) in zip(ring, ring[1:], strict=False)]
    slanted = [dx for dx, dy in edges if abs(dx) > 1e-9 and abs(dy) > 1e-9]
    assert slanted, f"every edge of {ring} runs north-south or east-west"
    assert page.evaluate("MinqingGrid.state.pkg.buildings.features.length") > 0
