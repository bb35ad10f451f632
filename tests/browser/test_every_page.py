"""Every page on the tiny demo city, in both languages, at the four screen sizes people use
(a 1920×1080 and a 3840×2160 wall, a 1280×800 tablet, a 390×844 phone): a screenshot of each in
var/screenshots/<page>-<language>-<w>x<h>.png, no serious or critical axe-core violation, no
console error, failed request or request off the machine (conftest), and no coded value left
untranslated in English."""

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


def _analyst_ready(page):
    page.wait_for_selector("#stats-table tbody tr")
    page.wait_for_selector("#catalog button[data-layer=events]")


#: page name → (path, user or None, wait until ready)
PAGES = {
    "login": ("/accounts/login/", None, lambda page: page.wait_for_selector("#login-form")),
    "wall": ("/wall/", "command", _wall_ready),
    "grid": ("/grid/", "gridworker", _grid_ready),
    "analyst": ("/analyst/", "analyst", _analyst_ready),
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
