"""The grid worker's tablet (/grid/) in headless chromium at 1280×800: my grid on the map with its
lists (masked, care-tagged first), touch-sized controls, reports inside and outside my grid, the
offline queue (pending count, sync once the network returns, one event), a double tap, a vague GPS
fix, a 30 MB photo, an expired session, the closed loop from the tablet and the offline reload."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from PIL import Image
from playwright.sync_api import expect

from layers.models import Event, EventPhoto, Grid
from tests.worlds.events import IN_EAST, IN_WEST, report, world
from tests.worlds.grid_worker import populate

WEST_CODE = "620102001001010101"
EAST_CODE = "620102001001010102"


@pytest.fixture
def tablet(role_user, open_page, login, settings, tmp_path):
    """The WEST small grid with 40 households, its worker ``gridworker`` logged in on /grid/;
    ``tablet(**context_options)`` opens the page (geolocation, permissions …)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    area = world()
    populate(area["west"], households=40, prefix="W")
    populate(area["east"], households=6, prefix="E", per_building=6)
    worker = role_user("grid_worker", username="gridworker")
    Grid.objects.filter(pk=area["west"].pk).update(worker=worker)

    def open_tablet(**options):
        page = open_page(1280, 800, **options)
        login(page, "gridworker", next="/grid/")
        page.wait_for_selector("body[data-ready=true]")
        return page

    open_tablet.area = area
    return open_tablet


def tap(page, point: tuple[float, float]) -> None:
    """Tap the map at a WGS84 point."""
    x, y = page.evaluate(
        "([lon, lat]) => { const p = MinqingGrid.map.latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }",
        list(point),
    )
    page.locator("#grid-map").click(position={"x": x, "y": y})


def fill_report(page, description: str = "楼道堆放杂物，堵塞消防通道") -> None:
    page.click(".grid-tab[data-tab=report]")
    page.select_option("#report-category", "hazard.fire")
    page.fill("#report-description", description)


def allow_offline(problems) -> None:
    """Offline, requests fail by design: the ones sent while the network is down, and basemap
    tiles the tablet did not keep (the service worker answers those with a network error)."""
    problems.allow("ERR_INTERNET_DISCONNECTED")
    problems.allow("/basemaps/offline/")


def wait_for_count(page, count: int) -> None:
    page.wait_for_selector(f"#pending[data-count='{count}']")


def test_the_page_shows_my_grid_with_touch_sized_controls(tablet, screenshot):
    """Loads with no console error; the map, the lists (masked, care-tagged first) and my events."""
    event = report(at=IN_WEST)
    page = tablet()
    assert page.locator("#grid-title").inner_text() == "我的网格：西小网格"
    assert page.locator(".leaflet-overlay-pane canvas").count() == 1
    card = page.locator(f"#event-{event.pk}")
    assert "消防隐患" in card.inner_text() and "已派单" in card.inner_text()
    assert card.locator("[data-action]").evaluate_all(
        "nodes => nodes.filter(n => n.offsetParent !== null).map(n => n.dataset.action)"
    ) == [
        "accept", "note", "photo",
    ]  # fmt: skip
    # Every control a finger uses is at least 44 px high.
    small = page.evaluate(
        """() => [...document.querySelectorAll('button, .grid-button, select, textarea, input[type=search]')]
                 .filter(n => n.offsetParent !== null)
                 .map(n => [n.id || n.dataset.action || n.textContent.trim(), n.getBoundingClientRect().height])
                 .filter(([, h]) => h < 44)"""
    )
    assert small == []
    screenshot(page, "grid")
    page.click(".grid-tab[data-tab=residents]")
    first = page.locator(".grid-person").first
    assert first.get_attribute("data-care") == "true"
    masked = page.locator(".grid-person .grid-masked").first.inner_text()
    assert "********" in masked and "****" in masked.split()[-1]
    page.click(".grid-tab[data-tab=households]")
    assert page.locator(".grid-household").count() == 40
    assert page.locator("#households-count").inner_text() == "(40)"


