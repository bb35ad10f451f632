"""Both languages all the way down: in English the coded values (statuses, categories, gender,
residence types, care tags) are English on the wall and the grid page, and the API's error
messages follow the page's language (Chinese in the Chinese page, English in the English one)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from layers.models import Grid
from tests.browser.test_wall import open_wall, wall_world  # noqa: F401  (the fixture)
from tests.worlds.events import IN_WEST, report, world
from tests.worlds.grid_worker import populate


@pytest.fixture
def worker_page(role_user, open_page, login):
    def open_grid(locale: str):
        area = world()
        populate(area["west"], households=12, prefix="W")
        worker = role_user("grid_worker", username="gridworker")
        Grid.objects.filter(pk=area["west"].pk).update(worker=worker)
        event = report(at=IN_WEST)
        page = open_page(1280, 800, locale=locale)
        login(page, "gridworker", next="/grid/")
        page.wait_for_selector("body[data-ready=true]")
        return page, event

    return open_grid


def test_the_grid_page_in_english_shows_every_coded_value_in_english(worker_page):
    page, event = worker_page("en-US")
    card = page.locator(f"#event-{event.pk}")
    expect(card.locator("h3")).to_contain_text("Fire hazard")
    expect(card.locator(".grid-status")).to_have_text("Assigned")
    page.click(".grid-tab[data-tab=residents]")
    text = page.locator("#residents-list").inner_text()
    assert "Female" in text or "Male" in text
    assert "Registered resident" in text or "Floating resident" in text
    tags = set(page.locator("#residents-list .grid-tag").all_inner_texts())
    assert tags and tags <= {
        "Elderly living alone",
        "Disabled",
        "Low income",
        "Left-behind child",
        "Veteran",
        "Key person",
    }
    page.click(".grid-tab[data-tab=households]")
    assert "Owner-occupied" in page.locator("#households-list").inner_text()
    options = page.locator("#report-category option").all_inner_texts()
    assert "Fire hazard" in options
    # No Chinese character left in what the page draws from codes (names of people and places
    # are data, not codes: the cards' category and status, the tags).
    coded = page.locator(".grid-status, .grid-tag, #report-category option").all_inner_texts()
    assert not [t for t in coded if any("\u4e00" <= ch <= "\u9fff" for ch in t)]


def test_the_wall_in_english_names_categories_and_statuses_in_english(open_page, login, wall_world):  # noqa: F811
    page = open_wall(open_page, login, locale="en-US")
    whats = page.locator("#feed li[data-id] .what").all_inner_texts()
    assert whats and all(not any("\u4e00" <= ch <= "\u9fff" for ch in what) for what in whats), whats
    assert any(what.startswith("Fire hazard · ") for what in whats)


@pytest.mark.parametrize(
    ("locale", "message"),
    [("zh-CN", "网格 999 不是您负责的网格"), ("en-US", "The grid 999 is not one of your grids.")],
)
def test_api_errors_follow_the_pages_language(worker_page, problems, locale, message):
    problems.allow("403")
    page, _ = worker_page(locale)
    answer = page.evaluate(
        "() => Minqing.fetchJSON('/api/grid/package?grid=999').then(() => null, error => error.message)"
    )
    assert answer == message
