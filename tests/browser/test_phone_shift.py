"""A grid worker's shift on a phone (390×844) over a slow mobile network (400 kbps both ways, 400 ms
latency, Chromium's DevTools network emulation), step by step: log in, open my grid, accept an
event, report one by tapping the map, report one offline and send it when the network returns,
open the page again from the phone's copies, log out.

The test asserts what each step does and how many bytes the cold start moves (compressed); the
time of each step is measured and written to var/bench/phone-shift.md (and printed), never
asserted: times depend on the machine (see NOTES.md for measured figures)."""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from playwright.sync_api import expect

from layers.models import Event, Grid
from tests.worlds.events import IN_WEST, report, world
from tests.worlds.grid_worker import populate

REPORT = Path(settings.BASE_DIR) / "var" / "bench" / "phone-shift.md"
KBPS, LATENCY_MS = 400, 400


def test_a_grid_workers_shift_on_a_slow_network(
    open_page, role_user, network, problems, live_server, settings, tmp_path
):
    problems.allow("ERR_INTERNET_DISCONNECTED")
    # A basemap tile being kept for offline use when the session ends is refused (401).
    problems.allow("/basemaps/offline/")
    settings.MEDIA_ROOT = tmp_path / "media"
    area = world()
    populate(area["west"], households=450, prefix="W", per_building=30)
    worker = role_user("grid_worker", username="gridworker")
    Grid.objects.filter(pk=area["west"].pk).update(worker=worker)
    event = report(at=IN_WEST)
    page = open_page(390, 844)
    session = network(page, KBPS, LATENCY_MS)
    received = {"bytes": 0}
    session.on(
        "Network.loadingFinished",
        lambda params: received.__setitem__("bytes", received["bytes"] + params["encodedDataLength"]),
    )
    steps: list[tuple[str, float, int]] = []

    def step(name, action):
        before, start = received["bytes"], time.perf_counter()
        action()
        steps.append((name, time.perf_counter() - start, received["bytes"] - before))

    def log_in():
        page.goto(f"{live_server.url}/accounts/login/?next=/")
        page.fill("#id_username", "gridworker")
        page.fill("#id_password", "minqing-demo")
        with page.expect_navigation():
            page.click("#login-form button[type=submit]")

    step("log in (the login page and its answer)", log_in)
    step("open my grid, cold (nothing cached): page ready", lambda: (
        page.goto(f"{live_server.url}/grid/"), page.wait_for_selector("body[data-ready=true]", timeout=60_000),
    ))  # fmt: skip
    cold = steps[-1][2]
    step("keep my grid's basemap for offline use (in the background)", lambda: (
        page.wait_for_selector("#tiles-state:has-text('已保存')", state="attached", timeout=120_000),
    ))  # fmt: skip
    step("accept an event", lambda: (
        page.locator(f"#event-{event.pk} [data-action=accept]").click(),
        page.wait_for_selector(f"#event-{event.pk}[data-status=in_progress]", timeout=30_000),
    ))  # fmt: skip

    def tap_report(description):
        page.click(".grid-tab[data-tab=report]")
        page.select_option("#report-category", "hazard.fire")
        page.fill("#report-description", description)
        page.click("#report-tap")
        x, y = page.evaluate(
            "([lon, lat]) => { const p = MinqingGrid.map.latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }",
            list(IN_WEST),
        )
        page.locator("#grid-map").click(position={"x": x, "y": y})
        page.wait_for_selector("#report-where[data-inside=true]", timeout=30_000)
        page.click("#report-submit")

    step("report by tapping the map (until sent)", lambda: (
        tap_report("楼道堆放纸箱"), page.wait_for_selector("#pending[data-count='0']", timeout=30_000),
        expect(page.locator("#toast")).to_contain_text("已上报", timeout=30_000),
    ))  # fmt: skip
    page.context.set_offline(True)
    step("report offline (kept on the phone)", lambda: (
        tap_report("路灯不亮"), page.wait_for_selector("#pending[data-count='1']", timeout=30_000),
    ))  # fmt: skip
    step("network back: the queue is sent", lambda: (
        page.context.set_offline(False), page.wait_for_selector("#pending[data-count='0']", timeout=60_000),
    ))  # fmt: skip
    step("open my grid again (warm: the service worker's copies)", lambda: (
        page.reload(), page.wait_for_selector("body[data-ready=true]", timeout=60_000),
    ))  # fmt: skip
    step("log out", lambda: (
        page.click("#menu-toggle"), page.click(".mq-account button[type=submit]"),
        page.wait_for_url("**/accounts/login/", timeout=30_000),
    ))  # fmt: skip

    assert Event.objects.filter(description__in=["楼道堆放纸箱", "路灯不亮"]).count() == 2
    # The cold start moves the page, Leaflet, our scripts and a 450-household package: about a
    # tenth of that uncompressed (the package alone is ~0.4 MB as JSON).
    assert cold < 200_000, f"the cold start moved {cold:,} bytes"
    lines = [
        f"# A grid worker's shift on a phone: {KBPS} kbps, {LATENCY_MS} ms latency (Chromium network emulation)",
        "",
        "| step | seconds | bytes received |",
        "|---|---:|---:|",
        *(f"| {name} | {seconds:.1f} | {size:,} |" for name, seconds, size in steps),
        "",
        "Measured by tests/browser/test_phone_shift.py on a 450-household grid (390×844, headless chromium).",
    ]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n" + "\n".join(lines))
