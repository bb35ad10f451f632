"""The residents' side in headless chromium on a 390×844 phone: the whole loop — a report with a
photo and a typed address, seen on the wall and on the grid worker's phone, resolved by the worker
and checked by someone else, then seen and rated by the resident, and counted on the public map —
and the moderation of a public summary; axe-core finds no serious or critical violation on the
public pages."""

from __future__ import annotations

import io
import re
from urllib.parse import urlsplit

import pytest
from PIL import Image
from playwright.sync_api import expect

from layers.models import Event, EventPhoto, Grid, PublicSummary
from layers.protection.access import SYSTEM
from layers.services.events import event_act
from tests.worlds.events import IN_WEST, report, world
from tests.worlds.grid_worker import populate

WEST_CODE = "620102001001010101"
PHONE = {"width": 390, "height": 844}


def jpeg(colour=(40, 120, 200), size=(640, 480)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def resolved_case(at=IN_WEST) -> Event:
    """A case handled to resolution by the system (set-up for the public map's counts)."""
    event = report(at=at, channel="hotline", category="municipal.streetlight", description="路灯不亮")
    for action, reason in (("accept", ""), ("resolve", "已更换灯泡")):
        event = event_act(event=event, action=action, reader=SYSTEM, reason=reason)
    return event


@pytest.fixture
def town(role_user, settings, tmp_path):
    """The WEST small grid with its households and addresses (南关巷…), its worker, the command
    center, and four cases already resolved there this month."""
    settings.MEDIA_ROOT = tmp_path / "media"
    area = world()
    populate(area["west"], households=24, prefix="W")
    worker = role_user("grid_worker", username="gridworker")
    Grid.objects.filter(pk=area["west"].pk).update(worker=worker)
    role_user("command_center", username="command")
    for _ in range(4):
        resolved_case()
    return area


def phone(open_page):
    return open_page(PHONE["width"], PHONE["height"], is_mobile=True, has_touch=True)


def west_cell(page) -> dict:
    return page.evaluate(
        """(code) => { let found = null; MinqingPublic.cells.eachLayer(l => {
               if (l.feature.properties.code === code) { found = l.feature.properties; } }); return found; }""",
        WEST_CODE,
    )


def test_the_whole_loop_on_a_phone(town, open_page, login, screenshot, problems, live_server, axe):
    # --- the resident reports, with a photo and a typed address ------------------------------------
    page = phone(open_page)
    page.goto(f"{live_server.url}/report/")
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    page.click("label[for=family-municipal]")
    page.select_option("#report-category", "municipal.streetlight")
    page.fill("#report-description", "南关巷路灯不亮，晚上很黑。我的电话13912345678")
    page.set_input_files("#report-photos", {"name": "lamp.jpg", "mimeType": "image/jpeg", "buffer": jpeg()})
    expect(page.locator("#photo-list img")).to_have_count(1)
    page.fill("#report-phone", "13912345678")
    page.locator("#report-address").press_sequentially("南关巷1号1号楼", delay=30)
    expect(page.locator("#report-place")).to_have_attribute("data-state", "inside")
    expect(page.locator("#report-place")).to_contain_text("匹配标准地址 南关巷1号1号楼")
    expect(page.locator("#report-place")).to_contain_text("畅家巷社区 · 西小网格")
    assert axe(page) == [], "/report/"
    screenshot(page, "resident-report")
    page.click("#report-submit")
    page.wait_for_selector("#receipt-view:not(.mq-hidden)")
    expect(page.locator("#receipt-photos")).to_have_text("已发送 1 张照片。")
    ticket = page.locator("#receipt-ticket").inner_text()
    link = page.locator("#receipt-link").get_attribute("href")
    assert re.fullmatch(r"XL\d{8}\d{6}", ticket)
    assert urlsplit(link).path == "/report/follow/" and len(urlsplit(link).fragment) == 32
    assert axe(page) == [], "/report/ (the receipt)"
    screenshot(page, "resident-receipt")
    event = Event.objects.get(channel="app")
    assert (event.grid.code, event.geocode_method, event.status) == (WEST_CODE, "address", "assigned")
    assert event.description == "南关巷路灯不亮，晚上很黑。我的电话139****5678"
    assert event.reporter_phone_masked == "139****5678"
    assert EventPhoto.objects.filter(event=event, uploaded_by__isnull=True).count() == 1

    # --- the command center's wall shows it ------------------------------------------------------
    wall = open_page(1920, 1080)
    login(wall, "command", next="/wall/")
    wall.wait_for_selector(f"#feed li[data-id='{event.pk}']")
    expect(wall.locator(f"#feed li[data-id='{event.pk}']")).to_contain_text("路灯")
    wall.context.close()

    # --- the grid worker's phone: accept, a photo of the result, resolve ------------------------------
    worker = phone(open_page)
    login(worker, "gridworker", next="/grid/")
    worker.wait_for_selector("body[data-ready=true]")
    card = worker.locator(f"#event-{event.pk}")
    expect(card).to_contain_text("路灯")
    card.locator("[data-action=accept]").click()
    worker.wait_for_selector(f"#event-{event.pk}[data-status=in_progress]")
    worker.locator(f"#event-{event.pk} input[type=file]").set_input_files(
        {"name": "fixed.jpg", "mimeType": "image/jpeg", "buffer": jpeg((250, 220, 90))}
    )
    # The resident's photo and the worker's: the tablet shows the case's photos to its worker.
    expect(worker.locator(f"#event-{event.pk} .grid-photos img")).to_have_count(2)
    worker.wait_for_selector("#pending[data-count='0']", state="attached")
    worker.locator(f"#event-{event.pk} [data-action=resolve]").click()
    worker.fill(f"#event-{event.pk} .grid-note-text", "已更换路灯灯泡，恢复照明")
    worker.locator(f"#event-{event.pk} [data-action=resolve-submit]").click()
    worker.wait_for_selector(f"#event-{event.pk}[data-status=resolved]")
    screenshot(worker, "resident-loop-grid-phone")
    # The resolver may not check their own work.
    problems.allow(f"/api/events/{event.pk}/actions")  # the refusal below (its answer and console line)
    refused = worker.evaluate(
        """(id) => fetch(`/api/events/${id}/actions`, {method: 'POST', credentials: 'same-origin',
               headers: {'Content-Type': 'application/json', 'X-CSRFToken': Minqing.csrfToken()},
               body: JSON.stringify({action: 'verify'})}).then(r => r.json().then(b => [r.status, b.error.code]))""",
        event.pk,
    )
    assert refused == [403, "action_not_permitted"]
    worker.context.close()

    # --- someone else checks it: the command center verifies ------------------------------------------
    checker = open_page(1280, 800)
    login(checker, "command", next="/wall/")
    verified = checker.evaluate(
        """(id) => fetch(`/api/events/${id}/actions`, {method: 'POST', credentials: 'same-origin',
               headers: {'Content-Type': 'application/json', 'X-CSRFToken': Minqing.csrfToken()},
               body: JSON.stringify({action: 'verify'})}).then(r => r.json().then(b => [r.status, b.status]))""",
        event.pk,
    )
    assert verified == [200, "verified"]
    checker.context.close()

    # --- the resident sees it and rates it ------------------------------------------------------------
    follow = phone(open_page)
    asked = []
    follow.on("request", lambda request: asked.append((request.url, request.headers.get("x-follow-token"))))
    follow.goto(link)
    follow.wait_for_selector("body[data-ready=true]")
    token = urlsplit(link).fragment
    # The token never travels in a URL (logs, Referer): only in its header, to the case's API.
    assert not [url for url, _ in asked if token in url]
    assert [header for url, header in asked if url.endswith("/api/resident/case")] == [token]
    expect(follow.locator("#case-status")).to_have_text("已办结并核查")
    expect(follow.locator("#case-ticket")).to_have_text(ticket)
    expect(follow.locator("#resolution-note")).to_have_text("已更换路灯灯泡，恢复照明")
    expect(follow.locator("#resolution-photos img")).to_have_count(1)
    expect(follow.locator("#case-handler")).to_contain_text("城管局")
    expect(follow.locator("#case-handler")).to_contain_text("西小网格")
    assert "gridworker" not in follow.locator("#case").inner_text()
    steps = follow.locator("#case-steps li").evaluate_all("nodes => nodes.map(n => n.dataset.action)")
    assert steps == ["verify", "resolve", "accept", "assign", "triage", "receive"]
    assert axe(follow) == [], "/report/follow/"
    follow.click("label[for=answer-star-5]")
    follow.fill("#answer-comment", "修得很快，谢谢")
    follow.click("#answer-submit")
    expect(follow.locator("#case-answered")).to_have_text("谢谢！您给出的评价是 5 分（满分 5 分）。")
    expect(follow.locator("#case-answer")).to_be_hidden()
    screenshot(follow, "resident-follow-rated")
    event.refresh_from_db()
    assert (event.satisfaction, event.status) == (5, "verified")
    rated = event.transitions.get(action="rate")
    assert (rated.actor_id, rated.actor_label, rated.reason) == (None, f"居民 (resident) {ticket}", "修得很快，谢谢")

    # --- the public map counts it ---------------------------------------------------------------------
    public = phone(open_page)
    public.goto(f"{live_server.url}/public/")
    public.wait_for_selector("body[data-ready=true]")
    assert west_cell(public) == {
        "kind": "grid",
        "code": WEST_CODE,
        "name": "西小网格",
        "community": "畅家巷社区",
        "street": "酒泉路街道",
        "cases": 5,
        "open": 0,
        "resolved": 5,
    }
    expect(public.locator("#total-resolved")).to_have_text("5")
    expect(public.locator("#total-satisfaction")).to_have_text("—")  # one rating: below the threshold
    assert axe(public) == [], "/public/"
    screenshot(public, "public-map")
    embed = phone(open_page)
    embed.goto(f"{live_server.url}/public/embed/")
    embed.wait_for_selector("body[data-ready=true]")
    assert embed.locator(".mq-topbar").count() == 0
    assert axe(embed) == [], "/public/embed/"


def test_a_public_summary_is_written_approved_by_another_and_published(
    town, open_page, login, role_user, screenshot, live_server
):
    role_user("command_center", username="moderator")
    case = Event.objects.filter(status="resolved").first()
    writer = open_page(1280, 800)
    login(writer, "command", next="/moderation/")
    form = writer.locator(f"#candidate-{case.pk} form")
    form.locator("textarea").fill("南关巷路灯不亮，城管局当天更换灯泡，恢复照明。")
    with writer.expect_navigation():
        form.locator("button[type=submit]").click()
    expect(writer.locator(".md-messages")).to_contain_text("等待另一位审核人批准")
    summary = PublicSummary.objects.get(event=case)
    # The author cannot approve it: the page offers no button, and the service would refuse.
    expect(writer.locator(f"#pending-{summary.pk}")).to_contain_text("您撰写了这条摘要")
    assert writer.locator(f"#pending-{summary.pk} button[value=approve]").count() == 0
    public = phone(open_page)
    public.goto(f"{live_server.url}/public/")
    public.wait_for_selector("body[data-ready=true]")
    expect(public.locator("#cases")).to_have_text("尚未公开已办结的案例。")
    moderator = open_page(1280, 800)
    login(moderator, "moderator", next="/moderation/")
    screenshot(moderator, "moderation")
    with moderator.expect_navigation():
        moderator.locator(f"#pending-{summary.pk} button[value=approve]").click()
    expect(moderator.locator(".md-messages")).to_contain_text("已在公开地图上发布")
    summary.refresh_from_db()
    assert summary.status == "approved"
    # A new visitor (the first one's browser may keep the list for MINQING_PUBLIC_MAX_AGE seconds).
    public = phone(open_page)
    public.goto(f"{live_server.url}/public/")
    public.wait_for_selector("body[data-ready=true]")
    expect(public.locator(f"#case-{case.pk}")).to_contain_text("南关巷路灯不亮，城管局当天更换灯泡，恢复照明。")
    expect(public.locator(f"#case-{case.pk}")).to_contain_text("酒泉路街道 · 畅家巷社区")
    screenshot(public, "public-cases")