def test_a_report_inside_and_one_outside_my_grid(tablet):
    """A tap inside says so at once and the report is stored in my grid; outside names the grid."""
    page = tablet()
    fill_report(page)
    tap(page, IN_WEST)
    page.wait_for_selector("#report-where[data-inside=true]")
    expect(page.locator("#report-where")).to_contain_text(WEST_CODE)
    assert page.locator("#report-where").inner_text() == f"在您的网格内：西小网格（{WEST_CODE}）"
    page.click("#report-submit")
    expect(page.locator("#toast")).to_contain_text(f"已上报。在您的网格内：西小网格（{WEST_CODE}）")
    wait_for_count(page, 0)
    fill_report(page, "路灯不亮")
    tap(page, IN_EAST)
    page.wait_for_selector("#report-where[data-inside=false]")
    expect(page.locator("#report-where")).to_contain_text(EAST_CODE)
    assert page.locator("#report-where").inner_text() == (f"不在您的网格内，属于东小网格（{EAST_CODE}）")
    page.click("#report-submit")
    expect(page.locator("#toast")).to_contain_text(f"已上报。不在您的网格内，属于东小网格（{EAST_CODE}）")
    wait_for_count(page, 0)
    expect(page.locator("#events-list .grid-card")).to_have_count(1)
    stored = dict(Event.objects.values_list("description", "grid__code"))
    assert stored == {"楼道堆放杂物，堵塞消防通道": WEST_CODE, "路灯不亮": EAST_CODE}
    assert set(Event.objects.values_list("channel", flat=True)) == {"grid_patrol"}


def test_a_report_made_offline_is_queued_and_sent_once_when_the_network_returns(tablet, problems):
    allow_offline(problems)
    page = tablet()
    page.context.set_offline(True)
    page.wait_for_selector("#offline-banner:not(.mq-hidden)")
    fill_report(page)
    tap(page, IN_WEST)
    # Offline, the answer comes from the boundary kept on the tablet.
    page.wait_for_selector("#report-where[data-inside=true]")
    page.click("#report-submit")
    wait_for_count(page, 1)
    assert page.locator("#pending").inner_text() == "待发送 1 条"
    assert page.locator(".grid-queue-item[data-state=pending]").count() == 1
    assert not Event.objects.exists()
    page.context.set_offline(False)
    wait_for_count(page, 0)
    page.wait_for_selector("#offline-banner.mq-hidden", state="attached")
    assert Event.objects.count() == 1
    event = Event.objects.get()
    assert (event.channel, event.external_id[:3], event.grid.code) == ("grid_patrol", "GW-", WEST_CODE)
    page.wait_for_selector(f"#event-{event.pk}", state="attached")


def test_a_double_tap_on_submit_sends_one_report(tablet):
    page = tablet()
    fill_report(page)
    tap(page, IN_WEST)
    page.wait_for_selector("#report-where[data-inside=true]")
    page.locator("#report-submit").dblclick()
    wait_for_count(page, 0)
    page.wait_for_selector("#toast:has-text('已上报')")
    assert Event.objects.count() == 1


def test_a_resent_queue_item_is_stored_once(tablet, problems):
    """The same queued report sent twice (an answer lost on the way back) makes one event."""
    allow_offline(problems)
    page = tablet()
    fill_report(page)
    tap(page, IN_WEST)
    page.wait_for_selector("#report-where[data-inside=true]")
    page.context.set_offline(True)
    page.click("#report-submit")
    wait_for_count(page, 1)
    body = page.evaluate("MinqingGrid.state.queue[0].body")
    page.context.set_offline(False)
    wait_for_count(page, 0)
    status = page.evaluate(
        """(body) => fetch('/api/grid/events', {method: 'POST', credentials: 'same-origin',
               headers: {'Content-Type': 'application/json', 'X-CSRFToken': MinqingGrid.state.csrf},
               body: JSON.stringify(body)}).then(r => r.status)""",
        body,
    )
    assert status == 200
    assert Event.objects.count() == 1


def test_a_vague_gps_fix_is_refused_and_a_good_one_is_used(tablet, problems):
    page = tablet(
        geolocation={"latitude": IN_WEST[1], "longitude": IN_WEST[0], "accuracy": 2000}, permissions=["geolocation"]
    )
    fill_report(page)
    page.click("#report-gps")
    page.wait_for_selector("#report-message:has-text('2,000')")
    assert page.locator("#report-message").inner_text() == (
        "GPS 定位精度只有 2,000 米（最多接受 200 米），请在地图上点选问题所在位置。"
    )
    assert page.locator("#map-hint").is_visible()
    assert page.locator("#report-where").get_attribute("data-inside") == ""
    page.context.set_geolocation({"latitude": IN_WEST[1], "longitude": IN_WEST[0], "accuracy": 15})
    page.click("#report-gps")
    page.wait_for_selector("#report-where[data-inside=true]")
    page.click("#report-submit")
    wait_for_count(page, 0)
    page.wait_for_selector("#toast:has-text('已上报')")
    assert Event.objects.get().location_input == {"lon": IN_WEST[0], "lat": IN_WEST[1], "crs": "wgs84"}


