"""The wall as it runs all day with no one touching it: the feed names each event's small grid (a
click opens its summary), keeps statuses current and dates older times; the time-lapse never
shows a blank frame; long case lists turn pages; the wall is live again soon after an outage."""

from __future__ import annotations

import datetime as dt
import re
import time

from django.utils import timezone
from playwright.sync_api import expect

from layers.models import Event
from layers.protection.access import SYSTEM
from layers.services.events import event_act
from tests.browser.test_wall import open_wall, wall_world  # noqa: F401  (the fixture)
from tests.worlds.events import IN_EAST, IN_WEST, report

EAST_CODE = "620102001001010102"


def test_a_feed_item_names_its_small_grid_and_opens_its_summary(open_page, login, wall_world):  # noqa: F811
    page = open_wall(open_page, login)
    item = page.locator("#feed li[data-id]").first
    assert item.get_attribute("data-code") in {EAST_CODE, "620102001001010101"}
    assert "小网格" in item.locator(".where").inner_text()
    code = item.get_attribute("data-code")
    item.click()
    expect(page.locator("#area-summary")).to_be_visible()
    expect(page.locator("#area-summary")).to_have_attribute("data-code", code)


def test_a_status_changed_after_arrival_is_shown_without_a_reload(open_page, login, wall_world):  # noqa: F811
    page = open_wall(open_page, login)
    event = Event.objects.filter(status="assigned").order_by("id").first()
    item = page.locator(f"#feed li[data-id='{event.pk}']")
    expect(item.locator(".what")).to_contain_text("已派单")
    event_act(reader=SYSTEM, event=event, action="accept", actor_label="test")
    expect(item.locator(".what")).to_contain_text("处置中", timeout=15_000)
    expect(item).to_have_attribute("data-status", "in_progress")


def test_times_of_earlier_days_carry_their_date_and_the_feed_stays_newest_first(
    open_page,
    login,
    wall_world,  # noqa: F811
):
    now = timezone.localtime()
    yesterday = report(category="hazard.gas", at=IN_EAST, external_id="WALL-Y")
    late = (now - dt.timedelta(days=1)).replace(hour=22, minute=49, second=0, microsecond=0)
    Event.objects.filter(pk=yesterday.pk).update(received_at=late, reported_at=late)
    page = open_wall(open_page, login)
    when = page.locator(f"#feed li[data-id='{yesterday.pk}'] .when").inner_text()
    assert when == late.strftime("%m/%d %H:%M"), when
    today_item = page.locator("#feed li[data-id]").first
    assert len(today_item.locator(".when").inner_text()) == 5  # HH:MM, today
    received = page.locator("#feed li[data-id]").evaluate_all("items => items.map(i => i.dataset.received)")
    assert received == sorted(received, reverse=True)
    assert received[-1] == page.locator(f"#feed li[data-id='{yesterday.pk}']").get_attribute("data-received")


def test_the_time_lapse_never_shows_a_blank_frame(open_page, login, wall_world, problems):  # noqa: F811
    """Heat tiles that take their time (300 ms each here): the frame shown stays until the next
    one has every tile, sampled every 50 ms over ten seconds of the time-lapse."""
    # Leaflet cancels a tile it no longer needs by pointing it at an empty data: image; with
    # Playwright's request routing on, chromium reports that as a blocked connection.
    problems.allow("data:image/gif;base64")
    page = open_wall(open_page, login)

    def slow(route):
        time.sleep(0.3)
        route.continue_()

    page.route("**/tiles/heat/**", slow)
    page.click("#timelapse")
    expect(page.locator("#timelapse-label")).to_be_visible()
    samples = page.evaluate(
        """() => new Promise(resolve => {
            const map = MinqingWall.map, samples = [];
            const timer = setInterval(() => {
                let shown = 0, whole = 0;
                map.eachLayer(layer => {
                    if (layer instanceof L.TileLayer && layer.options.pane === 'heat' && layer.options.opacity > 0) {
                        shown += 1;
                        const tiles = Object.values(layer._tiles).filter(t => t.current);
                        if (tiles.length && tiles.every(t => t.loaded)) { whole += 1; }
                    }
                });
                samples.push([shown, whole, document.getElementById('timelapse-label').textContent]);
            }, 50);
            setTimeout(() => { clearInterval(timer); resolve(samples); }, 10000);
        })"""
    )
    blank = [sample for sample in samples if sample[1] == 0]
    assert blank == [], f"{len(blank)} of {len(samples)} samples showed no complete heat frame"
    assert len({label for _, _, label in samples}) >= 3  # it did step through days


def test_long_case_lists_turn_pages_by_themselves(open_page, login, wall_world):  # noqa: F811
    """Fourteen overdue cases in a panel that holds fewer: "page 1 of n", the next page after a
    few seconds, and every case shown on one of the pages."""
    past = timezone.now() - dt.timedelta(hours=5)
    overdue = [report(category="hazard.fire", at=IN_WEST, external_id=f"OVER-{n}") for n in range(10)]
    Event.objects.filter(status__in=["assigned", "received", "triaged"]).update(deadline=past)
    total = Event.objects.filter(deadline__lt=timezone.now()).exclude(status__in=["resolved", "verified", "closed"])
    page = open_wall(open_page, login)
    expect(page.locator("#overdue-total")).to_have_text(f"({total.count()})")
    pager = page.locator("#overdue-pager")
    expect(pager).to_have_text(re.compile(r"^第 1/\d+ 页$"))
    visible = "ul#overdue-cases > li:not(.mq-hidden)"
    first = page.locator(visible).evaluate_all("items => items.map(i => i.textContent)")
    assert 0 < len(first) < total.count()
    text = pager.inner_text()
    expect(pager).not_to_have_text(text, timeout=10_000)  # turned by itself
    pages = int(page.evaluate("document.getElementById('overdue-pager').textContent.match(/\\d+/g)[1]"))
    seen = set()
    for _ in range(pages):
        seen |= set(page.locator(visible).evaluate_all("items => items.map(i => i.dataset.id)"))
        page.evaluate("MinqingWall.rotateCases()")
    assert len(seen) == total.count() >= len(overdue)
    # Nothing of a page is clipped: every shown item lies inside its list.
    clipped = page.evaluate(
        """() => { const list = document.getElementById('overdue-cases').getBoundingClientRect();
                   return [...document.querySelectorAll('#overdue-cases > li:not(.mq-hidden)')]
                     .filter(li => li.getBoundingClientRect().bottom > list.bottom + 1).length; }"""
    )
    assert clipped == 0


def test_the_wall_is_live_again_within_seconds_after_12_seconds_offline(open_page, login, wall_world, problems):  # noqa: F811
    problems.allow("ERR_INTERNET_DISCONNECTED")
    page = open_wall(open_page, login)
    page.context.set_offline(True)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "stale", timeout=10_000)
    page.wait_for_timeout(12_000)
    page.context.set_offline(False)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=5_000)
