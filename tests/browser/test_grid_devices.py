"""The grid worker's page on the devices they carry: a phone (390×844) first, a tablet (1280×800).

One column with a bottom tab bar and a map that fills the screen on the phone; the offline map
drawn from the tiles the page kept; a tap on an event marker while reporting sets the place;
finger-sized controls with no link out of the app; the package and the scripts compressed."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from layers.models import Grid
from tests.worlds.events import IN_WEST, report, world
from tests.worlds.grid_worker import populate

PHONE = (390, 844)
TABLET = (1280, 800)


@pytest.fixture
def grid_page(role_user, open_page, login, settings, tmp_path):
    """``grid_page(width, height, **context_options)``: the WEST small grid (40 households) and its
    worker ``gridworker`` logged in on /grid/ at that size."""
    settings.MEDIA_ROOT = tmp_path / "media"
    area = world()
    populate(area["west"], households=40, prefix="W")
    worker = role_user("grid_worker", username="gridworker")
    Grid.objects.filter(pk=area["west"].pk).update(worker=worker)

    def open_grid(width: int, height: int, **options):
        page = open_page(width, height, **options)
        login(page, "gridworker", next="/grid/")
        page.wait_for_selector("body[data-ready=true]")
        return page

    return open_grid


def box(page, selector: str) -> dict:
    return page.locator(selector).first.bounding_box()


def test_the_phone_gets_one_column_a_bottom_tab_bar_and_a_full_screen_map(grid_page):
    """At 390×844 nothing is wider than the screen, the top bar is one line with the title in
    it, the tabs sit at the bottom edge, the map tab fills the width and the map can fill the
    screen; log out is one tap away in the bar's menu and inside the screen."""
    page = grid_page(*PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE[0], f"the page is {width} px wide on a {PHONE[0]} px phone"
    bar = box(page, ".mq-topbar")
    assert bar["height"] <= 60
    title = box(page, "#grid-title")
    assert title["height"] <= 30 and title["width"] >= 120  # one line, not a character per line
    tabs = box(page, ".grid-tabs")
    assert abs(tabs["y"] + tabs["height"] - PHONE[1]) <= 1 and tabs["width"] == PHONE[0]
    assert page.locator(".grid-tab").evaluate_all("tabs => tabs.map(t => t.dataset.tab)") == [
        "map", "events", "report", "households", "residents", "tasks", "visits",
    ]  # fmt: skip
    events = box(page, "#panel-events")
    assert events["width"] == PHONE[0] and events["y"] + events["height"] <= tabs["y"] + 1
    page.click(".grid-tab[data-tab=map]")
    pane = box(page, "#grid-map")
    assert pane["width"] == PHONE[0] and pane["height"] >= 600
    assert not page.locator("#panel-events").is_visible()
    # The grid is fitted to the map once it is shown (it was hidden behind the list at first).
    zoom = page.evaluate("MinqingGrid.map.getZoom()")
    assert zoom >= 15
    page.click("#map-full")
    full = box(page, "#grid-map")
    assert (full["x"], full["y"], full["width"], full["height"]) == (0, 0, *PHONE)
    page.click("#map-full")
    assert box(page, "#grid-map")["height"] < PHONE[1]
    # Log out: the menu drops down with it, inside the screen.
    assert not page.locator(".mq-account button[type=submit]").is_visible()
    page.click("#menu-toggle")
    logout = box(page, ".mq-account button[type=submit]")
    assert logout["x"] >= 0 and logout["x"] + logout["width"] <= PHONE[0] and logout["height"] >= 44


def test_the_phone_reports_by_tapping_the_map_and_comes_back_to_the_form(grid_page):
    page = grid_page(*PHONE)
    page.click(".grid-tab[data-tab=report]")
    page.select_option("#report-category", "hazard.fire")
    page.fill("#report-description", "楼道堆放杂物")
    page.click("#report-tap")
    expect(page.locator("#map-hint")).to_be_visible()
    assert page.locator("body").get_attribute("data-tab") == "map"
    x, y = page.evaluate(
        "([lon, lat]) => { const p = MinqingGrid.map.latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }",
        list(IN_WEST),
    )
    page.locator("#grid-map").click(position={"x": x, "y": y})
    page.wait_for_selector("#report-where[data-inside=true]")
    assert page.locator("body").get_attribute("data-tab") == "report"
    assert page.locator("#report-description").input_value() == "楼道堆放杂物"


@pytest.mark.parametrize("size", [PHONE, TABLET], ids=["phone", "tablet"])
def test_a_tap_on_an_event_marker_while_reporting_sets_the_place(grid_page, size):
    """Choosing the place on the map and tapping where an event already is: the place is set
    there and the form stays open (it used to jump to the events tab with no place)."""
    event = report(at=IN_WEST)
    page = grid_page(*size)
    page.click(".grid-tab[data-tab=report]")
    page.select_option("#report-category", "hazard.fire")
    page.click("#report-tap")
    x, y = page.evaluate(
        "([lon, lat]) => { const p = MinqingGrid.map.latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }",
        [event.location.x, event.location.y],
    )
    page.locator("#grid-map").click(position={"x": x, "y": y})
    page.wait_for_selector("#report-where[data-inside=true]")
    assert page.locator("body").get_attribute("data-tab") == "report"
    point = page.evaluate("MinqingGrid.state.point")
    assert point["source"] == "tap"
    assert abs(point["lon"] - event.location.x) < 1e-4 and abs(point["lat"] - event.location.y) < 1e-4


#: What a finger can press: links, buttons, form fields, Leaflet's controls (a checkbox inside its
#: label is pressed through the label).
_TARGETS = """() => [...document.querySelectorAll(
        'a[href], button, select, textarea, input:not([type=hidden]):not(.grid-file), label.grid-button, [role=tab]')]
    .filter(n => n.offsetParent !== null && getComputedStyle(n).visibility !== 'hidden')
    .filter(n => !n.closest('.leaflet-control-attribution') || n.tagName === 'A')
    .map(n => { const r = ((n.tagName === 'INPUT' && n.closest('label')) || n).getBoundingClientRect();
                return [n.id || n.getAttribute('title') || n.dataset.action || n.textContent.trim().slice(0, 20),
                        Math.round(r.width), Math.round(r.height)]; })
    .filter(([, w, h]) => w < 44 || h < 44)"""


@pytest.mark.parametrize("size", [PHONE, TABLET], ids=["phone", "tablet"])
def test_every_control_is_finger_sized_and_no_link_leaves_the_app(grid_page, size):
    """At least 44 × 44 px for every control a finger uses, Leaflet's zoom and layer buttons
    included; the attribution is text, with no link to another site."""
    report(at=IN_WEST)
    page = grid_page(*size)
    if size == PHONE:
        page.click(".grid-tab[data-tab=map]")
    assert page.evaluate(_TARGETS) == []
    toggle = box(page, ".leaflet-control-layers-toggle")
    page.mouse.move(toggle["x"] + toggle["width"] / 2, toggle["y"] + toggle["height"] / 2)
    page.wait_for_selector(".leaflet-control-layers-expanded")
    assert page.evaluate(_TARGETS) == []
    outside = page.evaluate(
        "() => [...document.querySelectorAll('a[href]')].map(a => a.href).filter(h => new URL(h).origin !== location.origin)"
    )
    assert outside == []
    assert page.locator(".leaflet-control-attribution").inner_text() == "民情地图"


def test_the_offline_map_draws_every_tile_it_kept(grid_page, problems):
    """After one visit online, reloading offline draws all of my grid's basemap tiles at z17 and
    z18 from the service worker's cache (they carry Vary headers the cache lookup must ignore)."""
    problems.allow("ERR_INTERNET_DISCONNECTED")
    # Only z17 and z18 are kept: the tiles of the zooms the page passes through while it fits to
    # my grid fail offline (the service worker's fetch rejects; Chromium names it ERR_FAILED).
    # Those kept are counted below.
    problems.allow("/basemaps/offline/")
    page = grid_page(*TABLET)
    page.wait_for_selector("#tiles-state:has-text('已保存')", timeout=60_000)
    assert page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    assert page.evaluate(
        """() => navigator.serviceWorker.controller ? true : new Promise(resolve =>
               navigator.serviceWorker.addEventListener('controllerchange', () => resolve(true)))"""
    )
    page.context.set_offline(True)
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    # The basemap's tiles of the zoom shown (Leaflet keeps them in the layer's _tiles, flagged
    # current), drawn when the image has pixels.
    drawn = """(zoom) => new Promise(resolve => {
        const map = MinqingGrid.map;
        let basemap = null;
        map.eachLayer(layer => { if (layer instanceof L.TileLayer) { basemap = layer; } });
        map.setZoom(zoom, {animate: false});
        setTimeout(() => {
            const tiles = Object.values(basemap._tiles).filter(tile => tile.current && tile.coords.z === zoom);
            resolve([tiles.filter(tile => tile.el.complete && tile.el.naturalWidth > 0).length, tiles.length]);
        }, 2500);
    })"""
    # The page's own fit to my grid may still be animating (it would end at its own zoom).
    page.wait_for_function("() => !MinqingGrid.map._animatingZoom")
    for zoom in (17, 18):
        loaded, total = page.evaluate(drawn, zoom)
        assert total > 0 and loaded == total, f"z{zoom}: {loaded} of {total} tiles drawn offline"


def test_the_package_and_the_scripts_arrive_compressed(grid_page):
    """The grid package is compressed (brotli or gzip, whichever the browser prefers; a tenth of
    its size), and so are Leaflet and our own scripts and styles, served from the collected static
    files."""
    encodings = {}
    # Without the service worker, whose copies would answer the reload.
    page = grid_page(*TABLET, service_workers="block")
    page.on("response", lambda r: encodings.__setitem__(r.url.split("?")[0].split("/", 3)[-1], r.headers))
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    for path in (
        "api/grid/package",
        "static/vendor/leaflet/leaflet.js",
        "static/vendor/leaflet/leaflet.css",
        "static/mapserver/grid/grid.js",
        "static/mapserver/common/minqing.js",
        "jsi18n/",
    ):
        headers = encodings[path]
        assert headers.get("content-encoding") in ("br", "gzip"), (path, headers)
        assert "Accept-Encoding" in headers.get("vary", ""), (path, headers)