def test_the_closed_loop_from_the_tablet_with_a_photo_and_a_30_mb_photo_refused(tablet):
    event = report(at=IN_WEST)
    page = tablet()
    card = page.locator(f"#event-{event.pk}")
    card.locator("[data-action=accept]").click()
    page.wait_for_selector(f"#event-{event.pk}[data-status=in_progress]")
    # A 30 MB photo is refused on the tablet, with the reason, before anything is sent.
    card = page.locator(f"#event-{event.pk}")
    card.locator("input[type=file]").set_input_files(
        {"name": "big.jpg", "mimeType": "image/jpeg", "buffer": b"\xff" * (30 * 1024 * 1024)}
    )
    page.wait_for_selector("#toast[data-kind=error]")
    assert page.locator("#toast").inner_text() == "照片有 30 MB，最多只能发送 10 MB，请降低分辨率后重拍。"
    assert not EventPhoto.objects.exists()
    # A real photo goes through.
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (40, 120, 200)).save(buffer, format="JPEG")
    card.locator("input[type=file]").set_input_files(
        {"name": "scene.jpg", "mimeType": "image/jpeg", "buffer": buffer.getvalue()}
    )
    page.wait_for_selector(f"#event-{event.pk} .grid-photos img")
    assert EventPhoto.objects.get().event_id == event.pk
    page.locator(f"#event-{event.pk} [data-action=resolve]").click()
    page.fill(f"#event-{event.pk} .grid-note-text", "杂物已清理")
    page.locator(f"#event-{event.pk} [data-action=resolve-submit]").click()
    page.wait_for_selector(f"#event-{event.pk}[data-status=resolved]")
    event.refresh_from_db()
    assert event.status == "resolved"
    steps = list(event.transitions.order_by("at", "id").values_list("action", "actor_label"))
    assert steps[-3:] == [("accept", "gridworker"), ("photo", "gridworker"), ("resolve", "gridworker")]


def test_an_expired_session_says_so_and_keeps_the_queue(tablet, login, problems):
    problems.allow("401")
    # Basemap tiles asked for while logged out fail too (through the service worker, as a failed
    # fetch rather than a 401): expected here, like the 401s.
    problems.allow("/basemaps/offline/")
    page = tablet()
    page.context.clear_cookies()
    fill_report(page)
    tap(page, IN_WEST)
    page.wait_for_selector("#report-where[data-inside]")
    page.click("#report-submit")
    page.wait_for_selector("#session-banner:not(.mq-hidden)")
    # The banner shows first, then counts the queue the refused report went into: wait for that.
    expect(page.locator("#session-text")).to_have_text("登录已过期。1 条待发送的数据已保存在本机，请重新登录后发送。")
    assert page.locator("#pending").get_attribute("data-count") == "1"
    assert not Event.objects.exists()
    login(page, "gridworker", next="/grid/")
    page.wait_for_selector("body[data-ready=true]")
    wait_for_count(page, 0)
    assert Event.objects.count() == 1


def test_the_page_opens_offline_from_the_service_worker(tablet, problems):
    """After one visit, the page, its scripts and my grid open without a network."""
    allow_offline(problems)
    page = tablet()
    assert page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    # The worker claims the open page once it is active (clients.claim()).
    assert page.evaluate(
        """() => navigator.serviceWorker.controller ? true : new Promise(resolve =>
               navigator.serviceWorker.addEventListener('controllerchange', () => resolve(true)))"""
    )
    page.context.set_offline(True)
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("#grid-title").inner_text() == "我的网格：西小网格"
    assert page.locator("#net-state").get_attribute("data-online") == "false"
    page.click(".grid-tab[data-tab=households]")
    assert page.locator(".grid-household").count() == 40
    assert get_user_model().objects.filter(username="gridworker").exists()


def test_logging_out_removes_my_grid_from_the_tablet_but_keeps_the_queue(tablet, problems):
    allow_offline(problems)
    page = tablet()
    stored = """() => new Promise(resolve => { const open = indexedDB.open('minqing-grid', 1);
        open.onsuccess = () => { const tx = open.result.transaction(['kv', 'queue']);
            const kv = tx.objectStore('kv').getAllKeys(), queue = tx.objectStore('queue').count();
            tx.oncomplete = () => { resolve([kv.result, queue.result]); open.result.close(); }; }; })"""
    assert page.evaluate(stored) == [["package:gridworker"], 0]
    page.context.set_offline(True)
    fill_report(page)
    tap(page, IN_WEST)
    page.click("#report-submit")
    wait_for_count(page, 1)
    # Back online for the logout, with the report kept waiting (its sending fails).
    problems.allow("/api/grid/events: net::ERR_FAILED")
    problems.allow("/api/grid/events:0)")  # the console's line for the same failure
    page.route("**/api/grid/events", lambda route: route.abort())
    page.context.set_offline(False)
    with page.expect_navigation():
        page.click(".mq-account button[type=submit]")
    assert page.url.endswith("/accounts/login/")
    assert page.evaluate(stored) == [[], 1]
