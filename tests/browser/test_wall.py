"""The command-center wall in headless chromium: loads clean at 1920×1080 and 3840×2160, shows a
POSTed event within 5 seconds, switches the heat map's time window, shows a grid's summary on a
click, keeps its feed bounded and says when its data is stale."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.utils import timezone
from playwright.sync_api import expect
from rest_framework.authtoken.models import Token

from layers.models import Region
from tests.worlds.events import IN_EAST, IN_WEST, report, world
from tests.worlds.factories import ORIGIN, SIZE

ZONE = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def wall_world(role_user):
    """The tiny city of the event tests, its street and district given the community's outline
    (so the wall draws them), a few events in both grids, and a command-center user."""
    places = world()
    lon, lat = ORIGIN
    outline = MultiPolygon(Polygon.from_bbox((lon, lat, lon + SIZE, lat + SIZE)), srid=4326)
    Region.objects.filter(code__in=[places["street"].code, places["district"].code]).update(boundary=outline)
    for number, (category, point) in enumerate(
        [
            ("hazard.fire", IN_WEST),
            ("dispute.neighbour", IN_WEST),
            ("hazard.gas", IN_EAST),
            ("dispute.property", IN_EAST),
        ]
    ):
        report(category=category, at=point, external_id=f"WALL-{number}")
    role_user("command_center", username="command")
    return places


def open_wall(open_page, login, width=1920, height=1080, **options):
    page = open_page(width, height, **options)
    login(page, "command", next="/wall/")
    # The first figures and the first page of the feed are on screen.
    expect(page.locator('[data-kpi="received_today"] .kpi-value')).not_to_have_text("—")
    expect(page.locator("#feed li[data-id]").first).to_be_visible()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    return page


def today() -> str:
    return timezone.localtime().date().isoformat()


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (3840, 2160)])
def test_wall_loads_clean_and_fills_every_panel(open_page, login, screenshot, wall_world, width, height):
    """No console error, no failed request, nothing off the machine; KPI tiles, street ranking,
    case lists and feed filled from the APIs; fonts scale with the screen."""
    page = open_wall(open_page, login, width, height)
    expect(page.locator('[data-kpi="received_today"] .kpi-value')).to_have_text("4")
    expect(page.locator('[data-kpi="open"] .kpi-value')).to_have_text("4")
    expect(page.locator("#feed li[data-id]")).to_have_count(4)
    expect(page.locator("#street-ranking li[data-code]").first).to_contain_text("酒泉路街道")
    expect(page.locator("#overdue-cases li").first).to_have_text("无超期事件")
    # The heat tiles and the outlines' vector tiles were asked for and answered.
    page.wait_for_load_state("networkidle")
    root_px = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
    assert root_px == pytest.approx(min(48, max(12, 0.009 * width)), abs=0.5)
    assert page.evaluate("document.documentElement.scrollHeight") <= height  # a wall never scrolls
    paint = page.evaluate("(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime")
    print(f"first contentful paint at {width}x{height}: {paint:.0f} ms")
    screenshot(page, "wall")


def test_a_posted_event_shows_on_the_wall_within_5_seconds(browser, open_page, login, live_server, wall_world):
    """POST /api/events from an intake client; the wall lists it and puts its marker on the map."""
    page = open_wall(open_page, login)
    markers = page.evaluate("MinqingWall.markerCount()")
    hotline = get_user_model().objects.create_user("hotline")
    hotline.groups.add(Group.objects.get_or_create(name="intake:hotline")[0])
    token = Token.objects.create(user=hotline).key
    intake = browser.new_context(base_url=live_server.url)
    try:
        started = time.monotonic()
        response = intake.request.post(
            "/api/events",
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
            data=json.dumps(
                {
                    "channel": "hotline",
                    "external_id": "WALL-LIVE-1",
                    "category": "hazard.fire",
                    "description": "楼道堆放杂物，堵塞消防通道",
                    "location": {"lon": IN_EAST[0], "lat": IN_EAST[1]},
                }
            ),
        )
        assert response.status == 201, response.text()
        event_id = response.json()["id"]
        expect(page.locator(f'#feed li[data-id="{event_id}"]')).to_be_visible(timeout=5000)
        assert time.monotonic() - started < 5.0
    finally:
        intake.close()
    expect(page.locator("#feed li").first).to_have_attribute("data-id", str(event_id))
    assert page.evaluate("MinqingWall.markerCount()") == markers + 1
    # The headline figures follow within a few seconds, without a reload.
    expect(page.locator('[data-kpi="received_today"] .kpi-value')).to_have_text("5", timeout=8000)


def test_window_switch_and_family_change_the_heat_tile_url(open_page, login, wall_world):
    """今日 → 近7天 → 自定义 → 安全隐患 → 时间回放: each asks for heat tiles of its window."""
    page = open_wall(open_page, login)
    assert f"family=dispute&since={today()}" in page.evaluate("MinqingWall.heatUrl()")
    week_ago = (timezone.localtime().date() - dt.timedelta(days=6)).isoformat()
    with page.expect_request(lambda r: "/tiles/heat/" in r.url and f"since={week_ago}" in r.url):
        page.click('#window-switch button[data-window="7d"]')
    expect(page.locator('#window-switch button[data-window="7d"]')).to_have_attribute("aria-pressed", "true")

    page.click('#window-switch button[data-window="custom"]')
    page.fill('#custom-window input[name="from"]', "2026-01-05")
    page.fill('#custom-window input[name="to"]', "2026-01-11")
    with page.expect_request(lambda r: "/tiles/heat/" in r.url and "since=2026-01-05&until=2026-01-12" in r.url):
        page.click('#custom-window button[type="submit"]')
    with page.expect_request(lambda r: "/api/dashboard/kpis" in r.url and "since=2026-01-05&until=2026-01-12" in r.url):
        page.click('#window-switch button[data-window="30d"]')
        page.click('#window-switch button[data-window="custom"]')
        page.click('#custom-window button[type="submit"]')

    with page.expect_request(lambda r: "/tiles/heat/" in r.url and "family=hazard" in r.url):
        page.click('#family-switch button[data-family="hazard"]')

    # Time-lapse over the custom week: one day per step, with the day shown.
    with page.expect_request(lambda r: "/tiles/heat/" in r.url and "since=2026-01-06&until=2026-01-07" in r.url):
        page.click("#timelapse")
    expect(page.locator("#timelapse-label")).to_be_visible()
    page.click("#timelapse")
    expect(page.locator("#timelapse-label")).to_be_hidden()
    assert "since=2026-01-05&until=2026-01-12" in page.evaluate("MinqingWall.heatUrl()")


def test_clicking_a_grid_on_the_map_shows_its_summary(open_page, login, wall_world, screenshot):
    """Zoomed in, a click inside the east small grid opens its summary: name, counts, trend."""
    page = open_wall(open_page, login)
    lon, lat = IN_EAST
    page.evaluate(f"MinqingWall.map.setView([{lat}, {lon}], 16, {{animate: false}})")
    page.wait_for_load_state("networkidle")
    point = page.evaluate(f"MinqingWall.map.latLngToContainerPoint([{lat} + 0.002, {lon}])")
    box = page.locator("#wall-map").bounding_box()
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    expect(page.locator("#summary-title")).to_have_text("东小网格")
    expect(page.locator("#summary-subtitle")).to_contain_text("小网格")
    expect(page.locator("#summary-figures")).to_contain_text("未办结")
    expect(page.locator("#summary-trend canvas")).to_be_visible()
    screenshot(page, "wall-summary")
    page.click("#summary-close")
    expect(page.locator("#area-summary")).to_be_hidden()


def test_clicking_a_street_in_the_ranking_shows_the_street(open_page, login, wall_world):
    page = open_wall(open_page, login)
    page.click('#street-ranking li[data-code="620102001000"]')
    expect(page.locator("#summary-title")).to_have_text("酒泉路街道")
    expect(page.locator("#summary-subtitle")).to_contain_text("街道")


def test_the_feed_stays_bounded(open_page, login, wall_world):
    """Sixty new events: the list and the map keep the newest 50, no more."""
    page = open_wall(open_page, login)
    for number in range(60):
        report(category="dispute.neighbour", at=IN_WEST, external_id=f"BURST-{number}")
    expect(page.locator("#feed li[data-id]")).to_have_count(50, timeout=10_000)
    assert page.evaluate("MinqingWall.feedSize()") == 50
    assert page.evaluate("MinqingWall.markerCount()") == 50


def test_lost_network_shows_stale_and_recovers(open_page, login, wall_world, problems):
    """Offline: the status turns stale and the figures stay; back online: live again."""
    problems.allow("ERR_INTERNET_DISCONNECTED")
    page = open_wall(open_page, login)
    page.context.set_offline(True)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "stale", timeout=8000)
    expect(page.locator("#live-status")).to_contain_text("数据可能已过期")
    expect(page.locator('[data-kpi="received_today"] .kpi-value')).to_have_text("4")
    page.context.set_offline(False)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=20_000)


def test_wall_in_english(open_page, login, wall_world):
    page = open_wall(open_page, login)
    with page.expect_navigation():
        page.click('.mq-language button[value="en"]')
    expect(page.locator('[data-kpi="received_today"] .kpi-label')).to_have_text("Events today")
    expect(page.locator("#live-status")).to_have_text("Live", timeout=8000)
